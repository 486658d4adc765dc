"""What a pre-plan Dockerfile says about its service: the requirements it installs (written
inline in a here-document, given to pip on the command line, or in files it copies from the
checkout), the command it runs, its port, environment and health check, the files it copies
next to the code, and the system packages it installs.

The Dockerfile is walked stage by stage with a small model of each stage's files (what COPY
brought from the build context and what here-documents wrote), so that `pip install -r
requirements.txt` finds the file it meant. Nothing is built or run."""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement

from ...core.credentials import credential
from ...core.errors import ShellSyntaxError
from .parse import Dockerfile, Instruction, absolute, env_pairs, expand, read_dockerfile
from .pins import parse_pin, requirement_lines
from .shell import Command, parse_shell, scripts

log = logging.getLogger("sutra")

_PYTHON = re.compile(r"python(\d+(\.\d+)?)?")
_PIP = re.compile(r"pip(\d+(\.\d+)?)?")
# Words that only run the next one: `sudo pip install`, `exec uvicorn`.
_WRAPPERS = frozenset({"sudo", "exec", "command", "time", "nice", "env"})
# pip install options that take a value (the value is not a requirement).
_PIP_VALUE_OPTIONS = frozenset(
    [
        "-t",
        "--target",
        "--prefix",
        "--root",
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "--trusted-host",
        "--platform",
        "--python-version",
        "--implementation",
        "--abi",
        "--src",
        "--upgrade-strategy",
        "--progress-bar",
        "--log",
        "--cache-dir",
        "--global-option",
        "--config-settings",
        "-C",
        "--only-binary",
        "--no-binary",
        "--report",
        "--root-user-action",
        "--timeout",
        "--retries",
        "--proxy",
        "--cert",
        "--client-cert",
        "--exists-action",
        "-e",
        "--editable",
        "--python",
    ]
)
_APT_VALUE_OPTIONS = frozenset({"-o", "-t", "--target-release", "-c", "--config-file"})
_APK_VALUE_OPTIONS = frozenset({"-t", "--virtual", "-X", "--repository", "--root", "-p", "--arch"})


@dataclass(frozen=True)
class OldPin:
    requirement: Requirement
    where: str  # `packages/sutra-api/Dockerfile:7`, or the requirements file and line


@dataclass(frozen=True)
class ContextCopy:
    """One source a COPY (or ADD) took from the build context, and where it went."""

    source: Path  # in the checkout
    dest: str  # in the image, absolute
    workdir: str  # the stage's WORKDIR at the time
    where: str


@dataclass(frozen=True)
class PrePlan:
    path: str  # relative to the source root
    dockerfile: Dockerfile
    pins: tuple[OldPin, ...]
    entrypoint: Instruction | None
    cmd: Instruction | None
    exposed: tuple[int, ...]
    expose: Instruction | None
    env: tuple[tuple[str, str], ...]
    env_where: Mapping[str, str]  # name -> `Dockerfile:LINE` of the ENV that set it last
    # Every ENV or ARG value anywhere in the file that is a credential (`core.credentials`),
    # whichever stage it is in: what the generated file is checked never to carry.
    credentials: tuple[OldCredential, ...]
    healthcheck: Instruction | None
    copies: tuple[ContextCopy, ...]
    system_packages: tuple[tuple[str, str], ...]  # (apt-get, gcc), (apk, musl-dev)
    workdir: str  # the final stage's
    notes: tuple[str, ...]


@dataclass(frozen=True)
class OldCredential:
    name: str
    where: str  # `Dockerfile:LINE`
    why: str  # "named like a credential", "an AWS access key", ...
    value: str = field(repr=False)  # never shown: only looked for in what is generated


