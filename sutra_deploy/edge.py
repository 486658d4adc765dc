"""The task edge: what every Invoke task shares (settings, the stack, error translation)."""

from __future__ import annotations

import errno
import functools
import logging
import math
import os
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from invoke import Context
from invoke.exceptions import Exit, UnexpectedExit

from .core.errors import StackFileError, SutraError
from .core.inputs import number
from .core.settings import DEFAULTS, setting_from_variable, shape_problem
from .core.source import resolve_source_root
from .core.stack import Stack, load_stack
from .tools.commands import Commands
from .tools.engine import Engine

if TYPE_CHECKING:
    from . import k8s
    from .local.compose_stack import LocalStack
    from .ship.release import Release

log = logging.getLogger("sutra")

F = TypeVar("F", bound=Callable[..., Any])

INTERNAL_ERROR = 3  # exit code of a bug (README, "Exit codes"): not the user's input, not a check
DEBUG_ENV = "SUTRA_DEBUG"


def debugging() -> bool:
    """`inv --debug` (Invoke turns on debug logging for its own logger) or SUTRA_DEBUG=1."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0") or logging.getLogger("invoke").isEnabledFor(
        logging.DEBUG
    )


# A word this long in a message is a value the user gave (a 100 000-character flag), echoed.
ECHO_LIMIT = 200


def one_line(error: BaseException) -> str:
    """The message on one line, each overlong word cut to its first ECHO_LIMIT characters."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return re.sub(
        rf"\S{{{ECHO_LIMIT + 1},}}",
        lambda m: f"{m.group()[:ECHO_LIMIT]}… ({len(m.group())} characters)",
        text,
    )


def hint_parse_errors() -> None:
    """Invoke's own parse errors (an unknown flag or task, a flag without its value) exit 1,
    which this tool keeps for a check that failed, and suggest nothing. tasks.py is loaded before
    the task arguments are parsed, so from there they become one line, exit 2, with the name
    that was probably meant. (A wrong flag before the task, `inv --dyr build`, is parsed before
    tasks.py loads: Invoke's own words and exit 1 stay for it.)"""
    from invoke.program import Program

    if getattr(Program.parse_tasks, "hinted", False):
        return
    original = Program.parse_tasks

    def parse_tasks(self: Program) -> None:
        from invoke.exceptions import ParseError

        empty = empty_list_flag(list(self.core.unparsed), self.collection)
        if empty:
            raise Exit(f"error: {empty}", 2)
        try:
            original(self)
        except ParseError as error:
            raise Exit(f"error: {parse_error_hint(error, self.collection)}", 2) from None

    parse_tasks.hinted = True  # type: ignore[attr-defined]
    Program.parse_tasks = parse_tasks  # type: ignore[method-assign]


def empty_list_flag(tokens: list[str], collection: Any) -> str | None:
    """A repeatable flag (`--service`) given no value: Invoke passes the same empty list as when
    the flag is absent, so `inv build --service` would build every image. Found in the words
    themselves: the flag last, or before another flag or a task; or its value empty."""
    flags = {
        "--" + name.replace("_", "-")
        for name in (n for task in collection.tasks.values() for n in getattr(task, "iterable", ()))
    }
    names = set(collection.task_names)
    for index, token in enumerate(tokens):
        flag, equals, value = token.partition("=")
        if flag not in flags:
            continue
        if not equals:
            after = tokens[index + 1] if index + 1 < len(tokens) else None
            if after is None or after.startswith("-") or after in names:
                return f"{flag} needs a value ({flag} NAME, repeatable, or NAME,NAME)"
            value = after
        if not value.replace(",", "").strip():
            return f"{flag} {value!r} names nothing; give a name ({flag} NAME) or leave the flag out"
    return None


def guard_invoke_settings() -> None:
    """Invoke reads settings before any task runs, so what it cannot read is a traceback no
    task can catch: a list from an INVOKE_* variable, an invoke.yaml with a table where a value
    belongs (or the other way round), a YAML syntax error. tasks.py loads before the project's
    invoke.yaml and the variables are read, so from there each becomes one line, exit 2, naming
    the variable, or the file and the key; lists come from variables comma-separated."""
    from invoke.config import AmbiguousMergeError, Config
    from invoke.env import Environment

    if getattr(Environment._path_set, "guarded", False):
        return
    import yaml

    def _path_set(self: Environment, key_path: Any, value: str) -> None:
        target = self.data
        for key in key_path[:-1]:
            target = target.setdefault(key, {})
        try:
            target[key_path[-1]] = setting_from_variable(key_path, self._path_get(key_path), value)
        except SutraError as error:
            raise Exit(f"error: {error}", error.exit_code) from None

    def _load_yaml(self: Config, path: Any) -> Any:
        try:
            with open(path) as stream:
                data = yaml.safe_load(stream)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise Exit(f"error: {where}: not YAML Invoke can read ({problem})", 2) from None
        if data is not None and not isinstance(data, dict):
            kind = type(data).__name__
            raise Exit(f"error: {path}: expected a table of settings (sutra: …), got a {kind}", 2)
        return data

    original_merge = Config.merge

    def merge(self: Config) -> None:
        try:
            original_merge(self)
        except AmbiguousMergeError:
            # Invoke's own defaults, and ours (`ns.configure`: the collection's level).
            defaults = {**self._defaults, **self._collection}
            for level in ("system", "user", "project", "runtime"):
                problem = shape_problem(defaults, getattr(self, f"_{level}", None) or {}, "")
                if problem:
                    raise Exit(f"error: {getattr(self, f'_{level}_path', level)}: {problem}", 2) from None
            problem = shape_problem(defaults, {**self._env, **self._overrides}, "") or "a table and a value"
            raise Exit(f"error: settings that Invoke cannot merge: {problem}", 2) from None

    _path_set.guarded = True  # type: ignore[attr-defined]
    Environment._path_set = _path_set  # type: ignore[method-assign]
    Config._load_yaml = _load_yaml  # type: ignore[method-assign]
    Config._load_yml = _load_yaml  # type: ignore[attr-defined]
    Config.merge = merge  # type: ignore[method-assign]


