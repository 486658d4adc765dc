"""`inv verify --env staging|production`: the plan's success metrics, read from a live cluster.

Everything here reads: `kubectl get … --output json` (pods, Deployments, autoscalers, nodes),
`kubectl top pods`, and the smoke test through port-forwards. Nothing is changed and nothing
is rolled back: a failed metric is a report, and the caller decides what to do with it.

What one read cannot show (no failed request during a rollout, how fast an autoscaler adds
pods under load) is `not measured`: the row says what it needs and what the manifests were
checked for instead, and gives no figure. Cluster efficiency is an `estimate`, from requests
and node allocatable, and is labelled so.

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
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import CommandFailed, SutraError, failure_reason
from ..k8s.environments import Environment
from ..k8s.kubectl import Kubectl
from ..k8s.manifests import hpa_by_deployment, namespace_of, render, stateful_names
from ..k8s.policy import selects
from ..k8s.quantities import format_bytes_binary, memory_bytes, millicores
from ..k8s.rollout import check_context, deployments_in_order
from ..smoke import SmokeReport
from ..stack import Stack
from .model import ESTIMATE, FAIL, INFO, NOT_MEASURED, PASS, Metric, VerifyReport, gate

log = logging.getLogger("sutra")

MI = 2**20
METRICS_UNAVAILABLE = "metrics API unavailable"
EFFICIENCY_TARGET = "> 70 %"  # the plan's cluster efficiency
_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


@dataclass(frozen=True)
class ClusterTargets:
    """The plan's targets a cluster is checked against: `sutra.verify.*`, one home for them."""

    startup_seconds: float
    scale_up_seconds: float
    memory_targets: Mapping[str, int]  # service -> bytes; every service also stays under its limit
    cpu_utilization: tuple[float, float]
    cpu_gate: bool  # CPU utilisation fails the run only when asked

    @classmethod
    def from_settings(cls, raw: Mapping[str, Any] | None = None) -> ClusterTargets:
        from ..edge import DEFAULTS  # the defaults of `sutra.verify`, for keys not set
        from ..inputs import number

        merged = {**DEFAULTS["sutra"]["verify"], **(raw or {})}
        low, high = merged["cpu_utilization"]
        return cls(
            startup_seconds=number(merged["startup_seconds"], "sutra.verify.startup_seconds"),
            scale_up_seconds=number(merged["scale_up_seconds"], "sutra.verify.scale_up_seconds"),
            memory_targets={name: memory_bytes(v) for name, v in (merged["memory_targets"] or {}).items()},
            cpu_utilization=(
                number(low, "sutra.verify.cpu_utilization"),
                number(high, "sutra.verify.cpu_utilization"),
            ),
            cpu_gate=bool(merged.get("cpu_gate", False)),
        )


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


def parse_top(text: str) -> dict[str, int]:
    """`kubectl top pods --no-headers` -> pod name -> working-set bytes."""
    usage = {}
    for line in text.splitlines():
        fields = line.split()  # NAME CPU(cores) MEMORY(bytes): "sutra-api-7d4b-x2 3m 61Mi"
        if len(fields) >= 3 and fields[0] != "NAME":
            usage[fields[0]] = memory_bytes(fields[2])
    return usage


def _reason(error: Exception) -> str:
    return failure_reason(error.output) if isinstance(error, CommandFailed) else str(error)


# --- pods -----------------------------------------------------------------------------------


def container_statuses(pod: dict) -> list[dict]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])


def restarts(pod: dict) -> int:
    return sum(int(c.get("restartCount") or 0) for c in container_statuses(pod))


def oom_killed(pod: dict) -> list[str]:
    """The pod's containers whose last (or current) termination was the OOM killer."""
    return [
        c["name"]
        for c in container_statuses(pod)
        if "OOMKilled"
        in (
            ((c.get("lastState") or {}).get("terminated") or {}).get("reason"),
            ((c.get("state") or {}).get("terminated") or {}).get("reason"),
        )
    ]


