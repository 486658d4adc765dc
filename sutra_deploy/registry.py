"""Tagging and pushing the stack's images to a registry (the plan's Phase 4.1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tabulate import tabulate

from .engine import Engine, PushFailed
from .errors import ImageMissing
from .references import parse_registry
from .stack import Service

__all__ = ["PushFailed", "Pushed", "push_images", "pushed_table", "validate_registry"]


def validate_registry(registry: str, what: str = "--registry") -> str:
    """HOST[:PORT][/PATH] as the reference grammar allows it: "localhost:5000",
    "registry.example.io/sutra-ai"; no scheme, no tag (:mod:`.references`)."""
    parse_registry(registry, what)
    return registry


@dataclass(frozen=True)
class Pushed:
    service: str
    reference: str
    digest: str


def push_images(
    engine: Engine, services: Sequence[Service], *, registry: str, version: str, latest: bool
) -> list[Pushed]:
    """Tag R/<image>:<version> (and :latest) for every service, then push them all."""
    validate_registry(registry)
    engine.ensure_available()
    for service in services:  # everything is checked before the first tag (a dry run tags nothing)
        if not engine.dry and engine.image(service.ref(version)) is None:
            raise ImageMissing(service.ref(version), f"build it with `inv build --version {version}`")
    tags = [version, "latest"] if latest else [version]
    targets = [(service, service.reference(registry, tag=tag)) for service in services for tag in tags]
    for service, target in targets:
        engine.tag(service.ref(version), target)
    pushed = []
    for service, target in targets:
        digest = engine.push(target)
        pushed.append(Pushed(service.name, target, digest or "(dry run)"))
    return pushed


def pushed_table(pushed: Sequence[Pushed]) -> str:
    return tabulate([[p.reference, p.digest] for p in pushed], headers=["Pushed", "Digest"])
