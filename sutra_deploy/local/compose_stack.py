"""The local stack under Docker Compose: up until healthy, status, down, version moves."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from ..core.errors import ImageMissing, PortTaken, StackUnhealthy, SutraError, TimedOut
from ..core.inputs import number
from ..core.references import image_parts, parse_tag
from ..core.stack import Service, Stack
from ..tools.commands import Result
from ..tools.compose import Compose
from ..tools.engine import ContainerInfo, Engine
from ..tools.http import Http
from ..tools.waiting import SYSTEM_CLOCK, Clock, wait_until
from .readiness import NotReady, probe

log = logging.getLogger("sutra")

LOG_LINES_ON_FAILURE = 15
# Restarts by the engine during one `up` that mean a service crash-loops rather than starts
# slowly: Docker's back-off (100 ms, doubling) reaches five in seconds, while a service that
# exits until a dependency answers usually needs a restart or two.
RESTARTS_BEFORE_GIVING_UP = 5
# The variable compose/docker-compose.yml reads the images' tag (the version) from.
TAG_ENV = "SUTRA_TAG"


def port_env(service: Service) -> str:
    """The variable the compose files read a service's host port from: SUTRA_API_PORT, …"""
    return "SUTRA_" + service.name.removeprefix("sutra-").upper().replace("-", "_") + "_PORT"


def tag_env(service: Service) -> str:
    """The variable that sets one service's tag over SUTRA_TAG (SUTRA_API_TAG, …): how
    `inv rollback --env local --service S` moves S alone."""
    return port_env(service).removesuffix("_PORT") + "_TAG"


def host_port(service: Service, env: Mapping[str, str] = os.environ) -> int:
    value = env.get(port_env(service))
    if value is None:
        return service.port.host
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SutraError(f"{port_env(service)}={value!r} is not a port number")
    return int(value)


