"""`sutra.verify`: the plan's targets and the load's size, one frozen model for every verify.

The local verify, the cluster verify and the deploy's last step all read the same settings, so
one `invoke.yaml` change under `sutra.verify` moves every one of them. Keys not given take the
defaults of every setting (`sutra_deploy.core.settings.DEFAULTS`), the one home of those numbers. Each
value is checked once, here, with one line naming the key (exit 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.errors import SutraError
from ..core.inputs import number
from ..core.settings import DEFAULTS
from ..k8s.quantities import memory_bytes

PREFIX = "sutra.verify"


@dataclass(frozen=True)
class VerifySettings:
    """The plan's success-metric targets and the load's size (`sutra.verify.*`)."""

    requests: int
    concurrency: int
    pull_seconds: float  # plan: image pull < 3 minutes
    startup_seconds: float  # plan: pod startup < 30 s
    scale_up_seconds: float  # plan: HPA scale-up < 60 s
    hpa_sync_seconds: float  # the HPA controller's sync period, for the scale-up estimate
    memory_targets: Mapping[str, int]  # service -> bytes; every service also stays under its limit
    cpu_utilization: tuple[float, float]  # plan: 50-80 % of what is requested
    cpu_gate: bool  # CPU utilisation fails the run only when asked
    limits_from: str  # local: the environment whose manifests give the limits

    @classmethod
    def from_settings(
        cls, raw: Mapping[str, Any] | None = None, *, requests: Any = None, concurrency: Any = None
    ) -> VerifySettings:
        """``raw`` is `sutra.verify` (its defaults for keys not set); ``requests`` and
        ``concurrency`` are the local verify's flags, which beat the settings."""
        defaults = DEFAULTS["sutra"]["verify"]
        merged = {**defaults, **(raw or {})}
        return cls(
            requests=_flag_or_setting(requests, merged, "requests"),
            concurrency=_flag_or_setting(concurrency, merged, "concurrency"),
            pull_seconds=number(merged["pull_seconds"], f"{PREFIX}.pull_seconds"),
            startup_seconds=number(merged["startup_seconds"], f"{PREFIX}.startup_seconds"),
            scale_up_seconds=number(merged["scale_up_seconds"], f"{PREFIX}.scale_up_seconds"),
            hpa_sync_seconds=number(merged["hpa_sync_seconds"], f"{PREFIX}.hpa_sync_seconds"),
            memory_targets=_memory_targets(merged["memory_targets"]),
            cpu_utilization=_percent_range(merged["cpu_utilization"], f"{PREFIX}.cpu_utilization"),
            cpu_gate=_switch(merged["cpu_gate"], f"{PREFIX}.cpu_gate"),
            limits_from=str(merged["limits_from"] or defaults["limits_from"]),
        )


def _flag_or_setting(flag: Any, merged: Mapping[str, Any], key: str) -> int:
    if flag:
        return number(flag, f"--{key}", int)
    return number(merged[key], f"{PREFIX}.{key}", int)


def _memory_targets(raw: Any) -> dict[str, int]:
    """service -> bytes; null means no plan target (each service is still held to its limit)."""
    name = f"{PREFIX}.memory_targets"
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SutraError(f"{name} must map service names to memory quantities (512Mi), got {raw!r}")
    targets = {}
    for service, value in raw.items():
        try:
            size = memory_bytes(value) if not isinstance(value, bool) else 0
        except SutraError:
            size = 0
        if size <= 0:
            raise SutraError(f"{name}.{service} must be a memory quantity such as 512Mi, got {value!r}")
        targets[str(service)] = size
    return targets


def _percent_range(raw: Any, name: str) -> tuple[float, float]:
    if isinstance(raw, str | bytes | Mapping) or not hasattr(raw, "__len__") or len(raw) != 2:
        raise SutraError(f"{name} must be two percentages [low, high], got {raw!r}")
    low, high = (number(value, name) for value in raw)
    if low > high:
        raise SutraError(f"{name} must be two percentages [low, high] with low <= high, got {raw!r}")
    return low, high


def _switch(raw: Any, name: str) -> bool:
    if not isinstance(raw, bool):
        raise SutraError(f"{name} must be true or false, got {raw!r}")
    return raw
