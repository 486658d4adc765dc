"""What a service's Python package says about itself: the runtime dependencies fix-deps reads
from its metadata (through :mod:`sutra_deploy.deps`), its optional extras, console scripts
and description, where its code is, and which of its dependencies are the monorepo's own
packages (with theirs, all the way down)."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ...core.errors import DependencyFileError, SutraError
from ...deps.model import PYPROJECT, SETUP_PY, PythonPackage, parse_requirement
from ...deps.monorepo import Monorepo

# Top-level modules that are a package's tooling, not what its image runs.
_NOT_SHIPPED = frozenset({"conftest", "noxfile", "setup"})


@dataclass(frozen=True)
class CodePath:
    module: str
    source: Path  # the package's folder or module file, in the checkout


@dataclass(frozen=True)
class PackageFacts:
    pkg: PythonPackage
    requirements: tuple[Requirement, ...]  # runtime dependencies, as the metadata declares them
    declared_in: str  # the file they come from, relative to the source root
    extras: Mapping[str, tuple[Requirement, ...]]
    scripts: Mapping[str, str]  # console script -> `module:function`
    description: str | None
    code: tuple[CodePath, ...]

    def module_is_package(self, module: str) -> bool:
        return any(c.module == module and c.source.is_dir() for c in self.code)

    def module_file(self, module: str) -> Path | None:
        """The file `python -m MODULE` runs, when MODULE is this package's own."""
        top, _, rest = module.partition(".")
        base = next((c.source for c in self.code if c.module == top), None)
        if base is None:
            return None
        if base.is_file():
            return base if not rest else None
        path = base.joinpath(*rest.split(".")) if rest else base
        for candidate in (path.with_suffix(".py"), path / "__main__.py"):
            if candidate.is_file() and (candidate.name != "__main__.py" or candidate.parent == path):
                return candidate
        return None


def read_package(monorepo: Monorepo, pkg: PythonPackage) -> PackageFacts:
    declarations = monorepo.declarations(pkg)
    # pyproject.toml wins where both declare, as it does for setuptools.
    chosen = next((d for d in declarations if d.file == PYPROJECT), declarations[0])
    requirements = tuple(parse_requirement(raw, chosen.rel) for raw in chosen.requirements)
    pyproject = _pyproject(pkg)
    setup_call = _setup_call(pkg)
    return PackageFacts(
        pkg=pkg,
        requirements=requirements,
        declared_in=chosen.rel,
        extras=_extras(pkg, pyproject, setup_call),
        scripts=_scripts(pkg, pyproject, setup_call),
        description=_description(pyproject, setup_call),
        code=_code(pkg),
    )


def monorepo_packages(monorepo: Monorepo) -> dict[str, PythonPackage]:
    """canonical distribution -> the monorepo package under packages/ that provides it."""
    found: dict[str, PythonPackage] = {}
    folder = monorepo.root / "packages"
    for child in sorted(p for p in folder.glob("*") if p.is_dir()) if folder.is_dir() else []:
        pkg = monorepo.package_at(child)
        if pkg is not None:
            found.setdefault(pkg.key, pkg)
    return found


def local_closure(
    monorepo: Monorepo,
    requirements: tuple[Requirement, ...],
    local: Mapping[str, PythonPackage],
    own: str,
) -> list[tuple[PythonPackage, Requirement, str]]:
    """The monorepo packages the requirements name, and the ones those name, in the order
    found: (package, the requirement that names it, who asked for it)."""
    found: dict[str, tuple[PythonPackage, Requirement, str]] = {}
    queue = [(r, own) for r in requirements]
    while queue:
        requirement, asker = queue.pop(0)
        key = canonicalize_name(requirement.name)
        if key not in local or key in found or key == canonicalize_name(own):
            continue
        pkg = local[key]
        found[key] = (pkg, requirement, asker)
        declarations = monorepo.declarations(pkg)
        chosen = next((d for d in declarations if d.file == PYPROJECT), declarations[0])
        queue += [(parse_requirement(raw, chosen.rel), pkg.distribution) for raw in chosen.requirements]
    return list(found.values())


