"""`inv dockerfiles` itself: every missing v2 Dockerfile planned (read only), then shown or
written, and reported. The parts it assembles are listed in the package's docstring."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tabulate import tabulate

from ...core.errors import SourceRootError, SutraError
from ...core.stack import Service, Stack
from ...deps import DepsPolicy, audit
from ...deps.monorepo import Monorepo, package_folder
from ...tools import files
from .dockerignore import plan_dockerignores, write_dockerignores
from .environment import check_carries_no_credential
from .image import plan_image
from .layers import share_layers
from .lock import read_lock
from .model import DockerfileSettings, Generated, ImageSpec, Inputs, Status
from .package import PackageFacts, read_package
from .preplan import PrePlan, read_preplan
from .render import render

log = logging.getLogger("sutra")


@dataclass(frozen=True)
class _Candidate:
    service: Service
    target: str  # the v2 Dockerfile, relative to the root
    old: str | None  # the pre-plan Dockerfile, when the checkout has one
    facts: PackageFacts


def generate_dockerfiles(
    stack: Stack,
    root: Path,
    *,
    names: Sequence[str],
    extras: Sequence[str] = (),
    settings: Mapping[str, Any] | None = None,
    lock: str | None = None,
    deps_settings: Mapping[str, Any],
    write: bool,
    force: bool,
    dry: bool = False,
) -> DockerfilesReport:
    """`inv dockerfiles`: plan every missing v2 Dockerfile, then write them (``write``) or
    return them to be shown. ``lock`` (the --lock flag) wins over the setting
    sutra.dockerfiles.lock."""
    chosen = DockerfileSettings.from_settings(settings)
    if lock is not None:
        chosen = replace(chosen, lock=lock)
    results = plan_dockerfiles(
        stack,
        root,
        names=names,
        extras=extras,
        settings=chosen,
        policy=DepsPolicy.from_settings(deps_settings),
        force=force,
    )
    if write:
        results = write_generated(root, results, dry=dry)
        # Each context a Dockerfile was written for gets a .dockerignore when it has none.
        contexts = [stack.service(r.service) for r in results if r.text is not None]
        write_dockerignores(root, plan_dockerignores(stack, root, contexts), dry=dry)
    report = DockerfilesReport(tuple(results), root, write=write, dry=dry)
    report.log_outcome()
    return report


def plan_dockerfiles(
    stack: Stack,
    root: Path,
    *,
    names: Sequence[str],
    extras: Sequence[str],
    settings: DockerfileSettings,
    policy: DepsPolicy,
    force: bool,
) -> list[Generated]:
    """Each selected Python service's v2 Dockerfile as it would be written; reads only."""
    selected = stack.select(names)
    monorepo = Monorepo(root, stack)
    by_package: dict[str, str] = {}
    for service in stack.services:
        pkg = monorepo.package_at(package_folder(root, service, stack))
        if pkg is not None:
            by_package.setdefault(pkg.key, service.name)
    results: dict[str, Generated] = {}
    candidates: list[_Candidate] = []
    for service in selected:
        candidate = _candidate(stack, root, monorepo, service, named=service.name in names, force=force)
        if isinstance(candidate, Generated):
            results[service.name] = candidate
        elif candidate is not None:
            candidates.append(candidate)
    if not candidates and not results:
        raise SourceRootError(
            f"no Python service package under {root} (none of {', '.join(s.name for s in selected)} "
            "has a pyproject.toml or setup.py where stack.toml puts its Dockerfile); point --root at a "
            "Sutra checkout"
        )
    _check_extras(extras, candidates)
    findings = audit(stack, root, [c.service.name for c in candidates], policy).findings if candidates else ()
    lock = read_lock(root, settings.lock) if settings.lock and candidates else None
    planned = []
    for candidate in candidates:
        service = candidate.service
        preplan = _preplan(root, service, candidate.old)
        spec = plan_image(
            Inputs(
                stack=stack,
                service=service,
                root=root,
                monorepo=monorepo,
                facts=candidate.facts,
                preplan=preplan,
                findings=[f for f in findings if f.service == service.name],
                services_by_package=by_package,
                extras=[e for e in extras if e in candidate.facts.extras],
                settings=settings,
                lock=lock,
            )
        )
        planned.append((candidate, preplan, spec))
    shared = share_layers([spec for _, _, spec in planned])
    for (candidate, preplan, _), spec in zip(planned, shared, strict=True):
        service = candidate.service
        text = render(spec)
        check_carries_no_credential(service.name, candidate.target, text, preplan)
        path = root / candidate.target
        existing = path.read_bytes().decode("utf-8", "replace") if path.is_file() else None
        status = Status.NEW if existing is None else Status.UNCHANGED if existing == text else Status.CHANGED
        notes = (*(preplan.notes if preplan else ()), *spec.notes, *_layer_notes(spec))
        results[service.name] = Generated(
            service.name, candidate.target, status, text, existing, spec.summary(), notes
        )
    return [results[s.name] for s in selected if s.name in results]


def _layer_notes(spec: ImageSpec) -> list[str]:
    return [
        f"shares {len(layer.requirements)} dependencies ({', '.join(layer.requirements)}, with theirs) "
        f"with {', '.join(n for n in layer.services if n != spec.service.name)} in one layer ({layer.folder})"
        for layer in spec.shared
    ]


