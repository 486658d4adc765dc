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

from .model import SETUP_PY, PythonPackage, Use, parse_python

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


def package_imports(pkg: PythonPackage, resolver: Resolver) -> dict[str, tuple[str, list[Use]]]:
    """canonical distribution -> (its name as the mapping spells it, every import of it)."""
    uses: dict[str, tuple[str, list[Use]]] = {}
    local_by_dir: dict[Path, frozenset[str]] = {}
    for path in _source_files(pkg.folder):
        rel = path.relative_to(pkg.folder).as_posix()
        directory = path.parent
        if directory not in local_by_dir:
            # A folder of scripts (no __init__.py) imports its sibling modules by plain name.
            script_dir = not (directory / "__init__.py").exists()
            local_by_dir[directory] = own_modules(directory) if script_dir else frozenset()
        for module, line in _imported_modules(parse_python(path, f"{pkg.rel}/{rel}")):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top.startswith("__") or top in pkg.modules:
                continue
            if top in local_by_dir[directory]:
                continue
            distribution = resolver.distribution(module)
            entry = uses.setdefault(canonicalize_name(distribution), (distribution, []))
            entry[1].append(Use(module, rel, line))
    return uses
