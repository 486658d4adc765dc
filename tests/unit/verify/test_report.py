import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sutra_deploy.core.errors import ReportFolderError
from sutra_deploy.core.source import PROJECT_DIR
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
from sutra_deploy.verify.report import (
    DATA,
    PAGE,
    STEP_SUMMARY_ENV,
    append_step_summary,
    check_report_folder,
    status_class,
    write_report,
)

MB = 10**6
MIB = 2**20


def sample_report() -> VerifyReport:
    report = VerifyReport("local")
    report.add(
        [
            Metric("image size: total", "≤ 751 MB", 702.4, "MB", PASS, "docker image inspect"),
            Metric("image size: sutra-api", "≤ 150 MB", 162.0, "MB", FAIL, "docker image inspect"),
            Metric("memory: sutra-api", "< 1 Gi", 183, "MiB", PASS, "peak working set, 5 samples/s"),
            Metric("memory: storage-server", "< 1 Gi", None, "MiB", NOT_MEASURED, "container restarted"),
            Metric("CPU: sutra-hybrid", "-", 37.5, "%", INFO, "cpu.stat over the load"),
            Metric("pull time", "< 30 s", 21.3, "s", ESTIMATE, "unique bytes / throughput"),
            Metric("HPA scale-out", "3-50 replicas", None, "", NEEDS_CLUSTER, "manifests validated"),
            Metric("<script>alert(1)</script>", "a & b", "x<y", "", INFO, 'say "hi" <b>'),
        ]
    )
    report.sizes = [sizes("sutra-api", 703, 162, 150, 200), sizes("sutra-control", 147, None, 100, 120)]
    report.memory = [memory("sutra-api", 183, 1024, 240), memory("sutra-client", 12, 256, None)]
    return report


def sizes(service: str, old: int, measured: int | None, target: int, limit: int) -> dict:
    """One service's image sizes in MB, as bytes: the shape `report.sizes` holds."""
    return {
        "service": service,
        "old_bytes": old * MB,
        "size_bytes": None if measured is None else measured * MB,
        "target_bytes": target * MB,
        "limit_bytes": limit * MB,
    }


def memory(service: str, peak: int | None, limit: int, high_water: int | None) -> dict:
    """One service's memory in MiB, as bytes: the shape `report.memory` holds."""
    return {
        "service": service,
        "peak_bytes": None if peak is None else peak * MIB,
        "limit_bytes": limit * MIB,
        "max_usage_bytes": None if high_water is None else high_water * MIB,
    }


