"""The tests that need a real Kubernetes control plane: one per session, with the node agent's
nodes registered, torn down however the session ends (a failure, Ctrl-C, or SIGTERM or SIGHUP from a cancelled
CI job, which tests/conftest.py turns into Ctrl-C; its processes die with the run even on
SIGKILL, tests/processes.py)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from sutra_deploy.tools.ports import free_port
from sutra_deploy.tools.waiting import wait_until

from ..integration.conftest import inv as run_inv
from ..processes import start_owned
from .control_plane import ControlPlane
from .node_agent import NodeAgent

OVERLAYS = Path(__file__).parent / "overlays"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Iterator[ControlPlane]:
    with ControlPlane.start(tmp_path_factory.mktemp("cluster")) as plane, NodeAgent(plane) as agent:
        plane.agent = agent
        yield plane
        assert not agent.errors, agent.errors[:5]


@pytest.fixture(scope="session")
def registry() -> Iterator[str]:
    """Debian's distribution registry on a free loopback port for the session: where the
    images the pods run come from, as from a real cluster's registry."""
    folder = Path(tempfile.mkdtemp(prefix="sutra-cluster-registry-"))
    port = free_port()
    config = folder / "config.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    process = start_owned(
        ["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def answering() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(answering, timeout=30, what="the registry")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        tags = subprocess.run(
            ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True
        ).stdout.split()
        ours = [t for t in tags if t.startswith(f"127.0.0.1:{port}/")]
        if ours:
            subprocess.run(["docker", "image", "rm", *ours], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pushed(registry: str) -> str:
    """The v2 images, built and pushed as a user does before applying: the registry path."""
    for args in (("build",), ("push", "--registry", f"{registry}/sutra-ai")):
        result = inv(*args, env={}, timeout=1800)
        assert result.returncode == 0, result.stderr[-3000:]
    return f"{registry}/sutra-ai"


@pytest.fixture
def cluster_env(cluster: ControlPlane, pushed: str) -> Callable[[str], dict[str, str]]:
    """What `inv` needs to act on one environment of the test cluster as a user would: a
    kubeconfig whose current context is the one the environment names (the context check is
    real), the registry the images were pushed to, and each environment's test overlay (the
    real one less the fields 1.20 lacks)."""

    def env_for(environment: str) -> dict[str, str]:
        kubeconfig = cluster.kubeconfig.with_name(f"kubeconfig-{environment}")
        if not kubeconfig.exists():
            shutil.copy(cluster.kubeconfig, kubeconfig)
            cluster.kubectl(f"--kubeconfig={kubeconfig}", "config", "use-context", f"sutra-{environment}")
        return {
            "KUBECONFIG": str(kubeconfig),
            "INVOKE_SUTRA_ENVIRONMENTS_STAGING_OVERLAY": str(OVERLAYS / "staging"),
            "INVOKE_SUTRA_ENVIRONMENTS_PRODUCTION_OVERLAY": str(OVERLAYS / "production"),
            "INVOKE_SUTRA_ENVIRONMENTS_STAGING_REGISTRY": pushed,
            "INVOKE_SUTRA_ENVIRONMENTS_PRODUCTION_REGISTRY": pushed,
            # A rollout that cannot finish fails in 2 minutes, not the default 5 or 10.
            "INVOKE_SUTRA_ENVIRONMENTS_STAGING_ROLLOUT_TIMEOUT": "120",
            "INVOKE_SUTRA_ENVIRONMENTS_PRODUCTION_ROLLOUT_TIMEOUT": "120",
        }

    return env_for


def inv(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """`inv` as a user runs it (the integration tests' runner), with ``env`` on top of ours."""
    return run_inv(*args, timeout=timeout, **env)