def _pyproject(pkg: PythonPackage) -> dict:
    path = pkg.folder / PYPROJECT
    if not path.is_file():
        return {}
    try:
        project = tomllib.loads(path.read_bytes().decode("utf-8")).get("project")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise DependencyFileError(f"{pkg.rel}/{PYPROJECT}: not valid TOML: {error}") from None
    return project if isinstance(project, dict) else {}


def _setup_call(pkg: PythonPackage) -> ast.Call | None:
    path = pkg.folder / SETUP_PY
    if not path.is_file():
        return None
    rel = f"{pkg.rel}/{SETUP_PY}"
    try:
        tree = ast.parse(path.read_bytes(), filename=rel)  # bytes: PEP 263 coding lines apply
    except (SyntaxError, ValueError) as error:
        raise DependencyFileError(f"{rel}: not readable as Python ({error})") from None
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "setup")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "setup")
        )
    ]
    return calls[0] if len(calls) == 1 else None


def _keyword(call: ast.Call | None, name: str) -> ast.expr | None:
    if call is None:
        return None
    return next((k.value for k in call.keywords if k.arg == name), None)


def _literal(node: ast.expr | None, where: str, what: str) -> object:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise DependencyFileError(f"{where}: {what} is not a literal; it cannot be read statically") from None


def _extras(pkg: PythonPackage, project: dict, call: ast.Call | None) -> dict[str, tuple[Requirement, ...]]:
    where = f"{pkg.rel}/{PYPROJECT}"
    raw = project.get("optional-dependencies")
    if raw is None and call is not None:
        where = f"{pkg.rel}/{SETUP_PY}"
        node = _keyword(call, "extras_require")
        raw = _literal(node, where, "extras_require") if node is not None else None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise DependencyFileError(f"{where}: optional dependencies are not a table of lists")
    extras: dict[str, tuple[Requirement, ...]] = {}
    for name, items in raw.items():
        items = [items] if isinstance(items, str) else items
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise DependencyFileError(f"{where}: extra {name!r} is not a list of requirements")
        extras[str(name)] = tuple(parse_requirement(i, where) for i in items)
    return extras


def _scripts(pkg: PythonPackage, project: dict, call: ast.Call | None) -> dict[str, str]:
    scripts = project.get("scripts")
    if isinstance(scripts, dict):
        return {str(k): str(v) for k, v in scripts.items()}
    node = _keyword(call, "entry_points")
    if node is None:
        return {}
    entry_points = _literal(node, f"{pkg.rel}/{SETUP_PY}", "entry_points")
    listed = entry_points.get("console_scripts", []) if isinstance(entry_points, dict) else []
    if isinstance(listed, str):
        listed = listed.splitlines()
    found: dict[str, str] = {}
    for item in listed if isinstance(listed, (list, tuple)) else []:
        name, sep, target = str(item).partition("=")
        if sep and name.strip():
            found[name.strip()] = target.strip()
    return found


def _description(project: dict, call: ast.Call | None) -> str | None:
    value = project.get("description")
    if value is None:
        node = _keyword(call, "description")
        value = node.value if isinstance(node, ast.Constant) else None
    return " ".join(value.split()) if isinstance(value, str) and value.strip() else None


def _code(pkg: PythonPackage) -> tuple[CodePath, ...]:
    paths = []
    for module in sorted(pkg.modules):
        if module in _NOT_SHIPPED or module.startswith("test_") or module.endswith("_test"):
            continue
        for base in (pkg.folder, pkg.folder / "src"):
            for candidate in (base / module, base / f"{module}.py"):
                if candidate.exists():
                    paths.append(CodePath(module, candidate))
                    break
            else:
                continue
            break
    if not paths:
        raise SutraError(f"{pkg.rel}: no Python module or package to put in the image")
    return tuple(paths)
