"""Tagging and pushing the stack's images to a registry (the plan's Phase 4.1)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from tabulate import tabulate

from ..core.errors import ImageMissing, PushFailed, ReleaseExists, SutraError
from ..core.references import validate_registry
from ..core.stack import Service
from ..tools.engine import Engine
from ..tools.registry import RegistryClient, split_repository
from .release import Release

log = logging.getLogger("sutra")

VERSION_LABEL = "org.sutra.version"  # which version's Dockerfiles an image was built from (`inv build`)

__all__ = ["PushFailed", "PushReport", "Pushed", "ReleaseExists", "push_images"]


@dataclass(frozen=True)
class Pushed:
    service: str
    reference: str
    digest: str


def push_images(
    engine: Engine,
    services: Sequence[Service],
    *,
    registry: str,
    version: str,
    release: Release,
    floating: Sequence[str],
    force: bool = False,
    release_tag: bool = True,
) -> list[Pushed]:
    """Push each service as R/<image>:<release>, then move its floating tags (``:v2``, ``:latest``).

    A release tag names one build for good: the registry is asked first, and a clean release
    that is already there with another image is refused unless ``force``; the same image is
    not pushed again. A ``-dirty`` release names no commit and is overwritten, with a warning.
    Without ``release_tag`` only the floating tags move (a deploy moves them once its release
    rolled out, the release itself already pushed).
    """
    validate_registry(registry)
    engine.ensure_available()
    sources = {service.name: release_source(engine, service, version, release) for service in services}
    unchanged = set() if engine.dry else already_there(engine, services, sources, registry, release, force)
    targets = [
        (service, service.reference(registry, tag=tag))
        for service in services
        for tag in ((release.name,) if release_tag else ()) + tuple(floating)
    ]
    for service, target in targets:  # every tag first, as the plan's script does, then the pushes
        engine.tag(sources[service.name], target)
    pushed = []
    for service, target in targets:
        if target in unchanged:
            log.info("[push] %s is already in the registry with this image: not pushed again", target)
            pushed.append(Pushed(service.name, target, unchanged[target]))
            continue
        digest = engine.push(target)
        pushed.append(Pushed(service.name, target, digest or "(dry run)"))
    return pushed


def release_source(engine: Engine, service: Service, version: str, release: Release) -> str:
    """The local image to push: the one built as the release (if it is a build of ``version``),
    else the version's build."""
    as_release = service.reference(tag=release.name)
    for ref in (as_release, service.ref(version)):
        if engine.dry:
            return ref
        info = engine.image(ref)
        # A release tag on a build of another version is not this version's release.
        if info is not None and (ref != as_release or info.labels.get(VERSION_LABEL, version) == version):
            return ref
    raise ImageMissing(service.ref(version), f"build it with `inv build --version {version}`")


def already_there(
    engine: Engine,
    services: Sequence[Service],
    sources: dict[str, str],
    registry: str,
    release: Release,
    force: bool,
) -> dict[str, str]:
    """Release tags the registry already holds with the same image (target -> digest); a clean
    release held with another image is refused, before anything is pushed."""
    same: dict[str, str] = {}
    for service in services:
        target = service.reference(registry, tag=release.name)
        host, repository = split_repository(service.reference(registry))
        try:
            manifest = RegistryClient(host).manifest(repository, release.name)
        except SutraError as error:
            if not force:
                raise
            # --force overwrites whatever is there, so it must not depend on reading it (a
            # registry behind a credential helper cannot be read by the registry client).
            log.warning("[push] could not ask %s for %s (%s); --force pushes anyway", host, target, error)
            continue
        if manifest is None:
            continue
        held = (manifest.body.get("config") or {}).get("digest")
        local = engine.image(sources[service.name])
        # The classic image store's ID is the config digest; the containerd store's is the
        # manifest's (or index's) digest, which a push also records in RepoDigests.
        if local is not None and (
            held == local.id
            or manifest.digest == local.id
            or f"{service.reference(registry)}@{manifest.digest}" in local.repo_digests
        ):
            same[target] = manifest.digest
            continue
        if release.dirty or force:
            why = "a -dirty release names no commit" if release.dirty else "--force"
            log.warning("[push] overwriting %s (%s): it held image %s", target, why, held)
            continue
        raise ReleaseExists(
            f"{target} already exists with another image (registry: {manifest.digest}, image {held}; "
            f"this build: image {local.id if local else '?'}); a release names one build: "
            "build and push a new release, or overwrite with --force"
        )
    return same


@dataclass(frozen=True)
class PushReport:
    """What `inv push` pushed: each reference and the digest the registry stored."""

    release: str
    pushed: tuple[Pushed, ...]

    def table(self) -> str:
        return tabulate([[p.reference, p.digest] for p in self.pushed], headers=["Pushed", "Digest"])

    def to_json(self) -> str:
        pushed = [{"service": p.service, "reference": p.reference, "digest": p.digest} for p in self.pushed]
        return json.dumps({"release": self.release, "pushed": pushed}, indent=2)
