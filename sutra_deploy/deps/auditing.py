"""The audit: for each service package, what it declares against what its code imports, the
findings, and the one edit per declaring file that fixes what metadata can; the report, as a
table and diff or as JSON; and the gate that turns findings into an exit code."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from tabulate import tabulate

from ..core.errors import DependencyProblems, SourceRootError, SutraError
from ..core.stack import Stack
from .edit import edited_text
from .imports import Resolver, package_imports
from .model import (
    COUPLING,
    DEFAULT_FAIL_ON,
    DISAGREEMENT,
    FINDING_KINDS,
    OPTIONAL_UNDECLARED,
    PYPROJECT,
    SETUP_PY,
    UNDECLARED,
    UNUSED,
    Change,
    Declaration,
    DepsPolicy,
    Finding,
    ListEdit,
    PythonPackage,
    parse_requirement,
    requirement_key,
)
from .monorepo import Monorepo, has_metadata, package_folder

log = logging.getLogger("sutra")


@dataclass(frozen=True)
class DepsReport:
    checked: tuple[str, ...]  # the services whose packages were read
    findings: tuple[Finding, ...]
    changes: tuple[Change, ...]
    without_package: tuple[str, ...] = ()  # services asked for by name that have no Python package
    unread: tuple[str, ...] = ()  # "FILE: why", for each source file the audit could not read

    def as_json(self) -> dict:
        return {
            "findings": [f.as_json() for f in self.findings],
            "changes": [{"path": c.path, "diff": c.diff} for c in self.changes],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_json(), indent=2)

    def findings_table(self) -> str:
        rows = [[f.service, f.kind, f.dependency, f.detail] for f in self.findings]
        return tabulate(
            rows, headers=["Service", "Finding", "Dependency", "Detail"], maxcolwidths=[None] * 3 + [72]
        )

    def table(self) -> str:
        if not self.checked:
            return "no Python service package to check"
        if not self.findings:
            return "dependencies match the imports"
        return "\n\n".join([self.findings_table(), *(c.diff.rstrip("\n") for c in self.changes)])


def finding_kinds(names: Sequence[str]) -> frozenset[str]:
    """`--fail-on` values, checked; when none is given, every kind but optional-undeclared."""
    for name in names:
        if name not in FINDING_KINDS:
            raise SutraError(
                f"unknown finding kind {name!r} in --fail-on; known kinds: {', '.join(FINDING_KINDS)}"
            )
    return frozenset(names or DEFAULT_FAIL_ON)


def audit(
    stack: Stack, root: Path, names: Sequence[str], policy: DepsPolicy, *, quiet: bool = False
) -> DepsReport:
    """Compare declared dependencies with imports for the named services (all when none).
    What it passes over (services without a package, files it cannot read) goes to the log,
    unless ``quiet``: a second audit of the same tree would only repeat it."""
    selected = stack.select(names)
    if not any(has_metadata(package_folder(root, s, stack)) for s in stack.services):
        # Otherwise a wrong --root would pass the check with nothing checked.
        raise SourceRootError(f"no Python service package under {root}; is it a Sutra checkout?")
    monorepo = Monorepo(root, stack)
    by_service = {s.name: monorepo.package_at(package_folder(root, s, stack)) for s in stack.services}
    services = {pkg.key: (name, pkg) for name, pkg in by_service.items() if pkg is not None}
    checked: list[str] = []
    findings: list[Finding] = []
    changes: list[Change] = []
    without: list[str] = []
    unread: list[str] = []
    seen: set[Path] = set()
    for service in selected:
        pkg = by_service[service.name]
        if pkg is None:
            if service.name in names:
                rel = package_folder(root, service, stack).relative_to(root).as_posix()
                without.append(
                    f"{service.name} has no Python package ({rel} has no {SETUP_PY} or {PYPROJECT})"
                )
            continue
        if pkg.folder in seen:
            continue
        seen.add(pkg.folder)
        checked.append(service.name)
        package_audit = PackageAudit(service.name, pkg, monorepo, services, policy)
        findings += package_audit.findings
        changes += package_audit.changes()
        unread += package_audit.unread
    if not quiet:
        for line in without:
            log.info(line)
        for line in unread:
            log.warning("skipped %s", line)
    return DepsReport(tuple(checked), tuple(findings), tuple(changes), tuple(without), tuple(unread))


def gate(report: DepsReport, fail_on: Collection[str], *, applied: bool = False) -> None:
    """Exit 1 on findings of the failing kinds; only warn about the others."""
    failing = [f for f in report.findings if f.kind in fail_on]
    tolerated = [f for f in report.findings if f.kind not in fail_on]
    if tolerated:
        kinds = ", ".join(sorted({f.kind for f in tolerated}))
        log.warning("warning: %d %s finding(s), not failing the check", len(tolerated), kinds)
    if not failing:
        return
    services = ", ".join(dict.fromkeys(f.service for f in failing))
    count = f"{len(failing)} dependency problem{'s' if len(failing) != 1 else ''} in {services}"
    fixable = sum(f.fixable for f in failing)
    # Coupling in code needs the code changed; an optional import, or an unused declaration
    # beside files not read, needs someone to decide.
    by_hand = [f for f in failing if not f.fixable]
    code_only = all(f.kind == COUPLING for f in by_hand)
    need = "a code change, not a metadata one" if code_only else "a change by hand"
    if applied:
        hint = f"left after --apply: they need {need} (see the table)"
    elif fixable == len(failing):
        hint = "run `inv fix-deps --apply` to fix them"
    elif fixable:
        rest = "a code change" if code_only else "a change by hand"
        hint = f"`inv fix-deps --apply` fixes {fixable}; the rest need {rest} (see the table)"
    else:
        hint = f"they need {need} (see the table)"
    raise DependencyProblems(f"{count}; {hint}")


# --- the audit of one package -------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    declaration: Declaration
    index: int
    raw: str
    requirement: Requirement


class PackageAudit:
    """One service package: its findings, and what to remove and add to fix them."""

    def __init__(
        self,
        service: str,
        pkg: PythonPackage,
        monorepo: Monorepo,
        services: Mapping[str, tuple[str, PythonPackage]],  # canonical distribution -> its service
        policy: DepsPolicy,
    ) -> None:
        self.service = service
        self.pkg = pkg
        self.monorepo = monorepo
        self.services = services
        self.policy = policy
        self.findings: list[Finding] = []
        self.remove: set[str] = set()
        self.add: dict[str, str] = {}  # canonical name -> requirement to add
        self.declarations = monorepo.declarations(pkg)
        self.optional = monorepo.optional_names(pkg)  # declared in an extra: declared, never edited
        self.entries: dict[str, list[_Entry]] = {}
        for declaration in self.declarations:
            for index, raw in enumerate(declaration.requirements):
                requirement = parse_requirement(raw, declaration.rel)
                key = canonicalize_name(requirement.name)
                self.entries.setdefault(key, []).append(_Entry(declaration, index, raw, requirement))
        code = package_imports(
            pkg, Resolver(monorepo.module_owner, policy.import_names), monorepo.root, policy.max_file_bytes
        )
        self.imports = code.by_distribution
        self.unread = code.unread
        coupled = self._coupling()
        self._undeclared(coupled)
        self._unused(coupled)
        self._disagreement()

    def other_service(self, key: str) -> str | None:
        found = self.services.get(key)
        return found[0] if found and found[0] != self.service else None

    def report(self, kind: str, dependency: str, detail: str, fixable: bool = True) -> None:
        self.findings.append(Finding(self.service, kind, dependency, detail, fixable))

    def _coupling(self) -> list[str]:
        coupled = []
        for key, entries in self.entries.items():
            other = self.other_service(key)
            if other is None:
                continue
            coupled.append(key)
            name = entries[0].requirement.name
            detail = (
                f"{self.pkg.distribution} declares {entries[0].raw}, the package of the {other} service, "
                f"so its image installs everything {other} needs; services talk over the network"
            )
            uses = self.imports.get(key, (name, []))[1]
            if uses:
                detail += (
                    f"; but {uses[0].where} imports {uses[0].module}: call {other} over the network "
                    "instead, then run fix-deps again (--apply keeps the dependency until then)"
                )
                self.report(COUPLING, name, detail, fixable=False)
            else:
                self.remove.add(key)
                self.report(COUPLING, name, detail)
        return coupled

    def _undeclared(self, coupled: list[str]) -> None:
        for key, (name, uses) in self.imports.items():
            if key in self.entries or key == self.pkg.key:
                continue
            first = uses[0]
            places = first.where + (f" (and {len(uses) - 1} more)" if len(uses) > 1 else "")
            other = self.other_service(key)
            if other is not None:
                self.report(
                    COUPLING,
                    name,
                    f"{places} imports {first.module}, the {other} service's code: call it over the "
                    "network instead (--apply cannot fix this)",
                    fixable=False,
                )
                continue
            if key in self.optional:
                continue
            required = [u for u in uses if not u.optional]
            if not required:
                self.report(
                    OPTIONAL_UNDECLARED,
                    name,
                    f"{first.module} is imported in {places}, guarded: the code runs on without it; "
                    f"no optional extra declares it (declare it in one if {self.service} should "
                    "use it; --apply leaves it)",
                    fixable=False,
                )
                continue
            first = required[0]
            places = first.where + (f" (and {len(required) - 1} more)" if len(required) > 1 else "")
            through = [(c, spec) for c in coupled if (spec := self._declared_by(c).get(key))]
            if through:
                via, spec = through[0]
                being = (
                    "which is being removed" if via in self.remove else "which is another service's package"
                )
                detail = (
                    f"{first.module} is imported in {places} and was only installed through "
                    f"{self._name(via)}, {being}"
                )
            else:
                spec = self.policy.known_specs.get(key, name)
                detail = f"{first.module} is imported in {places} but not declared"
            self.add[key] = spec
            self.report(UNDECLARED, name, f"{detail}; adds {spec}")

    def _unused(self, coupled: list[str]) -> None:
        for key, entries in self.entries.items():
            if key in self.imports or key in coupled or key in self.policy.runtime_only:
                continue
            detail = (
                f"{entries[0].raw} is declared in {entries[0].declaration.file} but nothing in "
                f"{self.pkg.rel} imports it (if it is needed without an import, add it to "
                "sutra.deps.runtime_only)"
            )
            if self.unread:
                # A file not read may be the one that imports it.
                detail += f"; --apply keeps it: not all of {self.pkg.rel} could be read (see the log)"
                self.report(UNUSED, entries[0].requirement.name, detail, fixable=False)
                continue
            self.remove.add(key)
            self.report(UNUSED, entries[0].requirement.name, detail)

    def _disagreement(self) -> None:
        if len(self.declarations) < 2:
            return
        for key in self.entries:
            if key in self.remove:
                continue
            pyproject, setup_py = self._in(PYPROJECT, key), self._in(SETUP_PY, key)
            if _same(pyproject, setup_py):
                continue
            name = self.entries[key][0].requirement.name
            if not setup_py:
                detail = f"{PYPROJECT} declares {_listed(pyproject)}, {SETUP_PY} does not"
            elif not pyproject:
                detail = f"{SETUP_PY} declares {_listed(setup_py)}, {PYPROJECT} does not"
            else:
                # setuptools takes [project].dependencies and ignores install_requires when both exist.
                detail = (
                    f"{PYPROJECT} declares {_listed(pyproject)}, {SETUP_PY} {_listed(setup_py)}; "
                    f"{PYPROJECT} wins, as it does for setuptools"
                )
            self.report(DISAGREEMENT, name, detail)

    def _in(self, file: str, key: str) -> list[_Entry]:
        return [e for e in self.entries.get(key, []) if e.declaration.file == file]

    def _declared_by(self, key: str) -> dict[str, str]:
        return self.monorepo.declared_names(self.services[key][1])

    def _name(self, key: str) -> str:
        return self.entries[key][0].requirement.name

    def changes(self) -> list[Change]:
        """One edit per declaring file, so that each ends up with the same requirements."""
        wanted: dict[str, list[str]] = {}  # canonical name -> requirements, in the order they go
        for key in self.entries:
            if key in self.remove:
                continue
            authority = self._in(PYPROJECT, key) or self._in(SETUP_PY, key)
            wanted[key] = [e.raw for e in authority]
        for key, spec in self.add.items():
            wanted.setdefault(key, [spec])
        changes = []
        for declaration in self.declarations:
            edit = ListEdit()
            present: set[str] = set()
            for index, raw in enumerate(declaration.requirements):
                key = requirement_key(raw, declaration.rel)
                if key not in wanted:
                    edit.drop.add(index)
                elif key in present:
                    continue
                else:
                    present.add(key)
                    mine = [e for e in self.entries[key] if e.declaration is declaration]
                    if not _same(mine, [_Entry(declaration, 0, r, Requirement(r)) for r in wanted[key]]):
                        edit.replace[index] = wanted[key][0]
                        edit.drop.update(e.index for e in mine[1:])
                        edit.append += wanted[key][1:]
            edit.append += [raw for key, raws in wanted.items() if key not in present for raw in raws]
            if edit:
                after = edited_text(declaration, edit)
                if after != declaration.text:
                    changes.append(Change(declaration.rel, declaration.text, after, declaration.encoding))
        return changes


def _same(a: Sequence[_Entry], b: Sequence[_Entry]) -> bool:
    """The same requirements, however spelled (`PyYAML >= 6` is `pyyaml>=6`)."""

    def normal(entries: Sequence[_Entry]) -> list[tuple[str, ...]]:
        return sorted(
            (
                canonicalize_name(r.name),
                ",".join(sorted(r.extras)),
                str(r.specifier),
                str(r.marker or ""),
                r.url or "",
            )
            for r in (e.requirement for e in entries)
        )

    return normal(a) == normal(b)


def _listed(entries: Sequence[_Entry]) -> str:
    return ", ".join(e.raw for e in entries)
