"""Phase 1 of the plan: each service package declares what its code imports, and no other service.

sutra-api was 703 MB because its package declared sutra-hybrid, a separate service, and so
installed hybrid's ML libraries with it. :func:`audit` compares, for each Python service
package of the stack, the dependencies its metadata declares (pyproject.toml's
``[project].dependencies``, setup.py's ``install_requires``, both read statically: running
setup.py could do anything) with the modules its code imports, and proposes one change to
both files. :func:`apply_changes` writes it. Files are edited as syntax trees that keep
their formatting and comments (tomlkit for TOML, libcst for Python), never by pattern.
"""

from __future__ import annotations

import ast
import difflib
import json
import logging
import os
import sys
import tomllib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import libcst as cst
import tomlkit
from libcst.metadata import MetadataWrapper, PositionProvider
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from tabulate import tabulate

from .errors import SutraError
from .stack import Service, Stack

log = logging.getLogger("sutra")

PYPROJECT = "pyproject.toml"
SETUP_PY = "setup.py"

COUPLING = "service-coupling"
UNDECLARED = "undeclared"
UNUSED = "unused"
DISAGREEMENT = "disagreement"
FINDING_KINDS = (COUPLING, UNDECLARED, UNUSED, DISAGREEMENT)

# Folders that hold no code the service runs: tests, build output, environments, caches.
SKIPPED_DIRS = frozenset({"tests", "test", "build", "dist", "venv", "node_modules", "__pycache__"})


class DependencyFileError(SutraError):
    """A package's metadata or code cannot be read statically."""


class DependencyProblems(SutraError):
    exit_code = 1


@dataclass(frozen=True)
class DepsPolicy:
    """What the code alone cannot tell: from the `sutra.deps` settings."""

    runtime_only: frozenset[str]  # canonical names, declared but never imported (ASGI servers)
    import_names: Mapping[str, str]  # dotted import prefix -> distribution, where they differ
    known_specs: Mapping[str, str]  # canonical name -> requirement, for additions nothing else pins

    @classmethod
    def from_settings(cls, raw: Mapping[str, Any]) -> DepsPolicy:
        runtime_only = raw.get("runtime_only") or []
        import_names = dict(raw.get("import_names") or {})
        specs = raw.get("known_specs") or []
        if isinstance(runtime_only, str) or not all(isinstance(n, str) for n in runtime_only):
            raise SutraError(
                f"setting sutra.deps.runtime_only: expected a list of names, got {runtime_only!r}"
            )
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in import_names.items()):
            raise SutraError(
                "setting sutra.deps.import_names: expected a table of import name = distribution"
            )
        known: dict[str, str] = {}
        for spec in specs:
            try:
                known[canonicalize_name(Requirement(spec).name)] = spec
            except (InvalidRequirement, TypeError) as error:
                raise SutraError(
                    f"setting sutra.deps.known_specs: {spec!r} is not a requirement: {error}"
                ) from None
        return cls(frozenset(canonicalize_name(n) for n in runtime_only), import_names, known)


@dataclass(frozen=True)
class PythonPackage:
    folder: Path
    rel: str  # the folder relative to the source root, as messages name it
    distribution: str  # as its metadata spells it
    modules: frozenset[str]  # the top-level modules it provides

    @property
    def key(self) -> str:
        return canonicalize_name(self.distribution)


@dataclass(frozen=True)
class Declaration:
    """One file's dependency list, as written, and where to find it again to edit it."""

    file: Literal["pyproject.toml", "setup.py"]
    path: Path
    rel: str
    text: str
    requirements: tuple[str, ...]
    # setup.py only: the list literal's start, or the setup() call's when install_requires is
    # absent (line, column in characters), to find the same node again in libcst's tree.
    anchor: tuple[Literal["list", "call"], int, int] | None = None


