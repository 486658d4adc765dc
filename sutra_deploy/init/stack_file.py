"""The stack file `inv init` writes: TOML in stack.toml's own shape, the same text for the same
checkout (services in build order, keys in one order), checked by loading it before it is
shown or written."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.stack import Stack, parse_stack
from .describe import PLACEHOLDER_MB, Described, ServiceGuess

DEFAULT_PORT = 8000  # where no source names one (a finding says so)


def _toml(value: object) -> str:
    return json.dumps(value)  # a JSON string or number is a TOML one


def _build_order(services: list[ServiceGuess]) -> list[ServiceGuess]:
    """The storage tier (TCP checks) first, then by name."""
    return sorted(services, key=lambda s: (s.health[0] != "tcp", s.name))


def render(described: Described, reference: Stack, root: Path, stack_file: Path) -> str:
    relative_root = os.path.relpath(root.resolve(), stack_file.resolve().parent)
    lines = [
        f"# Written by `inv init` from {Path(relative_root).as_posix()}. What it could not tell, it said on",
        "# stderr with file:line (the placeholders below are among those). Edit freely: every task",
        "# reads this file through sutra.stack_file (INVOKE_SUTRA_STACK_FILE).",
        "",
        "[stack]",
        f"name = {_toml(described.stack_name)}",
        f"versions = {_toml(list(reference.versions))}",
        f"default_version = {_toml(reference.default_version)}",
        f"public_api = {_toml(described.public_api)}",
        f"root = {_toml(Path(relative_root).as_posix())}",
        "",
    ]
    for order, service in enumerate(_build_order(described.services), start=1):
        dockerfile = (
            _toml(service.dockerfiles["v1"])
            if len(set(service.dockerfiles.values())) == 1
            else "{ " + ", ".join(f"{v} = {_toml(service.dockerfiles[v])}" for v in ("v1", "v2")) + " }"
        )
        port = service.port or DEFAULT_PORT
        protocol, path = service.health
        health = (
            '{ protocol = "tcp" }' if protocol == "tcp" else f'{{ protocol = "http", path = {_toml(path)} }}'
        )
        old, target, limit = service.budget or (PLACEHOLDER_MB,) * 3
        lines += [
            f"[services.{service.name}]",
            f"image = {_toml(service.image)}",
            f"context = {_toml(service.context)}",
            f"dockerfile = {dockerfile}",
            f"build_order = {order}",
            f"port = {{ container = {port}, host = {service.host_port or port} }}",
            f"health = {health}",
            f"size_mb = {{ old = {_number(old)}, target = {_number(target)}, limit = {_number(limit)} }}",
        ]
        if service.data:
            lines.append(f"data = {_toml(service.data)}")
        if service.reads:
            lines.append(f"reads = {_toml(service.reads)}")
        if service.environment:
            pairs = ", ".join(f"{k} = {_toml(v)}" for k, v in service.environment.items())
            lines.append(f"environment = {{ {pairs} }}")
        lines.append("")
    if described.journey:
        lines += [described.journey]
    lines.append(_base_images(reference))
    return "\n".join(lines).rstrip("\n") + "\n"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _base_images(reference: Stack) -> str:
    """The reference stack file's [base_images], as written there (comments included)."""
    text = reference.path.read_text(encoding="utf-8")
    start = text.find("# Base images.")
    return text[start:] if start >= 0 else ""


def check_loads(text: str, stack_file: Path) -> Stack:
    """The rendered file, loaded as every task will load it from ``stack_file``."""
    return parse_stack(text, stack_file)
