"""What the parts of fix-deps share: the two metadata files, the finding kinds, the settings,
the records passed from reading to auditing to editing, and the readers of files and
requirements that raise the one error a user sees."""

from __future__ import annotations

import ast
import difflib
import io
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..core.errors import DependencyFileError, SutraError, UndecodableSource
from ..core.inputs import number
from .kinds import (  # noqa: F401  (the finding kinds, named here too for the modules above)
    COUPLING,
    DEFAULT_FAIL_ON,
    DISAGREEMENT,
    FINDING_KINDS,
    OPTIONAL_UNDECLARED,
    UNDECLARED,
    UNUSED,
)

PYPROJECT = "pyproject.toml"
SETUP_PY = "setup.py"


@dataclass(frozen=True)
class DepsPolicy:
    """What the code alone cannot tell: from the `sutra.deps` settings."""

    runtime_only: frozenset[str]  # canonical names, declared, loaded by name at run time, never imported
    import_names: Mapping[str, str]  # dotted import prefix -> distribution, where they differ
    known_specs: Mapping[str, str]  # canonical name -> requirement, for additions nothing else pins
    max_file_bytes: int | None = None  # source files bigger than this are not read; None: no limit

    @classmethod
    def from_settings(cls, raw: Mapping[str, Any]) -> DepsPolicy:
        runtime_only = raw.get("runtime_only") or []
        import_names = dict(raw.get("import_names") or {})
        specs = raw.get("known_specs") or []
        max_file_bytes = raw.get("max_file_bytes")
        if max_file_bytes is not None:
            # Text as well as a number: Invoke passes INVOKE_SUTRA_DEPS_MAX_FILE_BYTES as text.
            max_file_bytes = number(max_file_bytes, "sutra.deps.max_file_bytes", int)
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
        return cls(frozenset(canonicalize_name(n) for n in runtime_only), import_names, known, max_file_bytes)


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
    encoding: str = "utf-8"  # what the text is written back in: setup.py's coding line may say latin-1


@dataclass(frozen=True)
class Use:
    """One import of a module from outside the package."""

    module: str  # dotted, as written
    path: str  # the importing file, relative to the package folder
    line: int
    optional: bool = False  # guarded: the code runs on without it (`except ImportError`, `find_spec`)

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
    encoding: str = "utf-8"  # the file's, kept on write

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


def read_python(path: Path, rel: str) -> tuple[str, str]:
    """A Python file's text and encoding, as its PEP 263 coding line (or BOM) says, else UTF-8.
    Bytes decoded whole, not tokenize.open(): its universal newlines would turn CRLF into LF."""
    return decode_python(path.read_bytes(), rel)


def decode_python(data: bytes, rel: str) -> tuple[str, str]:
    problem = None
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:  # an unknown codec, a coding line against a BOM, bytes not UTF-8
        encoding, problem = "utf-8", error.msg
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        raise UndecodableSource(
            f"{rel}: not decodable as {encoding} ({error.reason} at byte {error.start})"
        ) from None
    except LookupError as error:  # a coding line that names a codec of another kind (rot13)
        raise UndecodableSource(f"{rel}: not decodable: {error}") from None
    if problem is not None:
        raise UndecodableSource(f"{rel}: not decodable: {problem}")
    if "\0" in text:
        raise UndecodableSource(f"{rel}: holds null bytes, so it is not Python source")
    return text, encoding


def parse_python(text: str, rel: str) -> ast.Module:
    try:
        return ast.parse(text, filename=rel)
    except SyntaxError as error:
        raise DependencyFileError(f"{rel}:{error.lineno}: not valid Python ({error.msg})") from None


def requirement_key(raw: str, rel: str) -> str:
    return canonicalize_name(parse_requirement(raw, rel).name)


def parse_requirement(raw: str, rel: str) -> Requirement:
    try:
        return Requirement(raw)
    except InvalidRequirement as error:
        raise DependencyFileError(f"{rel}: {raw!r} is not a valid requirement: {error}") from None