@dataclass(frozen=True)
class Use:
    """One import of a module from outside the package."""

    module: str  # dotted, as written
    path: str  # the importing file, relative to the package folder
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Finding:
    service: str
    kind: str
    dependency: str
    detail: str
    fixable: bool = True  # whether --apply can fix it by editing metadata alone

    def as_json(self) -> dict:
        return {
            "service": self.service,
            "kind": self.kind,
            "dependency": self.dependency,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Change:
    path: str  # relative to the source root
    before: str
    after: str

    @property
    def diff(self) -> str:
        lines = difflib.unified_diff(
            _diff_lines(self.before), _diff_lines(self.after), f"a/{self.path}", f"b/{self.path}"
        )
        return "".join(lines)


@dataclass(frozen=True)
class DepsReport:
    checked: tuple[str, ...]  # the services whose packages were read
    findings: tuple[Finding, ...]
    changes: tuple[Change, ...]
    without_package: tuple[str, ...] = ()  # services asked for by name that have no Python package

    def as_json(self) -> dict:
        return {
            "findings": [f.as_json() for f in self.findings],
            "changes": [{"path": c.path, "diff": c.diff} for c in self.changes],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_json(), indent=2)

    def table(self) -> str:
        rows = [[f.service, f.kind, f.dependency, f.detail] for f in self.findings]
        return tabulate(
            rows, headers=["Service", "Finding", "Dependency", "Detail"], maxcolwidths=[None] * 3 + [72]
        )

    def text(self) -> str:
        if not self.checked:
            return "no Python service package to check"
        if not self.findings:
            return "dependencies match the imports"
        return "\n\n".join([self.table(), *(c.diff.rstrip("\n") for c in self.changes)])


def finding_kinds(names: Sequence[str]) -> frozenset[str]:
    """`--fail-on` values, checked; all kinds when none is given."""
    for name in names:
        if name not in FINDING_KINDS:
            raise SutraError(
                f"unknown finding kind {name!r} in --fail-on; known kinds: {', '.join(FINDING_KINDS)}"
            )
    return frozenset(names or FINDING_KINDS)


def package_folder(root: Path, service: Service, stack: Stack) -> Path:
    """A service's package is the folder of its v2 Dockerfile, whether that file exists or not."""
    return root / Path(service.dockerfile(stack.default_version)).parent


def audit(stack: Stack, root: Path, names: Sequence[str], policy: DepsPolicy) -> DepsReport:
    """Compare declared dependencies with imports for the named services (all when none)."""
    selected = stack.select(names)
    monorepo = _Monorepo(root, stack)
    by_service = {s.name: monorepo.package_at(package_folder(root, s, stack)) for s in stack.services}
    services = {pkg.key: (name, pkg) for name, pkg in by_service.items() if pkg is not None}
    checked: list[str] = []
    findings: list[Finding] = []
    changes: list[Change] = []
    without: list[str] = []
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
        package_audit = _PackageAudit(service.name, pkg, monorepo, services, policy)
        findings += package_audit.findings
        changes += package_audit.changes()
    for line in without:
        log.info(line)
    return DepsReport(tuple(checked), tuple(findings), tuple(changes), tuple(without))


def apply_changes(root: Path, changes: Iterable[Change], *, dry: bool = False) -> list[Path]:
    """Write each change, refusing all of them if any file changed since it was read; each
    file is replaced whole (write beside it, then rename), so none is left half-written."""
    changes = list(changes)
    for change in changes:  # every file checked before the first is written
        if (root / change.path).read_bytes().decode("utf-8") != change.before:
            raise DependencyFileError(f"{change.path} changed while fix-deps ran; run it again")
    written = []
    for change in changes:
        path = root / change.path
        if dry:
            log.info("dry run: would rewrite %s", change.path)
            continue
        staged = path.with_name(f".{path.name}.fix-deps")
        staged.write_bytes(change.after.encode("utf-8"))
        staged.chmod(path.stat().st_mode)
        os.replace(staged, path)
        log.info("rewrote %s", change.path)
        written.append(path)
    return written


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
    if applied:
        hint = "left after --apply: they need a code change, not a metadata one (see the table)"
    elif fixable == len(failing):
        hint = "run `inv fix-deps --apply` to fix them"
    elif fixable:
        hint = f"`inv fix-deps --apply` fixes {fixable}; the rest need a code change (see the table)"
    else:
        hint = "they need a code change, not a metadata one (see the table)"
    raise DependencyProblems(f"{count}; {hint}")


# --- reading packages ---------------------------------------------------------------


class _Monorepo:
    """Every Python package under the source root, by its own metadata, read once per audit."""

    def __init__(self, root: Path, stack: Stack) -> None:
        self.root = root
        self._packages: dict[Path, PythonPackage | None] = {}
        self._declarations: dict[Path, tuple[Declaration, ...]] = {}
        folders = sorted(p for p in (root / "packages").glob("*") if p.is_dir())
        folders += [package_folder(root, s, stack) for s in stack.services]
        self.module_owner: dict[str, str] = {}
        for folder in folders:
            pkg = self.package_at(folder)
            for module in sorted(pkg.modules if pkg else ()):
                self.module_owner.setdefault(module, pkg.distribution)

    def package_at(self, folder: Path) -> PythonPackage | None:
        if folder not in self._packages:
            self._packages[folder] = self._read_package(folder)
        return self._packages[folder]

    def _read_package(self, folder: Path) -> PythonPackage | None:
        pyproject, setup_py = folder / PYPROJECT, folder / SETUP_PY
        if not (pyproject.is_file() or setup_py.is_file()):
            return None
        rel = folder.relative_to(self.root).as_posix()
        name = None
        if pyproject.is_file():
            name = _project_table(_read_toml(pyproject, f"{rel}/{PYPROJECT}")).get("name")
        if not isinstance(name, str) and setup_py.is_file():
            name = _setup_py_name(_parse_python(setup_py, f"{rel}/{SETUP_PY}"))
        # A name computed at build time cannot be known statically; the folder is the convention.
        return PythonPackage(
            folder, rel, name if isinstance(name, str) else folder.name, _own_modules(folder)
        )

    def declarations(self, pkg: PythonPackage) -> tuple[Declaration, ...]:
        if pkg.folder not in self._declarations:
            self._declarations[pkg.folder] = _read_declarations(pkg)
        return self._declarations[pkg.folder]

    def declared_names(self, pkg: PythonPackage) -> dict[str, str]:
        """canonical name -> the first requirement that declares it, over both files."""
        names: dict[str, str] = {}
        for declaration in self.declarations(pkg):
            for raw in declaration.requirements:
                names.setdefault(_requirement_key(raw, declaration.rel), raw)
        return names


def _read_declarations(pkg: PythonPackage) -> tuple[Declaration, ...]:
    """The files that declare the package's dependencies: pyproject.toml's [project] table
    unless its dependencies are dynamic, setup.py's install_requires; else the setup() call
    an addition would go to."""
    declaring: list[Declaration] = []
    empty: list[Declaration] = []
    pyproject, setup_py = pkg.folder / PYPROJECT, pkg.folder / SETUP_PY
    if pyproject.is_file():
        rel = f"{pkg.rel}/{PYPROJECT}"
        project = _project_table(_read_toml(pyproject, rel))
        if project and "dependencies" not in (project.get("dynamic") or []):
            deps = project.get("dependencies", [])
            if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
                raise DependencyFileError(f"{rel}: [project].dependencies is not a list of strings")
            # Declaring, even without the key: setuptools then ignores install_requires.
            declaring.append(Declaration(PYPROJECT, pyproject, rel, _read_text(pyproject), tuple(deps)))
    if setup_py.is_file():
        declaration = _setup_py_declaration(setup_py, f"{pkg.rel}/{SETUP_PY}", needed=not declaring)
        if declaration is not None:
            (declaring if declaration.anchor[0] == "list" else empty).append(declaration)
    if declaring or empty:
        return tuple(declaring or empty[:1])
    raise _unreadable(
        pkg.rel,
        f"no dependency list: {PYPROJECT} has no [project] table (or lists its dependencies as "
        f"dynamic) and {SETUP_PY} has no setup() call",
    )


def _read_text(path: Path) -> str:
    # Bytes, not read_text(): universal newlines would turn a CRLF file into LF on write.
    return path.read_bytes().decode("utf-8")


def _read_toml(path: Path, rel: str) -> dict:
    try:
        return tomllib.loads(_read_text(path))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise DependencyFileError(f"{rel}: not valid TOML: {error}") from None


def _project_table(doc: dict) -> dict:
    project = doc.get("project")
    return project if isinstance(project, dict) else {}


def _parse_python(path: Path, rel: str) -> ast.Module:
    try:
        return ast.parse(path.read_bytes(), filename=rel)
    except SyntaxError as error:
        raise DependencyFileError(f"{rel}:{error.lineno}: not valid Python ({error.msg})") from None
    except ValueError as error:  # source with null bytes, undecodable bytes
        raise DependencyFileError(f"{rel}: not readable as Python ({error})") from None


def _requirement_key(raw: str, rel: str) -> str:
    return canonicalize_name(_requirement(raw, rel).name)


def _requirement(raw: str, rel: str) -> Requirement:
    try:
        return Requirement(raw)
    except InvalidRequirement as error:
        raise DependencyFileError(f"{rel}: {raw!r} is not a valid requirement: {error}") from None


# setup.py, read with ast. The same nodes are found again in libcst's tree by position.


def _setup_calls(tree: ast.Module) -> list[ast.Call]:
    def is_setup(func: ast.expr) -> bool:
        # setup(...), setuptools.setup(...), distutils.core.setup(...)
        return (isinstance(func, ast.Name) and func.id == "setup") or (
            isinstance(func, ast.Attribute) and func.attr == "setup"
        )

    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and is_setup(n.func)]