@dataclass
class _Files:
    """The files a stage has that the tool can read: written by a here-document, or copied
    from the build context (a single file, or a folder mounted at a path)."""

    # (path in the image, text or a source in the checkout, the file it came from, its first line)
    entries: list[tuple[str, str | Path, str, int]] = field(default_factory=list)

    def copy(self) -> _Files:
        return _Files(list(self.entries))

    def write(self, path: str, text: str, origin: str, first_line: int) -> None:
        self.entries.append((path, text, origin, first_line))

    def mount(self, path: str, source: Path) -> None:
        self.entries.append((path, source, "", 1))

    def read(self, path: str, root: Path) -> tuple[str, str, int] | None:
        """(text, the file it came from, the line its first line is on) of the file at
        ``path``, the latest write winning."""
        for dest, payload, origin, first_line in reversed(self.entries):
            if isinstance(payload, str):
                if dest == path:
                    return payload, origin, first_line
                continue
            if dest == path and payload.is_file():
                return _read(payload), _rel(payload, root), 1
            if payload.is_dir() and (path + "/").startswith(dest.rstrip("/") + "/"):
                inside = payload / posixpath.relpath(path, dest)
                if inside.is_file():
                    return _read(inside), _rel(inside, root), 1
        return None


@dataclass
class _StageState:
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    env_where: dict[str, str] = field(default_factory=dict)
    files: _Files = field(default_factory=_Files)
    cmd: Instruction | None = None
    cmd_set_here: bool = False
    entrypoint: Instruction | None = None
    expose: Instruction | None = None
    healthcheck: Instruction | None = None

    def inherit(self) -> _StageState:
        return _StageState(
            self.workdir,
            dict(self.env),
            dict(self.env_where),
            self.files.copy(),
            self.cmd,
            False,
            self.entrypoint,
            self.expose,
            self.healthcheck,
        )


def read_preplan(path: Path, rel: str, context: Path, root: Path) -> PrePlan:
    return _Reader(read_dockerfile(path, rel), context, root).read()


