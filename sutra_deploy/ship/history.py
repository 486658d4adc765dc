"""Which releases ran where: a cluster's rollout history, a registry's tags, the local images.

A deploy records the release, the source commit and the image digest on each Deployment's
own metadata (never on its pod template, which would roll every Deployment on every
release). The Deployment controller copies those annotations onto the ReplicaSet each
rollout makes, so every revision in `kubectl rollout history` keeps the release it ran.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.errors import SutraError
from ..core.references import image_parts
from ..core.stack import Stack
from ..k8s.manifests import namespace_of, render
from ..k8s.rollout import check_context
from ..tools.registry import RegistryClient, split_repository
from .release import Release

log = logging.getLogger("sutra")

DOMAIN = "sutra.ai"
RELEASE_ANNOTATION = f"{DOMAIN}/release"
COMMIT_ANNOTATION = f"{DOMAIN}/commit"
DIGEST_ANNOTATION = f"{DOMAIN}/digest"
CHANGE_CAUSE = "kubernetes.io/change-cause"
# What a deploy writes on each Deployment (`annotations_for`), and a rollback puts back.
RELEASE_KEYS = (RELEASE_ANNOTATION, COMMIT_ANNOTATION, DIGEST_ANNOTATION, CHANGE_CAUSE)
REVISION = "deployment.kubernetes.io/revision"


@dataclass(frozen=True)
class Revision:
    revision: int
    release: str | None
    digest: str | None
    time: str | None  # when the rollout made it (the ReplicaSet's creationTimestamp)


@dataclass(frozen=True)
class ServiceHistory:
    name: str
    current: int | None  # the revision the Deployment runs now
    revisions: tuple[Revision, ...]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "current": self.current, "revisions": [asdict(r) for r in self.revisions]}

    def digest_of(self, release: str) -> str | None:
        """The digest the newest revision of ``release`` ran, if the history has one."""
        for revision in sorted(self.revisions, key=lambda r: r.revision, reverse=True):
            if revision.release == release and revision.digest:
                return revision.digest
        return None


@dataclass
class Releases:
    env: str
    services: list[ServiceHistory] = field(default_factory=list)
    registry_tags: dict[str, list[str]] = field(default_factory=dict)  # image -> tags
    local_tags: dict[str, list[str]] | None = None  # `--env local`: the engine's tags per image
    registry_unread: str | None = None  # why the registry's tags are missing, when they are

    def as_json(self) -> dict[str, Any]:
        data = {
            "env": self.env,
            "services": [s.as_json() for s in self.services],
            "registry_tags": self.registry_tags,
        }
        if self.local_tags is not None:
            data["local_tags"] = self.local_tags
        if self.registry_unread:
            data["registry_unread"] = self.registry_unread
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_json(), indent=2)

    def table(self) -> str:
        from tabulate import tabulate

        rows = [
            [
                service.name,
                r.revision,
                "*" if r.revision == service.current else "",
                r.release or "-",
                (r.digest or "-")[:19],
                r.time or "-",
            ]
            for service in self.services
            for r in sorted(service.revisions, key=lambda r: r.revision, reverse=True)
        ]
        tables = []
        if rows:
            tables.append(tabulate(rows, headers=["Service", "Revision", "Now", "Release", "Digest", "Time"]))
        if self.local_tags is not None:
            local = [[image, ", ".join(tags) or "-"] for image, tags in self.local_tags.items()]
            tables.append(tabulate(local, headers=["Local image", "Tags"]))
        if self.registry_tags:
            tags = [[image, ", ".join(tags) or "-"] for image, tags in sorted(self.registry_tags.items())]
            tables.append(tabulate(tags, headers=["Image", "Tags"]))
        if self.registry_unread:
            tables.append(f"Registry tags: not read ({self.registry_unread})")
        return "\n\n".join(tables) or f"no releases found in {self.env}"


def annotations_for(release: str, commit: str | None, digest: str | None) -> dict[str, str]:
    """What a deploy writes on a Deployment's metadata for the revision it makes."""
    notes = {RELEASE_ANNOTATION: release, CHANGE_CAUSE: f"sutra release {release}"}
    if commit:
        notes[COMMIT_ANNOTATION] = commit
        notes[CHANGE_CAUSE] += f" (commit {commit[:12]})"
    if digest:
        notes[DIGEST_ANNOTATION] = digest
    return notes


def record_release(objects: Sequence[dict], release: Release, digests: Mapping[str, str]) -> None:
    """The release, its commit and each image's digest on each Deployment's own metadata.

    Never on the pod template: that would roll every Deployment on every release, even one
    whose image did not change, and a deploy leaves unchanged services running.
    """
    for deployment in (o for o in objects if o.get("kind") == "Deployment"):
        name = deployment["metadata"]["name"]
        annotations = deployment["metadata"].setdefault("annotations", {})
        annotations.update(annotations_for(release.name, release.commit, digests.get(name)))


