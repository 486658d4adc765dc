"""`inv k8s-apply` against the real control plane: the namespace first, every rollout waited
for by the real Deployment controller, and a second apply that changes nothing."""

from __future__ import annotations

import json

from .conftest import inv
from .control_plane import ControlPlane

NAMESPACES = {"staging": "sutra-ai-staging", "production": "sutra-ai"}


def state(cluster: ControlPlane, namespace: str) -> dict[str, tuple]:
    """Each object's generation and its ReplicaSets: what an apply that changes anything moves."""
    found = {}
    kinds = "deployments,services,hpa,pdb,networkpolicies,pvc,replicasets"
    for item in json.loads(cluster.kubectl("get", kinds, "-n", namespace, "-o", "json").stdout)["items"]:
        meta = item["metadata"]
        found[f"{item['kind']}/{meta['name']}"] = (meta.get("generation"), meta["uid"])
    return found


def test_staging_applies_in_order_waits_for_every_rollout_and_converges(cluster, cluster_env):
    first = inv("k8s-apply", "--env", "staging", env=cluster_env("staging"))
    assert first.returncode == 0, first.stderr[-3000:]
    namespace = NAMESPACES["staging"]
    deployments = json.loads(cluster.kubectl("get", "deployments", "-n", namespace, "-o", "json").stdout)
    names = {d["metadata"]["name"] for d in deployments["items"]}
    assert names == {"storage-server", "sutra-api", "sutra-hybrid", "sutra-control", "sutra-client"}
    for deployment in deployments["items"]:
        status = deployment["status"]
        assert status.get("availableReplicas", 0) >= 1, deployment["metadata"]["name"]
        assert status["observedGeneration"] == deployment["metadata"]["generation"]
    claim = cluster.kubectl("get", "pvc", "storage-data", "-n", namespace, "-o", "json").stdout
    assert json.loads(claim)["status"]["phase"] == "Bound"
    hpas = json.loads(cluster.kubectl("get", "hpa.v2.autoscaling", "-n", namespace, "-o", "json").stdout)
    assert len(hpas["items"]) == 4

    before = state(cluster, namespace)
    second = inv("k8s-apply", "--env", "staging", env=cluster_env("staging"))
    assert second.returncode == 0, second.stderr[-3000:]
    assert state(cluster, namespace) == before, "a second apply changed the environment"


def test_production_asks_nothing_with_yes_and_rolls_out(cluster, cluster_env):
    result = inv("k8s-apply", "--env", "production", "--yes", env=cluster_env("production"))
    assert result.returncode == 0, result.stderr[-3000:]
    deployments = json.loads(cluster.kubectl("get", "deployments", "-n", "sutra-ai", "-o", "json").stdout)
    assert len(deployments["items"]) == 5
    assert all(d["status"].get("availableReplicas", 0) >= 1 for d in deployments["items"])