def _setup_py_name(tree: ast.Module) -> str | None:
    calls = _setup_calls(tree)
    if len(calls) != 1:
        return None
    value = next((k.value for k in calls[0].keywords if k.arg == "name"), None)
    if isinstance(value, ast.Name):
        assigned = _module_assignments(tree, value.id)
        value = assigned[0].value if len(assigned) == 1 else None
    return value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None


def _setup_py_declaration(path: Path, rel: str, *, needed: bool) -> Declaration | None:
    """setup.py's install_requires; None when there is no setup() call to read it from.

    ``needed`` is False when pyproject.toml declares the dependencies: setuptools then ignores
    install_requires, so a setup() call that cannot hold it is no problem."""
    text = _read_text(path)
    tree = _parse_python(path, rel)
    calls = _setup_calls(tree)
    if len(calls) > 1:
        lines = ", ".join(str(c.lineno) for c in calls)
        raise DependencyFileError(
            f"{rel}: setup() is called more than once (lines {lines}); fix-deps cannot tell which"
        )
    if not calls:
        return None
    call = calls[0]
    value = next((k.value for k in call.keywords if k.arg == "install_requires"), None)
    if value is None:
        if needed and any(k.arg is None for k in call.keywords):
            raise _unreadable(rel, "setup() takes **kwargs, which may hold install_requires")
        return Declaration(SETUP_PY, path, rel, text, (), ("call", *_char_position(text, call)))
    node = _named_list(tree, value.id, rel) if isinstance(value, ast.Name) else value
    if not isinstance(node, (ast.List, ast.Tuple)):
        raise _not_literal(rel, _describe(node))
    if (
        isinstance(node, ast.Tuple)
        and node.elts
        and _char_position(text, node) == _char_position(text, node.elts[0])
    ):
        raise DependencyFileError(
            f"{rel}: install_requires is a tuple without brackets; put it in [...] to edit it"
        )
    requirements = []
    for element in node.elts:
        if not (isinstance(element, ast.Constant) and isinstance(element.value, str)):
            raise _unreadable(
                f"{rel}:{element.lineno}",
                f"install_requires holds {_describe(element)}, not a string literal",
            )
        _requirement(element.value, rel)
        requirements.append(element.value)
    return Declaration(SETUP_PY, path, rel, text, tuple(requirements), ("list", *_char_position(text, node)))