def crash_looping(pod: dict) -> list[str]:
    """Containers failing now: waiting in CrashLoopBackOff, or terminated again after restarts
    (what a crash-looping container shows between two back-offs)."""
    looping = []
    for c in container_statuses(pod):
        state = c.get("state") or {}
        waiting = (state.get("waiting") or {}).get("reason")
        if waiting == "CrashLoopBackOff" or ("terminated" in state and int(c.get("restartCount") or 0) > 0):
            looping.append(c["name"])
    return looping


def terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def pods_of(deployment: dict, pods: Iterable[dict]) -> list[dict]:
    """The pods a Deployment's selector picks (and not ones being deleted)."""
    selector = deployment["spec"]["selector"]
    return [p for p in pods if not terminating(p) and selects(selector, (p["metadata"].get("labels") or {}))]


def startup_seconds(pod: dict) -> float | None:
    """PodScheduled -> Ready, from the conditions' lastTransitionTime; None if not Ready."""
    conditions = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
    scheduled, ready = conditions.get("PodScheduled"), conditions.get("Ready")
    if not scheduled or not ready or ready.get("status") != "True":
        return None
    if not scheduled.get("lastTransitionTime") or not ready.get("lastTransitionTime"):
        return None
    start = datetime.fromisoformat(scheduled["lastTransitionTime"])
    return (datetime.fromisoformat(ready["lastTransitionTime"]) - start).total_seconds()


def _pod_list(pods: Sequence[dict]) -> str:
    return ", ".join(p["metadata"]["name"] for p in pods)


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


def startup_metrics(live: Live, deployments: Sequence[dict], targets: ClusterTargets) -> list[Metric]:
    target = f"< {targets.startup_seconds:g} s"
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
        metrics.append(gate(name, target, round(seconds, 1), "s", seconds < targets.startup_seconds, how))
    return metrics


def pod_memory_limit(pod: dict) -> int | None:
    limits = [
        ((c.get("resources") or {}).get("limits") or {}).get("memory") for c in pod["spec"]["containers"]
    ]
    return sum(memory_bytes(limit) for limit in limits) if limits and all(limits) else None


def memory_metrics(
    live: Live, deployments: Sequence[dict], targets: ClusterTargets, report: VerifyReport
) -> list[Metric]:
    metrics = []
    for deployment in deployments:
        service = deployment["metadata"]["name"]
        name = f"memory: {service}"
        plan = targets.memory_targets.get(service)
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
        metrics.append(gate(name, target, round(used[worst] / MI, 1), "MiB", ok, how))
        report.memory.append(
            {"service": service, "peak_bytes": used[worst], "limit_bytes": limit, "max_usage_bytes": None}
        )
    return metrics


def cpu_metrics(live: Live, hpas: Mapping[str, dict], targets: ClusterTargets) -> list[Metric]:
    """Each autoscaler's CPU utilisation now (status.currentMetrics) against its own target and
    the plan's range; `info` unless `sutra.verify.cpu_gate` is set."""
    low, high = targets.cpu_utilization
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
        wanted = _cpu_utilization(spec.get("metrics"), "target")
        current = _cpu_utilization(status.get("currentMetrics"), "current")
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
        status_now = (PASS if low <= current <= high else FAIL) if targets.cpu_gate else INFO
        if not targets.cpu_gate:
            how += "; no gate (sutra.verify.cpu_gate)"
        metrics.append(Metric(name, target, current, "%", status_now, how))
    return metrics


def _cpu_utilization(entries: Sequence[dict] | None, key: str) -> int | None:
    """averageUtilization of the cpu Resource metric: spec.metrics[].resource.target, or
    status.currentMetrics[].resource.current."""
    for entry in entries or []:
        resource = entry.get("resource") or {}
        if entry.get("type") == "Resource" and resource.get("name") == "cpu":
            value = (resource.get(key) or {}).get("averageUtilization")
            return int(value) if value is not None else None
    return None


