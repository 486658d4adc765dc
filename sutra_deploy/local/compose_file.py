"""The compose file, rendered from the stack file: one home for images, ports, health timing,
each service's environment (its peers' addresses as compose names them) and data volumes.

`compose/docker-compose.yml` is this rendering of the reference stack, kept in the repository
for people who run `docker compose` by hand (tests/unit/local/test_compose_file.py holds it
equal). A stack file of a user's checkout gets its own rendering, written where the tool keeps
what it makes (:func:`compose_file_for`), unless `sutra.compose_file` names one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..core import yaml_text
from ..core.stack import Service, Stack
from ..tools.files import cache_folder, write_if_changed
from .compose_stack import port_env, tag_env

HEADER = """\
# {name}, one project for every version: {default} by default, another with SUTRA_TAG
# (`inv local-up [--version V]` sets it); usable directly with
#   docker compose -f {file} up -d
# Host ports can be moved with SUTRA_<SERVICE>_PORT (the tests use free ports that way), and
# one service's tag with SUTRA_<SERVICE>_TAG (`inv rollback --env local --service S` moves S).
# Rendered by `inv` from {stack} (sutra_deploy/local/compose_file.py): edit that, not this.
# Health checks come from the images themselves (each works inside its own image); here only
# their timing is set: a calm interval, since each check starts a process in the container for
# as long as the stack runs. Services start side by side; `inv local-up` asks each one itself
# (its health check, through its host port) until every one answers, so the stack is ready in
# seconds and nothing is called ready early.
"""
HEALTH_TIMING = {"interval": "30s", "timeout": "3s", "retries": 3, "start_period": "60s"}
# What verify's own project checks at: its startup figure is the first passing check.
STARTUP_HEALTH_TIMING = {"interval": "500ms", "timeout": "3s", "retries": 5, "start_period": "30s"}


def volume_name(service: Service) -> str:
    return service.volume or f"{service.name}-data"


def render(stack: Stack, *, project: str, shown_as: str = "compose/docker-compose.yml") -> str:
    by_name = {s.name: s for s in stack.services}

    def address(name: str) -> str:  # a peer as the compose network names it
        return f"{name}:{by_name[name].port.container}"

    services = {}
    for service in stack.services:  # build order: what others call comes first
        tag = f"${{{tag_env(service)}:-${{SUTRA_TAG:-{stack.default_version}}}}}"
        entry: dict = {"image": f"{service.image}:{tag}"}
        environment = service.environment_for(address)
        if environment:
            entry["environment"] = environment
        if service.data:
            entry["volumes"] = [f"{volume_name(service)}:{service.data}"]
        entry["ports"] = [f"${{{port_env(service)}:-{service.port.host}}}:{service.port.container}"]
        entry["healthcheck"] = "*health-timing"
        peers = [p for p in service.peers() if p != service.name]
        if peers:
            entry["depends_on"] = {p: {"condition": "service_started"} for p in peers}
        entry["restart"] = "unless-stopped"
        services[service.name] = entry
    document = {"name": project, "x-health-timing": HEALTH_TIMING, "services": services}
    volumes = {volume_name(s): None for s in stack.services if s.data}
    if volumes:
        document["volumes"] = volumes
    text = yaml_text.dump(document)
    # The timing once, as an anchor every service names (PyYAML would repeat it).
    text = text.replace("x-health-timing:\n", "x-health-timing: &health-timing\n", 1)
    text = text.replace("healthcheck: '*health-timing'", "healthcheck: *health-timing")
    text = text.replace('healthcheck: "*health-timing"', "healthcheck: *health-timing")
    for name in volumes:  # kept by `inv local-down`; only `--volumes` removes it
        text = text.replace(f"  {name}: null\n", f"  {name}:\n")
    header = HEADER.format(
        name=stack.name, default=stack.default_version, file=shown_as, stack=stack.path.name
    )
    return header + text


def compose_file_for(stack: Stack, project: str, cache: Path | None = None) -> Path:
    """The stack's own compose file, rendered into the tool's cache (named by its content)."""
    text = render(stack, project=project, shown_as="<this file>")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return write_if_changed((cache or cache_folder("compose")) / f"{stack.name}-{digest}.yml", text)
