"""What the deps stage installs: the package's declared requirements (with the extras asked
for), the monorepo packages they reach (copied into the build and installed from their
folders), the pre-plan image's tighter pins kept as constraints, and build-only Debian
packages. A coupling to another service, however it is reached, is refused; so is a monorepo
package outside the build context."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from ...deps.model import COUPLING, UNDECLARED, PythonPackage
from .model import LOCAL, ImagePlanning, within
from .package import local_closure, monorepo_packages
from .pins import compatible, tighter_clauses


def check_findings(plan: ImagePlanning) -> None:
    """Never bake a coupling (or what only came through one) into an image."""
    blocking = [f for f in plan.inputs.findings if f.kind in (COUPLING, UNDECLARED)]
    if not blocking:
        return
    listed = "; ".join(f"{f.kind} {f.dependency}" for f in blocking)
    command = f"inv fix-deps --root {plan.hint_root()} --service {plan.service.name}"
    if all(f.fixable for f in blocking):
        hint = f"run `{command} --apply`, then this again"
    else:
        hint = f"`{command}` shows what needs a code change first"
    raise plan.refuse(
        f"fix-deps finds {listed} in {plan.facts.pkg.rel}; an image must not bake them in: {hint}"
    )


def declared_requirements(plan: ImagePlanning) -> list[Requirement]:
    """What the package declares, with the extras asked for; never another service's package."""
    own = plan.facts.pkg.key
    chosen = list(plan.facts.requirements)
    for name in plan.inputs.extras:
        if name in plan.facts.extras:
            chosen += plan.facts.extras[name]
    kept, seen = [], set()
    for requirement in chosen:
        key = canonicalize_name(requirement.name)
        other = plan.inputs.services_by_package.get(key)
        if other is not None and other != plan.service.name:
            raise plan.refuse(
                f"{plan.facts.declared_in} declares {requirement}, the package of the {other} service: "
                f"an image must not bake a coupling in: run `inv fix-deps --root {plan.hint_root()} "
                f"--service {plan.service.name} --apply`, then this again"
            )
        if key == own or str(requirement) in seen:
            continue
        seen.add(str(requirement))
        kept.append(requirement)
    left_out = sorted(set(plan.facts.extras) - set(plan.inputs.extras))
    if left_out:
        plan.notes.append(f"optional extras left out: {', '.join(left_out)} (--extras NAME adds one)")
    return kept


def local_packages(
    plan: ImagePlanning, requirements: list[Requirement]
) -> list[tuple[PythonPackage, Requirement, str]]:
    """The monorepo packages the requirements name, and theirs: never another service's,
    even through a shared package (pip would look for it on an index)."""
    local = {
        key: pkg for key, pkg in monorepo_packages(plan.inputs.monorepo).items() if key != plan.facts.pkg.key
    }
    found = local_closure(plan.inputs.monorepo, tuple(requirements), local, plan.facts.pkg.distribution)
    for pkg, _, asker in found:
        other = plan.inputs.services_by_package.get(pkg.key)
        if other is not None:
            raise plan.refuse(
                f"{asker} declares {pkg.distribution}, the package of the {other} service: an image must "
                f"not bake a coupling in; make {asker} reach {other} over the network"
            )
        if not within(pkg.folder, plan.context):
            raise plan.refuse(
                f"{asker} depends on {pkg.distribution} ({pkg.rel}), a monorepo package outside "
                f"the build context {plan.service.context}: build {plan.service.name} from the root "
                f'(context = "." in stack.toml) or install {pkg.distribution} from an index'
            )
        plan.notes.append(f"monorepo package {pkg.distribution} ({pkg.rel}) copied and installed")
    return found


def requirements_file(
    requirements: list[Requirement], local: list[tuple[PythonPackage, Requirement, str]]
) -> list[str]:
    """The lines of the requirements file pip installs: what comes from an index, then each
    monorepo package from its folder in the deps stage."""
    local_keys = {pkg.key for pkg, _, _ in local}
    lines = [str(r) for r in requirements if canonicalize_name(r.name) not in local_keys]
    lines += [_local_line(pkg, requirement) for pkg, requirement, _ in local]
    return lines


def _local_line(pkg: PythonPackage, requirement: Requirement) -> str:
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    return f"{LOCAL}/{pkg.folder.name}{extras}"


