"""Checks for what a user types: flags and settings, each refused with one line naming it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

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


def service_url(value: str, flag: str, schemes: tuple[str, ...] = ("http", "https", "tcp")) -> str:
    """A URL a check can reach (`http://localhost:8000`, `tcp://10.0.0.5:50051`): one of
    ``schemes``, a host, a port in range if one is given, nothing after a tcp address; else one
    line naming ``flag``. Read with the library the probes use, so what passes here they can open."""
    example = "http://localhost:8000"
    try:
        parts = urlsplit(value)
        port = parts.port  # a port out of range or not a number raises here
    except ValueError as error:
        raise SutraError(f"{flag}: {value!r} is no URL ({error}); e.g. {example}") from None
    if parts.scheme not in schemes:
        raise SutraError(f"{flag}: {value!r}: expected a {' or '.join(schemes)} URL, e.g. {example}")
    if not parts.hostname:
        raise SutraError(f"{flag}: {value!r} names no host; e.g. {example}")
    if parts.username or parts.password:
        raise SutraError(f"{flag}: a URL with a user or password is not taken; give the address only")
    if port == 0:
        raise SutraError(f"{flag}: {value!r}: port 0 is no port to reach")
    if parts.scheme == "tcp" and (parts.path not in ("", "/") or parts.query or parts.fragment):
        raise SutraError(f"{flag}: {value!r}: a tcp address is host:port, nothing after it")
    return value
