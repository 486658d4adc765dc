"""What the facts tests share: stack.toml, loaded once, is the one home of each service's
image, ports and health check; these helpers read the same facts back from the places that
must repeat them (Dockerfiles, the compose file, the manifests, control's SUTRA_SERVICES)."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from urllib.parse import urlsplit

from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import Service, load_stack

STACK = load_stack(PROJECT_DIR / "stack.toml")
# The source root whose Dockerfiles the stack's paths name by default.
REFERENCE_ROOT = PROJECT_DIR / "reference"
CONTROL_DIR = REFERENCE_ROOT / "packages" / "sutra-control"

# `scheme://host:port` inside any setting: a service's address, when host is a service's name.
ADDRESS = re.compile(r"\b([a-z][a-z0-9+.-]*)://([A-Za-z0-9.-]+):(\d+)")


def health_url(service: Service, host: str, port: int) -> str:
    """The address control checks a service at, as SUTRA_SERVICES writes it."""
    if service.health.protocol == "tcp":
        return f"tcp://{host}:{port}"
    return f"http://{host}:{port}{service.health.path}"


def _control_main():
    """sutra-control's own module (standard library only), from the reference source."""
    if str(CONTROL_DIR) not in sys.path:
        sys.path.insert(0, str(CONTROL_DIR))
    import sutra_control.main

    return sutra_control.main


def control_targets(spec: str) -> dict[str, str]:
    """SUTRA_SERVICES read by sutra-control's own parser: service name -> URL."""
    return {target.name: target.url for target in _control_main().parse_targets(spec)}


def control_default_services() -> str:
    """What sutra-control checks when SUTRA_SERVICES is unset."""
    return _control_main().DEFAULT_SERVICES


def addresses_of_services(settings: Mapping[str, str]) -> list[tuple[str, str, int]]:
    """(setting, service, port) for every service address written in the settings' values."""
    names = set(STACK.service_names)
    return [
        (key, host, int(port))
        for key, value in settings.items()
        for _scheme, host, port in ADDRESS.findall(str(value))
        if host in names
    ]


def check_health_command(service: Service, command: list[str], port: int, where: str) -> None:
    """An HTTP health check command asks for the service's health path on its port, and only that."""
    urls = [urlsplit(u) for arg in command for u in re.findall(r"https?://[^\s'\"]+", arg)]
    if service.health.protocol == "tcp":
        assert urls == [], f"{where}: {service.name}'s check is tcp in stack.toml, not {command}"
        return
    assert len(urls) == 1, f"{where}: expected one URL in {command}"
    [url] = urls
    assert url.hostname in ("127.0.0.1", "localhost"), f"{where}: checks {url.hostname}, not itself"
    assert (url.port, url.path) == (port, service.health.path), (
        f"{where}: checks port {url.port} path {url.path!r}; stack.toml says {port} {service.health.path!r}"
    )
