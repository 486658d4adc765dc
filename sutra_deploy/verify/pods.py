"""Readers of the API objects a cluster answers with: Pods (statuses, restarts, OOM kills,
crash loops, startup, limits, images), the autoscalers' CPU metric, `kubectl top pods`.

Plain functions over the JSON of `kubectl get … --output json`; nothing here runs a command.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from ..core.references import image_parts
from ..k8s.policy import selects
from ..k8s.quantities import memory_bytes


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


def pod_memory_limit(pod: dict) -> int | None:
    """The sum of the containers' memory limits; None when one of them has none."""
    limits = [
        ((c.get("resources") or {}).get("limits") or {}).get("memory") for c in pod["spec"]["containers"]
    ]
    return sum(memory_bytes(limit) for limit in limits) if limits and all(limits) else None


def cpu_utilization(entries: Sequence[dict] | None, key: str) -> int | None:
    """averageUtilization of an autoscaler's cpu Resource metric: ``key`` "target" reads
    spec.metrics[].resource.target, "current" reads status.currentMetrics[].resource.current."""
    for entry in entries or []:
        resource = entry.get("resource") or {}
        if entry.get("type") == "Resource" and resource.get("name") == "cpu":
            value = (resource.get(key) or {}).get("averageUtilization")
            return int(value) if value is not None else None
    return None


def parse_top(text: str) -> dict[str, int]:
    """`kubectl top pods --no-headers` -> pod name -> working-set bytes."""
    usage = {}
    for line in text.splitlines():
        fields = line.split()  # NAME CPU(cores) MEMORY(bytes): "sutra-api-7d4b-x2 3m 61Mi"
        if len(fields) >= 3 and fields[0] != "NAME":
            usage[fields[0]] = memory_bytes(fields[2])
    return usage


def repo_digest(image: str) -> str | None:
    """`repo@sha256:…` (also `docker-pullable://repo@sha256:…`) -> `sha256:…`; None for a
    tag, or an image ID that is not a registry digest."""
    return image_parts(image).digest


def short(digest: str) -> str:
    return digest[: len("sha256:") + 12]


def main_container(deployment: dict) -> str:
    """The container named as the Deployment, else its first (as the images are resolved)."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    names = [c["name"] for c in containers]
    return deployment["metadata"]["name"] if deployment["metadata"]["name"] in names else names[0]


def spec_image(deployment: dict | None, container: str) -> str | None:
    """The image the Deployment's spec gives ``container``; None without a Deployment."""
    if deployment is None:
        return None
    for c in deployment["spec"]["template"]["spec"]["containers"]:
        if c["name"] == container:
            return c.get("image")
    return None
