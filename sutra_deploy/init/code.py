"""What a service's Python code says about how it runs, read from its source (nothing imported,
nothing run): the routes its app declares, the port it starts a server on, and the
environment variables it reads. Each fact keeps the file and line it came from, for findings.

Read: ``@app.get("/health")`` and the other verbs, ``@app.route("/x", methods=[…])`` and
``@router.api_route``; ``uvicorn.run(app, port=N)`` (a literal, or a name bound to one in the
module); ``port: int = N`` in a settings class; ``os.environ["X"]``, ``os.environ.get("X")``,
``os.getenv("X")``; pydantic-settings classes (``BaseSettings`` subclasses) with their
``env_prefix`` (``model_config = SettingsConfigDict(env_prefix=…)`` or ``class Config``):
each field is the variable ``PREFIX`` + its name in capitals, as pydantic-settings reads it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HTTP_VERBS = ("get", "post", "put", "patch", "delete", "head", "options")
_SKIPPED_DIRS = frozenset({"tests", "test", "node_modules", "build", "dist", "__pycache__", ".venv", "venv"})


@dataclass(frozen=True)
class Located:
    value: str | int
    where: str  # path:line, the path relative to the checkout

    def __str__(self) -> str:
        return f"{self.value} ({self.where})"


@dataclass
class CodeFacts:
    routes: list[tuple[str, Located]] = field(default_factory=list)  # (method, path)
    ports: list[Located] = field(default_factory=list)  # uvicorn.run(port=…) and friends
    setting_ports: list[Located] = field(default_factory=list)  # a settings class's `port` default
    env: list[Located] = field(default_factory=list)  # variable names read
    # (variable, its default in the code): `os.getenv("STORAGE_URL", "http://storage-server:50051")`
    env_defaults: list[tuple[str, Located]] = field(default_factory=list)

    def route_paths(self, method: str | None = None) -> list[str]:
        return [str(p.value) for m, p in self.routes if method is None or m == method]

    def where_route(self, path: str) -> str | None:
        return next((p.where for _, p in self.routes if p.value == path), None)


def python_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).parts
        if any(part in _SKIPPED_DIRS or part.endswith(".egg-info") for part in parts[:-1]):
            continue
        if path.name.startswith("test_"):
            continue
        yield path


def read_code(folder: Path, root: Path) -> CodeFacts:
    facts = CodeFacts()
    for path in python_files(folder):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue  # fix-deps says what it cannot read; here a file less is a fact less
        _Reader(facts, path.relative_to(root).as_posix(), tree).read()
    return facts


class _Reader:
    def __init__(self, facts: CodeFacts, rel: str, tree: ast.Module) -> None:
        self.facts, self.rel, self.tree = facts, rel, tree
        self.constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name)
        }

    def at(self, node: ast.AST) -> str:
        return f"{self.rel}:{getattr(node, 'lineno', 0)}"

    def read(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for decorator in node.decorator_list:
                    self.route(decorator)
            elif isinstance(node, ast.Call):
                self.server_port(node)
                self.env_read(node)
            elif isinstance(node, ast.Subscript):
                self.environ_subscript(node)
            elif isinstance(node, ast.ClassDef):
                self.settings_class(node)

    def route(self, decorator: ast.expr) -> None:
        if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
            return
        name = decorator.func.attr
        path = self.literal(decorator.args[0]) if decorator.args else None
        if not isinstance(path, str) or not path.startswith("/"):
            return
        if name in HTTP_VERBS:
            self.facts.routes.append((name.upper(), Located(path, self.at(decorator))))
        elif name in ("route", "api_route"):
            methods = self.keyword(decorator, "methods")
            listed = self.literal(methods) if methods is not None else ["GET"]
            for method in listed if isinstance(listed, (list, tuple)) else ["GET"]:
                self.facts.routes.append((str(method).upper(), Located(path, self.at(decorator))))

    def server_port(self, call: ast.Call) -> None:
        func = call.func
        called = (
            func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        )
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
        if (called == "run" and owner in ("uvicorn", "app", "")) or called in ("serve", "run_simple"):
            port = self.keyword(call, "port")
            value = self.literal(port) if port is not None else None
            if isinstance(value, int) and not isinstance(value, bool):
                self.facts.ports.append(Located(value, self.at(call)))

    def env_read(self, call: ast.Call) -> None:
        func = call.func
        dotted = _dotted(func)
        if dotted in ("os.getenv", "getenv", "os.environ.get", "environ.get", "os.environ.setdefault"):
            name = self.literal(call.args[0]) if call.args else None
            if isinstance(name, str):
                self.facts.env.append(Located(name, self.at(call)))
                default = self.literal(call.args[1]) if len(call.args) > 1 else None
                if isinstance(default, str):
                    self.facts.env_defaults.append((name, Located(default, self.at(call))))

    def environ_subscript(self, node: ast.Subscript) -> None:
        if _dotted(node.value) in ("os.environ", "environ") and isinstance(node.ctx, ast.Load):
            name = self.literal(node.slice)
            if isinstance(name, str):
                self.facts.env.append(Located(name, self.at(node)))

    def settings_class(self, node: ast.ClassDef) -> None:
        if not any(_dotted(base).endswith("BaseSettings") for base in node.bases):
            return
        prefix = self.env_prefix(node)
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                name = item.target.id
                if name == "model_config":
                    continue
                self.facts.env.append(Located(f"{prefix}{name}".upper(), self.at(item)))
                value = self.literal(item.value) if item.value is not None else None
                if isinstance(value, str):
                    self.facts.env_defaults.append((f"{prefix}{name}".upper(), Located(value, self.at(item))))
                if name.lower() == "port" and isinstance(value, int) and not isinstance(value, bool):
                    self.facts.setting_ports.append(Located(value, self.at(item)))

    def env_prefix(self, node: ast.ClassDef) -> str:
        for item in node.body:
            if isinstance(item, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "model_config" for t in item.targets
            ):
                if isinstance(item.value, ast.Call):
                    value = self.literal(self.keyword(item.value, "env_prefix"))
                    if isinstance(value, str):
                        return value
                if isinstance(item.value, ast.Dict):
                    for key, value in zip(item.value.keys, item.value.values, strict=True):
                        if self.literal(key) == "env_prefix" and isinstance(self.literal(value), str):
                            return self.literal(value)
            if isinstance(item, ast.ClassDef) and item.name == "Config":
                for inner in item.body:
                    if isinstance(inner, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "env_prefix" for t in inner.targets
                    ):
                        value = self.literal(inner.value)
                        if isinstance(value, str):
                            return value
        return ""

    def keyword(self, call: ast.Call, name: str) -> ast.expr | None:
        return next((k.value for k in call.keywords if k.arg == name), None)

    def literal(self, node: ast.expr | None) -> object:
        if node is None:
            return None
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.constants[node.id]
        try:
            return ast.literal_eval(node)
        except (ValueError, SyntaxError, TypeError):
            return None


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else node.attr
    return ""
