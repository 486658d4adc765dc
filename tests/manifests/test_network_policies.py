"""The rendered NetworkPolicies allow exactly the connections the stack makes, in the base and
every overlay: one table says who calls whom, the services' settings say the same, and the
policies implement that table, no more and no less, on each service's container port."""

from __future__ import annotations

import pytest

from sutra_deploy.k8s.policy import is_default_deny_ingress, pod_labels, selects, violations

from ..facts import STACK, addresses_of_services
from .test_facts import REFERENCE_TARGETS, container, container_port, named, objects

ALONE = "no NetworkPolicy of its own says who may reach it (the default deny alone closes it)"
ANYWHERE = "anywhere"  # any source: people's browsers, through an ingress controller or a load balancer

# Who may open a connection to each service. The public two take anything on their port; the
# rest only what the stack's own services call (STORAGE_URL, HYBRID_SERVICE_URL, control's
# SUTRA_SERVICES). Nothing calls control: operators reach it through a port-forward.
CALLERS = {
    "storage-server": {"sutra-api", "sutra-hybrid", "sutra-control"},
    "sutra-api": {ANYWHERE, "sutra-control"},
    "sutra-hybrid": {"sutra-api", "sutra-control"},
    "sutra-control": set(),
    "sutra-client": {ANYWHERE, "sutra-control"},
}


def expected_edges() -> set[tuple[str, str, int]]:
    """(caller, service, container port) for every connection the table allows."""
    return {
        (caller, service, STACK.service(service).port.container)
        for service, callers in CALLERS.items()
        for caller in callers
    }


def allowed_edges(target: str) -> set[tuple[str, str, int]]:
    """(caller, Deployment, container port) for every connection the rendered policies allow,
    read the way Kubernetes reads them: a rule without `from` allows any source, one without
    `ports` every port; a named port is the selected pod's container port of that name."""
    deployments = named(target, "Deployment")
    edges = set()
    for policy in named(target, "NetworkPolicy").values():
        targets = [n for n, d in deployments.items() if selects(policy["spec"]["podSelector"], pod_labels(d))]
        for rule in policy["spec"].get("ingress") or []:
            callers = set()
            for peer in rule.get("from", [{}]):
                if set(peer) == {"podSelector"}:
                    callers |= {
                        n for n, d in deployments.items() if selects(peer["podSelector"], pod_labels(d))
                    }
                else:  # no `from`, or a peer outside the namespace: not one of the stack's pods
                    callers.add(ANYWHERE)
            for name in targets:
                spec = container(target, STACK.service(name))
                ports = [p["port"] for p in rule.get("ports") or []] or [
                    p["containerPort"] for p in spec["ports"]
                ]
                edges |= {(caller, name, container_port(spec, port)) for caller in callers for port in ports}
    return edges


def test_the_table_names_every_service():
    assert sorted(CALLERS) == sorted(STACK.service_names)
    assert ANYWHERE in CALLERS[STACK.public_api]


@pytest.mark.parametrize("target", REFERENCE_TARGETS)
def test_the_table_is_who_calls_whom_in_the_services_settings(target):
    """Every address of a service in a container's settings is a connection the table allows,
    and every connection inside the namespace that the table allows is one of those addresses."""
    calls = set()
    for deployment in named(target, "Deployment").values():
        for spec in deployment["spec"]["template"]["spec"]["containers"]:
            settings = {e["name"]: e["value"] for e in spec.get("env", []) if "value" in e}
            calls |= {
                (deployment["metadata"]["name"], host)
                for _key, host, _port in addresses_of_services(settings)
            }
    table = {
        (caller, service) for service, callers in CALLERS.items() for caller in callers if caller != ANYWHERE
    }
    assert calls == table


@pytest.mark.parametrize("target", REFERENCE_TARGETS)
def test_the_policies_allow_exactly_the_tables_connections(target):
    assert allowed_edges(target) == expected_edges()
    defaults = [p for p in named(target, "NetworkPolicy").values() if is_default_deny_ingress(p)]
    assert [p["metadata"]["name"] for p in defaults] == ["default-deny-ingress"]


@pytest.mark.parametrize("target", REFERENCE_TARGETS)
def test_policies_select_pods_by_the_name_label_as_the_services_do(target):
    services = named(target, "Service")
    for name, policy in named(target, "NetworkPolicy").items():
        if is_default_deny_ingress(policy):
            continue
        assert policy["spec"]["podSelector"] == {"matchLabels": services[name]["spec"]["selector"]}
        for rule in policy["spec"].get("ingress") or []:
            for peer in rule.get("from", []):
                [(label, value)] = peer["podSelector"]["matchLabels"].items()
                assert (label, value in services) == ("app.kubernetes.io/name", True)


@pytest.mark.parametrize("removed", ["default-deny-ingress", *STACK.service_names])
def test_removing_any_policy_fails_the_policy_check(removed):
    rendered = objects("reference", "staging")
    assert violations(rendered) == []
    remaining = [
        o for o in rendered if not (o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == removed)
    ]
    assert len(remaining) == len(rendered) - 1
    problems = violations(remaining)
    assert problems, f"the policy check passes without NetworkPolicy/{removed}"
    if removed != "default-deny-ingress":
        assert problems == [f"Deployment/{removed}: {ALONE}"]
