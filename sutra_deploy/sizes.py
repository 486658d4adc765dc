"""Measuring the images against the plan's budgets."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Literal

from tabulate import tabulate

from .docker import Docker, ImageInfo
from .errors import BudgetExceeded, ImageMissing, SutraError
from .stack import Service, SizeBudget, Stack
from .units import mb

Status = Literal["ok", "over-target", "over-limit"]
Baseline = Literal["recorded", "v1"]
BASELINES: tuple[Baseline, ...] = ("recorded", "v1")
STATUS_TEXT = {"ok": "ok", "over-target": "over target", "over-limit": "OVER LIMIT"}


def verdict(size_bytes: int, budget: SizeBudget) -> Status:
    if size_bytes > budget.limit_bytes:
        return "over-limit"
    if size_bytes > budget.target_bytes:
        return "over-target"
    return "ok"


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
        return tuple(r for r in self.rows if r.status == "over-limit")

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
                mb(r.size_bytes - r.old_bytes, signed=True),
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
                mb(self.total_bytes - self.old_total_bytes, signed=True),
                mb(sum(r.service.budget.target_bytes for r in self.rows)),
                mb(sum(r.service.budget.limit_bytes for r in self.rows)),
                f"{self.reduction_percent:.0f}% reduction",
            ]
        )
        old_label = "Old (plan)" if self.baseline == "recorded" else "Old (v1)"
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
    docker: Docker,
    services: Sequence[Service],
    *,
    version: str,
    baseline: Baseline = "recorded",
) -> SizeReport:
    stack.check_version(version)
    if baseline not in BASELINES:
        raise SutraError(f"unknown baseline {baseline!r}; choose one of {', '.join(BASELINES)}")
    new = _inspect_all(docker, services, version)
    old = _inspect_all(docker, services, "v1") if baseline == "v1" else {}
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
    layer_sizes = layer_bytes(docker, [r.image for r in rows])
    unique = sum(layer_sizes.values())
    return SizeReport(version=version, baseline=baseline, rows=rows, unique_bytes=unique)


def _inspect_all(docker: Docker, services: Sequence[Service], version: str) -> dict[str, ImageInfo]:
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


def layer_bytes(docker: Docker, refs: Sequence[str]) -> dict[str, int]:
    """Bytes of content in each distinct layer of the images, keyed by the layer's path in
    ``docker save``'s archive. The archive holds a layer once however many images share it:
    what a registry stores and what a fresh node pulls."""
    with docker.save(refs) as stream:
        return layer_bytes_from_archive(stream)


def layer_bytes_from_archive(stream: IO[bytes]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    manifest: list[dict] = []
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for member in archive:
            if member.name == "manifest.json":
                handle = archive.extractfile(member)
                assert handle is not None
                manifest = json.load(handle)
            elif member.isfile() and _is_layer(member.name):
                handle = archive.extractfile(member)
                assert handle is not None
                sizes[member.name] = _content_bytes(handle)
    listed = {path for image in manifest for path in image.get("Layers", [])}
    return {path: size for path, size in sizes.items() if not listed or path in listed}


def _is_layer(name: str) -> bool:
    # Docker's own archive names layers */layer.tar; the OCI layout stores them as blobs.
    return name.endswith("/layer.tar") or name.startswith("blobs/sha256/")


def _content_bytes(handle: IO[bytes]) -> int:
    """Sum of the regular files in one layer tarball (what docker's image size counts)."""
    try:
        with tarfile.open(fileobj=handle, mode="r|") as layer:
            return sum(m.size for m in layer if m.isreg())
    except tarfile.ReadError:
        return 0  # an OCI config or manifest blob, not a layer


def gate(report: SizeReport) -> None:
    """Fail when any image is over its hard limit."""
    if report.over_limit:
        worst = ", ".join(
            f"{r.image} is {mb(r.size_bytes)} (limit {mb(r.service.budget.limit_bytes)})"
            for r in report.over_limit
        )
        raise BudgetExceeded(f"over the size limit: {worst}")
