"""Docker Compose v2 operations on one project, each a `docker-compose` command line run through
:mod:`.commands`. What runs is read from the engine (tools/engine.py), not from `compose ps`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..core.errors import CommandFailed
from .commands import Commands, Result


class Compose:
    def __init__(
        self,
        commands: Commands,
        file: Path,
        project: str,
        env: Mapping[str, str] | None = None,
        overrides: Sequence[Path] = (),
    ) -> None:
        self.commands = commands
        self.file = file
        self.project = project
        self.env = dict(env or {})
        self.overrides = tuple(overrides)  # later files amend earlier ones (verify's limits)

    def _run(self, *args: str, mutates: bool, check: bool = True, **kwargs) -> Result:
        files = [arg for file in (self.file, *self.overrides) for arg in ("--file", str(file))]
        argv = ["docker-compose", *files, "--project-name", self.project, *args]
        return self.commands.run(argv, mutates=mutates, check=check, env=self.env, **kwargs)

    def up(self, services: Sequence[str] = (), *, timeout: float | None = None) -> Result:
        """`up --detach`; killed after ``timeout`` seconds (it waits on health-gated dependencies).
        With ``services``, only those (`--no-deps`: the others are left exactly as they run)."""
        only = [*services, "--no-deps"] if services else ["--remove-orphans"]
        try:
            return self._run("up", "--detach", *only, mutates=True, check=False, timeout=timeout)
        except CommandFailed as error:  # timed out, and killed
            return Result(error.argv, error.returncode, "", error.output)

    def down(self, *, volumes: bool) -> None:
        self._run("down", "--remove-orphans", *(["--volumes"] if volumes else []), mutates=True)

    def stop(self, services: Sequence[str]) -> None:
        self._run("stop", *services, mutates=True)

    def start(self, services: Sequence[str]) -> None:
        self._run("start", *services, mutates=True)

    def logs(
        self,
        services: Sequence[str] = (),
        *,
        tail: int | None = None,
        follow: bool = False,
        on_line: Callable[[str], None] | None = None,
        check: bool = True,
    ) -> str:
        args = ["logs", "--no-color"]
        if tail is not None:
            args += ["--tail", str(tail)]
        if follow:
            args.append("--follow")
        result = self._run(*args, *services, mutates=False, check=check, on_line=on_line)
        return result.stdout