class _Reader:
    def __init__(self, dockerfile: Dockerfile, context: Path, root: Path) -> None:
        self.dockerfile = dockerfile
        self.context = context
        self.root = root
        self.pins: list[OldPin] = []
        self.copies: list[ContextCopy] = []
        self.system: list[tuple[str, str]] = []
        self.notes: list[str] = []
        self.args: dict[str, str] = {}
        self.credentials: list[OldCredential] = []

    def read(self) -> PrePlan:
        states: list[_StageState] = []
        for instruction in self.dockerfile.instructions:
            if instruction.stage < 0 and instruction.keyword == "ARG":  # before the first FROM
                self.step(_StageState(), instruction)
        for stage in self.dockerfile.stages:
            parent = self.dockerfile.stage_named(stage.base)
            state = (
                states[parent.index].inherit()
                if parent is not None and parent.index < stage.index
                else _StageState()
            )
            for instruction in stage.instructions:
                self.step(state, instruction)
            states.append(state)
        final = states[-1] if states else _StageState()
        exposed = self.ports(final.expose)
        return PrePlan(
            path=self.dockerfile.path,
            dockerfile=self.dockerfile,
            pins=tuple(self.pins),
            entrypoint=final.entrypoint,
            cmd=final.cmd,
            exposed=exposed,
            expose=final.expose,
            env=tuple(final.env.items()),
            env_where=dict(final.env_where),
            credentials=tuple(self.credentials),
            healthcheck=final.healthcheck,
            copies=tuple(self.copies),
            system_packages=tuple(dict.fromkeys(self.system)),
            workdir=final.workdir,
            notes=tuple(self.notes),
        )

    def where(self, instruction: Instruction) -> str:
        return self.dockerfile.where(instruction)

    def note_credential(self, name: str, value: str, instruction: Instruction) -> None:
        why = credential(name, value)
        if why:
            self.credentials.append(OldCredential(name, self.where(instruction), why, value))

    def step(self, state: _StageState, instruction: Instruction) -> None:
        keyword = instruction.keyword
        if keyword == "ARG":
            for word in instruction.words():
                name, sep, value = word.partition("=")
                if sep:
                    self.args.setdefault(name, value)
                    self.note_credential(name, value, instruction)
        elif keyword == "WORKDIR":
            state.workdir = absolute(self.expand(instruction.arguments.strip(), state), state.workdir)
        elif keyword == "ENV":
            for name, value in env_pairs(instruction):
                state.env[name] = value
                state.env_where[name] = self.where(instruction)
                self.note_credential(name, value, instruction)
        elif keyword in ("COPY", "ADD") and instruction.flag("from") is None:
            self.copy(state, instruction)
        elif keyword == "RUN":
            self.run(state, instruction)
        elif keyword == "CMD":
            state.cmd, state.cmd_set_here = instruction, True
        elif keyword == "ENTRYPOINT":
            state.entrypoint = instruction
            if not state.cmd_set_here:  # Docker drops a CMD inherited from the base
                state.cmd = None
        elif keyword == "EXPOSE":
            state.expose = instruction
        elif keyword == "HEALTHCHECK":
            state.healthcheck = instruction

    def expand(self, text: str, state: _StageState) -> str:
        """`$NAME` and `${NAME}` from the stage's ENV and the ARG defaults, as Docker does for
        WORKDIR, COPY and friends."""
        return expand(text, {**self.args, **state.env})

    def copy(self, state: _StageState, instruction: Instruction) -> None:
        if instruction.heredocs:
            # `COPY <<EOF /app/requirements.txt`: the words besides the here-documents.
            try:
                plain = [w.text for c in parse_shell(instruction.arguments, heredocs=False) for w in c.words]
            except ShellSyntaxError:
                return
            if not plain:
                return
            dest = absolute(self.expand(plain[-1], state), state.workdir)
            single = len(instruction.heredocs) == 1 and not plain[-1].endswith("/")
            for heredoc in instruction.heredocs:
                target = dest if single else posixpath.join(dest, heredoc.delimiter)
                state.files.write(target, heredoc.body, self.dockerfile.path, heredoc.line)
            return
        words = [self.expand(w, state) for w in instruction.words()]
        if len(words) < 2:
            return
        sources, dest_word = words[:-1], words[-1]
        dest = absolute(dest_word, state.workdir)
        into_folder = len(sources) > 1 or dest_word.endswith("/") or dest_word in (".", "./")
        for source_word in sources:
            if "://" in source_word:
                continue
            for source in self.context_paths(source_word):
                target = dest
                if source.is_file() and into_folder:
                    target = posixpath.join(dest, source.name)
                state.files.mount(target, source)
                self.copies.append(ContextCopy(source, target, state.workdir, self.where(instruction)))

    def context_paths(self, pattern: str) -> list[Path]:
        pattern = pattern.lstrip("/") or "."
        if any(char in pattern for char in "*?["):
            return sorted(p for p in self.context.glob(pattern) if _within(p, self.context))
        path = (self.context / pattern).resolve()
        return [path] if path.exists() and _within(path, self.context) else []

    def run(self, state: _StageState, instruction: Instruction) -> None:
        try:
            commands = list(scripts(parse_shell(instruction.script())))
        except ShellSyntaxError as error:
            self.notes.append(f"{self.where(instruction)}: RUN not read ({error})")
            return
        cwd = state.workdir
        for command, base in commands:
            argv = _unwrapped(command.argv)
            if not argv:
                continue
            if argv[0] == "cd" and len(argv) > 1 and command.words[-1].literal:
                cwd = absolute(argv[1], cwd)
                continue
            self.heredoc_file(state, command, argv, cwd, _line_of(instruction, base + command.line + 1))
            pip_args = pip_install_arguments(argv)
            if pip_args is not None:
                self.pip(state, pip_args, cwd, instruction)
            self.system += system_packages(argv)

    def heredoc_file(
        self, state: _StageState, command: Command, argv: list[str], cwd: str, line: int
    ) -> None:
        """`cat > requirements.txt <<EOF`, `cat <<EOF >> x`, `tee x <<EOF`."""
        bodies = [r.body for r in command.redirects if r.heredoc and r.body is not None]
        if not bodies:
            return
        targets = []
        if argv[0] == "cat":
            targets = [r.target for r in command.redirects if r.operator in (">", ">>", ">|") and r.target]
        elif argv[0] == "tee":
            targets = [w for w in command.words[1:] if not w.text.startswith("-")]
        for target in targets:
            if target.literal:
                state.files.write(absolute(target.text, cwd), bodies[-1], self.dockerfile.path, line)

    def pip(self, state: _StageState, args: list[str], cwd: str, instruction: Instruction) -> None:
        where = self.where(instruction)
        for kind, value in _pip_items(args):
            if kind == "requirement":
                requirement = parse_pin(value)
                if requirement is not None:
                    self.pins.append(OldPin(requirement, where))
            else:
                self.requirements_file(state, absolute(value, cwd), where, seen=set())

    def requirements_file(self, state: _StageState, path: str, via: str, seen: set[str]) -> None:
        if path in seen:
            return
        seen.add(path)
        found = state.files.read(path, self.root)
        if found is None:
            self.notes.append(
                f"{via}: pip installs from {path}, which the checkout does not show; its pins are not "
                "compared"
            )
            return
        text, origin, first_line = found
        for entry in requirement_lines(text):
            if entry.include is not None:
                self.requirements_file(state, absolute(entry.include, posixpath.dirname(path)), via, seen)
            elif entry.requirement is not None:
                self.pins.append(OldPin(entry.requirement, f"{origin}:{first_line + entry.line - 1}"))

    def ports(self, expose: Instruction | None) -> tuple[int, ...]:
        if expose is None:
            return ()
        ports = []
        for word in expose.words():
            number = word.split("/")[0]
            if number.isdigit():
                ports.append(int(number))
            else:
                self.notes.append(f"{self.where(expose)}: EXPOSE {word} is not a port number; left out")
        return tuple(ports)


