import pytest

from sutra_deploy.cost import PLAN_DEFAULTS, CostRates, costs
from sutra_deploy.units import MB


def test_the_plans_implied_rates_reproduce_its_own_figures():
    rates = CostRates.from_settings({})
    before = costs(1604 * MB, rates)
    assert before.pull_seconds == pytest.approx(300, rel=0.01)  # "5 minutes"
    assert before.transfer_dollars_per_month == pytest.approx(144, rel=0.01)
    assert before.storage_dollars_per_month == pytest.approx(15, rel=0.01)
    after = costs(751 * MB, rates)
    assert after.transfer_dollars_per_month == pytest.approx(68, abs=1)  # the plan's "$68/month"
    assert after.pull_seconds == pytest.approx(140, abs=1)  # the plan says "2 minutes"


def test_rates_are_settings():
    rates = CostRates.from_settings({"pulls_per_month": 10, "transfer_dollars_per_gb": 0.1})
    assert costs(2000 * MB, rates).transfer_dollars_per_month == pytest.approx(2.0)
    assert rates.storage_dollars_per_gb_month == PLAN_DEFAULTS["storage_dollars_per_gb_month"]
