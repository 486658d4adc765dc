"""The `inv verify --report DIR` page, and the table in a GitHub job's summary.

`write_report` writes two files: ``index.html``, one self-contained page (inline CSS, the
charts inline as SVG: it opens offline, from a CI artifact or a laptop with no network),
and ``verify.json``, the report's JSON plus the figures the charts are drawn from.

The charts are matplotlib's SVG, made reproducible: a fixed ``svg.hashsalt`` for the ids it
generates and no date in the metadata, so the same report writes the same bytes. Text stays
text (``svg.fonttype = "none"``): the labels are searchable and copyable like the table, and
the page stays small. Matplotlib lays the text out with DejaVu Sans metrics and names that
font first, with the usual sans-serif fallbacks; labels are anchored (start, middle, end), so
a browser without DejaVu Sans shifts widths slightly, never positions. Embedding the glyphs
as paths (``"path"``) would look identical everywhere, but makes the page over twice the size
(45 KB to 104 KB for five services) and the chart text can be neither found nor read out.

Matplotlib is imported inside the functions that draw, so no other `inv` task pays for it.
"""

from __future__ import annotations

import html
import io
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import ReportFolderError
from ..core.units import MB, MIB
from ..tools import files
from .model import STATUSES, VerifyReport

PAGE = "index.html"
DATA = "verify.json"
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


# Each chart's frame has its own colour, used nowhere else on the page: the integration test
# finds the charts in a browser's screenshot by them.
CHART_FRAMES = {"sizes": "#8fb3dd", "memory": "#c3acd9"}

# Bar colours: the integration test looks for the measured bars inside each chart's frame.
OLD = "#a7adb5"
MEASURED = "#1f5fa8"
TARGET = "#4caf7a"
LIMIT = "#c62828"
PEAK = "#1f5fa8"
HIGH_WATER = "#9cc3e6"

