"""The house's floors (README Layout): core/ < tools/ < the phase folders < verify/ < ship/ <
edge.py. A module imports its own folder or a lower floor, never a higher one, and the imports
make no circle, counting those inside functions and under TYPE_CHECKING: an import hidden in a
function still ties the two modules together, it only hides a circle from Python's loader."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from sutra_deploy.core.source import PROJECT_DIR

PACKAGE = "sutra_deploy"

# Folder (or top-level module) -> floor. The phase folders share a floor and do not import
# one another, but for the one pair below.
FLOORS: Mapping[str, int] = {
    "core": 0,
    "tools": 1,
    "deps": 2,
    "images": 2,
    "local": 2,
    "k8s": 2,
    "verify": 3,
    "init": 3,  # describes a checkout for every phase: reads what deps/ and images/ read
    "ship": 4,
    "edge": 5,
}
# Phase 2 writes Dockerfiles from the package metadata that phase 1 reads and checks (the
# declared dependencies, the packages of a checkout): images/ builds on deps/, never the reverse.
SIDEWAYS: frozenset[tuple[str, str]] = frozenset({("images", "deps")})


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    imported: str
    line: int
    loads_package: bool = False  # the package __init__ that importing a submodule runs first


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_of(root: Path, package: str) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}


def imports_of(name: str, path: Path, known: Mapping[str, Path]) -> Iterator[Import]:
    """Every import of a project module anywhere in the file, as the module it loads: the
    submodule for `from pkg import submodule`, else the package or module named."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target not in known:
                continue
            yield Import(name, target, node.lineno)
            # Loading a.b.c first runs a.b's __init__, which may import more.
            parts = target.split(".")
            for depth in range(2, len(parts)):
                package = ".".join(parts[:depth])
                if not name.startswith(package + ".") and name != package:
                    yield Import(name, package, node.lineno, loads_package=True)


def floor_key(module: str) -> str:
    """`sutra_deploy.images.dockerfiles.parse` -> "images"; `sutra_deploy.edge` -> "edge"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def upward_imports(imports: list[Import]) -> list[str]:
    found = []
    for imp in imports:
        source, target = floor_key(imp.importer), floor_key(imp.imported)
        if imp.loads_package or source == target or target == "" or source == "":
            continue
        if FLOORS[target] < FLOORS[source] or (source, target) in SIDEWAYS:
            continue
        found.append(f"{imp.importer}:{imp.line} imports {imp.imported} ({source} -> {target})")
    return sorted(set(found))


def circles(imports: list[Import]) -> list[list[str]]:
    """Each strongly connected group of modules (Tarjan), as a cycle to read."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.importer != imp.imported:
            graph.setdefault(imp.importer, set()).add(imp.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def all_imports(root: Path, package: str) -> list[Import]:
    known = modules_of(root, package)
    return [imp for name, path in known.items() for imp in imports_of(name, path, known)]


def test_every_module_lives_on_a_floor():
    names = modules_of(PROJECT_DIR, PACKAGE)
    homeless = sorted(n for n in names if n != PACKAGE and floor_key(n) not in FLOORS)
    assert homeless == [], "modules outside the floors (README Layout): " + ", ".join(homeless)
    # edge.py is the only module at the top; everything else is in a folder.
    assert [
        n for n in names if n.count(".") == 1 and not (PROJECT_DIR / PACKAGE / floor_key(n)).is_dir()
    ] == [f"{PACKAGE}.edge"]


def test_no_module_imports_a_higher_floor():
    assert upward_imports(all_imports(PROJECT_DIR, PACKAGE)) == []


def test_no_import_circle():
    assert circles(all_imports(PROJECT_DIR, PACKAGE)) == []


@pytest.fixture
def bad_house(tmp_path: Path) -> Path:
    """A tree with an upward import hidden in a function and a circle through TYPE_CHECKING."""
    files = {
        "__init__.py": "",
        "edge.py": "",
        "core/__init__.py": "",
        "core/errors.py": "def f():\n    from ..ship import deploy\n",
        "images/__init__.py": "",
        "images/sizes.py": "from .cost import rates\n",
        "images/cost.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sizes import SizeReport\n"
        ),
        "ship/__init__.py": "",
        "ship/deploy.py": "from ..core.errors import SutraError\n",
    }
    for rel, text in files.items():
        path = tmp_path / PACKAGE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_guard_finds_an_upward_import_and_a_circle(bad_house: Path):
    imports = all_imports(bad_house, PACKAGE)
    assert upward_imports(imports) == [
        f"{PACKAGE}.core.errors:2 imports {PACKAGE}.ship.deploy (core -> ship)"
    ]
    assert circles(imports) == [
        [f"{PACKAGE}.core.errors", f"{PACKAGE}.ship.deploy"],
        [f"{PACKAGE}.images.cost", f"{PACKAGE}.images.sizes"],
    ]


def error_classes_outside_their_home(root: Path, package: str) -> list[str]:
    """Classes built on an error class of core/errors.py, defined anywhere else."""
    home = root / package / "core" / "errors.py"
    ours = {node.name for node in ast.parse(home.read_text()).body if isinstance(node, ast.ClassDef)}
    found = []
    for path in sorted((root / package).rglob("*.py")):
        if path == home:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
            if bases & ours:
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name}")
    return found


def test_every_error_and_its_exit_code_live_in_core_errors():
    """One home for what can go wrong and what exit code it gives (README: Exit codes)."""
    assert error_classes_outside_their_home(PROJECT_DIR, PACKAGE) == []


def test_the_guard_finds_an_error_class_outside_its_home(tmp_path: Path):
    files = {
        "core/errors.py": "class SutraError(Exception):\n    exit_code = 2\n",
        "k8s/rollout.py": "from ..core import errors\n\nclass Stuck(errors.SutraError):\n    pass\n",
    }
    for rel, text in files.items():
        path = tmp_path / PACKAGE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert error_classes_outside_their_home(tmp_path, PACKAGE) == [f"{PACKAGE}/k8s/rollout.py:3 Stuck"]
