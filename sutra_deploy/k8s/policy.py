"""Checks every rendered workload must pass before it is applied anywhere."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def _pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def violations(objects: Sequence[dict]) -> list[str]:
    """Every way the objects break policy, one readable line each; empty when all is well."""
    return [problem for obj in objects if obj.get("kind") in WORKLOAD_KINDS for problem in _check(obj)]


def _check(obj: dict) -> Iterator[str]:
    where = f"{obj['kind']}/{obj['metadata']['name']}"
    pod = _pod_spec(obj)
    pod_security = pod.get("securityContext") or {}
    for container in pod.get("containers", []):
        name = f"{where} container {container['name']}"
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(kind) or {}):
                    yield f"{name}: no {resource} {kind}"
        for probe in ("readinessProbe", "livenessProbe"):
            if probe not in container:
                yield f"{name}: no {probe}"
        security = container.get("securityContext") or {}
        if security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is not True:
            yield f"{name}: runAsNonRoot is not true"
        if security.get("runAsUser", pod_security.get("runAsUser")) == 0:
            yield f"{name}: runs as uid 0"
        if security.get("allowPrivilegeEscalation") is not False:
            yield f"{name}: allowPrivilegeEscalation is not false"
        if security.get("privileged"):
            yield f"{name}: privileged"
        image = container.get("image", "")
        if "@sha256:" not in image:
            tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
            if not tag:
                yield f"{name}: image {image!r} has no tag or digest"
            elif tag == "latest":
                yield f"{name}: image {image!r} uses :latest"
