"""The policy every rendered workload must meet, and the network policies around them."""

import copy

import pytest

from sutra_deploy.k8s.policy import selects, violations

NAME = "app.kubernetes.io/name"
GOOD = {
    "kind": "Deployment",
    "metadata": {"name": "sutra-api"},
    "spec": {
        "template": {
            "metadata": {"labels": {NAME: "sutra-api"}},
            "spec": {
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
                "containers": [
                    {
                        "name": "sutra-api",
                        "image": "registry.example.com/sutra-ai/sutra-api:v2",
                        "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}],
                        "resources": {
                            "requests": {"cpu": "250m", "memory": "256Mi"},
                            "limits": {"cpu": "1000m", "memory": "1Gi"},
                        },
                        "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}},
                        "livenessProbe": {"httpGet": {"path": "/health", "port": 8000}},
                        "securityContext": {"allowPrivilegeEscalation": False},
                    }
                ],
            },
        }
    },
}


CALLER = copy.deepcopy(GOOD)
CALLER["metadata"]["name"] = "sutra-control"
CALLER["spec"]["template"]["metadata"]["labels"] = {NAME: "sutra-control"}


def network_policy(name: str, selector: dict, ingress: list | None = None, types=("Ingress",)) -> dict:
    spec: dict = {"podSelector": selector, "policyTypes": list(types)}
    if ingress is not None:
        spec["ingress"] = ingress
    return {"kind": "NetworkPolicy", "metadata": {"name": name}, "spec": spec}


def pods(name: str) -> dict:
    return {"podSelector": {"matchLabels": {NAME: name}}}


DENY = network_policy("default-deny-ingress", {})
ALLOW_API = network_policy(
    "sutra-api",
    {"matchLabels": {NAME: "sutra-api"}},
    [{"from": [pods("sutra-control")], "ports": [{"port": "http"}]}],
)
CLOSE_CONTROL = network_policy("sutra-control", {"matchLabels": {NAME: "sutra-control"}}, [])
NETWORK = [DENY, ALLOW_API, CLOSE_CONTROL, CALLER]


def changed(edit) -> dict:
    obj = copy.deepcopy(GOOD)
    edit(obj["spec"]["template"]["spec"])
    return obj


def test_a_compliant_deployment_passes():
    assert violations([GOOD, {"kind": "Service", "metadata": {"name": "x"}}, *NETWORK]) == []


def test_each_rule_names_the_container():
    container = lambda pod: pod["containers"][0]  # noqa: E731
    cases = {
        "no memory limits": lambda pod: container(pod)["resources"]["limits"].pop("memory"),
        "no livenessProbe": lambda pod: container(pod).pop("livenessProbe"),
        "runAsNonRoot is not true": lambda pod: pod["securityContext"].pop("runAsNonRoot"),
        "runs as uid 0": lambda pod: pod["securityContext"].update(runAsUser=0),
        "allowPrivilegeEscalation is not false": lambda pod: container(pod).pop("securityContext"),
        "uses :latest": lambda pod: container(pod).update(image="r.io/sutra-api:latest"),
        "has no tag or digest": lambda pod: container(pod).update(image="localhost:5000/sutra-api"),
    }
    for expected, edit in cases.items():
        [problem] = violations([changed(edit), *NETWORK])
        assert problem.startswith("Deployment/sutra-api container sutra-api: ")
        assert expected in problem


def test_digest_pinned_images_pass():
    obj = changed(lambda pod: pod["containers"][0].update(image="r.io/sutra-api@sha256:" + "a" * 64))
    assert violations([obj, *NETWORK]) == []


# --- network policies -----------------------------------------------------------------------


ALONE = "no NetworkPolicy of its own says who may reach it (the default deny alone closes it)"


def without(name: str) -> list[dict]:
    return [GOOD, *(o for o in NETWORK if o["metadata"]["name"] != name or o["kind"] != "NetworkPolicy")]


