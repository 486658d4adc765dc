"""What a package's code imports: every absolute import in the files its image runs, each
resolved to the distribution that provides it."""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from ..core.errors import UndecodableSource
from .model import SETUP_PY, PythonPackage, Use, parse_python, read_python

# Folders that hold no code the service runs: tests, build output, environments, caches.
SKIPPED_DIRS = frozenset({"tests", "test", "build", "dist", "venv", "node_modules", "__pycache__"})


def own_modules(folder: Path) -> frozenset[str]:
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


def _source_files(folder: Path, root: Path) -> tuple[list[Path], list[str]]:
    """The package's Python files under the names its code has, and "PATH: why" for what is
    not read. A link to a folder or file inside the source root is followed (a code folder
    shared between packages is code the image runs), each real folder once, so a link loop
    ends; a link out of the root, or to nothing, is not read and says so: its imports are
    unknown, so nothing it might import is called unused."""
    inside = root.resolve()
    files: list[Path] = []
    unread: list[str] = []
    seen: set[Path] = set()

    def visit(directory: Path) -> None:
        real = directory.resolve()
        if real in seen:
            return
        seen.add(real)
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            path = Path(directory) / entry.name
            if entry.is_symlink():
                target = path.resolve()
                if not target.exists():
                    if entry.name.endswith(".py") or "." not in entry.name:
                        unread.append(f"{_rel(path, folder)}: a link to {target}, which does not exist")
                    continue
                if target != inside and inside not in target.parents:
                    unread.append(f"{_rel(path, folder)}: a link to {target}, outside the source root")
                    continue
            if entry.is_dir():
                if not _skipped_dir(entry.name):
                    visit(path)
            elif entry.name.endswith(".py") and not _is_test(entry.name) and path != folder / SETUP_PY:
                files.append(path)

    visit(folder)
    return files, unread


