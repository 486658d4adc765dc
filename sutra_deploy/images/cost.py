"""The plan's cost comparison, computed from measured sizes instead of asserted.

The rates are settings; their defaults are what the plan's own figures imply:
- pull bandwidth: 1604 MB in "5 minutes" -> 5.35 MB/s (42.8 Mbit/s);
- transfer: "$144/month" for 1000 pulls of 1.604 GB -> $0.0898 per GB;
- registry storage: "$15/month" for 1.604 GB -> $9.35 per GB-month (far above list prices:
  the plan's own number, kept so the comparison is like for like).
Where layers are shared, a registry stores them once and a fresh node pulls them once, so
the measured side uses the images' unique bytes. The plan's side has no layer data: its
totals are used as they are.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from tabulate import tabulate

from ..core.errors import SutraError
from ..core.settings import PLAN_COST_RATES
from ..core.units import GB, MB, mb


@dataclass(frozen=True)
class CostRates:
    pull_megabytes_per_second: float
    transfer_dollars_per_gb: float
    pulls_per_month: int
    storage_dollars_per_gb_month: float

    @classmethod
    def from_settings(cls, settings: Mapping) -> CostRates:
        """Rates from `sutra.cost`, the plan's for those not set; a bad one is one clear error."""
        unknown = sorted(set(settings or {}) - set(PLAN_COST_RATES))
        if unknown:
            raise SutraError(f"unknown setting sutra.cost.{unknown[0]}; known: {', '.join(PLAN_COST_RATES)}")
        merged = {**PLAN_COST_RATES, **(settings or {})}
        return cls(**{key: _rate(key, merged[key]) for key in PLAN_COST_RATES})


def _rate(key: str, value: object) -> float | int:
    kind = type(PLAN_COST_RATES[key])
    try:
        parsed = None if isinstance(value, bool) else kind(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        parsed = None
    # A pull speed of 0 never finishes; free transfer or storage is a rate like any other.
    positive = key == "pull_megabytes_per_second"
    if parsed is None or not math.isfinite(parsed) or parsed < 0 or (positive and parsed == 0):
        wanted = "a number greater than 0" if positive else "a number of at least 0"
        raise SutraError(f"sutra.cost.{key} must be {wanted}, got {value!r}")
    return parsed


@dataclass(frozen=True)
class Costs:
    stored_bytes: int  # what a registry stores and a fresh node pulls
    pull_seconds: float
    transfer_dollars_per_month: float
    storage_dollars_per_month: float

    @property
    def total_dollars_per_month(self) -> float:
        return self.transfer_dollars_per_month + self.storage_dollars_per_month


def costs(stored_bytes: int, rates: CostRates) -> Costs:
    gigabytes = stored_bytes / GB
    return Costs(
        stored_bytes=stored_bytes,
        pull_seconds=stored_bytes / MB / rates.pull_megabytes_per_second,
        transfer_dollars_per_month=gigabytes * rates.pulls_per_month * rates.transfer_dollars_per_gb,
        storage_dollars_per_month=gigabytes * rates.storage_dollars_per_gb_month,
    )


@dataclass(frozen=True)
class CostComparison:
    rates: CostRates
    before: Costs
    after: Costs
    baseline: str

    def as_json(self) -> dict:
        def side(c: Costs) -> dict:
            return {**asdict(c), "total_dollars_per_month": round(c.total_dollars_per_month, 2)}

        return {
            "rates": asdict(self.rates),
            "baseline": self.baseline,
            "before": side(self.before),
            "after": side(self.after),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_json(), indent=2)

    def table(self) -> str:
        def change(old: float, new: float) -> str:
            return f"{100 * (new - old) / old:+.0f}%" if old else "-"

        b, a = self.before, self.after
        rows = [
            [
                "Image bytes stored and pulled",
                mb(b.stored_bytes),
                mb(a.stored_bytes),
                change(b.stored_bytes, a.stored_bytes),
            ],
            [
                "Pull time",
                _duration(b.pull_seconds),
                _duration(a.pull_seconds),
                change(b.pull_seconds, a.pull_seconds),
            ],
            [
                f"Transfer ({self.rates.pulls_per_month} pulls/month)",
                f"${b.transfer_dollars_per_month:.0f}/month",
                f"${a.transfer_dollars_per_month:.0f}/month",
                change(b.transfer_dollars_per_month, a.transfer_dollars_per_month),
            ],
            [
                "Registry storage",
                f"${b.storage_dollars_per_month:.0f}/month",
                f"${a.storage_dollars_per_month:.0f}/month",
                change(b.storage_dollars_per_month, a.storage_dollars_per_month),
            ],
            [
                "Total",
                f"${b.total_dollars_per_month:.0f}/month",
                f"${a.total_dollars_per_month:.0f}/month",
                change(b.total_dollars_per_month, a.total_dollars_per_month),
            ],
        ]
        r = self.rates
        note = (
            f"Rates: {r.pull_megabytes_per_second} MB/s pull, ${r.transfer_dollars_per_gb}/GB transfer, "
            f"${r.storage_dollars_per_gb_month}/GB-month storage (set with sutra.cost.*)."
        )
        headers = ["", f"Before ({self.baseline})", "After (measured)", "Change"]
        return tabulate(rows, headers=headers, colalign=("left", "right", "right", "right")) + "\n\n" + note


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"