def _line_of(instruction: Instruction, script_line: int) -> int:
    """The Dockerfile line of a line of a RUN's script (its command, then each here-document's
    body and delimiter, as :meth:`Instruction.script` lays them out)."""
    line = 2
    for heredoc in instruction.heredocs:
        count = len(heredoc.raw_body.splitlines())
        if script_line < line + count:
            return heredoc.line + script_line - line if script_line >= line else instruction.line
        line += count + 1
    return instruction.line


def _unwrapped(argv: list[str]) -> list[str]:
    """The command a line runs: leading `VAR=value`, `sudo` and `exec` taken off."""
    index = 0
    while index < len(argv):
        word = argv[index]
        name, sep, _ = word.partition("=")
        if (sep and name.isidentifier()) or word in _WRAPPERS:
            index += 1
        else:
            break
    return argv[index:]


def pip_install_arguments(argv: list[str]) -> list[str] | None:
    """What follows `install` in `pip install`, `python3 -m pip install`, `uv pip install`."""
    program = posixpath.basename(argv[0]) if argv else ""
    if _PYTHON.fullmatch(program) and argv[1:3] == ["-m", "pip"]:
        rest = argv[3:]
    elif _PIP.fullmatch(program):
        rest = argv[1:]
    elif program == "uv" and argv[1:2] == ["pip"]:
        rest = argv[2:]
    else:
        return None
    for index, word in enumerate(rest):
        if word == "install":
            return rest[index + 1 :]
        if not word.startswith("-"):
            return None
    return None


def _pip_items(args: list[str]) -> Iterator[tuple[str, str]]:
    """("requirement", spec) and ("file", path) for `-r` and `-c` files, in order."""
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        for option in ("-r", "--requirement", "-c", "--constraint"):
            if word == option and index < len(args):
                yield "file", args[index]
                index += 1
                break
            if word.startswith(option + "=") or (
                len(option) == 2 and word.startswith(option) and word != option
            ):
                yield "file", word[len(option) + (1 if word.startswith(option + "=") else 0) :]
                break
        else:
            if word.startswith("-"):
                if word in _PIP_VALUE_OPTIONS:
                    index += 1
                continue
            if word not in ("pip", "setuptools", "wheel"):
                yield "requirement", word


def system_packages(argv: list[str]) -> list[tuple[str, str]]:
    """(package manager, package) for each package an apt or apk command line installs."""
    program = posixpath.basename(argv[0])
    if program in ("apt-get", "apt", "aptitude") and "install" in argv:
        return [(program, p) for p in _operands(argv[argv.index("install") + 1 :], _APT_VALUE_OPTIONS)]
    if program == "apk" and "add" in argv:
        return [("apk", p) for p in _operands(argv[argv.index("add") + 1 :], _APK_VALUE_OPTIONS)]
    return []


def _operands(words: list[str], value_options: frozenset[str]) -> list[str]:
    found, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = word in value_options
        else:
            found.append(word.split("=")[0])
    return found


def _within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