def _rel(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix()


def _is_test(filename: str) -> bool:
    return filename.startswith("test_") or filename.endswith("_test.py") or filename == "conftest.py"


# Handlers that make a try block's imports optional. Not a bare `except:` or `except
# Exception`: those are ordinary error handling as often as import guards, and counting them
# would let a required import through the gate unseen.
IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError"})

_EVERY_IMPORT = None  # a guard that covers every import in its block


def _imported_modules(tree: ast.Module) -> list[tuple[str, int, bool]]:
    """Every absolute import anywhere in a file, as (module, line, optional): in functions,
    under conditions, in try blocks, under `if TYPE_CHECKING:`, and
    importlib.import_module("x") with a literal name."""
    collector = _ImportCollector()
    collector.visit(tree)
    return collector.found


class _ImportCollector(ast.NodeVisitor):
    """Imports, each optional when it sits (at any depth) in a block that runs on without it:
    the body of a `try` one of whose handlers catches ImportError or ModuleNotFoundError
    (alone or in a tuple), a `with suppress(ImportError):`, or, for module x alone, the body
    of `if find_spec("x"):` (importlib.util.find_spec, however imported; also `is not None`,
    `not`, `and`, `or`, and the else branch of the negation)."""

    def __init__(self) -> None:
        self.found: list[tuple[str, int, bool]] = []
        self._guards: list[frozenset[str] | None] = []  # None guards every import

    def _record(self, module: str, line: int) -> None:
        optional = any(
            guard is _EVERY_IMPORT or any(_covers(name, module) for name in guard) for guard in self._guards
        )
        self.found.append((module, line, optional))

    def _guarded(self, guard: frozenset[str] | None, nodes: list[ast.stmt]) -> None:
        self._guards.append(guard)
        for node in nodes:
            self.visit(node)
        self._guards.pop()

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._record(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            # The imported names may be submodules (`from google import protobuf`).
            for alias in node.names:
                self._record(f"{node.module}.{alias.name}" if alias.name != "*" else node.module, node.lineno)

    def visit_Call(self, node: ast.Call) -> None:
        if _is_dynamic_import(node.func) and (module := _literal_module(node)):
            self._record(module, node.lineno)
        self.generic_visit(node)

    def visit_Try(self, node: ast.Try | ast.TryStar) -> None:
        if not any(_catches_import_error(handler.type) for handler in node.handlers):
            self.generic_visit(node)
            return
        self._guarded(_EVERY_IMPORT, node.body)
        for part in (*node.handlers, *node.orelse, *node.finalbody):
            self.visit(part)

    visit_TryStar = visit_Try

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        if not any(_suppresses_import_error(item.context_expr) for item in node.items):
            self.generic_visit(node)
            return
        for item in node.items:
            self.visit(item)
        self._guarded(_EVERY_IMPORT, node.body)

    visit_AsyncWith = visit_With

    def visit_If(self, node: ast.If) -> None:
        present, absent = _found_specs(node.test)
        self.visit(node.test)
        self._guarded(present, node.body)
        self._guarded(absent, node.orelse)


def _literal_module(call: ast.Call) -> str | None:
    """The absolute module a call names in its first argument, as a string literal."""
    first = call.args[0] if call.args else None
    if isinstance(first, ast.Constant) and isinstance(first.value, str) and not first.value.startswith("."):
        return first.value
    return None


def _covers(guarded: str, module: str) -> bool:
    """find_spec("x") guards x and its submodules; find_spec("x.y") also guards x."""
    return module == guarded or module.startswith(f"{guarded}.") or guarded.startswith(f"{module}.")


def _is_name(node: ast.expr | None, names: frozenset[str] | set[str]) -> bool:
    # `ImportError`, `builtins.ImportError`; `find_spec`, `importlib.util.find_spec`.
    return (isinstance(node, ast.Name) and node.id in names) or (
        isinstance(node, ast.Attribute) and node.attr in names
    )


def _catches_import_error(caught: ast.expr | None) -> bool:
    if isinstance(caught, ast.Tuple):
        return any(_is_name(e, IMPORT_ERRORS) for e in caught.elts)
    return _is_name(caught, IMPORT_ERRORS)


def _suppresses_import_error(expr: ast.expr) -> bool:
    return (
        isinstance(expr, ast.Call)
        and _is_name(expr.func, {"suppress"})
        and any(_catches_import_error(a) for a in expr.args)
    )


_NOTHING: frozenset[str] = frozenset()


def _found_specs(test: ast.expr) -> tuple[frozenset[str], frozenset[str]]:
    """The modules a condition proves importable where it holds, and where it does not."""
    if isinstance(test, ast.Call) and _is_name(test.func, {"find_spec"}):
        module = _literal_module(test)
        return (frozenset({module}) if module else _NOTHING), _NOTHING
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value is None
    ):
        present, _ = _found_specs(test.left)
        if isinstance(test.ops[0], (ast.IsNot, ast.NotEq)):
            return present, _NOTHING
        if isinstance(test.ops[0], (ast.Is, ast.Eq)):
            return _NOTHING, present
        return _NOTHING, _NOTHING
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        present, absent = _found_specs(test.operand)
        return absent, present
    if isinstance(test, ast.BoolOp):
        sides = [_found_specs(value) for value in test.values]
        if isinstance(test.op, ast.And):  # all hold, or one of them fails
            return frozenset().union(*(p for p, _ in sides)), frozenset.intersection(*(a for _, a in sides))
        return frozenset.intersection(*(p for p, _ in sides)), frozenset().union(*(a for _, a in sides))
    return _NOTHING, _NOTHING


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


@dataclass(frozen=True)
class Resolver:
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


@dataclass(frozen=True)
class PackageImports:
    by_distribution: dict[str, tuple[str, list[Use]]]  # canonical name -> (as spelled, its imports)
    unread: tuple[str, ...]  # "FILE: why", for each source file not read (too big, not text)


def package_imports(
    pkg: PythonPackage, resolver: Resolver, root: Path, max_file_bytes: int | None = None
) -> PackageImports:
    """Every import of the package's code, by the distribution that provides it. A file over
    ``max_file_bytes`` is not read (parsing 50 MB of generated code takes most of a minute and
    gigabytes), nor is one that is not text in its encoding; ``unread`` says which and why."""
    uses: dict[str, tuple[str, list[Use]]] = {}
    sources, skipped = _source_files(pkg.folder, root)
    unread = [f"{pkg.rel}/{why}" for why in skipped]
    if not sources and not skipped:
        unread.append(f"{pkg.rel}: no Python code found")
    local_by_dir: dict[Path, frozenset[str]] = {}
    for path in sources:
        rel = path.relative_to(pkg.folder).as_posix()
        where = f"{pkg.rel}/{rel}"
        size = path.stat().st_size
        if max_file_bytes is not None and size > max_file_bytes:
            unread.append(f"{where}: {size:,} bytes, over sutra.deps.max_file_bytes ({max_file_bytes:,})")
            continue
        try:
            text, _ = read_python(path, where)
        except UndecodableSource as error:
            unread.append(str(error))
            continue
        directory = path.parent
        if directory not in local_by_dir:
            # A folder of scripts (no __init__.py) imports its sibling modules by plain name.
            script_dir = not (directory / "__init__.py").exists()
            local_by_dir[directory] = own_modules(directory) if script_dir else frozenset()
        for module, line, optional in _imported_modules(parse_python(text, where)):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top.startswith("__") or top in pkg.modules:
                continue
            if top in local_by_dir[directory]:
                continue
            distribution = resolver.distribution(module)
            entry = uses.setdefault(canonicalize_name(distribution), (distribution, []))
            entry[1].append(Use(module, rel, line, optional))
    return PackageImports(uses, tuple(unread))
