"""stack.toml is the one home of each service's image, ports and health check: the Dockerfiles
and the compose file, which must repeat them, say the same. (The rendered Kubernetes
manifests are checked in tests/manifests/test_facts.py.)"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.stack import Service
from sutra_deploy.local.compose_stack import TAG_ENV, port_env, tag_env

from ..facts import (
    REFERENCE_ROOT,
    STACK,
    addresses_of_services,
    check_health_command,
    control_default_services,
    control_targets,
    health_url,
)

COMPOSE_FILE = Path(DEFAULTS["sutra"]["compose_file"])
COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())
DOCKERFILES = sorted(
    {(s.name, s.dockerfile(v)) for s in STACK.services for v in STACK.versions},
)


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """The final stage's instructions as (KEYWORD, arguments), continuation lines joined."""
    logical, current = [], ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        current += " " + stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            logical.append(current.strip())
            current = ""
    parsed = [
        (keyword.upper(), arguments.strip()) for keyword, _, arguments in (t.partition(" ") for t in logical)
    ]
    last_from = max(i for i, (keyword, _) in enumerate(parsed) if keyword == "FROM")
    return parsed[last_from:]


def healthcheck_command(arguments: str) -> list[str]:
    """The command of `HEALTHCHECK [--options] CMD ...`, in exec (JSON) or shell form."""
    _, _, command = arguments.partition("CMD ")
    command = command.strip()
    return json.loads(command) if command.startswith("[") else shlex.split(command)


@pytest.mark.parametrize(("name", "dockerfile"), DOCKERFILES, ids=[d for _, d in DOCKERFILES])
def test_every_dockerfile_checks_health_and_listens_where_the_stack_says(name, dockerfile):
    service = STACK.service(name)
    final = instructions(REFERENCE_ROOT / dockerfile)
    [check] = [args for keyword, args in final if keyword == "HEALTHCHECK"]
    check_health_command(service, healthcheck_command(check), service.port.container, dockerfile)
    exposed = [port.split("/")[0] for keyword, args in final if keyword == "EXPOSE" for port in args.split()]
    assert exposed == [str(service.port.container)], dockerfile
    # A port the image gives its server in a variable (STORAGE_PORT=50051) is the same port.
    env = dict(
        item.split("=", 1) for keyword, args in final if keyword == "ENV" for item in shlex.split(args)
    )
    for key, value in env.items():
        if key.endswith("_PORT"):
            assert value == str(service.port.container), f"{dockerfile}: {key}={value}"


def test_the_compose_file_has_every_service_and_no_other():
    assert sorted(COMPOSE["services"]) == sorted(STACK.service_names)


@pytest.mark.parametrize("service", STACK.services, ids=STACK.service_names)
def test_compose_image_ports_and_health_check_are_the_stacks(service: Service):
    spec = COMPOSE["services"][service.name]
    # One file for every version: the tag is the service's own variable's (a rollback of one
    # service), else SUTRA_TAG's, else the stack's default version.
    assert (
        spec["image"] == f"{service.image}:${{{tag_env(service)}:-${{{TAG_ENV}:-{STACK.default_version}}}}}"
    )
    assert spec["ports"] == [f"${{{port_env(service)}:-{service.port.host}}}:{service.port.container}"]
    health = spec.get("healthcheck", {})
    assert not health.get("disable"), service.name
    if "test" in health:  # otherwise the image's own check runs, checked with the Dockerfiles
        check_health_command(service, list(health["test"]), service.port.container, COMPOSE_FILE.name)


def test_compose_addresses_use_each_services_container_port():
    for name, spec in COMPOSE["services"].items():
        environment = spec.get("environment") or {}
        for key, host, port in addresses_of_services(environment):
            assert port == STACK.service(host).port.container, f"{name}: {key} reaches {host} on {port}"


def test_control_checks_every_other_service_at_its_health_path_in_compose():
    [carrier] = [
        n for n, s in COMPOSE["services"].items() if "SUTRA_SERVICES" in (s.get("environment") or {})
    ]
    targets = control_targets(COMPOSE["services"][carrier]["environment"]["SUTRA_SERVICES"])
    assert targets == {
        s.name: health_url(s, s.name, s.port.container) for s in STACK.services if s.name != carrier
    }
    # Control's default, for a container started without the setting, is the same list.
    assert control_targets(control_default_services()) == targets
