"""The stack file is the one home of each service's image, ports, health check and environment:
the rendered base and every rendered overlay say the same, for the reference stack (whose
manifests are written for it) and for a checkout's stack `inv init` wrote (whose manifests get
them from the component generated beside its stack file). (The Dockerfiles and the compose file
are checked in tests/unit/test_facts.py.)"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import pytest

from sutra_deploy import k8s
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.stack import Service, Stack, load_stack
from sutra_deploy.k8s.stack_component import BASE

from ..facts import STACK, addresses_of_services, control_targets, health_url
from ..unit.init.monorepo import init_checkout
from .test_overlays import KUBECTL, OVERLAYS

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


@functools.cache
def checkout_stack() -> Stack:
    """The stack `inv init` writes for the synthetic checkout (tests/unit/init/monorepo.py),
    in a folder removed when the test run ends (it was left in /tmp on every run)."""
    folder = Path(tempfile.mkdtemp(prefix="sutra-facts-"))
    atexit.register(shutil.rmtree, folder, True)
    return load_stack(init_checkout(folder))


STACKS = {"reference": lambda: STACK, "checkout": checkout_stack}
# A checkout's stack is rendered through an environment only (the base alone names the
# reference images, bare: never deployed).
TARGETS = [("reference", "base")] + [(stack, target) for stack in STACKS for target in OVERLAYS]
REFERENCE_TARGETS = [t for t in TARGETS if t[0] == "reference"]
CASES = [
    pytest.param(stack, target, name, id=f"{stack}-{target}-{name}")
    for stack, target in TARGETS
    for name in (
        STACK.service_names if stack == "reference" else ("storage-server", "sutra-api", "sutra-client")
    )
]


@functools.cache
def objects(stack_id: str, target: str) -> tuple[dict, ...]:
    if target == "base":
        return tuple(k8s.parse_manifests(KUBECTL.kustomize(BASE)))
    return tuple(k8s.render(KUBECTL, k8s.environment(DEFAULTS["sutra"], target), STACKS[stack_id]()))


def named(target: tuple[str, str], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects(*target) if o["kind"] == kind}


def container(target: tuple[str, str], service: Service) -> dict:
    deployment = named(target, "Deployment")[service.name]
    [found] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == service.name]
    return found


def container_port(spec: dict, port: int | str) -> int:
    """A port as a probe or a Service's targetPort gives it: a number, or a container port's name."""
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in spec.get("ports", []) if p.get("name") == port]
    return number


def image_name(image: str) -> str:
    """`registry/path/sutra-api:v2@sha256:…` -> `sutra-api`."""
    reference = image.split("@")[0]
    repository, _, tag = reference.rpartition(":")
    if not repository or "/" in tag:  # no tag; the colon (if any) was a registry's port
        repository = reference
    return repository.rsplit("/", 1)[-1]


def service_ports(target: tuple[str, str]) -> dict[str, int]:
    """Each stack service's Kubernetes Service port: where the others reach it by name."""
    services = named(target, "Service")
    return {s.name: services[s.name]["spec"]["ports"][0]["port"] for s in STACKS[target[0]]().services}


@pytest.mark.parametrize(("stack", "target", "name"), CASES)
def test_deployment_image_port_and_probes_are_the_stacks(stack, target, name):
    service, target = STACKS[stack]().service(name), (stack, target)
    spec = container(target, service)
    assert image_name(spec["image"]) == service.image
    assert [p["containerPort"] for p in spec["ports"]] == [service.port.container]
    assert {"readinessProbe", "livenessProbe"} <= set(spec)
    for probe in (p for p in PROBES if p in spec):
        kind = "httpGet" if service.health.protocol == "http" else "tcpSocket"
        assert kind in spec[probe], f"{target}: {service.name} {probe} is not {kind}"
        check = spec[probe][kind]
        assert container_port(spec, check["port"]) == service.port.container, (
            f"{target}: {service.name} {probe}"
        )
        if kind == "httpGet":
            assert check["path"] == service.health.path, f"{target}: {service.name} {probe}"


@pytest.mark.parametrize(("stack", "target", "name"), CASES)
def test_service_forwards_to_the_container_port(stack, target, name):
    service, target = STACKS[stack]().service(name), (stack, target)
    [port] = named(target, "Service")[service.name]["spec"]["ports"]
    assert container_port(container(target, service), port["targetPort"]) == service.port.container


@pytest.mark.parametrize(("stack", "target", "name"), CASES)
def test_environment_is_the_stacks_with_peers_at_their_service_ports(stack, target, name):
    service, target = STACKS[stack]().service(name), (stack, target)
    ports = service_ports(target)
    given = {e["name"]: e["value"] for e in container(target, service).get("env", []) if "value" in e}
    assert given == service.environment_for(lambda peer: f"{peer}:{ports[peer]}")


@pytest.mark.parametrize("target", TARGETS)
def test_only_the_stacks_services_are_deployed(target):
    deployed = set(named(target, "Deployment"))
    assert deployed == set(STACKS[target[0]]().service_names)


@pytest.mark.parametrize("target", TARGETS)
def test_addresses_use_each_services_service_port(target):
    ports = service_ports(target)
    for deployment in named(target, "Deployment").values():
        for spec in deployment["spec"]["template"]["spec"]["containers"]:
            env = {e["name"]: e["value"] for e in spec.get("env", []) if "value" in e}
            for key, host, port in addresses_of_services(env):
                assert port == ports[host], f"{target}: {spec['name']} {key} reaches {host} on {port}"


@pytest.mark.parametrize("target", REFERENCE_TARGETS)
def test_control_checks_every_other_service_at_its_health_path(target):
    carriers = [
        (spec["name"], e["value"])
        for deployment in named(target, "Deployment").values()
        for spec in deployment["spec"]["template"]["spec"]["containers"]
        for e in spec.get("env", [])
        if e["name"] == "SUTRA_SERVICES"
    ]
    [(carrier, value)] = carriers
    ports = service_ports(target)
    assert control_targets(value) == {
        s.name: health_url(s, s.name, ports[s.name]) for s in STACK.services if s.name != carrier
    }
