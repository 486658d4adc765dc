"""Measuring the images against the plan's budgets."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tabulate import tabulate

from ..core.errors import BudgetExceeded, ImageMissing, SutraError
from ..core.stack import Service, SizeBudget, Stack
from ..core.units import mb
from ..tools.engine import Engine, ImageInfo
from .archive import read_archive, regular_file_bytes
from .cost import CostComparison, CostRates, costs
from .explain import Explanation
from .explain import explain as explain_image


class Status(StrEnum):
    """An image against its budget; each is its text, as --json has always shown it."""

    OK = "ok"
    OVER_TARGET = "over-target"
    OVER_LIMIT = "over-limit"


# What "Old" means: the plan's recorded figures, or a version of the stack measured here.
RECORDED = "recorded"
Baseline = str
STATUS_TEXT = {Status.OK: "ok", Status.OVER_TARGET: "over target", Status.OVER_LIMIT: "OVER LIMIT"}


def savings(old_bytes: int, new_bytes: int) -> str:
    """What the table's Savings column says: a saving as a plain size, growth marked as such."""
    if new_bytes > old_bytes:
        return f"+{mb(new_bytes - old_bytes)} grown"
    return mb(old_bytes - new_bytes)


def reduction(percent: float) -> str:
    """The total's change in size, worded like the Savings column."""
    return f"+{-percent:.0f}% grown" if percent < 0 else f"{percent:.0f}% reduction"


def verdict(size_bytes: int, budget: SizeBudget) -> Status:
    if size_bytes > budget.limit_bytes:
        return Status.OVER_LIMIT
    if size_bytes > budget.target_bytes:
        return Status.OVER_TARGET
    return Status.OK


@dataclass(frozen=True)
class ServiceSize:
    service: Service
    image: str
    size_bytes: int
    old_bytes: int
    status: Status

    def as_json(self) -> dict:
        return {
            "name": self.service.name,
            "image": self.image,
            "size_bytes": self.size_bytes,
            "old_bytes": self.old_bytes,
            "target_bytes": self.service.budget.target_bytes,
            "limit_bytes": self.service.budget.limit_bytes,
            "status": self.status,
        }


@dataclass(frozen=True)
class SizeReport:
    version: str
    baseline: Baseline
    rows: tuple[ServiceSize, ...]
    unique_bytes: int

    @property
    def total_bytes(self) -> int:
        return sum(r.size_bytes for r in self.rows)

    @property
    def old_total_bytes(self) -> int:
        return sum(r.old_bytes for r in self.rows)

    @property
    def reduction_percent(self) -> float:
        old = self.old_total_bytes
        return 100.0 * (old - self.total_bytes) / old if old else 0.0

    @property
    def over_limit(self) -> tuple[ServiceSize, ...]:
        return tuple(r for r in self.rows if r.status == Status.OVER_LIMIT)

    def as_json(self) -> dict:
        return {
            "version": self.version,
            "baseline": self.baseline,
            "services": [r.as_json() for r in self.rows],
            "total_bytes": self.total_bytes,
            "old_total_bytes": self.old_total_bytes,
            "reduction_percent": round(self.reduction_percent, 1),
            "unique_bytes": self.unique_bytes,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_json(), indent=2)

    def table(self) -> str:
        rows = [
            [
                r.service.name,
                mb(r.old_bytes),
                mb(r.size_bytes),
                savings(r.old_bytes, r.size_bytes),
                mb(r.service.budget.target_bytes),
                mb(r.service.budget.limit_bytes),
                STATUS_TEXT[r.status],
            ]
            for r in self.rows
        ]
        rows.append(
            [
                "TOTAL",
                mb(self.old_total_bytes),
                mb(self.total_bytes),
                savings(self.old_total_bytes, self.total_bytes),
                mb(sum(r.service.budget.target_bytes for r in self.rows)),
                mb(sum(r.service.budget.limit_bytes for r in self.rows)),
                reduction(self.reduction_percent),
            ]
        )
        old_label = "Old (plan)" if self.baseline == RECORDED else f"Old ({self.baseline})"
        headers = ["Service", old_label, f"New ({self.version})", "Savings", "Target", "Limit", "Status"]
        table = tabulate(
            rows, headers=headers, tablefmt="simple", colalign=("left",) + ("right",) * 5 + ("left",)
        )
        return (
            f"{table}\n\nUnique bytes across the {len(self.rows)} images (shared layers once): "
            f"{mb(self.unique_bytes)}"
        )


