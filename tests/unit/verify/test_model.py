import json

import pytest

from sutra_deploy.core.errors import VerifyFailed
from sutra_deploy.verify.model import FAIL, INFO, NOT_MEASURED, PASS, STATUSES, Metric, VerifyReport, gate


def test_gate_passes_fails_or_says_not_measured():
    assert gate("m", "< 3", 2.0, "s", True, "timed").status == PASS
    assert gate("m", "< 3", 4.0, "s", False, "timed").status == FAIL
    unmeasured = gate("m", "< 3", None, "s", None, "no registry")
    assert (unmeasured.status, unmeasured.value, unmeasured.how) == (NOT_MEASURED, None, "no registry")


def test_an_unknown_status_is_refused():
    with pytest.raises(ValueError, match="unknown metric status"):
        Metric("m", "t", 1, "", "maybe", "how")


def test_the_json_shape_is_the_documented_one():
    report = VerifyReport("local", [Metric("load: errors", "0", 0, "", PASS, "600 requests")])
    data = json.loads(report.to_json())
    assert data == {
        "ok": True,
        "env": "local",
        "metrics": [
            {
                "name": "load: errors",
                "target": "0",
                "value": 0,
                "unit": "",
                "status": "pass",
                "how": "600 requests",
            }
        ],
    }


def test_only_failed_metrics_fail_the_run_and_each_is_named():
    report = VerifyReport(
        "local",
        [
            Metric("cpu: sutra-api", "50-80 %", 12.5, "%", INFO, "no gate"),
            Metric("memory: sutra-api", "< 512Mi", 600.0, "MiB", FAIL, "peak"),
            Metric("image pull", "< 180 s", None, "s", NOT_MEASURED, "no registry"),
            Metric("restarts", "0", 2, "", FAIL, "inspect"),
        ],
    )
    assert not report.ok
    with pytest.raises(VerifyFailed) as caught:
        report.raise_if_failed()
    assert caught.value.exit_code == 1
    assert str(caught.value) == "verify failed: memory: sutra-api (600.00 MiB); restarts (2)"
    assert VerifyReport("local", [report.metrics[0], report.metrics[2]]).ok


def test_every_status_appears_in_the_table_and_the_markdown():
    report = VerifyReport("local", [Metric(f"m{i}", "t", i, "", s, "how") for i, s in enumerate(STATUSES)])
    for status in STATUSES:
        assert status in report.table()
        assert f"| {status} " in report.markdown()
