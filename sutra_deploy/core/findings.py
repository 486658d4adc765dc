"""A finding: something a check noticed, and where (file:line, or the key that says it). The
preflight and `inv init` print them one per line on stderr; nothing else is in them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    where: str  # path:line, relative to the checkout, or the key
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"
