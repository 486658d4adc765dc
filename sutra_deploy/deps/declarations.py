"""What a package's metadata declares, read statically: pyproject.toml's ``[project]`` table
with tomllib, setup.py's ``setup()`` call with ast (running setup.py could do anything).
A setup.py list is remembered by position, for the editor to find it again in libcst's tree.
Optional extras are read too, to know what counts as declared; fix-deps never edits them."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from ..core.errors import DependencyFileError
from .model import (
    PYPROJECT,
    SETUP_PY,
    Declaration,
    PythonPackage,
    parse_python,
    parse_requirement,
    read_python,
    read_text,
)


def declared_name(folder: Path, rel: str) -> str | None:
    """The distribution name pyproject.toml gives, else setup.py's, when it is a literal."""
    pyproject, setup_py = folder / PYPROJECT, folder / SETUP_PY
    name = None
    if pyproject.is_file():
        name = _project_table(_read_toml(pyproject, f"{rel}/{PYPROJECT}")).get("name")
    if not isinstance(name, str) and setup_py.is_file():
        name = _setup_py_name(_parse_setup_py(setup_py, f"{rel}/{SETUP_PY}"))
    return name if isinstance(name, str) else None


def read_declarations(pkg: PythonPackage) -> tuple[Declaration, ...]:
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
            declaring.append(Declaration(PYPROJECT, pyproject, rel, read_text(pyproject), tuple(deps)))
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


def read_extras(pkg: PythonPackage) -> tuple[tuple[str, str], ...]:
    """Every requirement of the package's optional extras, as (file, requirement):
    pyproject.toml's [project.optional-dependencies] and setup.py's extras_require, as far
    as they are literals (an extra computed at build time is not seen)."""
    found: list[tuple[str, str]] = []
    pyproject, setup_py = pkg.folder / PYPROJECT, pkg.folder / SETUP_PY
    if pyproject.is_file():
        rel = f"{pkg.rel}/{PYPROJECT}"
        extras = _project_table(_read_toml(pyproject, rel)).get("optional-dependencies") or {}
        if not isinstance(extras, dict) or not all(
            isinstance(v, list) and all(isinstance(r, str) for r in v) for v in extras.values()
        ):
            raise DependencyFileError(
                f"{rel}: [project.optional-dependencies] is not a table of lists of strings"
            )
        found += [(rel, raw) for requirements in extras.values() for raw in requirements]
    if setup_py.is_file():
        rel = f"{pkg.rel}/{SETUP_PY}"
        found += [(rel, raw) for raw in _setup_py_extras(_parse_setup_py(setup_py, rel))]
    for rel, raw in found:
        parse_requirement(raw, rel)
    return tuple(found)


def _read_toml(path: Path, rel: str) -> dict:
    try:
        return tomllib.loads(read_text(path))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise DependencyFileError(f"{rel}: not valid TOML: {error}") from None


def _project_table(doc: dict) -> dict:
    project = doc.get("project")
    return project if isinstance(project, dict) else {}


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


def _setup_py_extras(tree: ast.Module) -> list[str]:
    """The string literals of extras_require's lists, where it is a dict literal (or the name
    of one assigned once at module level)."""
    calls = _setup_calls(tree)
    if len(calls) != 1:
        return []
    value = next((k.value for k in calls[0].keywords if k.arg == "extras_require"), None)
    if isinstance(value, ast.Name):
        assigned = _module_assignments(tree, value.id)
        value = assigned[0].value if len(assigned) == 1 else None
    if not isinstance(value, ast.Dict):
        return []
    return [
        element.value
        for extra in value.values
        if isinstance(extra, (ast.List, ast.Tuple))
        for element in extra.elts
        if isinstance(element, ast.Constant) and isinstance(element.value, str)
    ]


def _parse_setup_py(path: Path, rel: str) -> ast.Module:
    return parse_python(read_python(path, rel)[0], rel)


def _setup_py_declaration(path: Path, rel: str, *, needed: bool) -> Declaration | None:
    """setup.py's install_requires; None when there is no setup() call to read it from.

    ``needed`` is False when pyproject.toml declares the dependencies: setuptools then ignores
    install_requires, so a setup() call that cannot hold it is no problem."""
    text, encoding = read_python(path, rel)
    tree = parse_python(text, rel)
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
        return Declaration(SETUP_PY, path, rel, text, (), ("call", *_char_position(text, call)), encoding)
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
        parse_requirement(element.value, rel)
        requirements.append(element.value)
    anchor = ("list", *_char_position(text, node))
    return Declaration(SETUP_PY, path, rel, text, tuple(requirements), anchor, encoding)


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
