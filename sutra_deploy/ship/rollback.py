"""Rolling back: the local stack to another version, a cluster to the digests a release ran.
(Undoing a rollout to the cluster's previous revisions is the kubectl operation itself:
`k8s.rollout.rollback`.)"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from ..core.stack import Stack
from ..k8s.environments import Environment, confirm, with_images
from ..k8s.manifests import images_by_deployment, namespace_of, render
from ..k8s.rollout import check_context, deployments_in_order, rollback, rollback_environment
from ..local.compose_stack import LocalStack, ServiceStatus, previous_version
from ..tools.kubectl import Kubectl
from .history import read_cluster, release_digests, rollback_annotations

log = logging.getLogger("sutra")


def roll_back(
    stack: Stack,
    env: str,
    *,
    services: Sequence[str],
    to: str | None,
    wait: float,
    local: Callable[[], LocalStack],
    kubectl: Kubectl,
    environment: Callable[[], Environment],
    yes: bool,
) -> list[ServiceStatus]:
    """`inv rollback`: the local stack (or only ``services``) to ``to`` or the version before;
    a cluster's Deployments to the digests a release ran (``to`` a release), to a version's
    tag, or one rollout back. An unknown service stops it before anything is rendered or asked.
    The local stack's rows, for the table; a cluster's say what they did as they go."""
    names = [named.name for named in stack.select(services)] if services else []
    if env == "local":
        return rollback_local(local(), to=to, timeout=wait, services=names)
    chosen = environment()
    if to and to not in stack.versions:  # a release: the digests it ran, not a moving tag
        rollback_to_release(kubectl, chosen, stack, release=to, services=names, yes=yes)
    else:
        rollback_environment(kubectl, chosen, stack, services=names, to=to, yes=yes)
    return []


def rollback_local(
    local: LocalStack, *, to: str | None, timeout: float, services: Sequence[str] = ()
) -> list[ServiceStatus]:
    """`inv rollback --env local`: move the running stack (or only ``services``) to ``to``, else
    to the version before the one it runs (each named service from its own)."""
    if services:
        running = local.running_versions()
        targets = {name: to or previous_version(local.stack, running.get(name)) for name in services}
        return local.move_services(targets, timeout=timeout)
    target = to or previous_version(local.stack, local.running_version())
    return local.move(target, timeout=timeout)


def rollback_to_release(
    kubectl: Kubectl, env: Environment, stack: Stack, *, release: str, services: Sequence[str] = (), yes: bool
) -> list[str]:
    """`inv rollback --env E --to RELEASE`: every (named) Deployment to the digests that release
    ran, as the cluster's history records them, else as the registry resolves its tag; wait.
    A release missing for a service is exit 2 before anything changes."""
    confirm(env, yes=yes, dry=kubectl.dry)
    check_context(kubectl, env)
    objects = render(kubectl, env, stack)
    namespace = namespace_of(objects)
    names = [stack.service(name).name for name in services] or deployments_in_order(
        objects, stack.service_names
    )
    if kubectl.dry:  # nothing was read: show the move by tag, and say what was not checked
        log.info(
            "[rollback] dry run: the cluster's history is not read, so neither whether %s ran here "
            "nor the digests it ran are checked; shown by tag (the real run sets those digests)",
            release,
        )
        digests: dict[str, str] = {}
        pinned = render(kubectl, with_images(env, registry=None, tag=release), stack)
    else:
        history = read_cluster(kubectl, namespace, stack)
        digests = release_digests(history, stack, release, env.registry, names)
        pinned = render(kubectl, env, stack, digests=digests)
    notes = {name: rollback_annotations(release, digests.get(name)) for name in names}
    return rollback(kubectl, env, names, namespace, to_image=images_by_deployment(pinned), annotations=notes)