def rollback_annotations(release: str, digest: str | None) -> dict[str, str | None]:
    """What `inv rollback --to RELEASE` writes on a Deployment it moves (None: removed).

    The commit of the release left is removed, not rewritten (the history does not hold each
    release's commit): a ReplicaSet returned to keeps the commit it was made with.
    """
    notes: dict[str, str | None] = {
        RELEASE_ANNOTATION: release,
        CHANGE_CAUSE: f"sutra rollback to release {release}",
        COMMIT_ANNOTATION: None,
        DIGEST_ANNOTATION: digest,
    }
    return notes


def image_digest(image: str) -> str | None:
    return image_parts(image).digest


def cluster_history(
    replica_sets: Sequence[Mapping], deployments: Sequence[Mapping], stack: Stack
) -> list[ServiceHistory]:
    """Each of the stack's Deployments with the revisions its ReplicaSets record."""
    by_name = {d["metadata"]["name"]: d for d in deployments}
    history = []
    for service in stack.services:
        deployment = by_name.get(service.name)
        if deployment is None:
            continue
        current = _int((deployment["metadata"].get("annotations") or {}).get(REVISION))
        revisions = []
        for rs in replica_sets:
            owners = rs["metadata"].get("ownerReferences") or []
            if not any(o.get("kind") == "Deployment" and o.get("name") == service.name for o in owners):
                continue
            notes = rs["metadata"].get("annotations") or {}
            number = _int(notes.get(REVISION))
            if number is None:
                continue
            containers = rs["spec"]["template"]["spec"]["containers"]
            digest = notes.get(DIGEST_ANNOTATION) or next(
                (image_digest(c.get("image", "")) for c in containers if image_digest(c.get("image", ""))),
                None,
            )
            revisions.append(
                Revision(
                    number, notes.get(RELEASE_ANNOTATION), digest, rs["metadata"].get("creationTimestamp")
                )
            )
        history.append(
            ServiceHistory(service.name, current, tuple(sorted(revisions, key=lambda r: r.revision)))
        )
    return history


def read_cluster(kubectl: Any, namespace: str, stack: Stack) -> list[ServiceHistory]:
    replica_sets = kubectl.get_json("replicasets", namespace).get("items") or []
    deployments = kubectl.get_json("deployments", namespace).get("items") or []
    return cluster_history(replica_sets, deployments, stack)


def registry_tags(stack: Stack, registry: str) -> dict[str, list[str]]:
    """The tags a registry holds for each of the stack's images (`/v2/<name>/tags/list`)."""
    tags = {}
    for service in stack.services:
        host, repository = split_repository(service.reference(registry))
        tags[f"{host}/{repository}"] = RegistryClient(host).tags(repository)
    return tags


def local_tags(engine: Any, stack: Stack) -> dict[str, list[str]]:
    """The tags of the local images, per image name."""
    return {service.image: engine.local_tags(service.image) for service in stack.services}


def release_digests(
    history: Sequence[ServiceHistory],
    stack: Stack,
    release: str,
    registry: str | None,
    names: Sequence[str] = (),
) -> dict[str, str]:
    """Each service's digest of ``release``: from the cluster's history, else the registry.

    A service with neither is exit 2 before anything changes, naming it.
    """
    found: dict[str, str] = {}
    by_name = {h.name: h for h in history}
    missing = []
    for service in stack.select(names):
        digest = by_name[service.name].digest_of(release) if service.name in by_name else None
        if digest is None and registry:
            host, repository = split_repository(service.reference(registry))
            digest = RegistryClient(host).digest(repository, release)
        if digest is None:
            missing.append(service.name)
        else:
            found[service.name] = digest
    if missing:
        where = "the cluster's history" + (f" or {registry}" if registry else "")
        raise SutraError(
            f"release {release!r} not found for {', '.join(missing)} in {where}; "
            "list releases with `inv releases`"
        )
    return found


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def list_releases(kubectl: Any, engine: Any, env: Any, stack: Stack) -> Releases:
    """`inv releases --env E`: the cluster's history and the registry's tags (or, for `local`,
    the engine's tags of the stack's images)."""
    if env is None:
        engine.ensure_available()
        return Releases("local", local_tags=local_tags(engine, stack))
    check_context(kubectl, env)
    namespace = namespace_of(render(kubectl, env, stack))
    releases = Releases(env.name, read_cluster(kubectl, namespace, stack))
    if env.registry:
        # The cluster's revisions stand on their own: a registry that cannot be read is said,
        # not a reason to show nothing.
        try:
            releases.registry_tags = registry_tags(stack, env.registry)
        except SutraError as error:
            releases.registry_unread = f"{env.registry}: {error}"
            log.warning("releases: the registry's tags were not read (%s)", error)
    return releases