def _module_assignments(tree: ast.Module, name: str) -> list[ast.Assign | ast.AnnAssign]:
    def targets(statement: ast.stmt) -> list[ast.expr]:
        if isinstance(statement, ast.Assign):
            return statement.targets
        if isinstance(statement, ast.AnnAssign) and statement.value is not None:
            return [statement.target]
        return []

    return [
        s  # type: ignore[misc]
        for s in tree.body
        if any(isinstance(t, ast.Name) and t.id == name for t in targets(s))
    ]


def _named_list(tree: ast.Module, name: str, rel: str) -> ast.expr:
    """The literal a module-level `NAME = [...]` gives, if nothing else changes NAME."""
    assigned = _module_assignments(tree, name)
    if len(assigned) != 1:
        problem = (
            f"{name} is assigned {len(assigned)} times at module level"
            if assigned
            else f"{name} is not assigned at module level"
        )
        raise _not_literal(rel, problem)
    mutating = {"append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse"}
    for node in ast.walk(tree):
        changed = None
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            changed = f"`{_short(ast.unparse(node))}` changes it at line {node.lineno}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == name
            and node.func.attr in mutating
        ):
            changed = f"{name}.{node.func.attr}() changes it at line {node.lineno}"
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node not in assigned:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                changed = f"{name} is assigned again at line {node.lineno}"
        if changed:
            raise _not_literal(rel, changed)
    value = assigned[0].value
    assert value is not None
    return value


