"""Checks every rendered workload, and the network policies around them, must pass before
they are applied anywhere."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from ..core.references import image_parts

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def _pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def violations(objects: Sequence[dict]) -> list[str]:
    """Every way the objects break policy, one readable line each; empty when all is well."""
    workloads = [problem for obj in objects if obj.get("kind") in WORKLOAD_KINDS for problem in _check(obj)]
    return workloads + list(_network_violations(objects))


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
            tag = image_parts(image).tag or ""
            if not tag:
                yield f"{name}: image {image!r} has no tag or digest"
            elif tag == "latest":
                yield f"{name}: image {image!r} uses :latest"


# --- network policies -----------------------------------------------------------------------


def pod_labels(workload: dict) -> dict[str, str]:
    return (workload["spec"]["template"].get("metadata") or {}).get("labels") or {}


def selects(selector: Mapping | None, labels: Mapping[str, str]) -> bool:
    """A label selector's verdict, as Kubernetes reads it; an empty selector selects everything."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        found = labels.get(key)
        if operator == "In" and found not in values:
            return False
        if operator == "NotIn" and key in labels and found in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def governs_ingress(policy: dict) -> bool:
    spec = policy.get("spec") or {}
    # Without policyTypes, Kubernetes takes a policy to be about ingress (and egress if it has rules).
    return "Ingress" in spec.get("policyTypes", ["Ingress"])


def is_default_deny_ingress(policy: dict) -> bool:
    """Selects every pod, is about ingress only, allows nothing."""
    spec = policy.get("spec") or {}
    selector = spec.get("podSelector") or {}
    return (
        not selector.get("matchLabels")
        and not selector.get("matchExpressions")
        and spec.get("policyTypes") == ["Ingress"]
        and not spec.get("ingress")
    )


def _exposes(workload: dict, port: dict) -> bool:
    """Does a container of the workload listen where a policy's port points (name or number)?"""
    wanted, protocol = port.get("port"), port.get("protocol", "TCP")
    if wanted is None:  # every port
        return True
    end = port.get("endPort", wanted)
    for container in _pod_spec(workload).get("containers", []):
        for exposed in container.get("ports") or []:
            if exposed.get("protocol", "TCP") != protocol:
                continue
            if isinstance(wanted, str) and exposed.get("name") == wanted:
                return True
            if isinstance(wanted, int) and wanted <= exposed["containerPort"] <= end:
                return True
    return False


def _network_violations(objects: Sequence[dict]) -> Iterator[str]:
    """Pods are closed by default, and each workload's ingress is stated by a policy of its own.

    - one policy denies all ingress by default (podSelector {}, policyTypes [Ingress], no rules);
    - every workload is selected by another ingress policy: one that allows its callers, or
      one with no rules for a workload nothing may call (it is reached by port-forward only);
    - a policy selects at least one workload, its pod peers select at least one workload, and
      its ports are ports the selected workloads' containers listen on.
    """
    workloads = [o for o in objects if o.get("kind") in WORKLOAD_KINDS]
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy" and governs_ingress(o)]
    if not workloads:
        return
    if not any(is_default_deny_ingress(p) for p in policies):
        yield (
            "NetworkPolicy: none denies ingress by default "
            "(podSelector {}, policyTypes [Ingress], no ingress rules)"
        )
    own = [p for p in policies if not is_default_deny_ingress(p)]
    for workload in workloads:
        if not any(selects(p["spec"].get("podSelector"), pod_labels(workload)) for p in own):
            yield (
                f"{workload['kind']}/{workload['metadata']['name']}: no NetworkPolicy of its own says "
                "who may reach it (the default deny alone closes it)"
            )
    for policy in own:
        yield from _check_policy(policy, workloads)


def _check_policy(policy: dict, workloads: Sequence[dict]) -> Iterator[str]:
    where = f"NetworkPolicy/{policy['metadata']['name']}"
    spec = policy["spec"]
    targets = [w for w in workloads if selects(spec.get("podSelector"), pod_labels(w))]
    if not targets:
        yield f"{where}: its podSelector selects no workload"
    for rule in spec.get("ingress") or []:
        for peer in rule.get("from") or []:
            in_namespace = "podSelector" in peer and "namespaceSelector" not in peer
            if in_namespace and not any(selects(peer["podSelector"], pod_labels(w)) for w in workloads):
                yield f"{where}: peer {peer['podSelector']} selects no workload"
        for port in rule.get("ports") or []:
            for target in targets:
                if not _exposes(target, port):
                    yield (
                        f"{where}: port {port.get('port')}/{port.get('protocol', 'TCP')} is not a "
                        f"container port of {target['kind']}/{target['metadata']['name']}"
                    )
