"""What the parts of fix-deps share: the two metadata files, the finding kinds, the settings,
the records passed from reading to auditing to editing, and the readers of files and
requirements that raise the one error a user sees."""

from __future__ import annotations

import ast
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import SutraError

PYPROJECT = "pyproject.toml"
SETUP_PY = "setup.py"

COUPLING = "service-coupling"
UNDECLARED = "undeclared"
UNUSED = "unused"
DISAGREEMENT = "disagreement"
FINDING_KINDS = (COUPLING, UNDECLARED, UNUSED, DISAGREEMENT)


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


def _diff_lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


@dataclass
class ListEdit:
    """What to do to a list of requirement strings, by index in the file's order."""

    drop: set[int] = field(default_factory=set)
    replace: dict[int, str] = field(default_factory=dict)
    append: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.drop or self.replace or self.append)


def read_text(path: Path) -> str:
    # Bytes, not read_text(): universal newlines would turn a CRLF file into LF on write.
    return path.read_bytes().decode("utf-8")


def parse_python(path: Path, rel: str) -> ast.Module:
    try:
        return ast.parse(path.read_bytes(), filename=rel)
    except SyntaxError as error:
        raise DependencyFileError(f"{rel}:{error.lineno}: not valid Python ({error.msg})") from None
    except ValueError as error:  # source with null bytes, undecodable bytes
        raise DependencyFileError(f"{rel}: not readable as Python ({error})") from None


def requirement_key(raw: str, rel: str) -> str:
    return canonicalize_name(parse_requirement(raw, rel).name)


def parse_requirement(raw: str, rel: str) -> Requirement:
    try:
        return Requirement(raw)
    except InvalidRequirement as error:
        raise DependencyFileError(f"{rel}: {raw!r} is not a valid requirement: {error}") from None
