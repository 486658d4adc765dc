"""Kubernetes resource quantities ("250m", "1Gi") as numbers."""

from __future__ import annotations

import re
from decimal import Decimal

from ..core.errors import SutraError
from ..core.units import GIB, KIB, MIB

_BINARY = {"Ki": KIB, "Mi": MIB, "Gi": GIB, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}
# Kubernetes' grammar (resource.Quantity): a signed decimal number, then one suffix.
_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$"
)


def quantity(value: str | int | float) -> Decimal:
    """The quantity's value in base units: "250m" -> 0.25, "1Gi" -> 1073741824."""
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        raise SutraError(f"{value!r} is not a Kubernetes quantity (e.g. 256Mi, 1.5Gi, 500m, 2)")
    number, suffix = Decimal(match.group(1)), match.group(2)
    return number * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])


def millicores(value: str | int | float) -> int:
    return int(quantity(value) * 1000)


def memory_bytes(value: str | int | float) -> int:
    return int(quantity(value))


def format_bytes_binary(value: int) -> str:
    """2415919104 -> "2.25Gi"; 134217728 -> "128Mi"."""
    for suffix, size in (("Gi", GIB), ("Mi", MIB), ("Ki", KIB)):
        if value >= size:
            return f"{value / size:.2f}".rstrip("0").rstrip(".") + suffix
    return f"{value}"
