import json
import re

import pytest

from sutra_deploy.core.errors import SutraError
from sutra_deploy.core.settings import (
    PLAN_BEFORE_MB,
    PLAN_COST_RATES,
    PLAN_PULL_SECONDS,
    PLAN_STORAGE_DOLLARS_PER_MONTH,
    PLAN_TRANSFER_DOLLARS_PER_MONTH,
)
from sutra_deploy.core.units import MB
from sutra_deploy.images.cost import CostRates, costs
from sutra_deploy.images.sizes import compare

from .test_sizes import STACK, at_targets, report_with


def test_the_default_rates_reproduce_the_plans_own_figures():
    before = costs(PLAN_BEFORE_MB * MB, CostRates.from_settings({}))
    assert before.pull_seconds == pytest.approx(PLAN_PULL_SECONDS, rel=0.01)
    assert before.transfer_dollars_per_month == pytest.approx(PLAN_TRANSFER_DOLLARS_PER_MONTH, rel=0.01)
    assert before.storage_dollars_per_month == pytest.approx(PLAN_STORAGE_DOLLARS_PER_MONTH, rel=0.01)


def test_costs_are_proportional_to_the_bytes():
    rates = CostRates.from_settings({})
    one, three = costs(100 * MB, rates), costs(300 * MB, rates)
    assert three.pull_seconds == pytest.approx(3 * one.pull_seconds)
    assert three.total_dollars_per_month == pytest.approx(3 * one.total_dollars_per_month)
    assert costs(0, rates).total_dollars_per_month == 0


def test_rates_are_settings():
    rates = CostRates.from_settings({"pulls_per_month": 10, "transfer_dollars_per_gb": 0.1})
    assert costs(2000 * MB, rates).transfer_dollars_per_month == pytest.approx(2.0)
    assert rates.storage_dollars_per_gb_month == PLAN_COST_RATES["storage_dollars_per_gb_month"]
    assert (
        CostRates.from_settings({"pulls_per_month": "20"}).pulls_per_month == 20
    )  # from INVOKE_SUTRA_COST_*
    assert CostRates.from_settings({"transfer_dollars_per_gb": 0}).transfer_dollars_per_gb == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"pull_megabytes_per_second": 0},
            "sutra.cost.pull_megabytes_per_second must be a number greater than 0",
        ),
        (
            {"pulls_per_month": "lots"},
            "sutra.cost.pulls_per_month must be a number of at least 0, got 'lots'",
        ),
        ({"storage_dollars_per_gb_month": -1}, "sutra.cost.storage_dollars_per_gb_month must be"),
        ({"transfer_dollars_per_gb": True}, "sutra.cost.transfer_dollars_per_gb must be"),
        (
            {"pull_per_month": 5},
            "unknown setting sutra.cost.pull_per_month; known: pull_megabytes_per_second",
        ),
    ],
)
def test_a_bad_rate_is_one_clear_error(settings, message):
    with pytest.raises(SutraError, match=re.escape(message)) as caught:
        CostRates.from_settings(settings)
    assert caught.value.exit_code == 2


def test_before_is_the_baselines_total_and_after_the_unique_bytes():
    report = report_with(at_targets())
    rates = CostRates.from_settings({})
    comparison = compare(report, rates)
    assert comparison.before == costs(sum(s.budget.old_bytes for s in STACK.services), rates)
    assert comparison.after == costs(report.unique_bytes, rates)
    assert comparison.baseline == "plan"
    v1 = report_with({**at_targets(), **at_targets(version="v1")}, baseline="v1")
    assert compare(v1, rates).baseline == "v1"
    data = json.loads(comparison.to_json())
    assert list(data) == ["rates", "baseline", "before", "after"]
    assert data["after"]["stored_bytes"] == report.unique_bytes
    table = comparison.table()
    assert "Before (plan)" in table and "After (measured)" in table and "sutra.cost.*" in table
