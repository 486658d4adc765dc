"""Sizes as people read them: decimal megabytes, the unit `docker images` prints."""

from __future__ import annotations

MB = 1_000_000
GB = 1000 * MB


def mb(size_bytes: int, *, signed: bool = False) -> str:
    """1234567 -> '1.2 MB'; 150000000 -> '150 MB'; signed: '-553 MB', '+0.4 MB'."""
    value = size_bytes / MB
    sign = "+" if signed else ""
    digits = 1 if abs(value) < 10 else 0
    return f"{value:{sign}.{digits}f} MB"