def _unreadable(where: str, problem: str) -> DependencyFileError:
    return DependencyFileError(f"{where}: {problem}; fix-deps cannot read it statically")


def _not_literal(rel: str, why: str) -> DependencyFileError:
    return _unreadable(rel, f"install_requires is not a literal list ({why})")


def _describe(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        return f"a call to {_short(ast.unparse(node.func))}()"
    if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
        return "a comprehension"
    if isinstance(node, ast.Starred):
        return f"an unpacked {_short(ast.unparse(node.value))}"
    if isinstance(node, ast.JoinedStr):
        return "an f-string"
    if isinstance(node, ast.Name):
        return f"the name {node.id}"
    return f"`{_short(ast.unparse(node))}`"


def _short(code: str, width: int = 40) -> str:
    code = " ".join(code.split())
    return code if len(code) <= width else code[: width - 1] + "…"


def _char_position(text: str, node: ast.expr) -> tuple[int, int]:
    """ast counts columns in UTF-8 bytes, libcst in characters."""
    line = text.splitlines()[node.lineno - 1]
    return node.lineno, len(line.encode("utf-8")[: node.col_offset].decode("utf-8"))


# --- reading imports ----------------------------------------------------------------


def _own_modules(folder: Path) -> frozenset[str]:
    """Top-level modules a package folder provides: its packages and modules, also under src/."""
    names: set[str] = set()
    for base in (folder, folder / "src"):
        if not base.is_dir():
            continue
        for entry in base.iterdir():
            if entry.is_dir() and not _skipped_dir(entry.name) and any(entry.glob("*.py")):
                names.add(entry.name)
            elif entry.suffix == ".py" and entry.name != SETUP_PY:
                names.add(entry.stem)
    return frozenset(names)


def _skipped_dir(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED_DIRS or name.endswith(".egg-info")


def _source_files(folder: Path) -> list[Path]:
    files = []
    for directory, subdirs, filenames in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not _skipped_dir(d))
        for filename in sorted(filenames):
            path = Path(directory) / filename
            if not filename.endswith(".py") or _is_test(filename) or path == folder / SETUP_PY:
                continue
            files.append(path)
    return files


def _is_test(filename: str) -> bool:
    return filename.startswith("test_") or filename.endswith("_test.py") or filename == "conftest.py"


def _imported_modules(tree: ast.Module) -> list[tuple[str, int]]:
    """Every absolute import anywhere in a file: in functions, under conditions, in try blocks,
    under `if TYPE_CHECKING:`, and importlib.import_module("x") with a literal name."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # The imported names may be submodules (`from google import protobuf`).
            found += [
                (f"{node.module}.{alias.name}" if alias.name != "*" else node.module, node.lineno)
                for alias in node.names
            ]
        elif isinstance(node, ast.Call) and node.args and _is_dynamic_import(node.func):
            first = node.args[0]
            if (
                isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and not first.value.startswith(".")
            ):
                found.append((first.value, node.lineno))
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


@dataclass(frozen=True)
class _Resolver:
    """Import name -> distribution: the monorepo's own packages, then the settings' table of
    names that differ from their distribution's, then the name itself."""

    module_owner: Mapping[str, str]
    import_names: Mapping[str, str]

    def distribution(self, module: str) -> str:
        parts = module.split(".")
        if parts[0] in self.module_owner:
            return self.module_owner[parts[0]]
        for end in range(len(parts), 0, -1):
            prefix = ".".join(parts[:end])
            if prefix in self.import_names:
                return self.import_names[prefix]
        return parts[0].replace("_", "-")


def _package_imports(pkg: PythonPackage, resolver: _Resolver) -> dict[str, tuple[str, list[Use]]]:
    """canonical distribution -> (its name as the mapping spells it, every import of it)."""
    uses: dict[str, tuple[str, list[Use]]] = {}
    local_by_dir: dict[Path, frozenset[str]] = {}
    for path in _source_files(pkg.folder):
        rel = path.relative_to(pkg.folder).as_posix()
        directory = path.parent
        if directory not in local_by_dir:
            # A folder of scripts (no __init__.py) imports its sibling modules by plain name.
            script_dir = not (directory / "__init__.py").exists()
            local_by_dir[directory] = _own_modules(directory) if script_dir else frozenset()
        for module, line in _imported_modules(_parse_python(path, f"{pkg.rel}/{rel}")):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top.startswith("__") or top in pkg.modules:
                continue
            if top in local_by_dir[directory]:
                continue
            distribution = resolver.distribution(module)
            entry = uses.setdefault(canonicalize_name(distribution), (distribution, []))
            entry[1].append(Use(module, rel, line))
    return uses


# --- the audit of one package -------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    declaration: Declaration
    index: int
    raw: str
    requirement: Requirement


class _PackageAudit:
    """One service package: its findings, and what to remove and add to fix them."""

    def __init__(
        self,
        service: str,
        pkg: PythonPackage,
        monorepo: _Monorepo,
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
        self.entries: dict[str, list[_Entry]] = {}
        for declaration in self.declarations:
            for index, raw in enumerate(declaration.requirements):
                requirement = _requirement(raw, declaration.rel)
                key = canonicalize_name(requirement.name)
                self.entries.setdefault(key, []).append(_Entry(declaration, index, raw, requirement))
        self.imports = _package_imports(pkg, _Resolver(monorepo.module_owner, policy.import_names))
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
            self.remove.add(key)
            self.report(
                UNUSED,
                entries[0].requirement.name,
                f"{entries[0].raw} is declared in {entries[0].declaration.file} but nothing in "
                f"{self.pkg.rel} imports it (if it is needed without an import, add it to "
                "sutra.deps.runtime_only)",
            )

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
            edit = _ListEdit()
            present: set[str] = set()
            for index, raw in enumerate(declaration.requirements):
                key = _requirement_key(raw, declaration.rel)
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
                after = _edit(declaration, edit)
                if after != declaration.text:
                    changes.append(Change(declaration.rel, declaration.text, after))
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


def _diff_lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


# --- editing ------------------------------------------------------------------------


@dataclass
class _ListEdit:
    """What to do to a list of requirement strings, by index in the file's order."""

    drop: set[int] = field(default_factory=set)
    replace: dict[int, str] = field(default_factory=dict)
    append: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.drop or self.replace or self.append)


def _edit(declaration: Declaration, edit: _ListEdit) -> str:
    if declaration.file == PYPROJECT:
        return _edit_pyproject(declaration.text, edit)
    return _edit_setup_py(declaration, edit)


def _edit_pyproject(text: str, edit: _ListEdit) -> str:
    doc = tomlkit.parse(text)
    project = doc["project"]
    assert isinstance(project, dict)
    if "dependencies" not in project:
        array = tomlkit.array()
        array.extend(edit.append)
        project["dependencies"] = array.multiline(True)
        return tomlkit.dumps(doc)
    array = project["dependencies"]
    for index, raw in edit.replace.items():
        array[index] = raw  # tomlkit keeps the item's trailing comment
    for raw in edit.append:
        array.append(raw)  # in the array's style: one per line if it is multi-line
    for index in sorted(edit.drop, reverse=True):
        del array[index]  # with its trailing comment
    return tomlkit.dumps(doc)


def _edit_setup_py(declaration: Declaration, edit: _ListEdit) -> str:
    assert declaration.anchor is not None
    kind, line, column = declaration.anchor
    wrapper = MetadataWrapper(cst.parse_module(declaration.text))
    positions = wrapper.resolve(PositionProvider)
    module = wrapper.module
    if kind == "list":
        node = next(
            n
            for n, p in positions.items()
            if isinstance(n, (cst.List, cst.Tuple)) and _start(n, positions) == (line, column)
        )
        new: cst.CSTNode = _Brackets.of(node).edit(edit).node()
    else:
        node = next(
            n
            for n, p in positions.items()
            if isinstance(n, cst.Call) and (p.start.line, p.start.column) == (line, column)
        )
        new = _add_keyword(node, edit.append)
    return module.deep_replace(node, new).code


def _start(node: cst.CSTNode, positions: Mapping[cst.CSTNode, Any]) -> tuple[int, int]:
    # ast's tuple starts at its parenthesis, libcst's inside it.
    lpar = getattr(node, "lpar", None)
    start = positions[lpar[0] if lpar else node].start
    return start.line, start.column


Whitespace = cst.SimpleWhitespace | cst.ParenthesizedWhitespace


@dataclass
class _Brackets:
    """A bracketed list as gaps and items: gaps[k] is the whitespace (and comments) before
    item k, gaps[-1] the whitespace before the closing bracket. Comments live in the gaps:
    the first line of a gap ends the previous item's line, its empty lines are comment lines
    above the next item."""

    original: cst.List | cst.Tuple
    values: list[cst.BaseExpression]
    gaps: list[Whitespace]
    trailing_comma: bool

    @classmethod
    def of(cls, node: cst.List | cst.Tuple) -> _Brackets:
        if isinstance(node, cst.List):
            opening, closing = node.lbracket.whitespace_after, node.rbracket.whitespace_before
        else:
            opening, closing = node.lpar[0].whitespace_after, node.rpar[-1].whitespace_before
        elements = list(node.elements)
        if not elements:
            # An empty list has one gap, held by either bracket.
            return cls(node, [], [closing if _is_blank(opening) else opening], False)
        gaps: list[Whitespace] = [opening]
        for element in elements[:-1]:
            assert isinstance(element.comma, cst.Comma)
            gaps.append(element.comma.whitespace_after)
        trailing = isinstance(elements[-1].comma, cst.Comma)
        if trailing:
            after_comma = elements[-1].comma.whitespace_after  # type: ignore[union-attr]
            # The space after a trailing comma is in the comma or before the bracket, not both.
            if not _is_blank(after_comma):
                closing = after_comma
        gaps.append(closing)
        return cls(node, [e.value for e in elements], gaps, trailing)

    @property
    def multiline(self) -> bool:
        return any(isinstance(g, cst.ParenthesizedWhitespace) for g in self.gaps)

    def edit(self, edit: _ListEdit) -> _Brackets:
        quote = self._quote()
        for index, raw in edit.replace.items():
            self.values[index] = cst.SimpleString(_python_string(raw, quote))
        # Appending first learns the layout from every item, including those to be dropped.
        for raw in edit.append:
            self._append(cst.SimpleString(_python_string(raw, quote)))
        for index in sorted(edit.drop, reverse=True):
            self._drop(index)
        return self

    def _quote(self) -> str:
        for value in self.values:
            if isinstance(value, cst.SimpleString) and value.value[:1] in ("'", '"'):
                return value.value[0]
        return '"'

    def _drop(self, index: int) -> None:
        before, after = self.gaps[index], self.gaps[index + 1]
        if isinstance(before, cst.ParenthesizedWhitespace) and isinstance(after, cst.ParenthesizedWhitespace):
            # The item's own line goes with its trailing comment; comment lines above and
            # below it stay, and so does the previous line's trailing comment.
            merged: Whitespace = after.with_changes(
                first_line=before.first_line, empty_lines=[*before.empty_lines, *after.empty_lines]
            )
        elif isinstance(before, cst.ParenthesizedWhitespace):
            # The last item's line also holds the closing bracket, which stays on the line above.
            merged = after if index == len(self.values) - 1 else before
        elif isinstance(after, cst.ParenthesizedWhitespace):
            merged = after  # the item shares its line with what precedes: keep that line's comment
        else:
            merged = before if index == 0 else after
        del self.values[index]
        self.gaps[index : index + 2] = [merged]
        if not self.values and not _has_comment(merged):
            self.gaps = [cst.SimpleWhitespace("")]

    def _append(self, value: cst.BaseExpression) -> None:
        end = self.gaps[-1]
        if not self.multiline:
            self.gaps[-1:] = [cst.SimpleWhitespace(" ") if self.values else end, end]
            self.values.append(value)
            return
        indent, last_line = self._item_indent()
        if isinstance(end, cst.ParenthesizedWhitespace):
            # New items go last, after any comment lines that end the list.
            into = end.with_changes(indent=indent, last_line=cst.SimpleWhitespace(last_line))
            closing: Whitespace = cst.ParenthesizedWhitespace(
                first_line=cst.TrailingWhitespace(), indent=end.indent, last_line=end.last_line
            )
        else:
            into = cst.ParenthesizedWhitespace(
                first_line=cst.TrailingWhitespace(), indent=indent, last_line=cst.SimpleWhitespace(last_line)
            )
            closing = end
        self.gaps[-1:] = [into, closing]
        self.values.append(value)

    def _item_indent(self) -> tuple[bool, str]:
        """The indentation existing items have, else one level deeper than the closing bracket."""
        for gap in reversed(self.gaps[:-1]):
            if isinstance(gap, cst.ParenthesizedWhitespace):
                return gap.indent, gap.last_line.value
        end = self.gaps[-1]
        if isinstance(end, cst.ParenthesizedWhitespace):
            return end.indent, end.last_line.value + "    "
        return True, "    "

    def node(self) -> cst.List | cst.Tuple:
        count = len(self.values)
        trailing = self.trailing_comma or (isinstance(self.original, cst.Tuple) and count == 1)
        elements = []
        for index, value in enumerate(self.values):
            last = index == count - 1
            if not last:
                comma: cst.Comma | cst.MaybeSentinel = cst.Comma(whitespace_after=self.gaps[index + 1])
            else:
                comma = cst.Comma() if trailing else cst.MaybeSentinel.DEFAULT
            elements.append(cst.Element(value, comma=comma))
        opening = self.gaps[0]
        closing = self.gaps[-1] if self.values else cst.SimpleWhitespace("")
        if isinstance(self.original, cst.List):
            return self.original.with_changes(
                elements=elements,
                lbracket=self.original.lbracket.with_changes(whitespace_after=opening),
                rbracket=self.original.rbracket.with_changes(whitespace_before=closing),
            )
        lpar, rpar = list(self.original.lpar), list(self.original.rpar)
        lpar[0] = lpar[0].with_changes(whitespace_after=opening)
        rpar[-1] = rpar[-1].with_changes(whitespace_before=closing)
        return self.original.with_changes(elements=elements, lpar=lpar, rpar=rpar)


def _is_blank(gap: Whitespace) -> bool:
    return isinstance(gap, cst.SimpleWhitespace) and not gap.value


def _has_comment(gap: Whitespace) -> bool:
    if isinstance(gap, cst.SimpleWhitespace):
        return False
    return gap.first_line.comment is not None or any(line.comment for line in gap.empty_lines)


def _add_keyword(call: cst.Call, requirements: Sequence[str]) -> cst.Call:
    """setup(...) without install_requires gets one, laid out as the call's other arguments."""
    args = list(call.args)
    as_list = _Brackets(cst.List([]), [], [cst.SimpleWhitespace("")], trailing_comma=False)
    keyword = cst.Arg(
        value=cst.List([]),
        keyword=cst.Name("install_requires"),
        equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
    )
    if not args:
        as_list.edit(_ListEdit(append=list(requirements)))
        return call.with_changes(args=[keyword.with_changes(value=as_list.node())])
    last = args[-1]
    trailing = isinstance(last.comma, cst.Comma)
    end = last.comma.whitespace_after if isinstance(last.comma, cst.Comma) else last.whitespace_after_arg
    if isinstance(end, cst.ParenthesizedWhitespace):
        previous = args[-2].comma.whitespace_after if len(args) > 1 else call.whitespace_before_args  # type: ignore[union-attr]
        indent = previous.last_line.value if isinstance(previous, cst.ParenthesizedWhitespace) else "    "
        # One requirement per line, the list's items one level deeper than the argument.
        as_list.gaps = [
            cst.ParenthesizedWhitespace(
                first_line=cst.TrailingWhitespace(), indent=True, last_line=cst.SimpleWhitespace(indent)
            )
        ]
        as_list.trailing_comma = True
        into: Whitespace = end.with_changes(last_line=cst.SimpleWhitespace(indent))
        closing: Whitespace = cst.ParenthesizedWhitespace(
            first_line=cst.TrailingWhitespace(), indent=end.indent, last_line=end.last_line
        )
    else:
        into, closing = cst.SimpleWhitespace(" "), end
    as_list.edit(_ListEdit(append=list(requirements)))
    args[-1] = last.with_changes(
        comma=cst.Comma(whitespace_after=into), whitespace_after_arg=cst.SimpleWhitespace("")
    )
    if trailing:
        added = keyword.with_changes(value=as_list.node(), comma=cst.Comma(whitespace_after=closing))
    else:
        added = keyword.with_changes(value=as_list.node(), whitespace_after_arg=closing)
    return call.with_changes(args=[*args, added])


def _python_string(value: str, quote: str) -> str:
    if quote not in value and "\\" not in value:
        return f"{quote}{value}{quote}"
    return repr(value)
