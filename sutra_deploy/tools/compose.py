"""Docker Compose v2 operations on one project, each a `docker-compose` command via the Runner."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import CommandFailed
from .commands import Commands, Result


@dataclass(frozen=True)
class ContainerState:
    service: str
    name: str
    state: str  # running, restarting, exited, created, ...
    health: str  # healthy, unhealthy, starting, or "" when the image has no check
    exit_code: int
    published: tuple[int, ...]  # host ports

    @property
    def healthy(self) -> bool:
        return self.state == "running" and self.health in ("healthy", "")


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
        """`up --detach`; killed after ``timeout`` seconds (it waits on health-gated dependencies)."""
        try:
            return self._run(
                "up", "--detach", "--remove-orphans", *services, mutates=True, check=False, timeout=timeout
            )
        except CommandFailed as error:  # timed out, and killed
            return Result(error.argv, error.returncode, "", error.output)

    def down(self, *, volumes: bool) -> None:
        self._run("down", "--remove-orphans", *(["--volumes"] if volumes else []), mutates=True)

    def stop(self, services: Sequence[str]) -> None:
        self._run("stop", *services, mutates=True)

    def start(self, services: Sequence[str]) -> None:
        self._run("start", *services, mutates=True)

    def ps(self) -> list[ContainerState]:
        result = self._run("ps", "--all", "--format", "json", mutates=False)
        return parse_ps(result.stdout)

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


def parse_ps(output: str) -> list[ContainerState]:
    """`compose ps --format json` prints one object per line (older releases: one array)."""
    text = output.strip()
    if not text:
        return []
    rows = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()]
    return [
        ContainerState(
            service=row["Service"],
            name=row["Name"],
            state=row.get("State", ""),
            health=row.get("Health", ""),
            exit_code=int(row.get("ExitCode") or 0),
            published=tuple(
                sorted({p["PublishedPort"] for p in row.get("Publishers") or [] if p.get("PublishedPort")})
            ),
        )
        for row in rows
    ]
