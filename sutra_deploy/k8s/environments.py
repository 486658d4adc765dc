"""The Kubernetes environments, from settings: which overlay, in which kube context, pulling
from which registry, and whether a change there needs confirming first."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import SutraError
from ..source import PROJECT_DIR


class NotConfirmed(SutraError):
    pass


@dataclass(frozen=True)
class Environment:
    name: str
    overlay: Path
    context: str | None  # the kube context this environment lives in
    registry: str | None  # None: keep the overlay's own image names
    tag: str | None
    confirm: bool  # ask before changing anything (production)
    rollout_timeout: int


def environment(settings: Mapping, name: str) -> Environment:
    """``sutra.environments.<name>``; an unknown name is one error listing the known ones."""
    environments = settings.get("environments") or {}
    if name not in environments:
        known = ", ".join(sorted(environments))
        raise SutraError(f"unknown environment {name!r}; configured environments: {known}")
    raw = environments[name]
    overlay = Path(raw.get("overlay") or f"k8s/overlays/{name}")
    return Environment(
        name=name,
        overlay=overlay if overlay.is_absolute() else PROJECT_DIR / overlay,
        context=raw.get("context"),
        registry=raw.get("registry"),
        tag=raw.get("tag"),
        confirm=bool(raw.get("confirm", False)),
        rollout_timeout=int(raw.get("rollout_timeout", 300)),
    )


def with_images(env: Environment, *, registry: str | None, tag: str | None) -> Environment:
    """The environment with the registry or tag given on the command line, if any."""
    return replace(env, registry=registry or env.registry, tag=tag or env.tag)


def confirm(env: Environment, *, yes: bool, dry: bool, ask: Callable[[str], str] = input) -> None:
    """An environment marked `confirm` (production) changes only with --yes or a typed answer."""
    env_name, context = env.name, env.context
    if not env.confirm or yes or dry:
        return
    if not sys.stdin.isatty():
        raise NotConfirmed(f"deploying to {env_name} needs --yes (no terminal to ask for confirmation)")
    answer = ask(f"Deploy to {env_name} (kube context {context})? Type {env_name!r} to continue: ")
    if answer.strip() != env_name:
        raise NotConfirmed(f"deploy to {env_name} not confirmed")
