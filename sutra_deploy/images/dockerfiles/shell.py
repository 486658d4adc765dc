"""Enough of the POSIX shell's grammar to read what a Dockerfile's RUN and CMD lines do: words
(quotes removed, and whether the shell would expand or glob them), operators, redirections
and here-documents. Nothing is ever executed; what cannot be told without running the shell
(a variable, a substitution) is only marked as such.

A command line is a list of :class:`Command` objects, each a simple command with the
operator that follows it (``&&``, ``|``, ``;``, a newline, ...)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ...core.errors import ShellSyntaxError

# Longest first: the lexer takes the longest operator that matches.
_REDIRECTIONS = ("<<<", "<<-", "&>>", "<<", ">>", ">&", "<&", ">|", "<>", "&>", "<", ">")
_CONTROL = ("&&", "||", ";;", ";", "|", "&", "(", ")")
_WORD_END = " \t\n;&|()<>"
# Words that only mean something to a shell: a command starting with one needs a shell.
SHELL_WORDS = frozenset(
    [
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "for",
        "while",
        "until",
        "do",
        "done",
        "case",
        "esac",
        "in",
        "function",
        "select",
        "{",
        "}",
        "!",
        "[[",
        "]]",
        "cd",
        "source",
        ".",
        "export",
        "unset",
        "set",
        "alias",
        "eval",
        "trap",
        "ulimit",
        "umask",
        "shift",
        "wait",
        "read",
        "test",
        "[",
    ]
)


@dataclass(frozen=True)
class Word:
    text: str  # after quote removal
    raw: str  # as written
    expands: bool = False  # holds $ or a backquote outside single quotes
    globs: bool = False  # holds an unquoted * ? [ or starts with an unquoted ~

    @property
    def literal(self) -> bool:
        """The shell passes it on as written (quotes aside)."""
        return not (self.expands or self.globs)


@dataclass(frozen=True)
class Redirect:
    operator: str  # `>`, `>>`, `<<`, `<<-`, `2>&1` keeps its fd: `2>&`
    target: Word | None
    body: str | None = None  # a here-document's text

    @property
    def heredoc(self) -> bool:
        return self.operator in ("<<", "<<-")


@dataclass(frozen=True)
class Command:
    words: tuple[Word, ...]
    redirects: tuple[Redirect, ...] = ()
    operator: str = ""  # what follows it: && || ; | & ( ) a newline, or "" at the end
    line: int = 1  # 1-based, in the text given to parse_shell

    @property
    def argv(self) -> list[str]:
        return [w.text for w in self.words]


@dataclass
class _Pending:
    operator: str
    target: Word | None = None
    body: str | None = None


@dataclass
class _CommandBuilder:
    line: int
    words: list[Word] = field(default_factory=list)
    redirects: list[_Pending] = field(default_factory=list)

    def empty(self) -> bool:
        return not self.words and not self.redirects


class _Lexer:
    def __init__(self, text: str, heredocs: bool) -> None:
        self.text = text
        self.read_heredoc_bodies = heredocs
        self.pos = 0
        self.line = 1
        self.commands: list[Command] = []
        self.current = _CommandBuilder(1)
        self.built: list[tuple[_CommandBuilder, str]] = []
        self.awaiting_target: _Pending | None = None
        self.heredocs: list[_Pending] = []  # read at the next newline

    def run(self) -> list[Command]:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t":
                self.pos += 1
            elif char == "\\" and self.text.startswith("\\\n", self.pos):
                self.pos += 2
                self.line += 1
            elif char == "\n":
                self.pos += 1
                self._end_command("\n")
                self.line += 1
                self._read_heredocs()
                self.current.line = self.line
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif operator := self._operator():
                self._take_operator(operator)
            else:
                self._take_word()
        if self.awaiting_target is not None:
            raise ShellSyntaxError(f"`{self.awaiting_target.operator}` is not followed by a word")
        self._end_command("")
        if self.heredocs:
            raise ShellSyntaxError(f"here-document {self.heredocs[0].target.text!r} is not terminated")  # type: ignore[union-attr]
        return [
            Command(
                tuple(b.words),
                tuple(Redirect(r.operator, r.target, r.body) for r in b.redirects),
                operator,
                b.line,
            )
            for b, operator in self.built
        ]

    def _operator(self) -> str | None:
        for operator in (*_REDIRECTIONS, *_CONTROL):
            if self.text.startswith(operator, self.pos):
                return operator
        return None

    def _take_operator(self, operator: str) -> None:
        self.pos += len(operator)
        if operator in _CONTROL:
            self._end_command(operator)
            return
        if self.awaiting_target is not None:
            raise ShellSyntaxError(f"`{self.awaiting_target.operator}` is not followed by a word")
        # `2>&1`: an all-digit word right before the operator is its file descriptor.
        words = self.current.words
        if words and words[-1].raw.isdigit() and self._touching(words[-1].raw, operator):
            operator = words.pop().raw + operator
        pending = _Pending(operator)
        self.current.redirects.append(pending)
        self.awaiting_target = pending

    def _touching(self, fd: str, operator: str) -> bool:
        """Whether ``fd`` is written right against the operator just read (`2>`, not `2 >`)."""
        start = self.pos - len(operator) - len(fd)
        return self.text[start : start + len(fd)] == fd and (
            start == 0 or self.text[start - 1] in " \t\n;&|()"
        )

    def _end_command(self, operator: str) -> None:
        if self.awaiting_target is not None and operator:
            raise ShellSyntaxError(f"`{self.awaiting_target.operator}` is not followed by a word")
        if not self.current.empty() or operator not in ("\n", ""):
            self.built.append((self.current, operator))
        self.current = _CommandBuilder(self.line)

    def _take_word(self) -> None:
        start = self.pos
        text: list[str] = []
        expands = globs = False
        at_start = True
        while self.pos < len(self.text) and self.text[self.pos] not in _WORD_END:
            char = self.text[self.pos]
            if char == "'":
                end = self.text.find("'", self.pos + 1)
                if end < 0:
                    raise ShellSyntaxError("a single quote is not closed")
                text.append(self.text[self.pos + 1 : end])
                self.pos = end + 1
            elif char == '"':
                expands |= self._double_quoted(text)
            elif char == "\\":
                if self.pos + 1 < len(self.text) and self.text[self.pos + 1] == "\n":
                    self.pos += 2  # a continued line: the word goes on
                    continue
                text.append(self.text[self.pos + 1 : self.pos + 2])
                self.pos += 2
            elif char == "$":
                expands = True
                text.append(self._dollar())
            elif char == "`":
                expands = True
                text.append(self._until("`", self.pos + 1, "a backquote is not closed") + "`")
            else:
                globs |= char in "*?[" or (char == "~" and at_start)
                text.append(char)
                self.pos += 1
            at_start = False
        raw = self.text[start : self.pos]
        self.line += raw.count("\n")
        word = Word("".join(text), raw, expands, globs)
        if self.awaiting_target is not None:
            self.awaiting_target.target = word
            if self.read_heredoc_bodies and self.awaiting_target.operator.endswith(("<<", "<<-")):
                self.heredocs.append(self.awaiting_target)
            self.awaiting_target = None
        else:
            self.current.words.append(word)

    def _double_quoted(self, text: list[str]) -> bool:
        expands = False
        self.pos += 1
        while True:
            if self.pos >= len(self.text):
                raise ShellSyntaxError("a double quote is not closed")
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return expands
            if char == "\\" and self.pos + 1 < len(self.text) and self.text[self.pos + 1] in '$`"\\\n':
                if self.text[self.pos + 1] != "\n":
                    text.append(self.text[self.pos + 1])
                self.pos += 2
            elif char == "$":
                expands = True
                text.append(self._dollar())
            elif char == "`":
                expands = True
                text.append(self._until("`", self.pos + 1, "a backquote is not closed") + "`")
            else:
                text.append(char)
                self.pos += 1

    def _dollar(self) -> str:
        """`$x`, `${x}`, `$(cmd)`, `$((1+1))`, as written."""
        start = self.pos
        nxt = self.text[self.pos + 1 : self.pos + 2]
        if nxt in ("{", "("):
            closing = "}" if nxt == "{" else ")"
            depth, self.pos = 0, self.pos + 1
            while self.pos < len(self.text):
                char = self.text[self.pos]
                depth += char == nxt
                depth -= char == closing
                self.pos += 1
                if depth == 0:
                    return self.text[start : self.pos]
            raise ShellSyntaxError(f"`${nxt}` is not closed")
        self.pos += 1
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] == "_"):
            self.pos += 1
        if self.pos == start + 1 and self.pos < len(self.text) and self.text[self.pos] in "@*#?$!-0123456789":
            self.pos += 1
        return self.text[start : self.pos]

    def _until(self, closing: str, start: int, problem: str) -> str:
        end = self.text.find(closing, start)
        if end < 0:
            raise ShellSyntaxError(problem)
        piece = self.text[self.pos : end]
        self.pos = end + 1
        return piece

    def _read_heredocs(self) -> None:
        for pending in self.heredocs:
            assert pending.target is not None
            delimiter = pending.target.text
            strip_tabs = pending.operator.endswith("<<-")
            body: list[str] = []
            while True:
                if self.pos >= len(self.text):
                    # The shell accepts a here-document ended by the end of the text.
                    break
                end = self.text.find("\n", self.pos)
                line = self.text[self.pos : len(self.text) if end < 0 else end]
                self.pos = len(self.text) if end < 0 else end + 1
                self.line += 1
                if strip_tabs:
                    line = line.lstrip("\t")
                if line == delimiter:
                    break
                body.append(line + "\n")
            pending.body = "".join(body)
        self.heredocs = []


def parse_shell(text: str, *, heredocs: bool = True) -> list[Command]:
    """The simple commands of a command line or script, in order. With ``heredocs=False`` a
    here-document's body is not looked for (a Dockerfile line, whose bodies follow it)."""
    return _Lexer(text, heredocs).run()


