"""`inv verify --env staging|production`: the plan's success metrics, read from a live cluster.

Everything here reads: `kubectl get … --output json` (pods, Deployments, autoscalers, nodes),
`kubectl top pods`, and the smoke test through port-forwards. Nothing is changed and nothing
is rolled back: a failed metric is a report, and the caller decides what to do with it.

What one read cannot show (no failed request during a rollout, how fast an autoscaler adds
pods under load) is `not measured`: the row says what it needs and what the manifests were
checked for instead (:mod:`.static`, the same checks as the local verify's), and gives no
figure. Cluster efficiency is an `estimate`, from requests and node allocatable, and is
labelled so. What each object says is read by :mod:`.pods`.

Decisions, so that every row means one thing:
- **restarts** fail only when a pod is crash-looping now: a container waiting in
  CrashLoopBackOff, or terminated between two back-offs after restarting. A pod that
  restarted once and is ready again is listed, not failed: `restartCount` counts the pod's
  whole life, so one old restart would otherwise fail every later verify. An OOM kill fails
  its own row ("no OOMKilled pods") whether or not the pod recovered.
- **pod startup** is PodScheduled -> Ready (each condition's `lastTransitionTime`), worst pod
  per Deployment. A pod that restarted is left out: its Ready time is its last recovery's.
- Pods being deleted (`metadata.deletionTimestamp`, the old pods of a rollout that just
  finished) are left out of startup, memory and image digests; they still count for OOM
  kills and restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..core.errors import CommandFailed, SutraError, failure_reason
from ..core.stack import Stack
from ..core.units import MIB
from ..k8s.environments import Environment
from ..k8s.manifests import hpa_by_deployment, namespace_of, render
from ..k8s.quantities import format_bytes_binary, memory_bytes, millicores
from ..k8s.rollout import check_context, deployments_in_order
from ..tools.kubectl import Kubectl
from .model import ESTIMATE, FAIL, INFO, NOT_MEASURED, PASS, Metric, VerifyReport, gate
from .pods import (
    cpu_utilization,
    crash_looping,
    main_container,
    oom_killed,
    parse_top,
    pod_memory_limit,
    pods_of,
    repo_digest,
    restarts,
    short,
    spec_image,
    startup_seconds,
    terminating,
)
from .settings import VerifySettings
from .smoke import SmokeReport, smoke_through_port_forwards
from .static import EFFICIENCY, EFFICIENCY_TARGET, scale_up_metric, zero_downtime_metric

log = logging.getLogger("sutra")

METRICS_UNAVAILABLE = "metrics API unavailable"


# --- what the cluster says ---------------------------------------------------------------


@dataclass(frozen=True)
class Live:
    """One read of the cluster. A kind that could not be read is absent from ``read`` and its
    reason is in ``unread``."""

    namespace: str
    read: Mapping[str, list[dict]]  # "pods", "deployments", "horizontalpodautoscalers", "nodes"
    unread: Mapping[str, str]
    top: Mapping[str, int] | None  # pod -> working-set bytes; None: `kubectl top` failed
    top_failure: str

    def items(self, kind: str) -> list[dict]:
        return self.read.get(kind, [])

    def by_name(self, kind: str) -> dict[str, dict]:
        return {o["metadata"]["name"]: o for o in self.items(kind)}


def read_cluster(kubectl: Kubectl, namespace: str) -> Live:
    read, unread = {}, {}
    for kind, scope in (
        ("pods", namespace),
        ("deployments", namespace),
        ("horizontalpodautoscalers", namespace),
        ("nodes", None),  # cluster-scoped: needs the right to list nodes
    ):
        try:
            read[kind] = list(kubectl.get_json(kind, scope).get("items") or [])
        except SutraError as error:  # a failed command (Forbidden, …) or an answer that is no JSON
            unread[kind] = f"kubectl get {kind} failed: {_reason(error)}"
    top, top_failure = None, ""
    try:
        top = parse_top(kubectl.top_pods(namespace))
    except SutraError as error:
        reason = _reason(error)
        missing = "metrics api not available" in reason.lower()  # no metrics-server
        top_failure = METRICS_UNAVAILABLE if missing else f"kubectl top pods failed: {reason}"
    return Live(namespace, read, unread, top, top_failure)


def _reason(error: Exception) -> str:
    return failure_reason(error.output) if isinstance(error, CommandFailed) else str(error)


# --- the metrics ----------------------------------------------------------------------------


def health_metric(smoke: SmokeReport | None) -> Metric:
    name, target = "health checks passing", "every check passes"
    if smoke is None:
        return Metric(name, target, None, "checks", NOT_MEASURED, "the smoke test was not run")
    passed = sum(c.ok for c in smoke.checks)
    failed = [f"{c.name}: {c.detail}" for c in smoke.checks if not c.ok]
    how = "smoke through kubectl port-forward: each service's health check, then learn -> query"
    return Metric(
        name,
        target,
        f"{passed}/{len(smoke.checks)}",
        "checks",
        PASS if smoke.ok else FAIL,
        how + (f"; failed: {'; '.join(failed)}" if failed else ""),
    )


def pod_metrics(live: Live) -> list[Metric]:
    """OOM kills and crash loops over every pod of the namespace."""
    oom_name, restart_name = "no OOMKilled pods", "restarts"
    restart_target = "no pod crash-looping"
    if "pods" in live.unread:
        why = live.unread["pods"]
        return [
            Metric(oom_name, "0", None, "", NOT_MEASURED, why),
            Metric(restart_name, restart_target, None, "", NOT_MEASURED, why),
        ]
    pods = live.items("pods")
    if not pods:
        why = f"no pods in namespace {live.namespace}"
        return [
            Metric(oom_name, "0", None, "", NOT_MEASURED, why),
            Metric(restart_name, restart_target, None, "", NOT_MEASURED, why),
        ]
    killed = {p["metadata"]["name"]: oom_killed(p) for p in pods if oom_killed(p)}
    looping = {p["metadata"]["name"]: crash_looping(p) for p in pods if crash_looping(p)}
    restarted = {p["metadata"]["name"]: restarts(p) for p in pods if restarts(p)}
    oom_how = f"lastState/state.terminated.reason of every container in {len(pods)} pods"
    if killed:
        oom_how += ": OOMKilled " + ", ".join(f"{pod} ({', '.join(c)})" for pod, c in killed.items())
    restart_how = f"state.waiting.reason and restartCount of {len(pods)} pods"
    if looping:
        restart_how += "; crash-looping: " + ", ".join(
            f"{pod} ({', '.join(c)})" for pod, c in looping.items()
        )
    if restarted:
        restart_how += "; restarted: " + ", ".join(f"{pod} {n}x" for pod, n in restarted.items())
        restart_how += " (a ready pod that restarted is listed, not failed)"
    return [
        gate(oom_name, "0", len(killed), "", not killed, oom_how),
        gate(restart_name, restart_target, sum(restarted.values()), "", not looping, restart_how),
    ]


def startup_metrics(live: Live, deployments: Sequence[dict], settings: VerifySettings) -> list[Metric]:
    target = f"< {settings.startup_seconds:g} s"
    metrics = []
    for deployment in deployments:
        name = f"pod startup: {deployment['metadata']['name']}"
        if "pods" in live.unread:
            metrics.append(Metric(name, target, None, "s", NOT_MEASURED, live.unread["pods"]))
            continue
        pods = pods_of(deployment, live.items("pods"))
        fresh = [p for p in pods if not restarts(p)]
        timed = [(s, p) for p in fresh if (s := startup_seconds(p)) is not None]
        if not timed:
            why = "no pod found" if not pods else "no pod that has not restarted is Ready"
            metrics.append(Metric(name, target, None, "s", NOT_MEASURED, why))
            continue
        seconds, worst = max(timed, key=lambda t: t[0])
        how = (
            f"PodScheduled -> Ready (lastTransitionTime), worst of {len(timed)}: {worst['metadata']['name']}"
        )
        if len(fresh) < len(pods):
            how += f"; {len(pods) - len(fresh)} restarted pod(s) left out"
        metrics.append(gate(name, target, round(seconds, 1), "s", seconds < settings.startup_seconds, how))
    return metrics


def memory_metrics(
    live: Live, deployments: Sequence[dict], settings: VerifySettings, report: VerifyReport
) -> list[Metric]:
    metrics = []
    for deployment in deployments:
        service = deployment["metadata"]["name"]
        name = f"memory: {service}"
        plan = settings.memory_targets.get(service)
        pods = pods_of(deployment, live.items("pods"))
        limits = [b for p in pods if (b := pod_memory_limit(p)) is not None]
        limit = min(limits) if limits else None
        ceilings = [b for b in (plan, limit) if b is not None]
        ceiling = min(ceilings) if ceilings else None
        target = f"< {format_bytes_binary(ceiling)}" if ceiling else "under its limit"
        if plan is not None and ceiling == plan:
            target += " (plan)"
        if live.top is None:
            metrics.append(Metric(name, target, None, "MiB", NOT_MEASURED, live.top_failure))
            continue
        used = {
            p["metadata"]["name"]: live.top[p["metadata"]["name"]]
            for p in pods
            if p["metadata"]["name"] in live.top
        }
        if not used:
            why = "no pod found" if not pods else f"kubectl top pods lists none of its {len(pods)} pods yet"
            metrics.append(Metric(name, target, None, "MiB", NOT_MEASURED, why))
            continue
        worst = max(used, key=used.__getitem__)
        how = f"kubectl top pods: working set now (a snapshot, not a peak), worst of {len(used)}: {worst}"
        if limit is not None:
            how += f"; limit {format_bytes_binary(limit)} (pod spec)"
        ok = ceiling is None or used[worst] < ceiling
        metrics.append(gate(name, target, round(used[worst] / MIB, 1), "MiB", ok, how))
        report.memory.append(
            {"service": service, "peak_bytes": used[worst], "limit_bytes": limit, "max_usage_bytes": None}
        )
    return metrics


def cpu_metrics(live: Live, hpas: Mapping[str, dict], settings: VerifySettings) -> list[Metric]:
    """Each autoscaler's CPU utilisation now (status.currentMetrics) against its own target and
    the plan's range; `info` unless `sutra.verify.cpu_gate` is set."""
    low, high = settings.cpu_utilization
    target = f"{low:g}-{high:g} % of request"
    live_hpas = live.by_name("horizontalpodautoscalers")
    metrics = []
    for deployment, rendered in hpas.items():
        name, hpa_name = f"cpu: {deployment}", rendered["metadata"]["name"]
        if "horizontalpodautoscalers" in live.unread:
            metrics.append(
                Metric(name, target, None, "%", NOT_MEASURED, live.unread["horizontalpodautoscalers"])
            )
            continue
        hpa = live_hpas.get(hpa_name)
        if hpa is None:
            metrics.append(
                Metric(name, target, None, "%", NOT_MEASURED, f"no HorizontalPodAutoscaler {hpa_name}")
            )
            continue
        spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
        wanted = cpu_utilization(spec.get("metrics"), "target")
        current = cpu_utilization(status.get("currentMetrics"), "current")
        replicas = status.get("currentReplicas")
        low_r, high_r = spec.get("minReplicas", 1), spec.get("maxReplicas")
        how = f"HPA {hpa_name}: {replicas} replicas (min {low_r}, max {high_r}), target {wanted} %"
        if replicas is not None and replicas == high_r:
            how += "; at its maximum"
        if current is None:
            why = "no CPU reading in status.currentMetrics yet"
            if live.top_failure == METRICS_UNAVAILABLE:
                why = f"{METRICS_UNAVAILABLE}: {why}"
            metrics.append(Metric(name, target, None, "%", NOT_MEASURED, f"{how}; {why}"))
            continue
        status_now = (PASS if low <= current <= high else FAIL) if settings.cpu_gate else INFO
        if not settings.cpu_gate:
            how += "; no gate (sutra.verify.cpu_gate)"
        metrics.append(Metric(name, target, current, "%", status_now, how))
    return metrics


