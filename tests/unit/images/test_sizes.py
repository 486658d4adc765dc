from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator, Sequence

import pytest
import tomlkit

from sutra_deploy.core.errors import BudgetExceeded, ImageMissing, SutraError, UnknownService
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import SizeBudget, Stack, load_stack
from sutra_deploy.core.units import MB, mb
from sutra_deploy.images.cost import CostRates
from sutra_deploy.images.sizes import (
    SizeReport,
    compare,
    gate,
    measure,
    reduction,
    run_sizes,
    savings,
    unique_bytes,
    verdict,
)
from sutra_deploy.tools.engine import ImageInfo

from .test_archive import Image, layer_tar, legacy_archive, oci_archive

STACK = load_stack(PROJECT_DIR / "stack.toml")


class FakeDocker:
    """An engine holding images of the given sizes; `docker save` gives ``archive``."""

    def __init__(self, sizes: dict[str, int], archive: bytes = b"") -> None:
        self.sizes = sizes
        self.archive = archive
        self.saved: list[list[str]] = []
        self.checked = False

    def ensure_available(self) -> str:
        self.checked = True
        return "test"

    def image(self, ref: str) -> ImageInfo | None:
        if ref not in self.sizes:
            return None
        return ImageInfo(ref=ref, id=f"sha256:{ref}", size_bytes=self.sizes[ref], layers=(), labels={})

    @contextlib.contextmanager
    def save(self, refs: Sequence[str]) -> Iterator[io.BytesIO]:
        self.saved.append(list(refs))
        yield io.BytesIO(self.archive)


def at_targets(overrides: dict[str, int] | None = None, version: str = "v2") -> dict[str, int]:
    """Each image exactly at its target size, unless overridden (by service name)."""
    return {s.ref(version): (overrides or {}).get(s.name, s.budget.target_bytes) for s in STACK.services}


SHARED_BASE = layer_tar({"usr/lib/libpython.so": b"b" * 3000})


def archive_for(stack: Stack = STACK, version: str = "v2") -> bytes:
    """One image per service, each a shared base layer and a layer of its own."""
    return legacy_archive(
        [
            Image([s.ref(version)], [SHARED_BASE, layer_tar({f"app/{s.name}": b"x" * (100 + i)})])
            for i, s in enumerate(stack.services)
        ]
    )


def report_with(sizes: dict[str, int], stack: Stack = STACK, baseline="recorded") -> SizeReport:
    docker = FakeDocker(sizes, archive_for(stack))
    return measure(stack, docker, stack.services, version="v2", baseline=baseline)


BUDGET = SizeBudget(old_bytes=30 * MB, target_bytes=10 * MB, limit_bytes=20 * MB)


@pytest.mark.parametrize(
    ("size", "status"),
    [
        (1, "ok"),
        (10 * MB, "ok"),
        (10 * MB + 1, "over-target"),
        (20 * MB, "over-target"),
        (20 * MB + 1, "over-limit"),
    ],
)
def test_verdict_boundaries(size, status):
    assert verdict(size, BUDGET) == status


@pytest.mark.parametrize(
    ("old", "new", "text"),
    [
        (703 * MB, 150 * MB, "553 MB"),
        (24 * MB, 24 * MB, "0.0 MB"),
        (100 * MB, 120 * MB, "+20 MB grown"),
        (10 * MB, 10_400_000, "+0.4 MB grown"),
    ],
)
def test_a_saving_is_positive_and_growth_says_so(old, new, text):
    assert savings(old, new) == text


@pytest.mark.parametrize(
    ("percent", "text"), [(53.2, "53% reduction"), (0.0, "0% reduction"), (-4.6, "+5% grown")]
)
def test_the_totals_change_is_worded_like_the_savings(percent, text):
    assert reduction(percent) == text


def test_measure_reads_sizes_from_the_engine_and_counts_shared_layers_once():
    sizes = at_targets()
    docker = FakeDocker(sizes, archive_for())
    report = measure(STACK, docker, STACK.services, version="v2")
    assert [r.size_bytes for r in report.rows] == [sizes[s.ref("v2")] for s in STACK.services]
    assert [r.old_bytes for r in report.rows] == [s.budget.old_bytes for s in STACK.services]
    assert docker.saved == [[s.ref("v2") for s in STACK.services]]  # one `docker save` of them all
    own = sum(100 + i for i in range(len(STACK.services)))
    assert report.unique_bytes == 3000 + own  # the base once, not once per image


