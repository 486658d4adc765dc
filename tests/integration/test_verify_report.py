"""The `inv verify --report` page in a real browser: Debian's chromium, headless, with no network.

The report is synthetic (the page is what is under test, not the measurements), so this module
needs no Docker. Chromium gets a proxy that nothing answers and a resolver that resolves
nothing, so the page renders as it would from a CI artifact opened offline. On a failure the
page, the DOM chromium saw and its screenshot are kept in `.artifacts/verify-report-browser/`.
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.verify.model import (
    ESTIMATE,
    FAIL,
    INFO,
    NEEDS_CLUSTER,
    NOT_MEASURED,
    PASS,
    Metric,
    VerifyReport,
)
from sutra_deploy.verify.report import CHART_FRAMES, MEASURED, PEAK, write_report

STACK = load_stack(PROJECT_DIR / "stack.toml")
ARTIFACTS = PROJECT_DIR / ".artifacts" / "verify-report-browser"
WIDTH, HEIGHT = 1280, 2000
MIB = 2**20

OFFLINE = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--proxy-server=127.0.0.1:9",  # the discard port: nothing answers there
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--no-first-run",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",  # one CSS pixel, one screenshot pixel
    "--force-color-profile=srgb",  # the page's colours, exactly, in the screenshot
]


@pytest.fixture(scope="module", autouse=True)
def docker_engine() -> None:
    """Overrides the integration suite's Docker check: this module draws a synthetic report."""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "the report page's browser test needs Debian's chromium: "
            "run scripts/bootstrap.sh (or apt-get install chromium)"
        )
    return path


def synthetic_report() -> VerifyReport:
    """Every status once, and both charts' figures for every service of the stack."""
    report = VerifyReport("local")
    report.add(
        [
            Metric(
                "image size: total", "≤ 751 MB", 702.4, "MB", PASS, "docker image inspect, five v2 images"
            ),
            Metric(
                "image size: sutra-api", "≤ 150 MB", 162.0, "MB", FAIL, "docker image inspect sutra-api:v2"
            ),
            Metric("memory: sutra-hybrid", "< 2 Gi", 702, "MiB", PASS, "peak working set under load"),
            Metric("memory: storage-server", "< 1 Gi", None, "MiB", NOT_MEASURED, "the container restarted"),
            Metric("CPU: sutra-api", "-", 37.5, "%", INFO, "cpu.stat over the load"),
            Metric("pull time", "< 30 s", 21.3, "s", ESTIMATE, "unique bytes / measured throughput"),
            Metric("HPA scale-out", "3-50 replicas", None, "", NEEDS_CLUSTER, "manifests validated"),
        ]
    )
    for index, service in enumerate(STACK.services):
        budget = service.budget
        report.sizes.append(
            {
                "service": service.name,
                "old_bytes": budget.old_bytes,
                "size_bytes": budget.target_bytes * (90 + 7 * index) // 100,
                "target_bytes": budget.target_bytes,
                "limit_bytes": budget.limit_bytes,
            }
        )
        report.memory.append(
            {
                "service": service.name,
                "peak_bytes": (40 + 90 * index) * MIB,
                "limit_bytes": 1024 * MIB,
                "max_usage_bytes": (60 + 110 * index) * MIB,
            }
        )
    return report


class RenderedPage(HTMLParser):
    """From the DOM chromium dumps: the metric cells' text and the tags inside each chart."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.metric_names: list[str] = []
        self.chart_tags: dict[str, set[str]] = {}
        self._metric: list[str] | None = None
        self._chart: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "td" and attrs.get("class") == "metric":
            self._metric = []
        if tag == "figure":
            self._chart = attrs.get("id")
            self.chart_tags[self._chart] = set()
        elif self._chart is not None:
            self.chart_tags[self._chart].add(tag)

    def handle_endtag(self, tag):
        if tag == "td" and self._metric is not None:
            self.metric_names.append("".join(self._metric))
            self._metric = None
        elif tag == "figure":
            self._chart = None

    def handle_data(self, data):
        if self._metric is not None:
            self._metric.append(data)


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [chromium, *OFFLINE, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def frame_box(pixels: np.ndarray, colour: str) -> tuple[int, int, int, int]:
    """The box a chart's frame draws (its colour is used nowhere else on the page)."""
    ys, xs = np.nonzero(np.all(pixels == rgb(colour), axis=-1))
    assert len(ys) > 1000, f"no frame of {colour} in the screenshot"
    top, bottom, left, right = ys.min(), ys.max(), xs.min(), xs.max()
    assert bottom - top > 200 and right - left > 400, f"the {colour} frame is too small: {(top, bottom)}"
    edge = np.all(pixels[bottom, left:right] == rgb(colour), axis=-1).mean()
    assert edge > 0.9, "the chart's bottom edge is not on the screenshot (cut off?)"
    return top, bottom, left, right


def test_the_report_page_renders_offline_with_every_row_and_both_charts(chromium, tmp_path):
    report = synthetic_report()
    page = write_report(report, tmp_path / "report")
    screenshot = tmp_path / "screenshot.png"
    try:
        dom = run_chromium(chromium, tmp_path / "profile", "--dump-dom", page.as_uri()).stdout
        (tmp_path / "dom.html").write_text(dom)
        rendered = RenderedPage()
        rendered.feed(dom)
        assert rendered.metric_names == [m.name for m in report.metrics]
        for chart in CHART_FRAMES:
            assert "svg" in rendered.chart_tags[f"chart-{chart}"], f"chart-{chart} has no SVG in the DOM"

        run_chromium(
            chromium,
            tmp_path / "profile",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--screenshot={screenshot}",
            page.as_uri(),
        )
        with Image.open(screenshot) as image:
            pixels = np.asarray(image.convert("RGB"))
        assert pixels.shape[:2] == (HEIGHT, WIDTH)
        bars = {"sizes": MEASURED, "memory": PEAK}
        for chart, frame in CHART_FRAMES.items():
            top, bottom, left, right = frame_box(pixels, frame)
            inside = pixels[top + 8 : bottom - 8, left + 8 : right - 8]
            drawn = np.any(inside != 255, axis=-1).mean()
            assert drawn > 0.05, f"the {chart} chart is blank: {drawn:.1%} of it is not white"
            bar_pixels = np.all(inside == rgb(bars[chart]), axis=-1).sum()
            assert bar_pixels > 2000, f"the {chart} chart shows no bars ({bar_pixels} px of {bars[chart]})"
    except AssertionError:
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        shutil.copytree(tmp_path, ARTIFACTS, ignore=shutil.ignore_patterns("profile"))
        raise
