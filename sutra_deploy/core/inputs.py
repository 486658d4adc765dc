"""Checks for what a user types: flags and settings, each refused with one line naming it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from .errors import SutraError

# A billion (seconds: 31 years) is more than any timeout, count or rate here means; above it a
# value is a typo, and overflows the clocks, thread waits and kubectl's durations it reaches.
LARGEST = 10**9


def number(value: Any, name: str, kind: type = float) -> Any:
    """A flag or setting that must be a finite positive number (a whole one for ``kind`` int),
    given as a number or as text (flags, and INVOKE_SUTRA_* variables, arrive as text), or one
    clear error naming it: `nan` and `inf` are refused, or a timeout would never end."""
    parsed = None if isinstance(value, bool) else _finite(value)
    if parsed is None or parsed <= 0 or (kind is int and parsed != int(parsed)):
        whole = "whole " if kind is int else ""
        raise SutraError(f"{name} must be a positive {whole}number, got {_shown(value)}")
    if parsed > LARGEST:
        raise SutraError(f"{name} must be at most {LARGEST:,}, got {_shown(value)}")
    return int(parsed) if kind is int else float(parsed)


def _finite(value: Any) -> float | int | None:
    if isinstance(value, int):
        return value
    try:
        parsed = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        return None
    return parsed if math.isfinite(parsed) else None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def split_names(values: Iterable[str] | None) -> list[str]:
    """`--service a --service b,c` -> [a, b, c]."""
    return [name.strip() for value in values or () for name in value.split(",") if name.strip()]
