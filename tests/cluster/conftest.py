"""The tests that need a real Kubernetes control plane: one per session, with the node agent's
nodes registered, torn down however the session ends (a failure, Ctrl-C, SIGTERM or SIGHUP
from a cancelled CI job)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sutra_deploy.core.source import PROJECT_DIR

from .control_plane import ControlPlane
from .node_agent import NodeAgent

OVERLAYS = Path(__file__).parent / "overlays"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Iterator[ControlPlane]:
    # SIGTERM and SIGHUP unwind like Ctrl-C, so every fixture's teardown runs.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with ControlPlane.start(tmp_path_factory.mktemp("cluster")) as plane, NodeAgent(plane) as agent:
            plane.agent = agent
            yield plane
            assert not agent.errors, agent.errors[:5]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@pytest.fixture
def cluster_env(cluster: ControlPlane) -> Callable[[str], dict[str, str]]:
    """What `inv` needs to act on one environment of the test cluster as a user would: a
    kubeconfig whose current context is the one the environment names (the context check is
    real), and each environment's test overlay (the real one less the fields 1.20 lacks)."""

    def env_for(environment: str) -> dict[str, str]:
        kubeconfig = cluster.kubeconfig.with_name(f"kubeconfig-{environment}")
        if not kubeconfig.exists():
            shutil.copy(cluster.kubeconfig, kubeconfig)
            cluster.kubectl(f"--kubeconfig={kubeconfig}", "config", "use-context", f"sutra-{environment}")
        return {
            "KUBECONFIG": str(kubeconfig),
            "INVOKE_SUTRA_ENVIRONMENTS_STAGING_OVERLAY": str(OVERLAYS / "staging"),
            "INVOKE_SUTRA_ENVIRONMENTS_PRODUCTION_OVERLAY": str(OVERLAYS / "production"),
        }

    return env_for


def inv(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    sys.stderr.write(result.stderr[-4000:])  # kept by pytest, shown when a test fails
    return result
