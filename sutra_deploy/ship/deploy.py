"""The plan's automated deployment as one pipeline, undone on its own when it fails.

Kubernetes: context check -> the cluster reachable and serving every kind and field the
manifests use -> build -> sizes gate -> tag and push -> render with the pushed digests ->
validate (a dry run: `kubectl diff`) -> apply in order, the rollouts measured -> wait for every
rollout -> smoke through port-forwards -> record the rollouts -> verify (the plan's metrics read
from the cluster, printed; a failed metric exits 1 but rolls nothing back). Local: build ->
sizes gate -> local-up -> smoke. A failed rollout or smoke rolls back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import k8s
from ..core.errors import (
    ApplyRefused,
    CommandFailed,
    DeployFailed,
    RolloutFailed,
    SmokeFailed,
    StackUnhealthy,
    SutraError,
)
from ..core.stack import Stack
from ..images import sizes
from ..k8s import zero_downtime
from ..k8s.manifests import stateful_names
from ..local.compose_stack import LocalStack, local_urls, previous_version
from ..tools.engine import Engine
from ..verify.cluster import verify_cluster
from ..verify.model import VerifyReport
from ..verify.settings import VerifySettings
from ..verify.smoke import SmokeReport, run_smoke, smoke_through_port_forwards
from .history import RELEASE_KEYS, record_release
from .push import Pushed, push_images
from .release import Release

log = logging.getLogger("sutra")


@dataclass(frozen=True)
class KubernetesDeploy:
    stack: Stack
    engine: Engine
    kubectl: k8s.Kubectl
    env: k8s.Environment
    version: str
    smoke_timeout: float
    verify_settings: VerifySettings | None = None  # `sutra.verify`; None: its defaults
    release: Release | None = None  # what this deploy ships (`--tag`, else git's)
    floating: Sequence[str] = ()  # the tags that move to it (`:v2`, `:latest`)

    def run(self, build: Callable[[], None]) -> SmokeReport | None:
        k8s.check_context(self.kubectl, self.env)  # before anything is built, pushed or applied
        registry = self.env.registry
        if not registry:
            name = self.env.name
            raise SutraError(f"environment {name} has no registry; set sutra.environments.{name}.registry")
        if not self.kubectl.dry:  # a cluster that cannot take the release, found before the build
            self.kubectl.check_reachable()
            k8s.check_cluster_serves(self.kubectl, k8s.render(self.kubectl, self._pinned_env(), self.stack))
        build()
        gate_sizes(self.stack, self.engine, self.version)
        release = self.release or Release(self.version, None, "version")
        # The release now; the floating tags (`:v2`, `:latest`) only once it has rolled out and
        # passed its smoke, so they never name a release that was rolled back.
        pushed = push_images(
            self.engine,
            self.stack.services,
            registry=registry,
            version=self.version,
            release=release,
            floating=(),
        )
        digests = pushed_digests(pushed, self.stack, registry, release.name)
        objects = k8s.render(self.kubectl, self._pinned_env(), self.stack, digests=digests)
        if self.release is not None:
            record_release(objects, self.release, digests)
        k8s.require_valid(objects, self.env.name)
        if self.kubectl.dry:
            show_what_would_change(self.kubectl, self.env, objects)
        namespace = k8s.namespace_of(objects)
        deployments = k8s.deployments_in_order(objects, self.stack.service_names)
        # Where each Deployment stands before the change: what a rollback returns it to.
        revisions = {name: self.kubectl.revision(name, namespace) for name in deployments}
        before = {name: self.kubectl.annotations(name, namespace) for name in deployments if revisions[name]}
        restore = {name: {key: notes.get(key) for key in RELEASE_KEYS} for name, notes in before.items()}
        # The Deployments already running are what a rollout could take away from users.
        existing = [name for name in deployments if revisions[name]]
        targets = zero_downtime.targets_for(objects, existing, self._health_paths(), stateful_names(objects))
        try:
            with zero_downtime.watch_rollouts(self.kubectl, namespace, targets) as watch:
                k8s.apply(self.kubectl, self.env, objects, self.stack.service_names)
            smoke = smoke_through_port_forwards(
                self.kubectl, self.stack, objects, namespace, self.smoke_timeout
            )
            if smoke is not None:
                print(smoke.table())
                smoke.raise_if_failed()
        except (RolloutFailed, ApplyRefused, SmokeFailed, CommandFailed) as failure:
            # A failed apply can leave some Deployments rolled forward: undo those too.
            log.info("[deploy] %s; rolling back", failure)
            undone = k8s.rollback(
                self.kubectl, self.env, deployments, namespace, revisions=revisions, restore=restore
            )
            outcome = (
                f"rolled back {', '.join(undone)}" if undone else "nothing to roll back (new or unchanged)"
            )
            raise DeployFailed(f"{failure}; {outcome}") from None
        if self.floating:  # a failure here leaves the release running: nothing to roll back
            push_images(
                self.engine,
                self.stack.services,
                registry=registry,
                version=self.version,
                release=release,
                floating=self.floating,
                release_tag=False,
            )
        record_rollouts(self.kubectl, namespace, watch, deployments, revisions, release.name)
        verify_deployed(self.kubectl, self.env, self.stack, objects, digests, smoke, self.verify_settings)
        return smoke

    def _health_paths(self) -> dict[str, str | None]:
        return {s.name: s.health.path if s.health.protocol == "http" else None for s in self.stack.services}

    def _pinned_env(self) -> k8s.Environment:
        return k8s.with_images(self.env, registry=None, tag=self.version)


def show_what_would_change(kubectl: k8s.Kubectl, env: k8s.Environment, objects: Sequence[dict]) -> None:
    """A dry deploy's `kubectl diff` against the live cluster (the server's own dry run, which
    changes nothing, so it runs under --dry), on stdout; a cluster that cannot be asked is a
    line on stderr, and the dry run goes on printing what the real one would run."""
    try:
        changes = kubectl.diff(k8s.dump_manifests(objects))
    except SutraError as error:
        log.info("[deploy] dry run: could not ask the cluster what would change: %s", error)
        return
    log.info(
        "[deploy] dry run: what applying would change, from kubectl diff (images by tag: the real "
        "run pins each to the digest it pushes)"
    )
    print(changes or f"{env.name}: no changes: the cluster already runs what the manifests say")


def record_rollouts(
    kubectl: k8s.Kubectl,
    namespace: str,
    watch: zero_downtime.RolloutWatch,
    deployments: Sequence[str],
    before: Mapping[str, int | None],
    release: str,
) -> dict[str, zero_downtime.RolloutRecord]:
    """What the deploy saw of each Deployment that rolled, written on it for `inv verify`.

    Only once the release stands (rolled out, smoked): a rolled-back release is not the one
    running, so its rollout describes nothing a user now has."""
    if kubectl.dry:
        return {}
    after = {name: kubectl.revision(name, namespace) for name in deployments}
    rolled = {name: revision for name, revision in after.items() if revision != before.get(name)}
    records = watch.records(rolled, release)
    for name, record in records.items():
        log.info("[deploy] rollout of deployment/%s: %s", name, record.summary())
        kubectl.annotate(name, namespace, {zero_downtime.ANNOTATION: record.to_annotation()})
    return records


def verify_deployed(
    kubectl: k8s.Kubectl,
    env: k8s.Environment,
    stack: Stack,
    objects: Sequence[dict],
    digests: Mapping[str, str],
    smoke: SmokeReport | None,
    settings: VerifySettings | None = None,
) -> VerifyReport | None:
    """After the smoke passed: the plan's metrics read from the cluster, the pushed digests
    checked, the table printed. A failed metric exits 1 after the table, and nothing is rolled
    back: the rollouts and the smoke passed, and the report says what to look at."""
    if kubectl.dry:  # a dry run has read nothing to verify; its printed sequence stays as it was
        log.info("[deploy] verify skipped (dry run)")
        return None
    report = verify_cluster(
        kubectl,
        env,
        stack,
        objects=objects,
        pushed_digests=digests,
        smoke=smoke,
        settings=settings,
    )
    print(report.table())
    if not report.ok:
        log.info("[deploy] verify failed; the deploy stays in place (verify does not roll back)")
    report.raise_if_failed()
    return report


def gate_sizes(stack: Stack, engine: Engine, version: str) -> None:
    """The size gate between build and push; a dry run has built nothing to measure."""
    if engine.dry:
        log.info("[deploy] dry run: the size gate runs on the built images")
        return
    engine.ensure_available()
    report = sizes.measure(stack, engine, stack.services, version=version)
    print(report.table())
    sizes.gate(report)


def pushed_digests(pushed: Sequence[Pushed], stack: Stack, registry: str, tag: str) -> dict[str, str]:
    """service name -> digest of its ``tag`` (the release) in ``registry``; a dry run has none."""
    return {
        item.service: item.digest
        for item in pushed
        if item.reference == stack.service(item.service).reference(registry, tag=tag)
        and item.digest.startswith("sha256:")
    }


def deploy(
    stack: Stack,
    environment: k8s.Environment | None,
    *,
    engine: Engine,
    kubectl: k8s.Kubectl,
    local: Callable[[], LocalStack],
    version: str,
    build: Callable[[], None],
    local_timeout: float,
    smoke_timeout: float,
    yes: bool,
    verify_settings: Mapping[str, Any] | None,
    release: Release | None,
    floating: Sequence[str],
) -> SmokeReport | None:
    """`inv deploy`: the local stack (``environment`` None) or a Kubernetes environment."""
    if environment is None:
        return deploy_local(
            stack, local(), version=version, build=build, timeout=local_timeout, smoke_timeout=smoke_timeout
        )
    return deploy_kubernetes(
        stack,
        engine,
        kubectl,
        environment,
        version=version,
        build=build,
        smoke_timeout=smoke_timeout,
        yes=yes,
        verify_settings=verify_settings,
        release=release,
        floating=floating,
    )


def deploy_kubernetes(
    stack: Stack,
    engine: Engine,
    kubectl: k8s.Kubectl,
    env: k8s.Environment,
    *,
    version: str,
    build: Callable[[], None],
    smoke_timeout: float,
    yes: bool,
    verify_settings: Mapping[str, Any] | None = None,
    release: Release | None = None,
    floating: Sequence[str] = (),
) -> SmokeReport | None:
    """`inv deploy --env E`: confirm where that is asked for, then the whole pipeline, ending
    with the cluster verify (``verify_settings``: `sutra.verify`, its defaults when None)."""
    settings = VerifySettings.from_settings(verify_settings)  # a bad setting stops it before the build
    k8s.confirm(env, yes=yes, dry=kubectl.dry)
    pipeline = KubernetesDeploy(
        stack, engine, kubectl, env, version, smoke_timeout, settings, release, floating
    )
    return pipeline.run(build)


def deploy_local(
    stack: Stack,
    local: LocalStack,
    *,
    version: str,
    build: Callable[[], None],
    timeout: float,
    smoke_timeout: float,
) -> SmokeReport | None:
    """`inv deploy --env local`: build, size gate, local-up, smoke; back a version on failure."""
    build()
    gate_sizes(stack, local.docker, version)
    try:
        local.up(version, timeout=timeout)
        if local.docker.dry:
            return None
        urls = local_urls(stack)
        smoke = run_smoke(stack.services, urls, timeout=smoke_timeout, journey=stack.journey)
        print(smoke.table())
        smoke.raise_if_failed()
        return smoke
    except (StackUnhealthy, SmokeFailed) as failure:
        if stack.versions.index(version) == 0:
            raise DeployFailed(
                f"{failure}; {version} is the oldest version, nothing to roll back to"
            ) from None
        target = previous_version(stack, version)
        log.info("[deploy] %s; rolling back to %s", failure, target)
        local.move(target, timeout=timeout)
        raise DeployFailed(f"{failure}; rolled the local stack back to {target}") from None
