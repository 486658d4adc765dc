"""The Kubernetes environments, from settings: which overlay, in which kube context, pulling
from which registry, and whether a change there needs confirming first."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from ..core.errors import NotConfirmed, SutraError
from ..core.inputs import number
from ..core.references import parse_registry, parse_tag
from ..core.source import PROJECT_DIR


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
    """``sutra.environments.<name>``; an unknown name is one error listing the known ones, and
    every value is checked here, before anything is built, pushed or applied."""
    environments = settings.get("environments") or {}
    if name not in environments:
        known = ", ".join(sorted(environments))
        raise SutraError(f"unknown environment {name!r}; configured environments: {known}")
    raw, where = environments[name], f"sutra.environments.{name}"
    if not isinstance(raw, Mapping):
        raise SutraError(f"{where} must be a table of settings, got {raw!r}")
    overlay = Path(_text(raw.get("overlay"), f"{where}.overlay") or f"k8s/overlays/{name}")
    registry = _text(raw.get("registry"), f"{where}.registry")
    if registry:
        parse_registry(registry, f"{where}.registry")
    tag = _text(raw.get("tag"), f"{where}.tag")
    if tag:
        parse_tag(tag, f"{where}.tag")
    return Environment(
        name=name,
        overlay=overlay if overlay.is_absolute() else PROJECT_DIR / overlay,
        context=_text(raw.get("context"), f"{where}.context"),
        registry=registry,
        tag=tag,
        confirm=bool(raw.get("confirm", False)),
        rollout_timeout=number(raw.get("rollout_timeout", 300), f"{where}.rollout_timeout", int),
    )


def _text(value: object, name: str) -> str | None:
    """An optional text setting: absent or empty is None; a list or a number is one error."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SutraError(f"{name} must be text, got {value!r}")
    return value


def require_overlay(env: Environment) -> Path:
    """The environment's kustomization, which must exist before anything is rendered (or, in a
    deploy, built)."""
    kustomization = env.overlay / "kustomization.yaml"
    if not kustomization.is_file():
        raise SutraError(f"environment {env.name}: no kustomization.yaml in {env.overlay}")
    return kustomization


def with_images(env: Environment, *, registry: str | None, tag: str | None) -> Environment:
    """The environment with the registry (`--registry`) or tag (`--tag`) given on the command
    line, if any, each checked against the reference grammar."""
    if registry:
        parse_registry(registry, "--registry")
    if tag:
        parse_tag(tag, "--tag")
    return replace(env, registry=registry or env.registry, tag=tag or env.tag)


def confirm(env: Environment, *, yes: bool, dry: bool, ask: Callable[[str], str] = input) -> None:
    """An environment marked `confirm` (production) changes only with --yes or a typed answer.

    No terminal to ask at (stdin a pipe, /dev/null, or closed) is a refusal naming --yes, and so
    is an answer that never comes (end of input)."""
    env_name, context = env.name, env.context
    if not env.confirm or yes or dry:
        return
    no_terminal = NotConfirmed(f"deploying to {env_name} needs --yes (no terminal to ask for confirmation)")
    if not _at_a_terminal(sys.stdin):
        raise no_terminal
    try:
        answer = ask(f"Deploy to {env_name} (kube context {context})? Type {env_name!r} to continue: ")
    except (EOFError, OSError, ValueError):  # closed while asking
        raise no_terminal from None
    if answer.strip() != env_name:
        raise NotConfirmed(f"deploy to {env_name} not confirmed")


def _at_a_terminal(stdin: TextIO | None) -> bool:
    """stdin is None when the process started with descriptor 0 closed; isatty() of a closed
    file raises."""
    try:
        return stdin is not None and stdin.isatty()
    except (OSError, ValueError):
        return False