def repo_digest(image: str) -> str | None:
    """`repo@sha256:…` (also `docker-pullable://repo@sha256:…`) -> `sha256:…`; None for a
    tag, or an image ID that is not a registry digest."""
    match = _DIGEST.search(image or "")
    return match.group(1) if match else None


def short(digest: str) -> str:
    return digest[: len("sha256:") + 12]


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
            if c["name"] == _main_container(deployment)
        }
        spec_image = _spec_image(live_deployments.get(service), _main_container(deployment))
        spec_digest = repo_digest(spec_image or "")
        if not running:
            metrics.append(Metric(name, target, None, "", NOT_MEASURED, "no running pod found"))
            continue
        known = sorted(d for d in running if d)
        shown = short(known[0]) if len(known) == 1 else f"{len(known)} digests" if known else None
        how = f"pods' imageID: {', '.join(short(d) for d in known) or 'no registry digest'}"
        if spec_digest:
            how += f"; spec image @{short(spec_digest)}"
        else:
            how += f"; spec image {spec_image}" if spec_image else "; Deployment not read"
        if not wanted:
            metrics.append(Metric(name, target, shown, "", INFO, how + "; nothing pushed to compare with"))
            continue
        ok = running == {wanted} and (spec_digest is None or spec_digest == wanted)
        metrics.append(Metric(name, target, shown, "", PASS if ok else FAIL, how))
    return metrics