def test_unique_bytes_reads_the_oci_layout_too():
    archive = oci_archive(
        [Image(["a:1"], [SHARED_BASE]), Image(["b:1"], [SHARED_BASE, layer_tar({"f": b"1"})])]
    )
    assert unique_bytes(FakeDocker({}, archive), ["a:1", "b:1"]) == 3001


def test_v1_baseline_measures_the_v1_images():
    sizes = {**at_targets(), **{s.ref("v1"): s.budget.old_bytes + 1 for s in STACK.services}}
    report = measure(STACK, FakeDocker(sizes, archive_for()), STACK.services, version="v2", baseline="v1")
    assert [r.old_bytes for r in report.rows] == [s.budget.old_bytes + 1 for s in STACK.services]
    assert "Old (v1)" in report.table()


def test_a_missing_image_names_how_to_build_it():
    service = STACK.services[0]
    with pytest.raises(
        ImageMissing, match=f"build it with `inv build --service {service.name} --version v2`"
    ):
        measure(STACK, FakeDocker({}), [service], version="v2")


def test_totals_and_reduction_follow_the_rows():
    report = report_with(at_targets())
    assert report.total_bytes == sum(s.budget.target_bytes for s in STACK.services)
    assert report.old_total_bytes == sum(s.budget.old_bytes for s in STACK.services)
    old, new = report.old_total_bytes, report.total_bytes
    assert report.reduction_percent == pytest.approx(100 * (old - new) / old)
    assert not report.over_limit


def test_table_has_the_plans_columns_a_total_row_and_positive_savings():
    report = report_with(at_targets())
    text = report.table()
    lines = text.splitlines()
    for column in ("Service", "Old (plan)", "New (v2)", "Savings", "Target", "Limit", "Status"):
        assert column in lines[0]
    for row in report.rows:
        line = next(line for line in lines if line.startswith(row.service.name + " "))
        budget = row.service.budget
        expected = [mb(budget.old_bytes), mb(row.size_bytes), savings(budget.old_bytes, row.size_bytes)]
        assert " ".join(line.split()[1:7]) == " ".join(expected)
    total = next(line for line in lines if line.startswith("TOTAL"))
    assert f"{mb(report.old_total_bytes)}  " in total and f"{mb(report.total_bytes)}  " in total
    assert savings(report.old_total_bytes, report.total_bytes) in total
    assert f"{report.reduction_percent:.0f}% reduction" in total
    assert not re.search(r"-\d", text)  # nothing saved is shown as a negative number
    assert f"Unique bytes across the {len(STACK.services)} images (shared layers once): " in text


def test_a_grown_image_says_so_in_its_row():
    api = STACK.service("sutra-api")
    grown = api.budget.old_bytes + 20 * MB
    line = next(
        line
        for line in report_with(at_targets({"sutra-api": grown})).table().splitlines()
        if line.startswith("sutra-api ")
    )
    assert "+20 MB grown" in line


def test_json_shape_is_unchanged():
    hybrid = STACK.service("sutra-hybrid")
    report = report_with(at_targets({"sutra-hybrid": hybrid.budget.target_bytes + 1}))
    data = json.loads(report.to_json())
    assert list(data) == [
        "version",
        "baseline",
        "services",
        "total_bytes",
        "old_total_bytes",
        "reduction_percent",
        "unique_bytes",
    ]
    row = next(s for s in data["services"] if s["name"] == "sutra-hybrid")
    assert row == {
        "name": "sutra-hybrid",
        "image": hybrid.ref("v2"),
        "size_bytes": hybrid.budget.target_bytes + 1,
        "old_bytes": hybrid.budget.old_bytes,
        "target_bytes": hybrid.budget.target_bytes,
        "limit_bytes": hybrid.budget.limit_bytes,
        "status": "over-target",
    }
    assert data["total_bytes"] == report.total_bytes
    assert data["reduction_percent"] == round(report.reduction_percent, 1)  # a number, signed as before


def stack_with_budget(tmp_path, service: str, *, target_mb: float, limit_mb: float) -> Stack:
    """A copy of the stack file with one service's budget changed."""
    document = tomlkit.parse(STACK.path.read_text())
    document["services"][service]["size_mb"]["target"] = target_mb
    document["services"][service]["size_mb"]["limit"] = limit_mb
    copy = tmp_path / "stack.toml"
    copy.write_text(tomlkit.dumps(document))
    return load_stack(copy)