def parse_error_hint(error: Exception, collection: Any) -> str:
    """Invoke's parse error in this tool's words, with the closest name when there is one."""
    import difflib
    import re

    message = str(error)
    unknown = re.fullmatch(r"No idea what '(.*)' is!", message)
    if unknown is None:
        valueless = re.search(r"<Argument: ([\w-]+)", message) if "needed value" in message else None
        if valueless:
            flag = "--" + valueless.group(1).replace("_", "-")
            return f"{flag} needs a value ({flag} VALUE, or {flag}=VALUE)"
        return message[0].lower() + message[1:].rstrip("!")
    token = unknown.group(1)[:80]
    context = getattr(error, "context", None)
    if token.startswith("-") and context is not None and getattr(context, "name", None):
        flags = [name for name in context.flags if name.startswith("--")]
        close = difflib.get_close_matches(token.split("=", 1)[0], flags, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"{context.name} has no flag {token}{hint} (`inv --help {context.name}` lists them)"
    names = [n for name, aliases in collection.task_names.items() for n in (name, *aliases)]
    close = difflib.get_close_matches(token, names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"no task {token!r}{hint} (`inv --list` lists them)"


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a CI job cancelled, `timeout`, `kill`, a closed terminal): raised in the
    task like Ctrl-C, so every `finally` that tears something down (verify's project, a local
    stack being started, a port-forward) runs as it does for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminated(signum: int, frame: Any) -> None:
    import signal

    # Once: a second signal while tearing down would cut the teardown short.
    for name in ("SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    raise Terminated(signum)


def _tear_down_on_termination() -> None:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            signal.signal(getattr(signal, name), _terminated)


def user_errors(task_body: F) -> F:
    """Turn the library's typed errors into one line on stderr and a non-zero exit.

    Anything else is a bug: one line too, `internal error: …; please report`, and exit 3, never
    1 (a check that ran and failed) nor a traceback; `inv --debug` or SUTRA_DEBUG=1 shows it.
    SIGTERM and SIGHUP end a task as Ctrl-C does, after its teardown, exit 128 + the signal.
    """

    @functools.wraps(task_body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _tear_down_on_termination()
        try:
            return task_body(*args, **kwargs)
        except SutraError as error:
            raise Exit(f"error: {one_line(error)}", code=error.exit_code) from None
        except Terminated as stop:
            import signal

            name = signal.Signals(stop.signum).name
            raise Exit(
                f"stopped by {name}: what it had started was torn down", code=128 + stop.signum
            ) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None
        except BrokenPipeError:  # the reader went away (`inv sizes --json | head`)
            sys.stderr.close()
            raise Exit(code=141) from None
        except (Exit, UnexpectedExit):  # Invoke's own ways out, already meant for the user
            raise
        except OSError as error:
            if error.errno not in _NO_ROOM:
                raise _internal(error) from None
            # A full disk (stdout to a file on it, `> /dev/full`) is the machine's state, not a bug.
            where = f" ({error.filename})" if error.filename else " (the output)"
            raise Exit(f"error: cannot write{where}: {error.strerror}; free some space", code=2) from None
        except Exception as error:
            raise _internal(error) from None

    return wrapper  # type: ignore[return-value]


_NO_ROOM = {errno.ENOSPC, errno.EDQUOT}


def _internal(error: BaseException) -> Exit:
    """A bug: one line, exit 3 (the traceback with `inv --debug` or SUTRA_DEBUG=1)."""
    if debugging():
        traceback.print_exception(error)
    message = f"internal error: {type(error).__name__}: {one_line(error)}; please report"
    return Exit(message, code=INTERNAL_ERROR)


@dataclass(frozen=True)
class Session:
    """What one `inv` invocation works with, made once at the edge and passed down.

    Everything here is cheap to make: the engine's client, kubectl and the local stack are
    made when a task first asks for them.
    """

    stack: Stack
    commands: Commands
    engine: Engine
    settings: dict[str, Any]

    @property
    def dry(self) -> bool:
        return self.commands.dry

    @functools.cached_property
    def kubectl(self) -> k8s.Kubectl:
        """This invocation's one kubectl wrapper (`sutra.kubectl` names the executable)."""
        from . import k8s

        return k8s.Kubectl(self.commands, str(self.settings["kubectl"]))

    def environment(
        self,
        name: str,
        *,
        registry: str | None = None,
        tag: str | None = None,
        rollout_timeout: float | None = None,
    ) -> k8s.Environment:
        """The Kubernetes environment `sutra.environments.<name>`, with a flag's registry, tag or
        rollout timeout (seconds, already checked)."""
        from dataclasses import replace

        from . import k8s

        chosen = k8s.with_images(k8s.environment(self.settings, name), registry=registry, tag=tag)
        if rollout_timeout is not None:
            chosen = replace(chosen, rollout_timeout=max(1, math.ceil(rollout_timeout)))
        return chosen

    @functools.cached_property
    def compose_file(self) -> Path:
        """`sutra.compose_file` when set; else the reference stack's (compose/, the rendering of
        stack.toml kept in the repository), or a user's stack file rendered into the cache."""
        chosen = Path(self.settings["compose_file"])
        if chosen != Path(DEFAULTS["sutra"]["compose_file"]) or self.stack.is_reference:
            return chosen
        from .local.compose_file import compose_file_for

        return compose_file_for(self.stack, str(self.settings["project"]))

    @functools.cached_property
    def local_stack(self) -> LocalStack:
        from .local.compose_stack import LocalStack

        project = str(self.settings["project"])
        owner = self.settings.get("owner_pid")
        if owner is None:
            return LocalStack(self.stack, self.engine, self.compose_file, project)
        from .local.leftovers import owner_override

        pid = number(owner, "sutra.owner_pid (INVOKE_SUTRA_OWNER_PID)", int)
        override = owner_override(self.stack.service_names, project, pid)
        return LocalStack(self.stack, self.engine, self.compose_file, project, overrides=[override])

    def source_root(self, flag: str | None) -> Path:
        """`--root`, else `sutra.root`, else SUTRA_ROOT, else the stack file's `root`, else the
        reference implementation."""
        if flag:
            return resolve_source_root(flag, self.stack.source_root)
        return resolve_source_root(
            self.settings.get("root"),
            self.stack.source_root,
            explicit_from="sutra.root (INVOKE_SUTRA_ROOT or invoke.yaml)",
        )

    @property
    def ca_bundle(self) -> Path | None:
        value = self.settings.get("ca_bundle")
        return Path(value) if value else None

    @property
    def runtime_ca_bundle(self) -> Path | None:
        value = self.settings.get("runtime_ca_bundle")
        return Path(value) if value else None

    def release(self, tag: str | None, root: str | None, *, required: bool) -> Release | None:
        """`--tag`, else the git commit of the source root (see :mod:`.release`)."""
        from .ship.release import resolve_release

        return resolve_release(
            self.commands, self.source_root(root), self.stack.versions, tag=tag, required=required
        )

    def floating_tags(self, version: str, *, latest: bool = True) -> list[str]:
        from .ship.release import floating_tags

        return floating_tags(self.settings.get("floating_tags") or [], version, latest=latest)

    def jobs(self, flag: Any = None) -> int | None:
        """`--jobs`, else `sutra.jobs`: a positive count, or None for auto (the builder decides)."""
        given, name = (flag, "--jobs") if flag else (self.settings["jobs"], "sutra.jobs")
        if str(given).strip().lower() == "auto":
            return None
        try:
            return number(given, name, int)
        except SutraError as error:
            raise SutraError(str(error).replace(" must be a ", " must be auto or a ", 1)) from None

    def seconds(self, flag: Any, setting: str) -> float:
        """A flag's timeout, else the setting's; positive either way."""
        return number(flag or self.settings[setting], "--timeout" if flag else f"sutra.{setting}")


_stacks: dict[Path, Stack] = {}


class Report(Protocol):
    """What a library hands a task to show: a table for people, JSON for machines."""

    def table(self) -> str: ...

    def to_json(self) -> str: ...


def show(report: Report, *, as_json: bool = False) -> None:
    """The one place a task's result goes out: on stdout, `--json` for machines, else the
    table (progress and logs go to stderr)."""
    text = report.to_json() if as_json else report.table()
    if text:  # a report with nothing for people (every file already as generated) prints nothing
        print(text)


def session(c: Context) -> Session:
    settings = dict(c.config.get("sutra", {}))
    _configure_logging(verbose=bool(c.config.run.echo))
    try:
        path = Path(settings.get("stack_file") or DEFAULTS["sutra"]["stack_file"]).resolve()
    except (OSError, RuntimeError) as error:  # a symlink loop, an unreadable folder
        raise StackFileError(f"{settings.get('stack_file')}: cannot be read ({error})") from None
    if path not in _stacks:  # tasks chained in one `inv` call share one loaded stack
        _stacks[path] = load_stack(path)
    commands = Commands(dry=bool(c.config.run.dry))
    return Session(_stacks[path], commands, Engine(commands), settings)


def _configure_logging(verbose: bool) -> None:
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