def digest_metrics(live: Live, deployments: Sequence[dict], pushed: Mapping[str, str] | None) -> list[Metric]:
    """What each Deployment runs (its pods' imageID, its spec's image) against what was pushed."""
    live_deployments = live.by_name("deployments")
    metrics = []
    for deployment in deployments:
        service = deployment["metadata"]["name"]
        name = f"image digest: {service}"
        wanted = (pushed or {}).get(service)
        target = f"= pushed {short(wanted)}" if wanted else "the pushed digest"
        if "pods" in live.unread:
            metrics.append(Metric(name, target, None, "", NOT_MEASURED, live.unread["pods"]))
            continue
        pods = pods_of(deployment, live.items("pods"))
        running = {
            repo_digest(c.get("imageID", ""))
            for p in pods
            for c in (p.get("status") or {}).get("containerStatuses") or []
            if c["name"] == main_container(deployment)
        }
        image = spec_image(live_deployments.get(service), main_container(deployment))
        spec_digest = repo_digest(image or "")
        if not running:
            metrics.append(Metric(name, target, None, "", NOT_MEASURED, "no running pod found"))
            continue
        known = sorted(d for d in running if d)
        shown = short(known[0]) if len(known) == 1 else f"{len(known)} digests" if known else None
        how = f"pods' imageID: {', '.join(short(d) for d in known) or 'no registry digest'}"
        if spec_digest:
            how += f"; spec image @{short(spec_digest)}"
        else:
            how += f"; spec image {image}" if image else "; Deployment not read"
        if not wanted:
            metrics.append(Metric(name, target, shown, "", INFO, how + "; nothing pushed to compare with"))
            continue
        ok = running == {wanted} and (spec_digest is None or spec_digest == wanted)
        metrics.append(Metric(name, target, shown, "", PASS if ok else FAIL, how))
    return metrics