def test_the_gate_follows_the_budget_in_the_stack_file(tmp_path):
    sizes = at_targets()
    gate(report_with(sizes))  # every image at its target: within limits, no error
    control = STACK.service("sutra-control")
    half = control.budget.target_bytes / MB / 2
    strict = stack_with_budget(tmp_path, "sutra-control", target_mb=half / 2, limit_mb=half)
    report = report_with(sizes, stack=strict)
    with pytest.raises(BudgetExceeded) as caught:
        gate(report)
    assert str(caught.value) == (
        f"over the size limit: {control.ref('v2')} is {mb(control.budget.target_bytes)} "
        f"(limit {mb(round(half * MB))})"
    )
    assert caught.value.exit_code == 1
    assert "OVER LIMIT" in next(
        line for line in report.table().splitlines() if line.startswith("sutra-control")
    )


def test_the_gate_names_every_image_over_its_limit():
    over = {s.name: s.budget.limit_bytes + 1 for s in STACK.services[:2]}
    with pytest.raises(BudgetExceeded) as caught:
        gate(report_with(at_targets(over)))
    for service in STACK.services[:2]:
        assert f"{service.ref('v2')} is {mb(service.budget.limit_bytes + 1)}" in str(caught.value)


def test_run_sizes_prints_the_table_and_gates_on_the_report():
    docker = FakeDocker(at_targets(), archive_for())
    output = run_sizes(STACK, docker)
    assert docker.checked
    assert output.table() == report_with(at_targets()).table()
    output.raise_if_over_limit()
    assert json.loads(output.to_json()) == report_with(at_targets()).as_json()


def test_run_sizes_returns_the_text_even_when_the_gate_fails():
    api = STACK.service("sutra-api")
    sizes = at_targets({"sutra-api": api.budget.limit_bytes + MB})
    output = run_sizes(STACK, FakeDocker(sizes, archive_for()), names=["sutra-api"])
    assert "OVER LIMIT" in output.table() and "storage-server" not in output.table()
    with pytest.raises(BudgetExceeded, match=api.ref("v2")):
        output.raise_if_over_limit()


def test_run_sizes_cost_compares_and_still_gates():
    sizes = at_targets()
    output = run_sizes(STACK, FakeDocker(sizes, archive_for()), cost=True)
    rates = CostRates.from_settings({})
    assert json.loads(output.to_json()) == compare(report_with(sizes), rates).as_json()
    assert output.report is not None
    custom = run_sizes(
        STACK, FakeDocker(sizes, archive_for()), cost=True, cost_settings={"pulls_per_month": 7}
    )
    assert "Transfer (7 pulls/month)" in custom.table()


def test_run_sizes_explains_one_image_and_has_nothing_to_gate():
    api = STACK.service("sutra-api")
    archive = legacy_archive([Image([api.ref("v2")], [SHARED_BASE], [{"created_by": "COPY base"}])])
    output = run_sizes(STACK, FakeDocker({api.ref("v2"): 3000}, archive), explain="sutra-api")
    assert output.table().startswith(f"{api.ref('v2')}: {mb(3000)} in 1 layers")
    assert "COPY base" in output.table() and output.report is None
    output.raise_if_over_limit()
    assert json.loads(output.to_json())["layers"] == [{"created_by": "COPY base", "bytes": 3000}]


def test_run_sizes_refuses_bad_requests_before_asking_docker():
    docker = FakeDocker({})
    with pytest.raises(UnknownService):
        run_sizes(STACK, docker, explain="nope")
    with pytest.raises(UnknownService):
        run_sizes(STACK, docker, names=["nope"])
    with pytest.raises(SutraError, match=r"sutra\.cost\.pulls_per_month"):
        run_sizes(STACK, docker, cost=True, cost_settings={"pulls_per_month": "lots"})
    assert not docker.checked
    with pytest.raises(SutraError, match="unknown version 'v9'"):
        run_sizes(STACK, FakeDocker({}), explain="sutra-api", version="v9")
    # The baselines are the plan's figures and the stack file's own versions, not a fixed "v1".
    with pytest.raises(SutraError, match=r"unknown baseline 'yesterday'; choose one of recorded, v1, v2$"):
        run_sizes(STACK, FakeDocker({}), baseline="yesterday")
