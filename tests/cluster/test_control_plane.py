"""The test cluster itself: a real apiserver that serves the API versions the manifests use,
the pinned kubectl talking to it over verified TLS, and the node agent's nodes Ready."""

from __future__ import annotations

import json

from .control_plane import ControlPlane


def test_the_pinned_kubectl_talks_to_the_real_server(cluster: ControlPlane):
    versions = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert versions["serverVersion"]["gitVersion"] == "v1.20.2"
    assert versions["clientVersion"]["minor"] == "37"


def test_the_server_serves_the_versions_the_manifests_use(cluster: ControlPlane):
    groups = {g["name"]: g for g in cluster.api("GET", "/apis").json()["groups"]}
    assert "v2" in {v["version"] for v in groups["autoscaling"]["versions"]}
    assert "v1" in {v["version"] for v in groups["policy"]["versions"]}
    hpa = cluster.api("GET", "/apis/autoscaling/v2").json()
    assert "horizontalpodautoscalers" in {r["name"] for r in hpa["resources"]}
    pdb = cluster.api("GET", "/apis/policy/v1").json()
    assert {r["name"] for r in pdb["resources"]} == {"poddisruptionbudgets", "poddisruptionbudgets/status"}
    # The betas are still served: a GA version was added, none replaced.
    assert "v2beta2" in {v["version"] for v in groups["autoscaling"]["versions"]}
    assert "v1beta1" in {v["version"] for v in groups["policy"]["versions"]}


def test_the_node_agents_nodes_are_ready_and_schedulable(cluster: ControlPlane):
    nodes = cluster.api("GET", "/api/v1/nodes").json()["items"]
    assert {n["metadata"]["name"] for n in nodes} == {n.name for n in cluster.agent.nodes}
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert ready["Ready"] == "True"
        assert not node["spec"].get("taints"), node["spec"].get("taints")
        assert node["metadata"]["labels"]["topology.kubernetes.io/zone"]


def test_an_unauthenticated_caller_is_refused(cluster: ControlPlane):
    import requests

    answer = requests.get(f"{cluster.server}/api/v1/namespaces", verify=str(cluster.ca), timeout=10)
    assert answer.status_code in (401, 403)
