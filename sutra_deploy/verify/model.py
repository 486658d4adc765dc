"""What `inv verify` reports: one row per success metric of the plan, each with how it was measured.

Statuses:
- ``pass`` / ``fail``: measured here and checked against the plan's target;
- ``info``: measured, but no gate is configured for it (CPU utilisation, for example);
- ``estimate``: worked out from measured parts, labelled as such (never a measurement);
- ``needs a cluster``: only a real cluster can show it; ``how`` says what was checked instead;
- ``not measured``: could not be measured here, and ``how`` says why.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from ..core.errors import VerifyFailed


class Status(StrEnum):
    """A metric's status (see above). Each is its text, so tables and --json show it as is."""

    PASS = "pass"
    FAIL = "fail"
    INFO = "info"
    ESTIMATE = "estimate"
    NEEDS_CLUSTER = "needs a cluster"
    NOT_MEASURED = "not measured"


PASS, FAIL, INFO, ESTIMATE, NEEDS_CLUSTER, NOT_MEASURED = Status
STATUSES = tuple(Status)


@dataclass(frozen=True)
class Metric:
    name: str  # e.g. "memory: sutra-api"
    target: str  # the plan's target, in words ("< 512 Mi")
    value: float | int | str | None  # what was measured (None: nothing was)
    unit: str
    status: Status
    how: str  # how it was measured, or why it was not

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown metric status {self.status!r}")
        object.__setattr__(self, "status", Status(self.status))  # text from a report read back

    @property
    def shown_value(self) -> str:
        if self.value is None:
            return "-"
        if isinstance(self.value, float):
            return f"{self.value:,.2f} {self.unit}".strip()
        if isinstance(self.value, int):
            return f"{self.value:,} {self.unit}".strip()
        return f"{self.value} {self.unit}".strip()


def gate(name: str, target: str, value: float | None, unit: str, ok: bool | None, how: str) -> Metric:
    """A measured metric against a target: pass or fail; ``value`` None means not measured."""
    if value is None or ok is None:
        return Metric(name, target, None, unit, NOT_MEASURED, how)
    return Metric(name, target, value, unit, PASS if ok else FAIL, how)


@dataclass
class VerifyReport:
    env: str
    metrics: list[Metric] = field(default_factory=list)
    # What the report page draws, beyond the table: per service, plan old/target and measured
    # image bytes; peak working set against the memory limit.
    sizes: list[Mapping[str, Any]] = field(default_factory=list)
    memory: list[Mapping[str, Any]] = field(default_factory=list)

    def add(self, metrics: Metric | Iterable[Metric]) -> None:
        if isinstance(metrics, Metric):
            self.metrics.append(metrics)
        else:
            self.metrics.extend(metrics)

    @property
    def failed(self) -> list[Metric]:
        return [m for m in self.metrics if m.status == FAIL]

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "env": self.env, "metrics": [asdict(m) for m in self.metrics]}

    def to_json(self) -> str:
        return json.dumps(self.as_json(), indent=2)

    def rows(self) -> list[list[str]]:
        return [[m.name, m.target, m.shown_value, m.status, m.how] for m in self.metrics]

    HEADERS: Sequence[str] = ("Metric", "Plan target", "Measured", "Status", "How")

    def table(self) -> str:
        from tabulate import tabulate

        return tabulate(self.rows(), headers=list(self.HEADERS), maxcolwidths=[None, None, None, None, 60])

    def markdown(self) -> str:
        """A GitHub-flavoured Markdown table (the CI step summary). Every cell is text, never
        markup: a `|` would split a cell, a newline end the table, and raw HTML render."""
        from tabulate import tabulate

        rows = [[markdown_text(cell) for cell in row] for row in self.rows()]
        return f"### inv verify --env {markdown_text(self.env)}\n\n" + tabulate(
            rows, headers=list(self.HEADERS), tablefmt="github", disable_numparse=True
        )

    def raise_if_failed(self) -> None:
        if self.failed:
            raise VerifyFailed(
                "verify failed: " + "; ".join(f"{m.name} ({m.shown_value})" for m in self.failed)
            )


def markdown_text(value: object) -> str:
    """``value`` as literal text in a Markdown table cell."""
    text = " ".join(str(value).split())  # newlines and tabs become spaces
    text = html.escape(text, quote=False)  # &, <, >: no raw HTML
    return re.sub(r"([\\|`*_\[\]])", r"\\\1", text)  # no cell split, no emphasis, links or code