def measure(
    stack: Stack,
    docker: Engine,
    services: Sequence[Service],
    *,
    version: str,
    baseline: Baseline = RECORDED,
) -> SizeReport:
    stack.check_version(version)
    check_baseline(stack, baseline)
    new = _inspect_all(docker, services, version)
    old = _inspect_all(docker, services, baseline) if baseline != RECORDED else {}
    rows = tuple(
        ServiceSize(
            service=s,
            image=s.ref(version),
            size_bytes=new[s.name].size_bytes,
            old_bytes=old[s.name].size_bytes if old else s.budget.old_bytes,
            status=verdict(new[s.name].size_bytes, s.budget),
        )
        for s in services
    )
    unique = unique_bytes(docker, [r.image for r in rows])
    return SizeReport(version=version, baseline=baseline, rows=rows, unique_bytes=unique)


def _inspect_all(docker: Engine, services: Sequence[Service], version: str) -> dict[str, ImageInfo]:
    found = {}
    for service in services:
        info = docker.image(service.ref(version))
        if info is None:
            raise ImageMissing(
                service.ref(version),
                f"build it with `inv build --service {service.name} --version {version}`",
            )
        found[service.name] = info
    return found


def unique_bytes(docker: Engine, refs: Sequence[str]) -> int:
    """Bytes of content in the images' layers, each layer once however many images share it
    (``docker save`` stores it once): what a registry stores and what a fresh node pulls."""
    with docker.save(refs) as stream:
        saved = read_archive(stream, regular_file_bytes)
    return sum(saved.layers[path] for path in saved.distinct_layers())


def gate(report: SizeReport) -> None:
    """Fail when any image is over its hard limit."""
    if report.over_limit:
        worst = ", ".join(
            f"{r.image} is {mb(r.size_bytes)} (limit {mb(r.service.budget.limit_bytes)})"
            for r in report.over_limit
        )
        raise BudgetExceeded(f"over the size limit: {worst}")


def compare(report: SizeReport, rates: CostRates) -> CostComparison:
    """Before: the baseline's total (the plan's, or a version's images'); after: unique bytes."""
    return CostComparison(
        rates=rates,
        before=costs(report.old_total_bytes, rates),
        after=costs(report.unique_bytes, rates),
        baseline="plan" if report.baseline == RECORDED else report.baseline,
    )


@dataclass(frozen=True)
class SizesOutput:
    """What `inv sizes` shows (the size table, the cost comparison or one image explained), and
    the report whose gate decides its exit code."""

    shown: SizeReport | CostComparison | Explanation
    report: SizeReport | None = None  # None when explaining one image: nothing to gate

    def table(self) -> str:
        return self.shown.table()

    def to_json(self) -> str:
        return self.shown.to_json()

    def raise_if_over_limit(self) -> None:
        if self.report is not None:
            gate(self.report)


def check_baseline(stack: Stack, baseline: str) -> None:
    """`recorded` (the plan's figures) or a version the stack file defines."""
    if baseline != RECORDED and baseline not in stack.versions:
        choices = ", ".join((RECORDED, *stack.versions))
        raise SutraError(f"unknown baseline {baseline!r}; choose one of {choices}")


def run_sizes(
    stack: Stack,
    docker: Engine,
    *,
    names: Sequence[str] = (),
    version: str | None = None,
    baseline: Baseline = RECORDED,
    explain: str | None = None,
    cost: bool = False,
    cost_settings: Mapping[str, Any] | None = None,
) -> SizesOutput:
    """`inv sizes`: one service's image explained, the cost comparison, or the size table;
    the last two carry the report to gate on."""
    version = version or stack.default_version
    check_baseline(stack, baseline)  # wrong flags first, before the daemon is asked anything
    if explain:
        service = stack.service(explain)
        docker.ensure_available()
        explanation = explain_image(docker, service.ref(stack.check_version(version)), service.name)
        return SizesOutput(explanation)
    services = stack.select(names)
    rates = CostRates.from_settings(cost_settings or {}) if cost else None
    docker.ensure_available()
    report = measure(stack, docker, services, version=version, baseline=baseline)
    if rates is not None:
        comparison = compare(report, rates)
        return SizesOutput(comparison, report)
    return SizesOutput(report, report)
