"""Units, each written once: decimal megabytes for images (what `docker images` prints), binary
mebibytes for memory (what Kubernetes limits are written in: 512Mi), and the engine's CPU unit."""

from __future__ import annotations

MB = 1_000_000  # image sizes, registry transfers
GB = 1000 * MB
KIB, MIB, GIB = 2**10, 2**20, 2**30  # memory: limits, working sets
NANOCPUS_PER_MILLICORE = 1_000_000  # the engine's NanoCpus (CPUs x 10^9) against Kubernetes' 1000m


def mb(size_bytes: int, *, signed: bool = False) -> str:
    """1234567 -> '1.2 MB'; 150000000 -> '150 MB'; signed: '-553 MB', '+0.4 MB'."""
    value = size_bytes / MB
    sign = "+" if signed else ""
    digits = 1 if abs(value) < 10 else 0
    return f"{value:{sign}.{digits}f} MB"