def efficiency_metric(live: Live) -> Metric:
    """Requests of this namespace's pods over the allocatable of the schedulable nodes."""
    name = EFFICIENCY
    if "nodes" in live.unread:
        return Metric(name, EFFICIENCY_TARGET, None, "%", NOT_MEASURED, live.unread["nodes"])
    if "pods" in live.unread:
        return Metric(name, EFFICIENCY_TARGET, None, "%", NOT_MEASURED, live.unread["pods"])
    nodes = [n for n in live.items("nodes") if not (n.get("spec") or {}).get("unschedulable")]
    if not nodes:
        return Metric(name, EFFICIENCY_TARGET, None, "%", NOT_MEASURED, "no schedulable node listed")
    cpu_total = sum(millicores(n["status"]["allocatable"]["cpu"]) for n in nodes)
    memory_total = sum(memory_bytes(n["status"]["allocatable"]["memory"]) for n in nodes)
    pods = [
        p
        for p in live.items("pods")
        if not terminating(p) and (p.get("status") or {}).get("phase") in ("Pending", "Running")
    ]
    requests = [
        ((c.get("resources") or {}).get("requests") or {}) for p in pods for c in p["spec"]["containers"]
    ]
    cpu = sum(millicores(r["cpu"]) for r in requests if "cpu" in r)
    memory = sum(memory_bytes(r["memory"]) for r in requests if "memory" in r)
    if not cpu_total:
        return Metric(name, EFFICIENCY_TARGET, None, "%", NOT_MEASURED, "the nodes report no allocatable CPU")
    cpu_percent = cpu / cpu_total * 100
    memory_percent = memory / memory_total * 100 if memory_total else 0.0
    return Metric(
        name,
        EFFICIENCY_TARGET,
        round(cpu_percent, 1),
        "% CPU",
        ESTIMATE,
        f"estimate, not a measurement: requests of {len(pods)} pods in {live.namespace} / allocatable "
        f"of {len(nodes)} schedulable nodes: CPU {cpu / 1000:g} of {cpu_total / 1000:g} cores, memory "
        f"{format_bytes_binary(memory)} of {format_bytes_binary(memory_total)} ({memory_percent:.1f} %); "
        "other namespaces' pods are not counted",
    )


