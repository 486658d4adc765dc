"""stack.toml is the one home of each service's image, ports and health check: the rendered
base and every rendered overlay say the same. (The Dockerfiles and the compose file are
checked in tests/unit/test_facts.py.)"""

from __future__ import annotations

import functools

import pytest
import yaml

from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import Service

from ..facts import STACK, addresses_of_services, control_targets, health_url
from .test_overlays import KUBECTL, OVERLAYS, rendered

TARGETS = ["base", *OVERLAYS]
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


@functools.cache
def objects(target: str) -> tuple[dict, ...]:
    if target == "base":
        text = KUBECTL.kustomize(PROJECT_DIR / "k8s" / "base")
        return tuple(o for o in yaml.safe_load_all(text) if o)
    return tuple(rendered(target))


def named(target: str, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects(target) if o["kind"] == kind}


def container(target: str, service: Service) -> dict:
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


def service_ports(target: str) -> dict[str, int]:
    """Each stack service's Kubernetes Service port: where the others reach it by name."""
    services = named(target, "Service")
    return {s.name: services[s.name]["spec"]["ports"][0]["port"] for s in STACK.services}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("service", STACK.services, ids=STACK.service_names)
def test_deployment_image_port_and_probes_are_the_stacks(target, service: Service):
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


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("service", STACK.services, ids=STACK.service_names)
def test_service_forwards_to_the_container_port(target, service: Service):
    [port] = named(target, "Service")[service.name]["spec"]["ports"]
    assert container_port(container(target, service), port["targetPort"]) == service.port.container


@pytest.mark.parametrize("target", TARGETS)
def test_addresses_use_each_services_service_port(target):
    ports = service_ports(target)
    for deployment in named(target, "Deployment").values():
        for spec in deployment["spec"]["template"]["spec"]["containers"]:
            env = {e["name"]: e["value"] for e in spec.get("env", []) if "value" in e}
            for key, host, port in addresses_of_services(env):
                assert port == ports[host], f"{target}: {spec['name']} {key} reaches {host} on {port}"


@pytest.mark.parametrize("target", TARGETS)
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
