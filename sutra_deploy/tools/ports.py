"""Loopback ports for what the tool starts itself (port-forwards, a kubectl proxy, test servers)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel's pick), for something of our own."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
