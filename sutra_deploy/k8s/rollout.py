"""Changing a cluster: check the kube context, apply in the plan's order, wait for every
rollout, and roll back (to recorded revisions, one rollout, or another image tag)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from ..core.errors import (
    ApplyRefused,
    ClusterUnreachable,
    CommandFailed,
    RolloutFailed,
    WrongContext,
    failure_reason,
)
from ..core.stack import Stack
from ..tools.kubectl import Kubectl, server_gone
from . import preflight
from .environments import Environment, confirm, with_images
from .manifests import (
    dump_manifests,
    images_by_deployment,
    namespace_of,
    render,
    require_valid,
    stateful_names,
)
from .policy import is_default_deny_ingress

log = logging.getLogger("sutra")


def check_context(kubectl: Kubectl, env: Environment) -> None:
    """Stop before anything is applied when kubectl points at another cluster."""
    if env.context is None:
        raise WrongContext(
            f"environment {env.name} names no kube context; set sutra.environments.{env.name}.context"
        )
    current = kubectl.current_context()
    if current is not None and current != env.context:
        raise WrongContext(
            f"kubectl's current context is {current!r} but {env.name} lives in {env.context!r}; "
            f"run `kubectl config use-context {env.context}` and try again"
        )


def check_cluster_serves(kubectl: Kubectl, objects: Sequence[dict]) -> None:
    """Stop before anything is applied when the cluster lacks an API version, kind or field
    the manifests use, asked of its discovery and OpenAPI schema (`preflight`)."""
    if kubectl.dry:
        log.info("[k8s] dry run: the cluster is not asked whether it serves every kind and field used")
        return
    versions = sorted({str(o.get("apiVersion", "")) for o in objects})
    discovery = {v: kubectl.get_raw("/api/v1" if v == "v1" else f"/apis/{v}") for v in versions}
    preflight.check(objects, preflight.served_kinds(discovery), kubectl.get_raw("/openapi/v2") or {})


def apply_groups(objects: Sequence[dict]) -> list[tuple[str, list[dict]]]:
    """The plan's order: the namespace, then storage, then the workloads, then autoscaling.

    The network policies go with the namespace, so no pod of the stack ever runs without them.
    Within that group the default deny comes last: in a namespace whose pods already serve,
    each pod's allowed callers are in place before the default deny closes everything else.
    """
    stateful = stateful_names(objects)
    groups: dict[str, list[dict]] = {"namespace": [], "storage": [], "workloads": [], "autoscalers": []}
    for o in objects:
        kind, name = o.get("kind"), o["metadata"]["name"]
        if kind in ("Namespace", "NetworkPolicy"):
            groups["namespace"].append(o)
        elif kind == "PersistentVolumeClaim" or name in stateful:
            groups["storage"].append(o)
        elif kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
            groups["autoscalers"].append(o)
        else:
            groups["workloads"].append(o)
    groups["namespace"].sort(key=_namespace_rank)
    return [(label, members) for label, members in groups.items() if members]


def _namespace_rank(obj: dict) -> int:
    """The Namespace, then the network policies that allow, then the default deny."""
    if obj.get("kind") == "Namespace":
        return 0
    return 2 if is_default_deny_ingress(obj) else 1


def deployments_in_order(objects: Sequence[dict], order: Sequence[str] = ()) -> list[str]:
    """Storage first, then the rest in ``order`` (the stack's build order), then by name."""
    stateful = stateful_names(objects)
    rank = {name: i for i, name in enumerate(order)}
    names = [o["metadata"]["name"] for o in objects if o.get("kind") == "Deployment"]
    return sorted(names, key=lambda n: (n not in stateful, rank.get(n, len(rank)), n))


def apply(kubectl: Kubectl, env: Environment, objects: Sequence[dict], order: Sequence[str] = ()) -> str:
    """Apply in order and wait for every rollout (in ``order``); returns the namespace.

    Deployments an HPA scales carry no `replicas` in the manifests, so applying never resets
    a scaled-out service to its minimum.
    """
    check_context(kubectl, env)
    check_cluster_serves(kubectl, objects)
    namespace = namespace_of(objects)
    applied: list[str] = []
    for label, members in apply_groups(objects):
        what = f"{label} ({len(members)} objects)"
        try:
            kubectl.apply(dump_manifests(members), what)
        except CommandFailed as error:
            before = f"applied before it: {', '.join(applied)}" if applied else "nothing was applied"
            reason = failure_reason(error.output)
            if server_gone(reason):  # nothing was refused: the same apply, run again, converges
                raise ClusterUnreachable(
                    f"apply {what} failed: the API server {kubectl.server()} stopped answering "
                    f"({reason}); {before} (and what kubectl could of this group); run it again "
                    "once the server answers: applying converges"
                ) from None
            # kubectl applies each object of a group it can, so the rest of this one may be in.
            raise ApplyRefused(
                f"apply {what} refused: {reason}{_fix_for(reason)}; {before} "
                "(and what kubectl could of this group)"
            ) from None
        applied.append(what)
    wait_for_rollouts(kubectl, deployments_in_order(objects, order), namespace, env.rollout_timeout)
    return namespace


def _fix_for(reason: str) -> str:
    """What to do about a refusal the server's words alone do not explain."""
    if "spec.selector" in reason and "field is immutable" in reason:
        name = reason.split('"')[1] if reason.count('"') >= 2 else "the Deployment"
        return (
            f" (a Deployment's selector never changes: restore it in the manifests, or delete "
            f"deployment/{name} and apply again, which restarts its pods)"
        )
    return ""


def wait_for_rollouts(kubectl: Kubectl, deployments: Sequence[str], namespace: str, timeout: int) -> None:
    for name in deployments:
        log.info("[k8s] waiting for deployment/%s", name)
        try:
            kubectl.rollout_status(name, namespace, timeout)
        except CommandFailed as error:
            if server_gone(failure_reason(error.output)):
                raise ClusterUnreachable(
                    f"waiting for the rollout of deployment/{name}: the API server {kubectl.server()} "
                    f"stopped answering ({failure_reason(error.output)}); what was to change was "
                    "sent before; run the same command again once the server answers"
                ) from None
            raise RolloutFailed(
                f"rollout of deployment/{name} did not finish: {failure_reason(error.output)}"
            ) from None


def rollback(
    kubectl: Kubectl,
    env: Environment,
    deployments: Sequence[str],
    namespace: str,
    *,
    to_image: Mapping[str, tuple[str, str]] | None = None,
    revisions: Mapping[str, int | None] | None = None,
    annotations: Mapping[str, Mapping[str, str | None]] | None = None,
    restore: Mapping[str, Mapping[str, str | None]] | None = None,
) -> list[str]:
    """Roll deployments back, then wait for those that moved; returns them.

    With ``revisions`` (each Deployment's revision before a deploy), only what that deploy
    changed goes back, to exactly that revision: a Deployment the deploy left alone keeps
    running, one it created has nothing to go back to. Otherwise each goes back one rollout,
    or to the given (container, image), re-annotated with ``annotations`` (see :func:`annotate`).
    ``restore`` puts back the annotations a Deployment left alone had before (a deploy
    annotates every Deployment it applies, and the controller copies a Deployment's
    annotations onto the ReplicaSet running it, so an unchanged one would otherwise be
    recorded as running the release that was just rolled back).
    A rollback that kubectl refuses is logged and the others still go back.
    """
    check_context(kubectl, env)
    moved = []
    for name in deployments:
        target = None
        if revisions is not None:
            target = revisions.get(name)
            if target is None:
                log.info("[k8s] deployment/%s is new: nothing to roll back to", name)
                continue
            if kubectl.revision(name, namespace) == target:
                log.info("[k8s] deployment/%s is unchanged at revision %s", name, target)
                if restore and restore.get(name):
                    annotate(kubectl, name, namespace, restore[name])
                continue
        try:
            if to_image and name in to_image:
                container, image = to_image[name]
                notes = (annotations or {}).get(name) or {}
                if notes:  # cleared first: see `annotate`
                    annotate(kubectl, name, namespace, dict.fromkeys(notes))
                kubectl.set_image(name, container, image, namespace)
                if any(value is not None for value in notes.values()):
                    annotate(kubectl, name, namespace, {k: v for k, v in notes.items() if v is not None})
            else:
                kubectl.rollout_undo(name, namespace, to_revision=target)
        except CommandFailed as error:
            log.info("[k8s] could not roll back deployment/%s: %s", name, failure_reason(error.output))
            continue
        moved.append(name)
    wait_for_rollouts(kubectl, moved, namespace, env.rollout_timeout)
    return moved


def annotate(kubectl: Kubectl, deployment: str, namespace: str, notes: Mapping[str, str | None]) -> None:
    """Set annotations on a Deployment's own metadata (None removes one); nothing rolls out.

    Around `set image`: the controller copies a Deployment's annotations onto the ReplicaSet
    that runs its template, on every sync, but never deletes one there. So the keys are removed
    before the image moves (the ReplicaSet being left and one being returned to keep their own
    release) and set after it (the revision that runs the image records its release).
    """
    kubectl.annotate(deployment, namespace, notes)


# --- what the tasks do ----------------------------------------------------------------------


def apply_environment(kubectl: Kubectl, env: Environment, stack: Stack, *, yes: bool) -> str:
    """`inv k8s-apply`: confirm, check the context, render, validate, apply in order, wait for
    every rollout; returns what kubectl says of the pods and autoscalers afterwards."""
    confirm(env, yes=yes, dry=kubectl.dry)
    check_context(kubectl, env)
    objects = render(kubectl, env, stack)
    require_valid(objects, env.name)
    namespace = apply(kubectl, env, objects, stack.service_names)
    return kubectl.get("pods,hpa", namespace)


def diff_environment(kubectl: Kubectl, env: Environment, stack: Stack) -> str:
    """`inv k8s-apply --diff`: what applying would change, from `kubectl diff` (the server
    computes each object as it would store it, a dry run); nothing changes. No confirmation:
    nothing is applied, also in production."""
    check_context(kubectl, env)
    objects = render(kubectl, env, stack)
    require_valid(objects, env.name)
    check_cluster_serves(kubectl, objects)
    changes = kubectl.diff(dump_manifests(objects))
    return changes or f"{env.name}: no changes: the cluster already runs what the manifests say\n"


def rollback_environment(
    kubectl: Kubectl,
    env: Environment,
    stack: Stack,
    *,
    services: Sequence[str] = (),
    to: str | None = None,
    yes: bool,
) -> list[str]:
    """`inv rollback --env E`: undo the last rollout of the named Deployments (default: all),
    or with ``to`` set each one's image to that tag as the environment renders it; wait."""
    confirm(env, yes=yes, dry=kubectl.dry)
    objects = render(kubectl, with_images(env, registry=None, tag=to), stack)
    names = [stack.service(name).name for name in services] or deployments_in_order(
        objects, stack.service_names
    )
    images = images_by_deployment(objects) if to else None
    return rollback(kubectl, env, names, namespace_of(objects), to_image=images)
