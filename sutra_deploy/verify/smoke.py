"""Smoke tests: every service answers its health check, and the stack file's journey passes
(on the reference stack: a fact learned through the API comes back from a query through
api -> hybrid -> storage). Locally at the published ports
(`inv smoke`), or on a cluster through one kubectl port-forward per service (the deploy and
`inv verify --env staging|production`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from tabulate import tabulate

from ..core.errors import SmokeFailed, SutraError, TimedOut
from ..core.inputs import service_url
from ..core.journey import Journey
from ..core.stack import Service, Stack
from ..k8s.manifests import service_ports
from ..local.compose_stack import local_urls
from ..local.readiness import NotReady, probe
from ..tools.http import Http
from ..tools.ports import free_port
from ..tools.waiting import SYSTEM_CLOCK, Clock, wait_until
from .journey import JourneyFailed
from .journey import walk as walk_journey

if TYPE_CHECKING:
    from ..tools.kubectl import Kubectl

END_TO_END = "end-to-end"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass(frozen=True)
class SmokeReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_json(self) -> dict:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}

    def to_json(self) -> str:
        return json.dumps(self.as_json(), indent=2)

    def table(self) -> str:
        return tabulate(
            [[c.name, "ok" if c.ok else "FAILED", f"{c.seconds:.2f}", c.detail] for c in self.checks],
            headers=["Check", "Result", "Seconds", "Detail"],
            colalign=("left", "left", "right", "left"),
        )

    def raise_if_failed(self) -> None:
        failed = [c for c in self.checks if not c.ok]
        if failed:
            raise SmokeFailed("smoke failed: " + "; ".join(f"{c.name}: {c.detail}" for c in failed))


# One failed try of a check, retried until the deadline (a failed probe is one too).
Attempt = NotReady


def end_to_end(http: Http, journey: Journey, urls: Mapping[str, str]) -> str:
    """The stack file's journey once: a new fact learned and found again."""
    try:
        return walk_journey(http, journey, urls)
    except JourneyFailed as error:
        raise Attempt(str(error)) from None


def timed_check(name: str, attempt: Callable[[], str], *, timeout: float, clock: Clock) -> Check:
    started = clock.now()
    last_error = ["no attempt made"]

    def once() -> str | None:
        try:
            return attempt()
        except Attempt as error:
            last_error[0] = str(error)
            return None

    try:
        detail = wait_until(once, timeout=timeout, interval=0.5, what=name, clock=clock)
    except TimedOut:
        return Check(name, False, round(clock.now() - started, 3), last_error[0])
    return Check(name, True, round(clock.now() - started, 3), detail)


def run_smoke(
    services: Sequence[Service],
    base_urls: Mapping[str, str],
    *,
    timeout: float,
    journey: Journey | None,
    clock: Clock = SYSTEM_CLOCK,
) -> SmokeReport:
    """Probe each service (retrying until ``timeout``), then the stack's journey (when given:
    its services are among ``base_urls``)."""
    http = Http()  # one pooled session for the whole run
    try:
        checks = [
            timed_check(s.name, lambda s=s: probe(http, s, base_urls[s.name]), timeout=timeout, clock=clock)
            for s in services
        ]
        if journey is not None:
            checks.append(
                timed_check(
                    END_TO_END, lambda: end_to_end(http, journey, base_urls), timeout=timeout, clock=clock
                )
            )
    finally:
        http.close()
    return SmokeReport(tuple(checks))


def journey_among(stack: Stack, services: Iterable[str]) -> Journey | None:
    """The stack's journey when every service it calls is among ``services``."""
    journey, present = stack.journey, set(services)
    return journey if journey is not None and set(journey.services) <= present else None


def parse_base_urls(values: Sequence[str], known: Sequence[str]) -> dict[str, str]:
    """`--base-url sutra-api=http://localhost:8000` (repeatable) -> {service: url}."""
    urls = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or "://" not in url:
            raise SutraError(
                f"--base-url {value!r}: expected SERVICE=URL, e.g. sutra-api=http://localhost:8000"
            )
        if name not in known:
            raise SutraError(
                f"--base-url {value!r}: unknown service {name!r}; known services: {', '.join(known)}"
            )
        urls[name] = service_url(url, f"--base-url {name}")
    return urls


def smoke_stack(
    stack: Stack,
    *,
    names: Sequence[str],
    base_urls: Sequence[str],
    timeout: float,
    clock: Clock = SYSTEM_CLOCK,
) -> SmokeReport:
    """`inv smoke`: the chosen services at their local ports (or ``SERVICE=URL`` overrides),
    then the journey when its services are among them."""
    services = stack.select(names)
    urls = local_urls(stack)
    urls.update(parse_base_urls(base_urls, stack.service_names))
    chosen = {s.name for s in services}
    return run_smoke(services, urls, timeout=timeout, journey=journey_among(stack, chosen), clock=clock)


def smoke_through_port_forwards(
    kubectl: Kubectl, stack: Stack, objects: Sequence[dict], namespace: str, timeout: float
) -> SmokeReport | None:
    """Forward each service to a free local port, as the plan's Phase 4.3 does by hand, and
    smoke through the forwards; a dry run prints the forwards and smokes nothing."""
    ports = service_ports(objects)
    services = [s for s in stack.services if s.name in ports]
    urls = {}
    with contextlib.ExitStack() as forwards:
        for service in services:
            local = free_port()
            forwards.enter_context(kubectl.port_forward(service.name, namespace, local, ports[service.name]))
            urls[service.name] = f"http://127.0.0.1:{local}"
        if kubectl.dry:
            return None
        return run_smoke(services, urls, timeout=timeout, journey=journey_among(stack, urls))
