import io
import json
import tarfile

import pytest

from sutra_deploy.errors import BudgetExceeded
from sutra_deploy.sizes import ServiceSize, SizeReport, gate, layer_bytes_from_archive, verdict
from sutra_deploy.source import PROJECT_DIR
from sutra_deploy.stack import SizeBudget, load_stack
from sutra_deploy.units import MB, mb

STACK = load_stack(PROJECT_DIR / "stack.toml")
BUDGET = SizeBudget(old_bytes=703 * MB, target_bytes=150 * MB, limit_bytes=200 * MB)


@pytest.mark.parametrize(
    ("size", "status"),
    [
        (1, "ok"),
        (150 * MB, "ok"),
        (150 * MB + 1, "over-target"),
        (200 * MB, "over-target"),
        (200 * MB + 1, "over-limit"),
    ],
)
def test_verdict_boundaries(size, status):
    assert verdict(size, BUDGET) == status


def report_with(sizes_mb: dict[str, float], baseline="recorded") -> SizeReport:
    rows = tuple(
        ServiceSize(
            service=s,
            image=s.ref("v2"),
            size_bytes=int(sizes_mb[s.name] * MB),
            old_bytes=s.budget.old_bytes,
            status=verdict(int(sizes_mb[s.name] * MB), s.budget),
        )
        for s in STACK.services
    )
    return SizeReport(version="v2", baseline=baseline, rows=rows, unique_bytes=300 * MB)


PLAN_SIZES = {
    "storage-server": 24,
    "sutra-api": 150,
    "sutra-hybrid": 400,
    "sutra-control": 100,
    "sutra-client": 77,
}


def test_plan_figures_reproduce_the_plans_totals():
    report = report_with(PLAN_SIZES)
    assert report.total_bytes == 751 * MB
    assert report.old_total_bytes == 1604 * MB
    assert round(report.reduction_percent) == 53
    assert not report.over_limit


def test_table_has_the_plans_columns_and_a_total_row():
    text = report_with(PLAN_SIZES).table()
    header = text.splitlines()[0]
    for column in ("Service", "Old (plan)", "New (v2)", "Savings", "Target", "Limit", "Status"):
        assert column in header
    api_line = next(line for line in text.splitlines() if line.startswith("sutra-api"))
    assert api_line.split()[1:9] == ["703", "MB", "150", "MB", "-553", "MB", "150", "MB"]
    total_line = next(line for line in text.splitlines() if line.startswith("TOTAL"))
    assert "1604 MB" in total_line and "751 MB" in total_line and "-853 MB" in total_line
    assert "53% reduction" in total_line
    assert "Unique bytes across the 5 images (shared layers once): 300 MB" in text


def test_json_shape():
    data = json.loads(report_with({**PLAN_SIZES, "sutra-hybrid": 420}).to_json())
    assert set(data) >= {"services", "total_bytes", "unique_bytes"}
    hybrid = next(s for s in data["services"] if s["name"] == "sutra-hybrid")
    assert hybrid == {
        "name": "sutra-hybrid",
        "image": "sutra-hybrid:v2",
        "size_bytes": 420 * MB,
        "old_bytes": 653 * MB,
        "target_bytes": 400 * MB,
        "limit_bytes": 450 * MB,
        "status": "over-target",
    }
    assert data["total_bytes"] == 771 * MB


def test_gate_names_every_image_over_its_limit():
    report = report_with({**PLAN_SIZES, "sutra-api": 230, "sutra-client": 80})
    with pytest.raises(BudgetExceeded) as caught:
        gate(report)
    assert "sutra-api:v2 is 230 MB (limit 200 MB)" in str(caught.value)
    assert "sutra-client:v2 is 80 MB (limit 77 MB)" in str(caught.value)
    assert caught.value.exit_code == 1
    gate(report_with(PLAN_SIZES))  # within limits: no error


def layer_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        tar.addfile(tarfile.TarInfo("somedir/"))
    return buffer.getvalue()


def docker_save_archive(layers: dict[str, bytes], manifest: list[dict]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, content in layers.items():
            info = tarfile.TarInfo(path)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        raw = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    buffer.seek(0)
    return buffer


def test_layer_bytes_count_shared_layers_once_and_only_file_content():
    base = layer_tar({"usr/bin/python3": b"x" * 5000, "etc/os-release": b"y" * 100})
    api = layer_tar({"opt/site/fastapi.py": b"z" * 700})
    hybrid = layer_tar({"opt/site/numpy.so": b"n" * 9000})
    archive = docker_save_archive(
        {"aaa/layer.tar": base, "bbb/layer.tar": api, "ccc/layer.tar": hybrid},
        [
            {"RepoTags": ["sutra-api:v2"], "Layers": ["aaa/layer.tar", "bbb/layer.tar"]},
            {"RepoTags": ["sutra-hybrid:v2"], "Layers": ["aaa/layer.tar", "ccc/layer.tar"]},
        ],
    )
    sizes = layer_bytes_from_archive(archive)
    assert sizes == {"aaa/layer.tar": 5100, "bbb/layer.tar": 700, "ccc/layer.tar": 9000}


@pytest.mark.parametrize(
    ("size", "text"),
    [(1_234_567, "1.2 MB"), (150 * MB, "150 MB"), (703_400_000, "703 MB")],
)
def test_mb_format(size, text):
    assert mb(size) == text