# --- the entry points ---------------------------------------------------------------------


def verify_cluster(
    kubectl: Kubectl,
    environment: Environment,
    stack: Stack,
    *,
    objects: Sequence[dict] | None = None,
    pushed_digests: Mapping[str, str] | None = None,
    smoke: SmokeReport | None = None,
    settings: VerifySettings | None = None,
) -> VerifyReport:
    """The plan's success metrics for ``environment``, read from its live cluster.

    ``objects`` are the environment's rendered manifests (rendered here when not given): they
    say which Deployments, selectors and autoscalers to look for and are what the static
    checks read. ``pushed_digests`` (service -> digest), given by a deploy, turns the image
    rows into a check; ``smoke`` is the smoke test's result, when one was run. ``settings``
    are `sutra.verify` (its defaults when None).
    """
    settings = settings or VerifySettings.from_settings()
    if objects is None:
        objects = render(kubectl, environment, stack)
    namespace = namespace_of(objects)
    rendered = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "Deployment"}
    rendered_order = deployments_in_order(objects, stack.service_names)
    deployments = [rendered[name] for name in rendered_order]
    live = read_cluster(kubectl, namespace)
    report = VerifyReport(environment.name)
    report.add(health_metric(smoke))
    report.add(pod_metrics(live))
    report.add(startup_metrics(live, deployments, settings))
    report.add(memory_metrics(live, deployments, settings, report))
    hpas = hpa_by_deployment(objects)
    report.add(cpu_metrics(live, {d: hpas[d] for d in rendered_order if d in hpas}, settings))
    report.add(digest_metrics(live, deployments, pushed_digests))
    report.add(zero_downtime_metric(objects, live.items("deployments")))
    report.add(scale_up_metric(objects, settings))
    report.add(efficiency_metric(live))
    return report


def verify_environment(
    kubectl: Kubectl,
    environment: Environment,
    stack: Stack,
    *,
    smoke_timeout: float,
    settings: VerifySettings | None = None,
) -> VerifyReport:
    """`inv verify --env staging|production`: check the kube context (a verify of the wrong
    cluster would be worse than none), render, smoke through port-forwards, read the cluster.

    ``settings`` are `sutra.verify` (its defaults when None). A dry run reads nothing.
    """
    if kubectl.dry:
        log.info("[verify] verify skipped (dry run)")
        return VerifyReport(environment.name)
    check_context(kubectl, environment)
    kubectl.check_reachable()
    objects = render(kubectl, environment, stack)
    log.info("[verify] smoke through kubectl port-forward")
    smoke = smoke_through_port_forwards(kubectl, stack, objects, namespace_of(objects), smoke_timeout)
    log.info("[verify] reading pods, autoscalers, nodes and image digests")
    return verify_cluster(
        kubectl,
        environment,
        stack,
        objects=objects,
        smoke=smoke,
        settings=settings,
    )