def local_urls(stack: Stack, env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Each service's address on this machine, as the compose files publish it."""
    return {s.name: f"http://127.0.0.1:{host_port(s, env)}" for s in stack.services}


def previous_version(stack: Stack, running: str | None) -> str:
    """The version before the running one: where a rollback goes by default."""
    if running is None:
        raise SutraError("cannot tell which version is running; say where to go with --to")
    if running not in stack.versions:  # moved to a release by `inv rollback --to RELEASE`
        raise SutraError(f"the local stack runs release {running}; say where to go with --to")
    index = stack.versions.index(stack.check_version(running))
    if index == 0:
        raise SutraError(f"{running} is the oldest version; say where to go with --to")
    return stack.versions[index - 1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class ServiceStatus:
    service: Service
    state: str
    health: str
    host_port: int
    seconds_to_healthy: float | None

    def as_json(self) -> dict[str, Any]:
        seconds = self.seconds_to_healthy
        return {
            "service": self.service.name,
            "state": self.state or "absent",
            "health": self.health or None,
            "host_port": self.host_port,
            "seconds_to_healthy": None if seconds is None else round(seconds, 2),
        }


@dataclass(frozen=True)
class LocalStatus:
    """Each local service's container: for people a table, for machines one JSON object."""

    rows: tuple[ServiceStatus, ...]

    def table(self) -> str:
        return tabulate(
            [
                [
                    r.service.name,
                    r.state or "absent",
                    r.health or "-",
                    r.host_port,
                    "-" if r.seconds_to_healthy is None else f"{r.seconds_to_healthy:.1f}",
                ]
                for r in self.rows
            ],
            headers=["Service", "State", "Health", "Host port", "Seconds to healthy"],
            colalign=("left", "left", "left", "right", "right"),
        )

    def to_json(self) -> str:
        services = [
            {
                "service": r.service.name,
                "state": r.state or "absent",
                "health": r.health or None,
                "host_port": r.host_port,
                "seconds_to_healthy": None
                if r.seconds_to_healthy is None
                else round(r.seconds_to_healthy, 2),
            }
            for r in self.rows
        ]
        return json.dumps({"services": services}, indent=2)


def why_it_will_not_get_healthy(container: ContainerInfo, restarts_before: Mapping[str, int]) -> str | None:
    """Why waiting longer cannot help: the container stopped for good, or it crash-loops.

    With a restart policy, the engine shows a container that will be started again as
    ``restarting``, never ``exited``; so ``exited`` (or ``dead``) is final. A container
    that was crash-looping before this `up` counts at once: the engine's back-off has grown
    by then, and it might not restart often enough within the wait to be caught again.
    """
    if container.healthy:
        return None
    how = f"exit code {container.exit_code}" + (", out of memory" if container.oom_killed else "")
    if container.state in ("exited", "dead"):
        return f"{container.service} {container.state} ({how})"
    restarts = container.restart_count - restarts_before.get(container.id, 0)
    looping = container.state == "restarting" and container.restart_count >= RESTARTS_BEFORE_GIVING_UP
    if restarts >= RESTARTS_BEFORE_GIVING_UP or looping:
        return f"{container.service} keeps restarting ({how}, {container.restart_count} restarts)"
    return None


class LocalStack:
    """One compose project of the stack.

    ``env`` is what compose reads besides the tag (the host ports: `SUTRA_API_PORT`, …); by
    default this process's environment. ``overrides`` are compose files laid over the stack's
    (verify's resource limits).

    A service is ready when its container runs and its health check passes: Docker's, or the
    same check asked from here through its host port (:mod:`.readiness`), which local-up polls
    every half second while Docker's own runs at a calm interval. Verify waits for Docker's
    (``probe_readiness=False``): its startup figure is Docker's first passing check.
    """

    def __init__(
        self,
        stack: Stack,
        docker: Engine,
        compose_file: Path,
        project: str,
        *,
        env: Mapping[str, str] | None = None,
        overrides: Sequence[Path] = (),
        probe_readiness: bool = True,
    ) -> None:
        self.probe_readiness = probe_readiness  # False: ready only when Docker says healthy
        self.stack = stack
        self.docker = docker
        self.compose_file = Path(compose_file)
        self.project = project
        self.env = dict(os.environ if env is None else env)
        self.overrides = tuple(overrides)

    def host_port(self, service: Service) -> int:
        return host_port(service, self.env)

    def urls(self) -> dict[str, str]:
        return local_urls(self.stack, self.env)

    def compose(self, version: str, pinned: Mapping[str, str] | None = None) -> Compose:
        """The one compose project, its images tagged ``version`` (through SUTRA_TAG): a version
        of the stack, or a release the images were also built as; ``pinned`` gives services a
        tag of their own (service name -> tag)."""
        pinned = pinned or {}
        for tag in {version, *pinned.values()} - set(self.stack.versions):
            parse_tag(tag, "--to")
        if not self.compose_file.is_file():
            raise SutraError(f"compose file {self.compose_file} not found")
        # A port is passed unless the compose file's own default is it and nothing in this
        # process's environment could say otherwise: a project's ports are its own, never the
        # caller's, and a dry run's line shows only what differs.
        ports = {
            port_env(s): str(self.host_port(s))
            for s in self.stack.services
            if self.host_port(s) != s.port.host or port_env(s) in os.environ
        }
        # As with ports: a tag variable from the caller's shell never chooses an image here.
        tags = {
            tag_env(s): pinned.get(s.name, version)
            for s in self.stack.services
            if s.name in pinned or tag_env(s) in os.environ
        }
        env = {**ports, TAG_ENV: version, **tags}
        return Compose(
            self.docker.commands, self.compose_file, self.project, env=env, overrides=self.overrides
        )

    def require_images(self, version: str, pinned: Mapping[str, str] | None = None) -> None:
        for service in self.stack.services:
            tag = (pinned or {}).get(service.name, version)
            if self.docker.image(service.ref(tag)) is None:
                if tag in self.stack.versions:
                    how = f"build the stack with `inv build --version {tag}` or use `inv local-up --build`"
                else:  # a release: the images `inv build --tag` made (`inv releases --env local`)
                    how = f"build the release with `inv build --tag {tag}`"
                raise ImageMissing(service.ref(tag), how)

    def check_ports(self, compose: Compose) -> None:
        """A host port held by anything but this project's own container is a clear error."""
        ours = {c.service: set(c.published) for c in self.containers() if c.state == "running"}
        for service in self.stack.services:
            port = self.host_port(service)
            if port in ours.get(service.name, set()):
                continue
            if not port_is_free(port):
                raise PortTaken(
                    f"host port {port} for {service.name} is already in use; stop whatever holds it "
                    f"or choose another with {port_env(service)}=<port>"
                )

    def containers(self) -> list[ContainerInfo]:
        """The project's containers, from the engine (compose labels them with the project)."""
        return self.docker.project_containers(self.project)

    def up(
        self,
        version: str,
        *,
        timeout: float,
        pinned: Mapping[str, str] | None = None,
        only: Sequence[str] = (),
        clock: Clock = SYSTEM_CLOCK,
    ) -> list[ServiceStatus]:
        """Start the stack and poll until every service is healthy; idempotent. ``pinned``:
        services at a tag of their own (see :meth:`compose`); ``only``: start or recreate just
        those, leaving every other container as it runs."""
        compose = self.compose(version, pinned)
        if not self.docker.dry:  # a dry run prints the commands even before a build
            self.require_images(version, pinned)
        self.check_ports(compose)
        if self.docker.dry:
            compose.up(only)
            return []
        started = clock.now()
        # Restarts are counted from here: an older container may have restarted long ago.
        restarts_before = {c.id: c.restart_count for c in self.containers()}
        outcome: list[Result] = []
        # `up` itself waits for health-gated dependencies, so it runs beside the poll that
        # times each service, instead of before it.
        # It gets the same deadline, so no `compose up` outlives this call.
        upper = threading.Thread(
            target=lambda: outcome.append(compose.up(only, timeout=timeout)), daemon=True
        )
        upper.start()
        healthy_after: dict[str, float] = {}
        http = Http(timeout=(1.0, 2.0))
        urls = self.urls()

        def ready(service: Service, state: ContainerInfo | None) -> bool:
            if state is None or state.state != "running":
                return False
            if state.healthy or not self.probe_readiness:
                return state.healthy
            try:
                probe(http, service, urls[service.name])
            except NotReady:
                return False
            return True

        now: dict[str, bool] = {}

        def all_healthy() -> bool:
            states = {c.service: c for c in self.containers()}
            now.update({s.name: ready(s, states.get(s.name)) for s in self.stack.services})
            for name, answered in now.items():
                if answered and name not in healthy_after:
                    healthy_after[name] = clock.now() - started
                    log.info("[local] %s healthy after %.1fs", name, healthy_after[name])
            # All healthy at once: one that came up and then crashed does not count.
            done = all(now.values())
            if not upper.is_alive() and outcome and not outcome[0].ok and not done:
                raise StackUnhealthy(self._failure(compose, outcome[0].stderr.strip().splitlines()[-1:], now))
            # Only once `compose up` is over: while it recreates a container, the old one
            # shows as exited for a moment.
            if not upper.is_alive() and not done:
                deaths = [
                    death
                    for n in self.stack.service_names
                    if n in states and (death := why_it_will_not_get_healthy(states[n], restarts_before))
                ]
                if deaths:
                    raise StackUnhealthy(self._failure(compose, ["; ".join(deaths)], now))
            return done and not upper.is_alive()

        try:
            wait_until(all_healthy, timeout=timeout, interval=0.5, what="the stack", clock=clock)
        except TimedOut:
            upper.join()
            raise StackUnhealthy(self._failure(compose, [f"not healthy after {timeout:g}s"], now)) from None
        finally:
            http.close()
        return self.status(version, healthy_after)

    def _failure(self, compose: Compose, reason: list[str], ready: Mapping[str, bool]) -> str:
        """``ready``: each service's readiness at the last poll (Docker's health, or the probe)."""
        states = {c.service: c for c in self.containers()}
        sick = [
            n
            for n in self.stack.service_names
            if not ready.get(n) and not (n in states and states[n].healthy)
        ]
        for name in sick:
            tail = compose.logs([name], tail=LOG_LINES_ON_FAILURE, check=False).rstrip()
            log.info("[local] last log lines of %s:\n%s", name, tail or "(no output)")
        detail = ", ".join(
            f"{n} ({states[n].state}{'/' + states[n].health if states[n].health else ''})"
            if n in states
            else f"{n} (not created)"
            for n in sick
        )
        why = f": {reason[0]}" if reason else ""
        return f"services not healthy: {detail or 'none'}{why}"

    def status(self, version: str, healthy_after: Mapping[str, float] | None = None) -> list[ServiceStatus]:
        self.compose(version)  # the version and the compose file are checked either way
        states: dict[str, ContainerInfo] = {c.service: c for c in self.containers()}
        rows = []
        for service in self.stack.services:
            state = states.get(service.name)
            rows.append(
                ServiceStatus(
                    service=service,
                    state=state.state if state else "",
                    # Docker's first check of a calm interval may not have run yet: "ready"
                    # says local-up's own check passed.
                    health=(
                        "ready"
                        if state and state.health == "starting" and service.name in (healthy_after or {})
                        else state.health
                        if state
                        else ""
                    ),
                    host_port=self.host_port(service),
                    seconds_to_healthy=(healthy_after or {}).get(service.name),
                )
            )
        return rows

    def logs(
        self, service: str | None, *, tail: object, follow: bool, on_line: Callable[[str], None]
    ) -> None:
        """`inv logs`: one service's (checked by name) or every service's logs."""
        names = [self.stack.service(service).name] if service else []
        lines = number(tail, "--tail", int) if tail else None
        self.compose(self.stack.default_version).logs(names, tail=lines, follow=follow, on_line=on_line)

    def down(self, version: str, *, volumes: bool) -> None:
        self.compose(version).down(volumes=volumes)

    def running_version(self) -> str | None:
        """The version of the images the project's containers run, if they agree on one."""
        seen = set(self.running_versions().values())
        return seen.pop() if len(seen) == 1 else None

    def running_versions(self) -> dict[str, str]:
        """Each running service's image tag (service name -> tag)."""
        return {c.service: image_parts(c.image).tag or "" for c in self.containers() if c.state == "running"}

    def move_services(self, targets: Mapping[str, str], *, timeout: float) -> list[ServiceStatus]:
        """Move the named services (name -> version or release) to other images; every other
        service keeps the tag it runs, so compose recreates only the moved ones. The data
        volume stays."""
        running = self.running_versions()
        idle = [name for name in self.stack.service_names if name not in running]
        if idle:
            raise SutraError(
                f"{', '.join(idle)} not running in the local stack (project {self.project}): "
                "start it with `inv local-up`, then roll back"
            )
        # SUTRA_TAG is what most of the others run; a service's own variable only where it differs.
        others = [tag for name, tag in running.items() if name not in targets]
        base = max(sorted(set(others)), key=others.count) if others else next(iter(targets.values()))
        pinned = {**{name: tag for name, tag in running.items() if tag != base}, **targets}
        return self.up(base, timeout=timeout, pinned=pinned, only=list(targets))

    def move(self, to_version: str, *, timeout: float) -> list[ServiceStatus]:
        """Replace the running stack with another version's images, keeping the data volume."""
        # Everything the target needs is checked before anything running is taken down.
        target = self.compose(to_version)
        if not self.docker.dry:
            self.require_images(to_version)
        target.down(volumes=False)
        return self.up(to_version, timeout=timeout)
