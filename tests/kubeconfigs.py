"""Kubeconfig files for the tests that run the real kubectl without a cluster behind it."""

from __future__ import annotations

import socket
from pathlib import Path

import yaml


def refused_address() -> str:
    """A loopback address that refuses connections at once (bound, then released: nothing
    listens there, and the kernel does not hand a port it just gave out to the next bind)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{held.getsockname()[1]}"


def kubeconfig(path: Path, current: str, contexts: tuple[str, ...] = ()) -> Path:
    """A kubeconfig whose contexts (``current`` among them) all name a server that refuses."""
    server = refused_address()
    names = sorted({current, *contexts})
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "nowhere", "cluster": {"server": server}}],
        "users": [{"name": "nobody", "user": {}}],
        "contexts": [{"name": n, "context": {"cluster": "nowhere", "user": "nobody"}} for n in names],
        "current-context": current,
    }
    path.write_text(yaml.safe_dump(config))
    return path