def _main_container(deployment: dict) -> str:
    """The container named as the Deployment, else its first (as the images are resolved)."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    names = [c["name"] for c in containers]
    return deployment["metadata"]["name"] if deployment["metadata"]["name"] in names else names[0]


def _spec_image(deployment: dict | None, container: str) -> str | None:
    if deployment is None:
        return None
    for c in deployment["spec"]["template"]["spec"]["containers"]:
        if c["name"] == container:
            return c.get("image")
    return None


# --- what a read cannot show -------------------------------------------------------------


def zero_downtime_metric(objects: Sequence[dict]) -> Metric:
    """Needs requests during a rollout; checks the manifests for what makes one possible."""
    name, target = "zero-downtime deployments", "no failed request during a rollout"
    stateful = stateful_names(objects)
    deployments = [o for o in objects if o.get("kind") == "Deployment"]
    pdbs = [o for o in objects if o.get("kind") == "PodDisruptionBudget"]
    safe, pre_stop, guarded, missing = [], [], [], []
    for d in deployments:
        d_name, spec = d["metadata"]["name"], d["spec"]
        if d_name in stateful:
            continue
        containers = spec["template"]["spec"]["containers"]
        strategy = spec.get("strategy") or {}
        unavailable = str((strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%"))
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        if rolling and unavailable in ("0", "0%") and all(c.get("readinessProbe") for c in containers):
            safe.append(d_name)
        else:
            missing.append(d_name)
        if all((c.get("lifecycle") or {}).get("preStop") for c in containers):
            pre_stop.append(d_name)
        labels = (spec["template"].get("metadata") or {}).get("labels") or {}
        if any(selects((p.get("spec") or {}).get("selector"), labels) for p in pdbs):
            guarded.append(d_name)
    checked = (
        f"maxUnavailable 0 with readiness probes: {', '.join(safe) or 'none'}; "
        f"preStop: {', '.join(pre_stop) or 'none'}; PDBs: {', '.join(guarded) or 'none'}"
    )
    if stateful:
        checked += (
            f"; {', '.join(sorted(stateful))}: one writer on its volume, a gap on each update by design"
        )
    if missing:
        return Metric(
            name,
            target,
            len(missing),
            "Deployments",
            FAIL,
            f"cannot be zero-downtime: {', '.join(missing)} may take a ready pod away first; " + checked,
        )
    return Metric(
        name,
        target,
        None,
        "",
        NOT_MEASURED,
        f"needs requests during a rollout; checked in the manifests: {checked}",
    )


def scale_up_metric(objects: Sequence[dict], targets: ClusterTargets) -> Metric:
    limit = targets.scale_up_seconds
    hpas = hpa_by_deployment(objects)
    parts = []
    for deployment, hpa in sorted(hpas.items()):
        spec = hpa["spec"]
        window = ((spec.get("behavior") or {}).get("scaleUp") or {}).get("stabilizationWindowSeconds", 0)
        parts.append(
            f"{deployment} CPU {_cpu_utilization(spec.get('metrics'), 'target')} %, window {window} s"
        )
    slow = [
        d
        for d, h in sorted(hpas.items())
        if ((h["spec"].get("behavior") or {}).get("scaleUp") or {}).get("stabilizationWindowSeconds", 0)
        >= limit
    ]
    how = "needs load that makes an autoscaler add pods; checked in the manifests: " + (
        "; ".join(parts) or "no HPA"
    )
    if slow:
        how += f"; a scale-up window of {limit:g} s or more alone keeps {', '.join(slow)} from meeting it"
    return Metric("HPA scale-up", f"< {limit:g} s", None, "s", NOT_MEASURED, how)


def efficiency_metric(live: Live) -> Metric:
    """Requests of this namespace's pods over the allocatable of the schedulable nodes."""
    name = "cluster efficiency"
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
    targets: ClusterTargets | None = None,
) -> VerifyReport:
    """The plan's success metrics for ``environment``, read from its live cluster.

    ``objects`` are the environment's rendered manifests (rendered here when not given): they
    say which Deployments, selectors and autoscalers to look for and are what the static
    checks read. ``pushed_digests`` (service -> digest), given by a deploy, turns the image
    rows into a check; ``smoke`` is the smoke test's result, when one was run.
    """
    targets = targets or ClusterTargets.from_settings()
    if objects is None:
        objects = render(kubectl, environment, stack.services)
    namespace = namespace_of(objects)
    rendered = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "Deployment"}
    rendered_order = deployments_in_order(objects, stack.service_names)
    deployments = [rendered[name] for name in rendered_order]
    live = read_cluster(kubectl, namespace)
    report = VerifyReport(environment.name)
    report.add(health_metric(smoke))
    report.add(pod_metrics(live))
    report.add(startup_metrics(live, deployments, targets))
    report.add(memory_metrics(live, deployments, targets, report))
    hpas = hpa_by_deployment(objects)
    report.add(cpu_metrics(live, {d: hpas[d] for d in rendered_order if d in hpas}, targets))
    report.add(digest_metrics(live, deployments, pushed_digests))
    report.add(zero_downtime_metric(objects))
    report.add(scale_up_metric(objects, targets))
    report.add(efficiency_metric(live))
    return report


def verify_environment(
    kubectl: Kubectl,
    environment: Environment,
    stack: Stack,
    *,
    smoke_timeout: float,
    targets: Mapping[str, Any] | None = None,
) -> VerifyReport:
    """`inv verify --env staging|production`: check the kube context (a verify of the wrong
    cluster would be worse than none), render, smoke through port-forwards, read the cluster.

    ``targets`` is `sutra.verify` (its defaults where not given). A dry run reads nothing.
    """
    if kubectl.dry:
        log.info("[verify] verify skipped (dry run)")
        return VerifyReport(environment.name)
    # The smoke through port-forwards lives with the deploy pipeline, which also runs it.
    from ..deploy import smoke_through_port_forwards

    check_context(kubectl, environment)
    objects = render(kubectl, environment, stack.services)
    smoke = smoke_through_port_forwards(kubectl, stack, objects, namespace_of(objects), smoke_timeout)
    return verify_cluster(
        kubectl,
        environment,
        stack,
        objects=objects,
        smoke=smoke,
        targets=ClusterTargets.from_settings(targets),
    )