def _candidate(
    stack: Stack, root: Path, monorepo: Monorepo, service: Service, *, named: bool, force: bool
) -> _Candidate | Generated | None:
    """The service, if it is a Python service whose v2 Dockerfile is to be generated."""
    target = service.dockerfile(stack.default_version)
    folder = package_folder(root, service, stack)
    pkg = monorepo.package_at(folder)
    rel_folder = folder.relative_to(root).as_posix()
    if pkg is None:
        if named:
            raise SutraError(
                f"{service.name} is not a Python service here: {rel_folder} has no pyproject.toml or "
                "setup.py (its Dockerfile is written by hand)"
            )
        log.debug("%s: no Python package at %s; skipped", service.name, rel_folder)
        return None
    index = stack.versions.index(stack.default_version)
    old = service.dockerfile(stack.versions[index - 1]) if index > 0 else None
    if old == target:
        if named:
            raise SutraError(
                f"{service.name}: stack.toml gives every version the same Dockerfile ({target}); give "
                f"{stack.default_version} its own (Dockerfile.optimized) to generate it"
            )
        return None
    context = root / service.context
    if not context.is_dir():
        raise SourceRootError(f"{service.name}: build context {service.context} not found under {root}")
    try:
        folder.resolve().relative_to(context.resolve())
    except ValueError:
        raise SutraError(
            f"{service.name}: its package {rel_folder} is outside its build context {service.context} "
            "(stack.toml)"
        ) from None
    if (root / target).exists() and not force:
        return Generated(service.name, target, Status.EXISTS)
    old = old if old is not None and (root / old).is_file() else None
    return _Candidate(service, target, old, read_package(monorepo, pkg))


def _check_extras(extras: Sequence[str], candidates: Sequence[_Candidate]) -> None:
    known = {name for c in candidates for name in c.facts.extras}
    if extras and not candidates:
        raise SutraError(
            f"--extras {extras[0]}: no Dockerfile is to be written (every v2 Dockerfile exists; "
            "--force writes them again)"
        )
    for name in extras:
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise SutraError(
                f"unknown extra {name!r} for {', '.join(c.service.name for c in candidates)}; "
                f"extras declared: {listed}"
            )


def _preplan(root: Path, service: Service, old: str | None) -> PrePlan | None:
    if old is None:
        return None
    return read_preplan(root / old, old, root / service.context, root)


# --- acting and reporting -------------------------------------------------------------


def write_generated(root: Path, results: Sequence[Generated], *, dry: bool) -> list[Generated]:
    """Write what is new or changed; what is unchanged or was not generated stays untouched."""
    for result in results:  # every path checked before the first is written
        if result.status.to_write and result.text is not None:
            files.checkout_target(root / result.path, root)
    out = []
    for result in results:
        if not result.status.to_write or result.text is None:
            out.append(result)
            continue
        path = root / result.path
        if dry:
            log.info("dry run: would write %s", result.path)
            out.append(result)
            continue
        current = path.read_bytes().decode("utf-8", "replace") if path.exists() else None
        if current != result.existing:
            raise SutraError(f"{result.path} changed while dockerfiles ran; run it again")
        _write_atomically(path, result.text, root)
        if path.read_bytes().decode("utf-8") != result.text:  # read back: converged or loud
            raise SutraError(f"{result.path}: written, but reads back different")
        log.info("wrote %s", result.path)
        out.append(replace(result, written=True))
    return out


def _write_atomically(path: Path, text: str, root: Path) -> None:
    files.replace_file(path, text.encode("utf-8"), root=root, suffix=".dockerfiles")


@dataclass(frozen=True)
class DockerfilesReport:
    """What `inv dockerfiles` made of each service: for people, the table of what was written
    (--write), else the new files and the diffs; for machines, one JSON object."""

    results: tuple[Generated, ...]
    root: Path
    write: bool
    dry: bool

    def log_outcome(self) -> None:
        """On stderr, as it is decided: each service's notes and what was left as it was."""
        for result in self.results:
            for note in result.notes:
                log.info("%s: %s", result.service, note)
            if result.status is Status.EXISTS:
                log.info(
                    "%s: %s exists; --force compares it with a generated one", result.service, result.path
                )
            elif result.status is Status.UNCHANGED:
                log.info("%s: %s is up to date", result.service, result.path)
        if self.write:
            return
        shown = [r for r in self.results if r.status.to_write]
        if shown:
            log.info("nothing written: --write writes %s", "them" if len(shown) > 1 else "it")
        elif not any(r.status is Status.UNCHANGED for r in self.results):
            log.info("nothing to generate: every v2 Dockerfile exists (--force compares them)")

    def table(self) -> str:
        if self.write:
            rows = [[r.service, r.path, _outcome(r, self.dry)] for r in self.results]
            return tabulate(rows, headers=["Service", "Dockerfile", "Result"])
        shown = [r for r in self.results if r.status.to_write]
        parts = []
        for result in shown:
            if result.status is Status.NEW:
                if len(shown) > 1:
                    parts.append(f"# ==> {result.path} (new) <==")
                parts.append(result.text.rstrip("\n"))  # type: ignore[union-attr]
            else:
                parts.append(result.diff.rstrip("\n"))
        return "\n".join(parts)

    def to_json(self) -> str:
        return json.dumps(
            {"root": str(self.root), "write": self.write, "services": [r.as_json() for r in self.results]},
            indent=2,
        )


def _outcome(result: Generated, dry: bool) -> str:
    if result.written:
        return "written"
    if result.status.to_write:
        return "would write (dry run)" if dry else "not written"
    return {Status.UNCHANGED: "unchanged", Status.EXISTS: "exists, kept"}[result.status]
