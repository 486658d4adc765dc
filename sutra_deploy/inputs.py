"""Checks for what a user types: flags and settings, each refused with one line naming it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import SutraError


def number(value: Any, name: str, kind: type = float) -> Any:
    """A flag or setting that must be a positive number, or one clear error naming it."""
    try:
        parsed = kind(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed <= 0 or isinstance(value, bool):
        raise SutraError(f"{name} must be a positive {'whole ' if kind is int else ''}number, got {value!r}")
    return parsed


def split_names(values: Iterable[str] | None) -> list[str]:
    """`--service a --service b,c` -> [a, b, c]."""
    return [name.strip() for value in values or () for name in value.split(",") if name.strip()]
