"""The HEALTHCHECK: stack.toml's check probed by python3 alone (the distroless runtime has no
shell and no curl), with the pre-plan check's timing kept where Docker would read it."""

from __future__ import annotations

from ...core.stack import HealthCheck
from .model import ImagePlanning

HEALTH_OPTIONS = (("interval", "5s"), ("timeout", "3s"), ("start-period", "5s"), ("retries", "3"))


def health_options(plan: ImagePlanning) -> tuple[tuple[str, str], ...]:
    """HEALTHCHECK's flags: the defaults, or the pre-plan check's where Docker would read them."""
    port, health = plan.service.port.container, plan.service.health
    options = dict(HEALTH_OPTIONS)
    check = plan.preplan.healthcheck if plan.preplan else None
    if check is None:
        return tuple(options.items())
    if check.arguments.strip().upper() == "NONE":
        plan.notes.append(
            f"{plan.preplan.dockerfile.where(check)} turned health checks off; stack.toml's check is used"
        )  # type: ignore[union-attr]
        return tuple(options.items())
    for key in ("interval", "timeout", "start-period", "retries"):
        value = check.flag(key)
        if value and (_seconds(value) is not None or (key == "retries" and value.isdigit())):
            options[key] = value
    probe = "an HTTP GET of " + (health.path or "") if health.protocol == "http" else "a TCP connect"
    plan.notes.append(
        f"health check: {probe} on port {port} by python3 (stack.toml), in place of "
        f"`{_short(check.arguments)}` ({plan.preplan.dockerfile.where(check)})"  # type: ignore[union-attr]
    )
    return tuple(options.items())


def health_probe(health: HealthCheck, port: int, timeout: str) -> list[str]:
    """The HEALTHCHECK command: python3 alone, no shell and no curl."""
    seconds = _seconds(timeout) or 3
    limit = f"{seconds:g}"
    if health.protocol == "tcp":
        code = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout={limit}).close()"
    else:
        url = f"http://127.0.0.1:{port}{health.path}"
        code = f"import urllib.request; urllib.request.urlopen('{url}', timeout={limit})"
    return ["python3", "-c", code]


def _seconds(duration: str) -> float | None:
    """A Docker duration (`30s`, `1m30s`, `500ms`) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "ns": 1e-9}
    total, number, index = 0.0, "", 0
    text = duration.strip()
    if not text:
        return None
    while index < len(text):
        char = text[index]
        if char.isdigit() or char == ".":
            number += char
            index += 1
            continue
        unit = next((u for u in ("ms", "us", "ns", "h", "m", "s") if text.startswith(u, index)), None)
        if unit is None or not number:
            return None
        try:
            total += float(number) * units[unit]
        except ValueError:
            return None
        number, index = "", index + len(unit)
    return None if number else total


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