def test_no_default_deny_is_a_violation():
    expected = (
        "NetworkPolicy: none denies ingress by default "
        "(podSelector {}, policyTypes [Ingress], no ingress rules)"
    )
    assert violations(without("default-deny-ingress")) == [expected]
    for almost in (
        network_policy("default-deny-ingress", {"matchLabels": {NAME: "sutra-api"}}),  # not every pod
        network_policy("default-deny-ingress", {}, types=("Ingress", "Egress")),  # egress too
        network_policy("default-deny-ingress", {}, [{"from": [pods("sutra-control")]}]),  # allows
    ):
        assert expected in violations([*without("default-deny-ingress"), almost])


def test_every_workload_needs_a_policy_of_its_own():
    assert violations(without("sutra-api")) == [f"Deployment/sutra-api: {ALONE}"]
    # A policy without rules states that nothing may call the workload: that counts.
    assert "Deployment/sutra-control" in " ".join(violations(without("sutra-control")))


def test_a_peer_must_select_a_workload():
    typo = network_policy(
        "sutra-api", {"matchLabels": {NAME: "sutra-api"}}, [{"from": [pods("sutra-contrl")], "ports": []}]
    )
    selector = {"matchLabels": {NAME: "sutra-contrl"}}
    assert violations([*without("sutra-api"), typo]) == [
        f"NetworkPolicy/sutra-api: peer {selector} selects no workload"
    ]
    # A peer in other namespaces (an ingress controller's) cannot be checked here, and is not.
    elsewhere = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    public = network_policy("sutra-api", {"matchLabels": {NAME: "sutra-api"}}, [{"from": [elsewhere]}])
    assert violations([*without("sutra-api"), public]) == []


def test_a_policy_must_select_a_workload():
    stray = network_policy("sutra-apl", {"matchLabels": {NAME: "sutra-apl"}}, [{"ports": [{"port": 80}]}])
    problems = violations([*NETWORK, GOOD, stray])
    assert problems == ["NetworkPolicy/sutra-apl: its podSelector selects no workload"]


@pytest.mark.parametrize(
    ("port", "ok"),
    [
        ({"port": "http"}, True),
        ({"port": 8000, "protocol": "TCP"}, True),
        ({"port": 7000, "endPort": 9000}, True),
        ({"port": 80}, False),  # the Service's port, not the pod's: the classic mistake
        ({"port": "web"}, False),
        ({"port": 8000, "protocol": "UDP"}, False),
    ],
)
def test_a_policy_port_must_be_a_container_port(port, ok):
    rule = network_policy("sutra-api", {"matchLabels": {NAME: "sutra-api"}}, [{"ports": [port]}])
    problems = violations([*without("sutra-api"), rule])
    if ok:
        assert problems == []
    else:
        [problem] = problems
        assert problem.startswith(f"NetworkPolicy/sutra-api: port {port['port']}/")
        assert problem.endswith("is not a container port of Deployment/sutra-api")


def test_without_workloads_nothing_is_required():
    assert violations([{"kind": "Namespace", "metadata": {"name": "ns"}}]) == []


def test_selectors_read_as_kubernetes_reads_them():
    labels = {NAME: "sutra-api", "tier": "web"}
    assert selects({}, labels)
    assert selects({"matchLabels": {NAME: "sutra-api"}}, labels)
    assert not selects({"matchLabels": {NAME: "sutra-api", "tier": "db"}}, labels)

    def expression(operator, *values):
        return {"matchExpressions": [{"key": "tier", "operator": operator, "values": list(values)}]}

    assert selects(expression("In", "web", "db"), labels)
    assert not selects(expression("In", "db"), labels)
    assert selects(expression("NotIn", "db"), labels)
    assert not selects(expression("NotIn", "web"), labels)
    assert selects(expression("Exists"), labels)
    assert not selects(expression("DoesNotExist"), labels)
    assert selects(expression("NotIn", "web"), {NAME: "x"})  # no such key: not in the list