SVG_RC = {
    "svg.hashsalt": "sutra-verify-report",
    "svg.fonttype": "none",
    "text.parse_math": False,  # a `$` in a service name is text, not TeX
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
# Matplotlib writes a creator, a date and RDF namespaces by default; none of them is wanted
# in a page that must be reproducible and must mention no network address.
SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


def check_report_folder(text: str) -> Path:
    """`--report DIR`, checked before verify measures anything: DIR is a folder, or can be
    made, where this user can create files; it holds no index.html or verify.json yet, not
    even as a link (the report never overwrites a file, nor writes through a link it did not
    make: `write_report` creates each file exclusively, so a link planted later is refused too)."""
    shown = text if len(text) <= 200 else text[:200] + "…"
    if not text.strip():
        raise ReportFolderError("--report needs a folder")
    folder = Path(text)
    if folder.is_symlink() and not folder.exists():
        raise ReportFolderError(f"--report {shown} is a link to nothing; give a folder")
    if folder.exists() and not folder.is_dir():
        raise ReportFolderError(f"--report {shown} is a file, not a folder; give a folder for the report")
    taken = [name for name in (PAGE, DATA) if os.path.lexists(folder / name)]
    if taken:
        raise ReportFolderError(
            f"--report {shown} already holds {' and '.join(taken)}; remove "
            f"{'them' if len(taken) > 1 else 'it'} or give another folder (a report never overwrites)"
        )
    existing = next(p for p in (folder.absolute(), *folder.absolute().parents) if p.exists())
    try:  # the one sure test of "can create files here", for root and read-only mounts too
        probe, name = tempfile.mkstemp(dir=existing, prefix=".sutra-report-probe.")
    except OSError as error:
        raise ReportFolderError(
            f"--report {shown}: cannot create files in {existing} ({error.strerror})"
        ) from None
    os.close(probe)
    os.unlink(name)
    return folder


def write_report(report: VerifyReport, directory: Path) -> Path:
    """Write ``index.html`` and ``verify.json`` into ``directory`` (made if missing), each as a
    new file (`files.write_new`); both or neither. Returns the page's path."""
    directory = Path(directory)
    charts = chart_data(report)
    data = {**report.as_json(), "charts": charts}
    contents = {
        DATA: (json.dumps(data, indent=2) + "\n").encode("utf-8"),
        PAGE: render_page(report, charts).encode("utf-8"),
    }
    written: list[Path] = []
    target = directory
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, body in contents.items():
            target = directory / name
            files.write_new(target, body)
            written.append(target)
    except OSError as error:
        for path in written:
            path.unlink(missing_ok=True)
        why = "something is already there" if isinstance(error, FileExistsError) else error.strerror
        raise ReportFolderError(f"--report: cannot write {target} ({why}); nothing was written") from None
    return directory / PAGE


def append_step_summary(report: VerifyReport, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append the report's Markdown table to the GitHub job summary, when there is one."""
    target = (os.environ if environ is None else environ).get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    try:
        with path.open("a", encoding="utf-8", newline="\n") as summary:
            summary.write(report.markdown() + "\n\n")
    except OSError as error:
        raise ReportFolderError(
            f"{STEP_SUMMARY_ENV}={target[:200]}: cannot append ({error.strerror})"
        ) from None
    return path


def chart_data(report: VerifyReport) -> dict[str, list[dict[str, Any]]]:
    """The figures behind the charts, as plain JSON values (bytes throughout)."""
    return {
        "sizes": [dict(entry) for entry in report.sizes],
        "memory": [dict(entry) for entry in report.memory],
    }


# --- the page ------------------------------------------------------------------------------

STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #ffffff; color: #1b1f24;
  font: 15px/1.45 "DejaVu Sans", "Liberation Sans", "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 20px 40px; }
h1 { font-size: 24px; margin: 0 0 6px; }
h2 { font-size: 18px; margin: 28px 0 10px; }
code { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace; font-size: 0.92em; }
.verdict { display: inline-block; margin: 8px 0 4px; padding: 6px 12px; border-radius: 4px;
  font-weight: bold; }
.verdict.ok { background: #e3f4e8; color: #14562b; }
.verdict.failed { background: #fde4e4; color: #8a1414; }
.counts { margin: 4px 0 0; color: #4a525c; }
table.metrics { width: 100%; border-collapse: collapse; font-size: 14px; }
table.metrics th, table.metrics td { padding: 6px 10px; border-bottom: 1px solid #dde1e6;
  text-align: left; vertical-align: top; }
table.metrics thead th { background: #f2f4f7; border-bottom: 2px solid #c6ccd4; white-space: nowrap; }
table.metrics td.metric { font-weight: bold; white-space: nowrap; }
table.metrics td.measured { white-space: nowrap; font-variant-numeric: tabular-nums; }
table.metrics td.how { color: #39414a; }
tr.row-fail td { background: #fff6f6; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 13px;
  font-weight: bold; white-space: nowrap; border: 1px solid transparent; }
.status-pass { background: #dcf2e3; color: #14562b; border-color: #a9dcb9; }
.status-fail { background: #fbd5d5; color: #8a1414; border-color: #ef9a9a; }
.status-info { background: #e2ecf7; color: #1d4a7a; border-color: #b3cbe6; }
.status-estimate { background: #fff1d1; color: #6b4a00; border-color: #f0d28a; }
.status-needs-a-cluster { background: #ece6f5; color: #4a2d73; border-color: #cbbbe3; }
.status-not-measured { background: #eceef1; color: #4a525c; border-color: #cdd2d8; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 20px; }
figure.chart { margin: 0; padding: 12px 14px 8px; border: 3px solid; border-radius: 6px;
  background: #ffffff; }
figure.chart figcaption { font-weight: bold; margin-bottom: 6px; }
figure.chart svg { display: block; width: 100%; height: auto; }
figure.chart .no-data { margin: 40px 0; text-align: center; color: #4a525c; font-style: italic; }
.note { color: #4a525c; font-size: 13px; margin: 4px 0 0; }
dl.statuses { display: grid; grid-template-columns: max-content 1fr; gap: 4px 12px;
  font-size: 13px; color: #39414a; }
dl.statuses dd { margin: 0; }
"""

# The browser itself holds the page to being self-contained: nothing may be fetched and no
# script may run, whoever opens the artifact; inline styles (the page's and the SVGs') only.
CSP = "default-src 'none'; style-src 'unsafe-inline'"

STATUS_MEANINGS = {
    "pass": "measured here and within the plan's target",
    "fail": "measured here and outside the plan's target",
    "info": "measured, with no gate configured",
    "estimate": "worked out from measured parts, not itself a measurement",
    "needs a cluster": "only a real cluster can show it; the row says what was checked instead",
    "not measured": "could not be measured here; the row says why",
}


def status_class(status: str) -> str:
    return "status-" + re.sub(r"[^a-z0-9]+", "-", status.lower()).strip("-")


def render_page(report: VerifyReport, charts: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    e = html.escape
    title = f"inv verify --env {report.env}"
    counts = {status: 0 for status in STATUSES}
    for metric in report.metrics:
        counts[metric.status] += 1
    if report.ok:
        verdict = '<p class="verdict ok">Every measured metric meets the plan</p>'
    else:
        names = ", ".join(m.name for m in report.failed)
        verdict = f'<p class="verdict failed">{len(report.failed)} failed: {e(names)}</p>'
    shown_counts = " · ".join(f"{e(status)} {n}" for status, n in counts.items() if n)

    rows = []
    for metric in report.metrics:
        css = status_class(metric.status)
        rows.append(
            f'<tr class="row-{e(css.removeprefix("status-"))}">'
            f'<td class="metric">{e(metric.name)}</td>'
            f'<td class="target">{e(metric.target)}</td>'
            f'<td class="measured">{e(metric.shown_value)}</td>'
            f'<td><span class="status {e(css)}">{e(metric.status)}</span></td>'
            f'<td class="how">{e(metric.how)}</td></tr>'
        )
    headers = "".join(f'<th scope="col">{e(h)}</th>' for h in report.HEADERS)
    body = "\n".join(rows) or f'<tr><td colspan="{len(report.HEADERS)}">No metrics.</td></tr>'

    sizes_chart, memory_chart = draw_charts(charts)
    sizes = chart_figure(
        "sizes",
        "Image sizes per service (MB)",
        sizes_chart,
        "No image sizes in this report: the images were not measured.",
    )
    memory = chart_figure(
        "memory",
        "Peak memory against the limit per service (MiB)",
        memory_chart,
        "No memory in this report: no container was sampled.",
    )
    meanings = "".join(
        f'<dt><span class="status {status_class(s)}">{e(s)}</span></dt><dd>{e(m)}</dd>'
        for s, m in STATUS_MEANINGS.items()
    )
    frames = "".join(
        f"#chart-{name} {{ border-color: {colour}; }}\n" for name, colour in CHART_FRAMES.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>{e(title)}: {"ok" if report.ok else "failed"}</title>
<style>{STYLE}{frames}</style>
</head>
<body>
<main>
<h1>Sutra AI: <code>{e(title)}</code></h1>
{verdict}
<p class="counts">{shown_counts}</p>
<h2>The plan's success metrics</h2>
<table class="metrics" id="metrics">
<thead><tr>{headers}</tr></thead>
<tbody>
{body}
</tbody>
</table>
<h2>Charts</h2>
<section class="charts">
{sizes}
{memory}
</section>
<p class="note">MB are 10<sup>6</sup> bytes, as <code>docker images</code> prints them; MiB are
2<sup>20</sup> bytes, as Kubernetes limits are written (512Mi). The peak working set (usage less
inactive file cache) is what Kubernetes compares with a memory limit; the cgroup's high-water
mark also counts page cache. The figures are in <code>verify.json</code> beside this page.</p>
<h2>Statuses</h2>
<dl class="statuses">{meanings}</dl>
</main>
</body>
</html>
"""


def chart_figure(name: str, caption: str, svg: str | None, missing: str) -> str:
    content = svg if svg is not None else f'<p class="no-data">{html.escape(missing)}</p>'
    return (
        f'<figure class="chart" id="chart-{name}">'
        f"<figcaption>{html.escape(caption)}</figcaption>\n{content}\n</figure>"
    )


# --- the charts ----------------------------------------------------------------------------


def draw_charts(charts: Mapping[str, Sequence[Mapping[str, Any]]]) -> tuple[str | None, str | None]:
    """Both charts as inline SVG (None where there is nothing to draw), under one fixed style."""
    import matplotlib

    with matplotlib.rc_context():
        # Matplotlib's own defaults, not the machine's matplotlibrc: the same bytes everywhere.
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(SVG_RC)
        return sizes_svg(charts["sizes"]), memory_svg(charts["memory"])


def sizes_svg(sizes: Sequence[Mapping[str, Any]]) -> str | None:
    """Plan old, measured v2 and plan target per service, the hard limit as a mark; None if no data."""
    if not sizes or all(entry.get("size_bytes") is None for entry in sizes):
        return None
    services = [str(entry["service"]) for entry in sizes]
    figure, axes = new_chart(len(services))
    height = 0.26
    handles = []
    for offset, (label, key, colour) in zip(
        (-height, 0.0, height),
        (
            ("before (plan)", "old_bytes", OLD),
            ("measured v2", "size_bytes", MEASURED),
            ("target (plan)", "target_bytes", TARGET),
        ),
        strict=True,
    ):
        values = [scaled(entry.get(key), MB) for entry in sizes]
        bars = axes.barh(
            [row + offset for row in range(len(services))],
            [v or 0 for v in values],
            height=height,
            color=colour,
            label=label,
        )
        handles.append(bars)
        if key == "size_bytes":
            label_bars(axes, bars, [f"{v:,.0f} MB" if v is not None else "not measured" for v in values])
    limits = [scaled(entry.get("limit_bytes"), MB) for entry in sizes]
    handles += mark_limits(axes, limits, span=1.5 * height + 0.06, label="hard limit (plan)")
    finish_chart(figure, axes, services, "MB (10⁶ bytes)", handles)
    return svg_of(figure, "sizes")


def memory_svg(memory: Sequence[Mapping[str, Any]]) -> str | None:
    """Peak working set (and the cgroup's high-water mark) per service against its limit; None if no data."""
    if not memory or all(entry.get("peak_bytes") is None for entry in memory):
        return None
    services = [str(entry["service"]) for entry in memory]
    peaks = [scaled(entry.get("peak_bytes"), MIB) for entry in memory]
    high_water = [scaled(entry.get("max_usage_bytes"), MIB) for entry in memory]
    limits = [scaled(entry.get("limit_bytes"), MIB) for entry in memory]
    figure, axes = new_chart(len(services))
    rows = range(len(services))
    with_high_water = any(v is not None for v in high_water)
    height = 0.34 if with_high_water else 0.5
    offset = height / 2 if with_high_water else 0.0
    peak_bars = axes.barh(
        [row - offset for row in rows],
        [v or 0 for v in peaks],
        height=height,
        color=PEAK,
        label="peak working set",
    )
    handles = [peak_bars]
    label_bars(axes, peak_bars, [peak_label(peak, limit) for peak, limit in zip(peaks, limits, strict=True)])
    if with_high_water:
        handles.append(
            axes.barh(
                [row + offset for row in rows],
                [v or 0 for v in high_water],
                height=height,
                color=HIGH_WATER,
                label="cgroup high-water mark",
            )
        )
    handles += mark_limits(axes, limits, span=height + 0.08, label="memory limit")
    finish_chart(figure, axes, services, "MiB (2²⁰ bytes)", handles)
    return svg_of(figure, "memory")


def scaled(value: Any, unit: int) -> float | None:
    return None if value is None else float(value) / unit


def peak_label(peak: float | None, limit: float | None) -> str:
    if peak is None:
        return "not measured"
    if not limit:
        return f"{peak:,.0f} MiB"
    return f"{peak:,.0f} MiB ({100 * peak / limit:.0f}% of limit)"


def new_chart(services: int) -> tuple[Any, Any]:
    # The Figure class on its own needs no GUI backend (no matplotlib.use) and leaves
    # pyplot's global state alone.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 1.3 + 0.62 * services), layout="constrained")
    return figure, figure.add_subplot()


def label_bars(axes: Any, bars: Any, labels: Sequence[str]) -> None:
    # A white box keeps a label readable where it crosses a limit mark.
    axes.bar_label(
        bars,
        labels=list(labels),
        padding=3,
        fontsize=8,
        color="#1b1f24",
        zorder=4,
        bbox={"facecolor": "#ffffff", "edgecolor": "none", "pad": 0.6},
    )


def mark_limits(axes: Any, limits: Sequence[float | None], span: float, label: str) -> list[Any]:
    """A short vertical rule at each service's limit, across that service's bars; its legend handle."""
    marked = [(row, limit) for row, limit in enumerate(limits) if limit is not None]
    if not marked:
        return []
    rule = axes.vlines(
        [limit for _, limit in marked],
        [row - span for row, _ in marked],
        [row + span for row, _ in marked],
        colors=LIMIT,
        linewidth=2.2,
        label=label,
        zorder=3,
    )
    return [rule]


def finish_chart(figure: Any, axes: Any, services: Sequence[str], unit: str, handles: Sequence[Any]) -> None:
    axes.set_yticks(range(len(services)), labels=list(services))
    axes.invert_yaxis()  # the first service on top, as in the table
    axes.set_xlabel(unit)
    axes.margins(x=0.22)  # room for the value labels right of the longest bar
    axes.set_xlim(left=0)
    axes.grid(axis="x", color="#e3e6ea", linewidth=0.8)
    axes.set_axisbelow(True)
    figure.legend(
        handles=list(handles), loc="outside upper center", ncols=len(handles), frameon=False, fontsize=9
    )


def svg_of(figure: Any, name: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata=SVG_METADATA)
    return inline_svg(buffer.getvalue(), f"chart-{name}")


_ID = re.compile(r'\bid="([^"]+)"')


def inline_svg(document: str, prefix: str) -> str:
    """A standalone SVG document made fit to sit in an HTML page beside another one.

    Drops the XML prolog and doctype, and the namespace declarations (HTML's parser puts
    <svg> in the SVG namespace itself, so the page names no URL at all); prefixes every id,
    and every reference to one, so that two charts' ids (``figure_1``, clip paths) never clash.
    """
    svg = document[document.index("<svg") :]
    svg = re.sub(r'\s+xmlns(?::\w+)?="[^"]*"', "", svg, count=2)
    ids = set(_ID.findall(svg))
    if ids:
        names = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
        svg = re.sub(rf'\bid="({names})"', rf'id="{prefix}-\1"', svg)
        svg = re.sub(rf"url\(#({names})\)", rf"url(#{prefix}-\1)", svg)
        svg = re.sub(rf'href="#({names})"', rf'href="#{prefix}-\1"', svg)
    return svg.strip()
