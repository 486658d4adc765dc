"""`inv verify --env staging` against the real control plane: it reads the real Pods, HPAs
and Nodes (restarts, OOMKilled, PodScheduled → Ready), says "not measured" where the cluster
has no metrics API, shows progress on stderr, and a cluster it cannot reach is one line at once.
Runs after test_deploy.py and test_rollback.py, which leave staging running."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sutra_deploy.tools.ports import free_port

from .conftest import inv
from .test_deploy import NAMESPACE, pods_of


def metrics(result: subprocess.CompletedProcess) -> dict[str, dict]:
    return {m["name"]: m for m in json.loads(result.stdout)["metrics"]}


def test_verify_reads_the_real_pods_autoscalers_and_nodes(cluster_env):
    result = inv("verify", "--env", "staging", "--json", env=cluster_env("staging"))
    found = metrics(result)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    assert "[verify] smoke through kubectl port-forward" in result.stderr
    assert found["health checks passing"]["status"] == "pass"
    assert found["no OOMKilled pods"]["status"] == "pass"
    assert found["restarts"]["status"] == "pass"
    startup = found["pod startup: sutra-api"]
    assert startup["status"] == "pass" and startup["value"] > 0, startup  # Ready after scheduled
    assert found["memory: sutra-api"]["status"] == "not measured"
    assert "metrics API unavailable" in found["memory: sutra-api"]["how"]


def test_a_pod_over_its_memory_limit_is_found_oomkilled(cluster, cluster_env):
    """What-if: sutra-api's limit cut to 24Mi (request 16Mi), far under what it needs to start.
    The engine kills it, the node agent reports OOMKilled as a kubelet does, and verify fails
    naming it; the pods of the revision before keep serving (maxUnavailable 0)."""
    env = cluster_env("staging")
    resources = "/spec/template/spec/containers/0/resources"
    patch = [
        {"op": "replace", "path": f"{resources}/requests/memory", "value": "16Mi"},
        {"op": "replace", "path": f"{resources}/limits/memory", "value": "24Mi"},
    ]
    cluster.kubectl("patch", "deployment/sutra-api", "-n", NAMESPACE, "--type=json", "-p", json.dumps(patch))
    try:
        cluster.wait_for(
            lambda: any(
                (s.get("lastState") or {}).get("terminated", {}).get("reason") == "OOMKilled"
                for p in pods_of(cluster, "sutra-api")
                for s in p["status"].get("containerStatuses") or []
            ),
            timeout=90,
            what="an OOMKilled sutra-api container",
        )
        result = inv("verify", "--env", "staging", "--json", env=env)
        assert result.returncode == 1, result.stderr[-3000:]
        oom = metrics(result)["no OOMKilled pods"]
        assert oom["status"] == "fail" and oom["value"] >= 1, oom
        assert "sutra-api" in result.stderr.strip().splitlines()[-1] or "OOMKilled" in result.stderr
    finally:
        cluster.kubectl("rollout", "undo", "deployment/sutra-api", "-n", NAMESPACE)
        cluster.kubectl("rollout", "status", "deployment/sutra-api", "-n", NAMESPACE, "--timeout=120s")


def test_a_cluster_that_cannot_be_reached_is_one_line_at_once(cluster, cluster_env, tmp_path):
    env = cluster_env("staging")
    kubeconfig = tmp_path / "kubeconfig"
    text = Path(env["KUBECONFIG"]).read_text().replace(cluster.server, f"https://127.0.0.1:{free_port()}")
    kubeconfig.write_text(text)
    result = inv("verify", "--env", "staging", env={**env, "KUBECONFIG": str(kubeconfig)}, timeout=15)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot reach the cluster of kubectl's current context: ")