def split_words(text: str) -> list[Word]:
    """Words as the shell splits them, operators kept as words: for instruction arguments
    (ENV, EXPOSE, COPY) that Docker splits with shell quoting but never runs."""
    words: list[Word] = []
    for command in parse_shell(text.replace("\n", " "), heredocs=False):
        words += command.words
        for redirect in command.redirects:  # each operator with its word, after the command's
            words.append(Word(redirect.operator, redirect.operator))
            if redirect.target is not None:
                words.append(redirect.target)
        if command.operator:
            words.append(Word(command.operator, command.operator))
    return words


def scripts(commands: list[Command], base: int = 0) -> Iterator[tuple[Command, int]]:
    """Every command, with those of a here-document fed to the shell itself (`RUN <<EOF`,
    `sh <<EOF`) read as commands too: (command, base), its line in the outermost text being
    ``base + command.line``."""
    for command in commands:
        yield command, base
        argv = command.argv
        shell_fed = not argv or (
            len(argv) == 1 and argv[0].rsplit("/", 1)[-1] in ("sh", "bash", "ash", "dash")
        )
        for redirect in command.redirects:
            if shell_fed and redirect.heredoc and redirect.body is not None:
                body = redirect.body
                if body.startswith("#!") and not _shell_shebang(body.split("\n", 1)[0]):
                    continue
                # The body starts on the line after the command's.
                yield from scripts(parse_shell(body), base + command.line)