class PageParser(HTMLParser):
    """The metric table's rows (cell texts), every element's attributes, and the charts' contents."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self.status_classes: list[str] = []
        self.attributes: list[tuple[str, str, str | None]] = []
        self.tags: list[str] = []
        self.figures: dict[str, list[str]] = {}  # chart id -> the tags and text inside it
        self._in_body = False
        self._cell: list[str] | None = None
        self._figure: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [(tag, name, value) for name, value in attrs]
        attrs = dict(attrs)
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "td" and self._in_body:
            self._cell = []
        elif tag == "span" and self._in_body and "status" in (attrs.get("class") or "").split():
            self.status_classes.append(attrs["class"])
        if tag == "figure":
            self._figure = attrs.get("id")
            self.figures[self._figure] = []
        elif self._figure is not None:
            self.figures[self._figure].append(f"<{tag}>")

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "figure":
            self._figure = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._figure is not None:
            self.figures[self._figure].append(data)


def parse(page: Path) -> PageParser:
    parser = PageParser()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    return parser


@pytest.fixture
def written(tmp_path):
    report = sample_report()
    return report, write_report(report, tmp_path / "nested" / "report")


def test_writes_the_page_and_the_data_into_a_new_directory(written, tmp_path):
    _, page = written
    assert page == tmp_path / "nested" / "report" / PAGE
    assert sorted(p.name for p in page.parent.iterdir()) == sorted([PAGE, DATA])


def test_the_page_has_one_row_per_metric_with_its_status_styled(written):
    report, page = written
    parsed = parse(page)
    assert parsed.rows == [[m.name, m.target, m.shown_value, m.status, m.how] for m in report.metrics]
    assert parsed.status_classes == [f"status {status_class(m.status)}" for m in report.metrics]
    css = page.read_text()
    for metric in report.metrics:
        assert f".{status_class(metric.status)} {{" in css  # every status has its style


def test_text_is_escaped_in_the_table_and_the_charts(tmp_path):
    report = sample_report()
    report.sizes = [sizes("<i>a&b $x$</i>", 703, 162, 150, 200)]
    report.memory = [memory("<i>a&b $x$</i>", 183, 1024, None)]
    text = write_report(report, tmp_path).read_text()
    assert "<script" not in text and "<i>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "a &amp; b" in text and "say &quot;hi&quot; &lt;b&gt;" in text
    assert text.count("&lt;i&gt;a&amp;b $x$&lt;/i&gt;") == 2  # a tick label in each chart, as typed


def test_the_page_is_self_contained(written):
    _, page = written
    text = page.read_text()
    parsed = parse(page)
    assert "http://" not in text and "https://" not in text
    references = [
        (tag, name, value) for tag, name, value in parsed.attributes if name in {"src", "href", "xlink:href"}
    ]
    assert all((value or "").startswith("#") for _, _, value in references), references
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(parsed.tags)
    assert "@import" not in text and "@font-face" not in text
    assert all(url.startswith("url(#") for url in re.findall(r"url\([^)]*\)", text))


def test_both_charts_are_inline_svg_with_units_and_legends(written):
    _, page = written
    figures = parse(page).figures
    sizes, memory = "".join(figures["chart-sizes"]), "".join(figures["chart-memory"])
    assert "<svg>" in sizes and "<svg>" in memory
    for label in ("MB (10⁶ bytes)", "before (plan)", "measured v2", "target (plan)", "hard limit (plan)"):
        assert label in sizes
    assert "162 MB" in sizes and "not measured" in sizes  # sutra-control was not built
    for label in ("MiB (2²⁰ bytes)", "peak working set", "cgroup high-water mark", "memory limit"):
        assert label in memory
    assert "183 MiB (18% of limit)" in memory
    assert "sutra-api" in sizes and "sutra-client" in memory


def test_ids_are_unique_across_both_charts(written):
    _, page = written
    ids = [value for _, name, value in parse(page).attributes if name == "id"]
    assert len(ids) == len(set(ids))
    assert "chart-sizes" in ids and "chart-memory" in ids


@pytest.mark.parametrize(
    ("field", "entries", "empty_chart", "drawn_chart"),
    [
        ("memory", [], "chart-memory", "chart-sizes"),
        ("memory", [memory("sutra-api", None, 1024, None)], "chart-memory", "chart-sizes"),
        ("sizes", [], "chart-sizes", "chart-memory"),
        ("sizes", [sizes("sutra-api", 703, None, 150, 200)], "chart-sizes", "chart-memory"),
    ],
)
def test_a_chart_without_data_says_so(tmp_path, field, entries, empty_chart, drawn_chart):
    report = sample_report()
    setattr(report, field, entries)
    figures = parse(write_report(report, tmp_path)).figures
    empty = "".join(figures[empty_chart])
    assert "<svg>" not in empty and "No " in empty and "in this report" in empty
    assert "<svg>" in "".join(figures[drawn_chart])


def test_verify_json_round_trips(written):
    report, page = written
    data = json.loads((page.parent / DATA).read_text())
    assert data == {
        **report.as_json(),
        "charts": {"sizes": [dict(s) for s in report.sizes], "memory": [dict(m) for m in report.memory]},
    }
    assert [Metric(**m) for m in data["metrics"]] == report.metrics


def test_two_writes_are_byte_identical(tmp_path):
    first = write_report(sample_report(), tmp_path / "a").parent
    second = write_report(sample_report(), tmp_path / "b").parent
    for name in (PAGE, DATA):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_another_process_writes_the_same_bytes(tmp_path):
    """Ids come from a fixed salt and there is no date: a second `inv verify` run agrees."""
    here = write_report(sample_report(), tmp_path / "here").parent
    script = (
        "import sys; from pathlib import Path; "
        "from tests.unit.verify.test_report import sample_report; "
        "from sutra_deploy.verify.report import write_report; "
        "write_report(sample_report(), Path(sys.argv[1]))"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "there")],
        cwd=PROJECT_DIR,
        check=True,
        timeout=120,
        env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin", "MPLCONFIGDIR": str(tmp_path / "mpl")},
    )
    for name in (PAGE, DATA):
        assert (here / name).read_bytes() == (tmp_path / "there" / name).read_bytes()


def test_step_summary_is_appended_when_github_names_one(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("### earlier step\n\n")
    monkeypatch.setenv(STEP_SUMMARY_ENV, str(summary))
    report = sample_report()
    assert append_step_summary(report) == summary
    append_step_summary(report)
    text = summary.read_text()
    assert text.startswith("### earlier step\n\n")
    assert text.count(report.markdown()) == 2


def test_no_step_summary_outside_github(tmp_path, monkeypatch):
    monkeypatch.delenv(STEP_SUMMARY_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert append_step_summary(sample_report()) is None
    assert list(tmp_path.iterdir()) == []


def test_matplotlib_loads_only_when_a_page_is_written():
    code = "import sys, sutra_deploy.verify.report; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


# --- the report folder: never overwrite, never write through a link ---------------------------


def test_a_link_planted_after_the_check_is_refused_and_nothing_is_written(tmp_path):
    folder = tmp_path / "report"
    assert check_report_folder(str(folder)) == folder
    victim = tmp_path / "notes.txt"
    victim.write_text("the user's own file\n")
    folder.mkdir()
    (folder / PAGE).symlink_to(victim)  # planted between the check and the write

    with pytest.raises(ReportFolderError, match="nothing was written"):
        write_report(sample_report(), folder)
    assert victim.read_text() == "the user's own file\n"
    assert sorted(p.name for p in folder.iterdir()) == [PAGE], "verify.json, written first, is taken back"


@pytest.mark.parametrize("name", [PAGE, DATA])
def test_a_folder_holding_a_report_is_refused_before_any_work(tmp_path, name):
    (tmp_path / name).write_text("last week\n")
    with pytest.raises(ReportFolderError, match=f"already holds {re.escape(name)}"):
        check_report_folder(str(tmp_path))
    assert (tmp_path / name).read_text() == "last week\n"


def test_a_folder_that_does_not_exist_yet_is_fine_and_is_not_made_by_the_check(tmp_path):
    folder = tmp_path / "a" / "b"
    assert check_report_folder(str(folder)) == folder
    assert list(tmp_path.iterdir()) == [], "the check leaves no probe and makes no folder"


def test_an_unwritable_step_summary_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(STEP_SUMMARY_ENV, str(tmp_path / "no-such-folder" / "summary.md"))
    with pytest.raises(ReportFolderError, match="cannot append"):
        append_step_summary(sample_report())


def test_the_step_summary_shows_every_value_as_text():
    report = VerifyReport("local")
    how = "line one\nline two | *bold*"
    report.add([Metric("health: a|b", "`x`", "<script>alert(1)</script>", "", FAIL, how)])
    markdown = report.markdown()
    table = markdown.split("\n\n", 1)[1].splitlines()
    assert len(table) == 3, "a newline in a value does not end the table"
    cells = re.split(r"(?<!\\)\|", table[2])
    assert len(cells) == len(VerifyReport.HEADERS) + 2, "an escaped | does not split a cell"
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    assert r"a\|b" in markdown and r"\*bold\*" in markdown and r"\`x\`" in markdown