def check_lock(plan: ImagePlanning, requirements: list[Requirement], local: set[str]) -> None:
    """Every declared requirement the lock pins is pinned inside its declared range: a stale
    lock is refused (pip would only fail later, inside the build)."""
    lock = plan.inputs.lock
    if lock is None:
        return
    unpinned = []
    for requirement in requirements:
        key = canonicalize_name(requirement.name)
        if key in local:
            continue
        pin = lock.pin(key)
        if pin is None:
            unpinned.append(requirement.name)
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            raise plan.refuse(
                f"{lock.path}:{pin.line} pins {pin.text}, outside {plan.facts.declared_in}'s "
                f"{requirement}: the lock is stale; regenerate it"
            )
    if lock.hashed:
        plan.notes.append(f"{lock.path}'s hashes are not carried: the Dockerfile pins versions only")
    if unpinned:
        plan.notes.append(
            f"{lock.path} does not pin {', '.join(unpinned)}: pip picks a version at each build"
        )


def kept_constraints(
    plan: ImagePlanning, requirements: list[Requirement], local: set[str]
) -> list[tuple[str, str]]:
    """Old pins tighter than the metadata, kept as constraints; the rest reported. With a lock,
    its pins are the constraints: an old pin of a package it pins is not kept."""
    if plan.preplan is None:
        return []
    lock = plan.inputs.lock
    declared = {canonicalize_name(r.name): r for r in requirements}
    old: dict[str, list] = {}
    for pin in plan.preplan.pins:
        if lock is not None and lock.pin(pin.requirement.name) is not None:
            continue
        old.setdefault(canonicalize_name(pin.requirement.name), []).append(pin)
    kept: list[tuple[str, str]] = []
    not_declared = []
    for key, pins in old.items():
        if key in local or key == plan.facts.pkg.key:
            continue
        if key not in declared:
            not_declared.append(pins[0].requirement.name)
            continue
        requirement = declared[key]
        old_spec = SpecifierSet(
            ",".join(str(p.requirement.specifier) for p in pins if p.requirement.specifier)
        )
        added = tighter_clauses(requirement.specifier, old_spec)
        if not len(added):
            continue
        where = pins[0].where
        mine = f"{requirement.name}{requirement.specifier}" if requirement.specifier else requirement.name
        if not compatible(requirement.specifier, old_spec):
            plan.notes.append(
                f"{where} pins {requirement.name}{old_spec}, which contradicts "
                f"{plan.facts.declared_in}'s "
                f"{mine}: the metadata wins"
            )
            continue
        constraint = f"{requirement.name}{added}"
        kept.append((constraint, f"{where}; declared {mine}"))
        plan.notes.append(
            f"constraint {constraint} kept: {where} pins it tighter than "
            f"{Path(plan.facts.declared_in).name}'s {mine}"
        )
    if not_declared:
        names = ", ".join(sorted(set(not_declared), key=str.lower))
        plan.notes.append(
            f"left out what {plan.preplan.path} installed but {plan.facts.declared_in} does not "
            f"declare: {names}"
        )
    return sorted(kept)


def build_packages_for(plan: ImagePlanning, requirements_lines: list[str]) -> tuple[str, ...]:
    """The build-only Debian packages the deps stage installs before pip (none when there is
    nothing to install); without them, what the pre-plan image installed is said."""
    build_packages = plan.inputs.settings.packages_for(plan.service.name)
    if build_packages and not requirements_lines:
        plan.notes.append("build packages left out: there is nothing to install")
        build_packages = ()
    _note_system_packages(plan, build_packages)
    return build_packages


def _note_system_packages(plan: ImagePlanning, build_packages: tuple[str, ...]) -> None:
    if plan.preplan is None or not plan.preplan.system_packages or build_packages:
        return
    managers: dict[str, list[str]] = {}
    for manager, package in plan.preplan.system_packages:
        managers.setdefault(manager, []).append(package)
    listed = "; ".join(f"{m} {' '.join(p)}" for m, p in managers.items())
    plan.notes.append(
        f"{plan.preplan.path} installed system packages ({listed}); "
        "the runtime installs none: if a dependency has no wheel and needs a compiler, set "
        "sutra.dockerfiles.build_packages (Debian packages for the deps stage only)"
    )
