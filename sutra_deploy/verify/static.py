"""What the rendered manifests say about the metrics only a cluster can show.

No failed request during a rollout, how fast an autoscaler adds pods, how full the nodes are:
one machine cannot show these, and one read of a cluster cannot show the first two either. What
both can check is whether the manifests make them possible, and both check it here, the same
way: which Deployments roll out with maxUnavailable 0 behind readiness probes, which have
preStop hooks and PodDisruptionBudgets, and each autoscaler's CPU target and scale-up window.

The rows differ only in status: the local verify says `needs a cluster` (and gives the HPA
scale-up as an `estimate` when it measured pulls and startup); the cluster verify says
`not measured`, and fails a Deployment that may take a ready pod away first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..k8s.manifests import hpa_by_deployment, stateful_names
from ..k8s.policy import selects
from ..k8s.zero_downtime import RolloutRecord, read_records
from .model import ESTIMATE, FAIL, NEEDS_CLUSTER, NOT_MEASURED, PASS, Metric
from .pods import cpu_utilization
from .settings import VerifySettings

ZERO_DOWNTIME = "zero-downtime deployments"
ZERO_DOWNTIME_TARGET = "no failed request during a rollout"
EFFICIENCY = "cluster efficiency"
EFFICIENCY_TARGET = "> 70 %"  # the plan's; nothing gates on it, so it is no setting
SCALE_UP = "HPA scale-up"


# --- the checks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RolloutChecks:
    """What the Deployments (outside the storage tier) promise a rollout."""

    safe: tuple[str, ...]  # RollingUpdate, maxUnavailable 0, a readiness probe on every container
    unsafe: tuple[str, ...]  # may take a ready pod away before its replacement is ready
    pre_stop: tuple[str, ...]  # a preStop hook on every container
    guarded: tuple[str, ...]  # selected by a PodDisruptionBudget
    stateful: tuple[str, ...]  # one writer on its volume: a gap on each update by design

    def summary(self) -> str:
        checked = (
            f"maxUnavailable 0 with readiness probes: {', '.join(self.safe) or 'none'}; "
            f"preStop: {', '.join(self.pre_stop) or 'none'}; PDBs: {', '.join(self.guarded) or 'none'}"
        )
        if self.stateful:
            writers = ", ".join(self.stateful)
            checked += f"; {writers}: one writer on its volume, a gap on each update by design"
        return checked

    def unsafe_note(self) -> str:
        return f"cannot be zero-downtime: {', '.join(self.unsafe)} may take a ready pod away first"


def rollout_checks(objects: Sequence[dict]) -> RolloutChecks:
    stateful = stateful_names(objects)
    pdbs = [o for o in objects if o.get("kind") == "PodDisruptionBudget"]
    safe, unsafe, pre_stop, guarded = [], [], [], []
    for deployment in (o for o in objects if o.get("kind") == "Deployment"):
        name, spec = deployment["metadata"]["name"], deployment["spec"]
        if name in stateful:
            continue
        containers = spec["template"]["spec"]["containers"]
        strategy = spec.get("strategy") or {}
        # Kubernetes' defaults: RollingUpdate, maxUnavailable 25 %.
        unavailable = str((strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%"))
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        if rolling and unavailable in ("0", "0%") and all(c.get("readinessProbe") for c in containers):
            safe.append(name)
        else:
            unsafe.append(name)
        if all((c.get("lifecycle") or {}).get("preStop") for c in containers):
            pre_stop.append(name)
        labels = (spec["template"].get("metadata") or {}).get("labels") or {}
        if any(selects((p.get("spec") or {}).get("selector"), labels) for p in pdbs):
            guarded.append(name)
    return RolloutChecks(tuple(safe), tuple(unsafe), tuple(pre_stop), tuple(guarded), tuple(sorted(stateful)))


@dataclass(frozen=True)
class ScaleUpCheck:
    """One autoscaler as the manifests give it."""

    deployment: str
    cpu_target: int | None  # averageUtilization of its cpu Resource metric
    window_seconds: int  # behavior.scaleUp.stabilizationWindowSeconds (Kubernetes' default: 0)


def scale_up_checks(objects: Sequence[dict]) -> list[ScaleUpCheck]:
    checks = []
    for deployment, hpa in sorted(hpa_by_deployment(objects).items()):
        spec = hpa["spec"]
        window = ((spec.get("behavior") or {}).get("scaleUp") or {}).get("stabilizationWindowSeconds", 0)
        checks.append(ScaleUpCheck(deployment, cpu_utilization(spec.get("metrics"), "target"), int(window)))
    return checks


def scale_up_summary(checks: Sequence[ScaleUpCheck], limit: float) -> str:
    """Each autoscaler's target and window; a window as long as the plan's limit is named."""
    parts = "; ".join(f"{c.deployment} CPU {c.cpu_target} %, window {c.window_seconds} s" for c in checks)
    slow = [c.deployment for c in checks if c.window_seconds >= limit]
    if slow:
        parts += f"; a scale-up window of {limit:g} s or more alone keeps {', '.join(slow)} from meeting it"
    return parts or "no HPA"


# --- the cluster's rows -------------------------------------------------------------------


def zero_downtime_metric(objects: Sequence[dict], live: Sequence[dict] | None = None) -> Metric:
    """From what the last deploy measured during each rollout (:mod:`..k8s.zero_downtime`,
    recorded on the ``live`` Deployments); the manifests' checks where nothing was measured.

    A pass needs a record for every Deployment outside the storage tier that describes the
    revision it runs now: with one missing, what was measured is shown and the row stays
    `not measured`. A record that saw a failed request, or fewer available replicas than the
    rollout allows, fails."""
    checks = rollout_checks(objects)
    if checks.unsafe:
        how = f"{checks.unsafe_note()}; {checks.summary()}"
        return Metric(ZERO_DOWNTIME, ZERO_DOWNTIME_TARGET, len(checks.unsafe), "Deployments", FAIL, how)
    rolling = [d for d in (live or []) if (d.get("metadata") or {}).get("name") in checks.safe]
    records = read_records(rolling)
    measured = {name: r for name, r in records.items() if isinstance(r, RolloutRecord)}
    if not measured:
        how = f"needs requests during a rollout; checked in the manifests: {checks.summary()}"
        return Metric(ZERO_DOWNTIME, ZERO_DOWNTIME_TARGET, None, "", NOT_MEASURED, how)
    failed = sum(r.failed for r in measured.values())
    sent = sum(r.requests for r in measured.values())
    parts = [f"{name} {r.summary()}" for name, r in sorted(measured.items())]
    missing = [f"{name}: {why}" for name, why in sorted(records.items()) if isinstance(why, str)]
    missing += [f"{name}: not running" for name in checks.safe if name not in records]
    bad = [name for name, r in measured.items() if not r.ok]
    if bad:
        status = FAIL
    elif missing:
        status = NOT_MEASURED
        parts.append("not measured: " + "; ".join(missing))
    else:
        status = PASS
    how = f"measured by the last deploy during each rollout: {'; '.join(parts)}"
    return Metric(ZERO_DOWNTIME, ZERO_DOWNTIME_TARGET, failed, f"failed of {sent} requests", status, how)


def scale_up_metric(objects: Sequence[dict], settings: VerifySettings) -> Metric:
    limit = settings.scale_up_seconds
    how = "needs load that makes an autoscaler add pods; checked in the manifests: " + scale_up_summary(
        scale_up_checks(objects), limit
    )
    return Metric(SCALE_UP, f"< {limit:g} s", None, "s", NOT_MEASURED, how)


# --- the local verify's rows --------------------------------------------------------------


def needs_a_cluster(
    settings: VerifySettings,
    objects: Sequence[dict],
    *,
    pulls: Sequence[float],
    startups: Sequence[float],
) -> list[Metric]:
    """Zero-downtime, cluster efficiency and HPA scale-up, from one machine: what the manifests
    say, and the scale-up estimated from the slowest ``pulls`` and ``startups`` measured here."""
    rollouts = rollout_checks(objects)
    scale_ups = scale_up_checks(objects)
    zero_how = "checked statically in the manifests: " + rollouts.summary()
    if rollouts.unsafe:
        zero_how += f"; {rollouts.unsafe_note()}"
    targets = ", ".join(f"{c.deployment} {'?' if c.cpu_target is None else c.cpu_target}%" for c in scale_ups)
    metrics = [
        Metric(ZERO_DOWNTIME, ZERO_DOWNTIME_TARGET, None, "", NEEDS_CLUSTER, zero_how),
        Metric(
            EFFICIENCY,
            EFFICIENCY_TARGET,
            None,
            "",
            NEEDS_CLUSTER,
            "needs nodes' allocatable and real usage; checked statically: HPA CPU targets on "
            + (targets or "none"),
        ),
    ]
    limit = settings.scale_up_seconds
    checked = "; checked in the manifests: " + scale_up_summary(scale_ups, limit)
    if pulls and startups:
        seconds = max(pulls) + max(startups) + settings.hpa_sync_seconds
        how = (
            "estimate, not a measurement: slowest pull + slowest startup measured here + the HPA's "
            f"{settings.hpa_sync_seconds:g} s sync period"
        )
        metrics.append(Metric(SCALE_UP, f"< {limit:g} s", round(seconds, 1), "s", ESTIMATE, how + checked))
    else:
        how = "needs a cluster; no pull or startup measured here to estimate from"
        metrics.append(Metric(SCALE_UP, f"< {limit:g} s", None, "s", NEEDS_CLUSTER, how + checked))
    return metrics