def _shell_shebang(line: str) -> bool:
    words = line[2:].split()
    program = words[0].rsplit("/", 1)[-1] if words else ""
    if program == "env" and len(words) > 1:
        program = words[1]
    return program in ("sh", "bash", "ash", "dash")


def shell_feature(text: str) -> str | None:
    """What in a command line only a shell can do (as written), or None when it is one plain
    command whose words can be passed as they are: the test for turning a shell-form CMD
    into exec form."""
    try:
        commands = parse_shell(text)
    except ShellSyntaxError as error:
        return str(error)
    if not commands:
        return None
    if len(commands) > 1 or commands[0].operator not in ("", "\n"):
        operator = commands[0].operator if commands[0].operator not in ("", "\n") else "several commands"
        return operator
    command = commands[0]
    if command.redirects:
        return command.redirects[0].operator
    words = list(command.words)
    if words and words[0].text == "exec":
        words = words[1:]
    for index, word in enumerate(words):
        if not word.literal:
            return word.raw
        if index == 0 and ("=" in word.text and word.text.split("=", 1)[0].isidentifier()):
            return word.raw  # a variable assignment before the command
        if index == 0 and word.text in SHELL_WORDS:
            return word.text
    return None


def exec_words(text: str) -> list[str]:
    """A shell-form command that needs no shell, as the argv the shell would run."""
    [command] = parse_shell(text)
    argv = command.argv
    return argv[1:] if argv and argv[0] == "exec" else argv
