"""A Dockerfile as Docker reads it: parser directives (``# escape=``), comments, line
continuations (comment and blank lines inside one are skipped, as Docker does), here-documents
after RUN, COPY and ADD (``RUN <<EOF``, ``RUN cat > requirements.txt <<EOF``, ``COPY <<EOF
/x``), leading ``--flags``, JSON (exec) form against shell form, and the build stages.

Here-documents are found as BuildKit finds them: a word of the instruction's line that
starts with ``<<`` (after an optional file descriptor), its delimiter unquoted; the body
follows the instruction's line up to a line that is the delimiter alone (leading tabs
removed for ``<<-``)."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ...core.errors import DockerfileSyntaxError, ShellSyntaxError
from .shell import split_words

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(\S.*?)\s*$")
_HEREDOC_WORD = re.compile(r"^(\d*)<<(-?)(.+)$")
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}?")  # $X, ${X}, ${X:-default}
HEREDOC_KEYWORDS = ("RUN", "COPY", "ADD")


@dataclass(frozen=True)
class Heredoc:
    delimiter: str
    raw_body: str  # the lines as written, each ending in a newline
    strip_tabs: bool  # <<-: leading tabs of each line are removed
    expands: bool  # an unquoted delimiter: the body's variables are expanded
    line: int = 0  # 1-based, the body's first line in the Dockerfile

    @property
    def body(self) -> str:
        if not self.strip_tabs:
            return self.raw_body
        return "".join(line.lstrip("\t") for line in self.raw_body.splitlines(keepends=True))


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    line: int  # 1-based, where it starts
    arguments: str  # after the flags, continuation lines joined
    flags: tuple[tuple[str, str | None], ...] = ()
    heredocs: tuple[Heredoc, ...] = ()
    stage: int = 0  # -1 before the first FROM (global ARGs)

    def flag(self, name: str) -> str | None:
        return next((value for key, value in self.flags if key == name), None)

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array, when the arguments are one (``CMD ["a", "b"]``); else None, and
        Docker reads the arguments as a shell command, as it does with malformed JSON."""
        text = self.arguments.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        return None

    def script(self) -> str:
        """A RUN's command with its here-documents, as the shell receives it."""
        text = self.arguments
        for heredoc in self.heredocs:
            text += "\n" + heredoc.raw_body + heredoc.delimiter
        return text

    def words(self) -> list[str]:
        """The arguments split as Docker splits ENV, EXPOSE, COPY and friends: shell quoting,
        nothing run."""
        if self.exec_form is not None:
            return list(self.exec_form)
        try:
            return [w.text for w in split_words(self.arguments)]
        except ShellSyntaxError:
            return self.arguments.split()


@dataclass(frozen=True)
class Stage:
    index: int
    base: str  # the FROM image or an earlier stage's name
    name: str | None
    instructions: tuple[Instruction, ...]


@dataclass(frozen=True)
class Dockerfile:
    path: str  # as messages name it
    instructions: tuple[Instruction, ...]
    escape: str = "\\"
    stages: tuple[Stage, ...] = field(default=())
    text: str = ""  # the file as read (its directives are comments before the first instruction)

    @property
    def final(self) -> Stage | None:
        return self.stages[-1] if self.stages else None

    def stage_named(self, name: str) -> Stage | None:
        for stage in self.stages:
            if stage.name is not None and stage.name.lower() == name.lower():
                return stage
        if name.isdigit() and int(name) < len(self.stages):
            return self.stages[int(name)]
        return None

    def chain(self, stage: Stage) -> list[Stage]:
        """The stage and the stages it is built FROM, base first."""
        chain = [stage]
        while (parent := self.stage_named(chain[0].base)) is not None and parent.index < chain[0].index:
            chain.insert(0, parent)
        return chain

    def where(self, instruction: Instruction) -> str:
        return f"{self.path}:{instruction.line}"

    def declared_args(self) -> set[str]:
        """Every ARG's name, before the first FROM or in a stage: what a build arg may set."""
        return {
            word.partition("=")[0]
            for instruction in self.instructions
            if instruction.keyword == "ARG"
            for word in instruction.words()
        }

    def base_images(self, build_args: Mapping[str, str]) -> list[tuple[Instruction, str]]:
        """Each FROM that names an image (not an earlier stage, not scratch) with that image, the
        ARGs before the first FROM filled as a build fills them (``build_args`` over their
        defaults, ``${X:-default}`` too)."""
        values: dict[str, str] = {}
        for instruction in self.instructions:
            if instruction.stage == -1 and instruction.keyword == "ARG":
                for word in instruction.words():
                    name, _, value = word.partition("=")
                    values[name] = value
        values.update(build_args)
        stages: set[str] = set()
        found = []
        froms = [i for i in self.instructions if i.keyword == "FROM"]
        for stage, line in zip(self.stages, froms, strict=False):
            image = expand(stage.base, values)
            if image and image.lower() != "scratch" and image.lower() not in stages:
                found.append((line, image))
            if stage.name:
                stages.add(stage.name.lower())
        return found


def read_dockerfile(path: Path, name: str) -> Dockerfile:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise DockerfileSyntaxError(f"{name}: not UTF-8 text ({error})") from None
    return parse_dockerfile(text, name)


def parse_dockerfile(text: str, name: str = "Dockerfile") -> Dockerfile:
    lines = text.splitlines()
    escape, index = _directives(lines, name)
    instructions: list[Instruction] = []
    stage = -1
    while index < len(lines):
        stripped = lines[index].strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        start = index
        logical, index = _logical_line(lines, index, escape)
        keyword, _, rest = logical.strip().partition(" ")
        if "\t" in keyword:
            keyword, _, more = keyword.partition("\t")
            rest = more + " " + rest
        keyword = keyword.upper()
        if not keyword.isalpha():
            raise DockerfileSyntaxError(f"{name}:{start + 1}: {keyword!r} is not an instruction")
        flags, arguments = _flags(rest.strip())
        heredocs: tuple[Heredoc, ...] = ()
        if keyword in HEREDOC_KEYWORDS:
            heredocs, index = _heredocs(arguments, lines, index, name, start)
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, start + 1, arguments, flags, heredocs, stage))
    return Dockerfile(name, tuple(instructions), escape, _stages(instructions, name), text)


def _directives(lines: list[str], name: str) -> tuple[str, int]:
    """Parser directives: only at the very top, before any comment or instruction."""
    escape, index = "\\", 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index].strip())
        if not match:
            break
        if match.group(1).lower() == "escape":
            if match.group(2) not in ("\\", "`"):
                raise DockerfileSyntaxError(f"{name}:{index + 1}: escape must be \\ or `")
            escape = match.group(2)
        index += 1
    return escape, index


def _logical_line(lines: list[str], index: int, escape: str) -> tuple[str, int]:
    parts: list[str] = []
    while index < len(lines):
        body = lines[index].rstrip()
        index += 1
        if body.endswith(escape) and index < len(lines):
            parts.append(body[: -len(escape)])
            # Comment and blank lines inside a continued instruction are dropped.
            while index < len(lines) and (not lines[index].strip() or lines[index].lstrip().startswith("#")):
                index += 1
            continue
        parts.append(body[: -len(escape)] if body.endswith(escape) else body)
        break
    return "".join(parts), index


def _flags(rest: str) -> tuple[tuple[tuple[str, str | None], ...], str]:
    """Leading `--name=value` or `--name` words (RUN --mount, COPY --from, HEALTHCHECK --interval)."""
    flags: list[tuple[str, str | None]] = []
    while rest.startswith("--"):
        word, _, after = rest.partition(" ")
        key, sep, value = word[2:].partition("=")
        flags.append((key.lower(), value if sep else None))
        rest = after.lstrip()
    return tuple(flags), rest


def _heredocs(
    arguments: str, lines: list[str], index: int, name: str, start: int
) -> tuple[tuple[Heredoc, ...], int]:
    found: list[Heredoc] = []
    if "<<" not in arguments or arguments.lstrip().startswith("["):
        return (), index
    try:
        words = split_words(arguments)
    except ShellSyntaxError:
        return (), index
    markers = []
    for position, word in enumerate(words):
        # The lexer reads `<<EOF` as the operator `<<` and the word `EOF`.
        if word.text in ("<<", "<<-") and position + 1 < len(words):
            target = words[position + 1]
            markers.append((word.text == "<<-", target.text, target.raw == target.text))
        elif match := _HEREDOC_WORD.match(word.raw):
            delimiter = match.group(3)
            unquoted = delimiter.strip("'\"")
            markers.append((match.group(2) == "-", unquoted, unquoted == delimiter))
    for strip_tabs, delimiter, expands in markers:
        body: list[str] = []
        first = index + 1
        while True:
            if index >= len(lines):
                raise DockerfileSyntaxError(
                    f"{name}:{start + 1}: here-document {delimiter!r} is not terminated"
                )
            line = lines[index]
            index += 1
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                break
            body.append(line + "\n")
        found.append(Heredoc(delimiter, "".join(body), strip_tabs, expands, first))
    return tuple(found), index


def _stages(instructions: list[Instruction], name: str) -> tuple[Stage, ...]:
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword != "FROM":
            continue
        words = instruction.arguments.split()
        if not words:
            raise DockerfileSyntaxError(f"{name}:{instruction.line}: FROM names no image")
        stage_name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
        members = tuple(i for i in instructions if i.stage == instruction.stage and i is not instruction)
        stages.append(Stage(instruction.stage, words[0], stage_name, members))
    return tuple(stages)


def absolute(path: str, workdir: str) -> str:
    """A path inside the image, relative ones taken from the WORKDIR."""
    return posixpath.normpath(posixpath.join(workdir, path))


def expand(text: str, values: Mapping[str, str]) -> str:
    """``$X``, ``${X}`` and ``${X:-word}`` in ``text`` as Docker expands them in FROM, ENV,
    WORKDIR, COPY, VOLUME and friends, from ``values`` (the ARGs and ENVs in effect)."""
    return _VARIABLE.sub(lambda m: _expanded(m, values), text)


def env_pairs(instruction: Instruction) -> Iterator[tuple[str, str]]:
    """`ENV A=1 B="two words"` and the legacy `ENV A one value`."""
    words = instruction.words()
    if words and "=" not in words[0]:
        yield words[0], " ".join(words[1:])
        return
    for word in words:
        name, sep, value = word.partition("=")
        if sep:
            yield name, value


def _expanded(match: re.Match[str], values: Mapping[str, str]) -> str:
    """$X and ${X} as X's value ("" when unset); ${X:-word} as word when X is unset or empty,
    as Docker expands them."""
    name, default = match.group(1), match.group(2)
    if default is None:
        return values.get(name, "")
    return values.get(name) or default
