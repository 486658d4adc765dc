"""Zero downtime, measured: what a deploy saw while its rolling updates ran.

While `inv deploy` applies and waits for its rollouts, two samplers run beside it:

- one reads the namespace's Deployments every half second and keeps, per Deployment, the
  lowest ``status.availableReplicas`` against its floor, ``spec.replicas − maxUnavailable``
  (as the Deployment controller resolves it at that moment: the autoscaler may move replicas);
- one sends requests through the cluster to each HTTP service's health route, through the API
  server's service proxy (``kubectl proxy``). That proxy picks a ready endpoint of the Service
  for every request, as the Service itself does, so the requests follow the rollout from old
  pods to new ones. A ``kubectl port-forward`` cannot measure this: it binds one pod when it
  starts and breaks when the rollout takes that pod away. A service the proxy cannot reach
  before the apply (a NetworkPolicy that admits no one from the control plane, say) is left out,
  and its record says so: its availability is still measured.

The deploy writes each Deployment's :class:`RolloutRecord` on the Deployment (annotation
:data:`ANNOTATION`, JSON) once the release passed its smoke; `inv verify` reads it back. It
lives here, below both `ship/` (which writes it) and `verify/` (which reads it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.errors import HttpError, SutraError, TimedOut
from ..tools.http import Http
from ..tools.kubectl import Kubectl
from ..tools.ports import free_port
from ..tools.waiting import wait_until
from .manifests import service_ports

log = logging.getLogger("sutra")

ANNOTATION = "sutra.ai/rollout"
SAMPLE_SECONDS = 0.5  # how often the Deployments are read
REQUEST_PAUSE_SECONDS = 0.1  # between rounds of requests: enough to see a gap, little CPU
REQUEST_TIMEOUT = 3.0
PROXY_READY_SECONDS = 20.0  # the proxy up and every route answering once, before the apply


@dataclass(frozen=True)
class Target:
    """One Deployment the deploy may roll, and the route requests reach it by (None: none)."""

    deployment: str
    service: str | None = None  # the Service in front of it
    port: int | None = None  # that Service's port
    path: str | None = None  # its HTTP health route

    @property
    def route(self) -> str | None:
        return f"GET {self.path}" if self.service and self.path else None


@dataclass(frozen=True)
class RolloutRecord:
    """What one Deployment's rollout looked like from outside, as a deploy measured it."""

    revision: int  # the Deployment's revision the rollout made
    release: str | None
    replicas: int  # spec.replicas at the lowest point
    floor: int  # spec.replicas − maxUnavailable there
    min_available: int
    requests: int  # sent through the cluster during the rollout (0: see `unmeasured`)
    failed: int
    seconds: float  # how long the samplers ran
    route: str | None = None  # e.g. "GET /health through the API server's service proxy"
    first_failure: str | None = None
    unmeasured: str | None = None  # why no requests were sent, if none were

    @property
    def available_ok(self) -> bool:
        return self.min_available >= self.floor

    @property
    def ok(self) -> bool:
        return self.available_ok and self.failed == 0

    def summary(self) -> str:
        parts = [f"available ≥ {self.min_available} of floor {self.floor} ({self.replicas} replicas)"]
        if self.requests:
            parts.append(f"{self.requests - self.failed}/{self.requests} requests ok ({self.route})")
        else:
            parts.append(f"no requests sent: {self.unmeasured or 'none'}")
        if self.first_failure:
            parts.append(f"first failure: {self.first_failure}")
        return f"revision {self.revision}: " + ", ".join(parts)

    def to_annotation(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_annotation(cls, text: str) -> RolloutRecord:
        """A record read back; :class:`SutraError` when it is not one (edited by hand, say)."""
        try:
            data = json.loads(text)
            return cls(**{k: data[k] for k in data if k in cls.__dataclass_fields__})
        except (json.JSONDecodeError, TypeError, KeyError) as error:
            raise SutraError(f"annotation {ANNOTATION} is not a rollout record: {error}") from None


def max_unavailable(deployment: Mapping[str, Any]) -> int:
    """``maxUnavailable`` resolved against ``spec.replicas`` as the Deployment controller does:
    a percentage rounds down, a surge rounds up, and when both come to 0 one may be unavailable.
    Recreate takes every pod away."""
    spec = deployment.get("spec") or {}
    replicas = int(spec.get("replicas", 1) or 0)
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return replicas
    rolling = strategy.get("rollingUpdate") or {}
    unavailable = _resolve(rolling.get("maxUnavailable", "25%"), replicas, math.floor)
    surge = _resolve(rolling.get("maxSurge", "25%"), replicas, math.ceil)
    return 1 if unavailable == 0 and surge == 0 else unavailable


def _resolve(value: Any, replicas: int, rounding) -> int:
    text = str(value)
    if text.endswith("%"):
        return int(rounding(replicas * float(text[:-1]) / 100))
    return int(text)


@dataclass
class _Availability:
    replicas: int = 0
    floor: int = 0
    min_available: int | None = None

    def sample(self, deployment: Mapping[str, Any]) -> None:
        replicas = int((deployment.get("spec") or {}).get("replicas", 1) or 0)
        floor = replicas - max_unavailable(deployment)
        available = int((deployment.get("status") or {}).get("availableReplicas", 0) or 0)
        if self.min_available is None or available - floor < self.min_available - self.floor:
            self.replicas, self.floor, self.min_available = replicas, floor, available


@dataclass
class _Requests:
    sent: int = 0
    failed: int = 0
    first_failure: str | None = None


@dataclass
class RolloutWatch:
    """The two samplers, running while the block of :func:`watch_rollouts` runs."""

    kubectl: Kubectl
    namespace: str
    targets: Sequence[Target]
    proxy_port: int | None = None
    excluded: dict[str, str] = field(default_factory=dict)  # deployment -> why no requests
    _availability: dict[str, _Availability] = field(default_factory=dict)
    _requests: dict[str, _Requests] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _started: float = 0.0
    _ended: float = 0.0
    _errors: list[str] = field(default_factory=list)

    def url(self, target: Target) -> str:
        return (
            f"http://127.0.0.1:{self.proxy_port}/api/v1/namespaces/{self.namespace}"
            f"/services/{target.service}:{target.port}/proxy{target.path}"
        )

    def reach_each_route(self, http: Http) -> list[Target]:
        """The targets whose route answers through the proxy now (retried for a while: the
        proxy is starting); the others are excluded, with the last answer as the reason."""
        reachable, last = [], {}
        pending = [t for t in self.targets if t.route]
        for target in self.targets:
            if not target.route:
                self.excluded[target.deployment] = "no HTTP health route to send requests to"

        def all_answer() -> bool:
            for target in list(pending):
                try:
                    http.get(self.url(target), timeout=REQUEST_TIMEOUT)
                except HttpError as error:
                    last[target.deployment] = str(error)
                    continue
                pending.remove(target)
                reachable.append(target)
            return not pending

        with contextlib.suppress(TimedOut):
            wait_until(all_answer, timeout=PROXY_READY_SECONDS, interval=0.5, what="the service proxy")
        for target in pending:
            self.excluded[target.deployment] = (
                f"not reachable through the API server's service proxy before the rollout: "
                f"{last.get(target.deployment, 'no answer')}"
            )
        return reachable

    def sample_deployments(self) -> None:
        while not self._stop.is_set():
            try:
                listed = self.kubectl.get_json("deployments", self.namespace).get("items") or []
            except SutraError as error:  # one failed read is a gap in the samples, not an abort
                self._errors.append(str(error))
            else:
                for deployment in listed:
                    name = (deployment.get("metadata") or {}).get("name")
                    if name in self._availability:
                        self._availability[name].sample(deployment)
            self._stop.wait(SAMPLE_SECONDS)

    def send_requests(self, http: Http, targets: Sequence[Target]) -> None:
        while not self._stop.is_set():
            for target in targets:
                tally = self._requests[target.deployment]
                tally.sent += 1
                try:
                    http.get(self.url(target), timeout=REQUEST_TIMEOUT)
                except HttpError as error:
                    tally.failed += 1
                    if tally.first_failure is None:
                        at = time.monotonic() - self._started
                        tally.first_failure = f"{error} ({at:.1f} s in)"
            self._stop.wait(REQUEST_PAUSE_SECONDS)

    def records(self, revisions: Mapping[str, int | None], release: str | None) -> dict[str, RolloutRecord]:
        """A record for each target that rolled to ``revisions`` (its revision after the
        deploy); one that did not move, or was never sampled, has none."""
        found = {}
        seconds = round(self._ended - self._started, 1)
        for target in self.targets:
            revision = revisions.get(target.deployment)
            seen = self._availability.get(target.deployment)
            if revision is None or seen is None or seen.min_available is None:
                continue
            tally = self._requests.get(target.deployment)
            found[target.deployment] = RolloutRecord(
                revision=revision,
                release=release,
                replicas=seen.replicas,
                floor=seen.floor,
                min_available=seen.min_available,
                requests=tally.sent if tally else 0,
                failed=tally.failed if tally else 0,
                seconds=seconds,
                route=f"{target.route} through the API server's service proxy" if tally else None,
                first_failure=tally.first_failure if tally else None,
                unmeasured=None if tally else self.excluded.get(target.deployment, "not measured"),
            )
        return found


@contextlib.contextmanager
def watch_rollouts(kubectl: Kubectl, namespace: str, targets: Sequence[Target]) -> Iterator[RolloutWatch]:
    """Sample availability and send requests while the block runs (it applies and waits).

    ``targets`` are the Deployments that exist before the change (a new one has no downtime to
    measure). A dry run samples nothing: its records are empty."""
    watch = RolloutWatch(kubectl, namespace, targets)
    if kubectl.dry or not targets:
        yield watch
        return
    watch._availability = {t.deployment: _Availability() for t in targets}
    with contextlib.ExitStack() as running:
        routes = [t for t in targets if t.route]
        reachable: list[Target] = []
        http = Http()
        running.callback(http.close)
        if routes:
            watch.proxy_port = free_port()
            running.enter_context(kubectl.proxy(watch.proxy_port))
            reachable = watch.reach_each_route(http)
        else:
            watch.reach_each_route(http)  # names each target's lack of a route
        watch._requests = {t.deployment: _Requests() for t in reachable}
        threads = [threading.Thread(target=watch.sample_deployments, name="rollout-availability")]
        if reachable:
            threads.append(
                threading.Thread(target=watch.send_requests, args=(http, reachable), name="rollout-requests")
            )
        log.info(
            "[deploy] measuring the rollouts: availability of %s; requests to %s",
            ", ".join(t.deployment for t in targets),
            ", ".join(t.deployment for t in reachable) or "none",
        )
        watch._started = time.monotonic()
        for thread in threads:
            thread.daemon = True
            thread.start()
        try:
            yield watch
        finally:
            watch._stop.set()
            for thread in threads:
                thread.join(timeout=REQUEST_TIMEOUT + 5)
            watch._ended = time.monotonic()


def targets_for(
    objects: Sequence[dict],
    existing: Sequence[str],
    health_paths: Mapping[str, str | None],
    stateful: Sequence[str],
) -> list[Target]:
    """The Deployments in ``existing`` outside the storage tier (one writer: a gap on every
    update by design), each with the Service of its name, that Service's first port, and its
    HTTP health route from ``health_paths`` (None: a tcp check)."""
    ports = service_ports(objects)
    targets = []
    for name in existing:
        if name in stateful:
            continue
        path = health_paths.get(name)
        if name in ports and path:
            targets.append(Target(name, name, ports[name], path))
        else:
            targets.append(Target(name))
    return targets


def read_records(deployments: Sequence[Mapping[str, Any]]) -> dict[str, RolloutRecord | str]:
    """Each live Deployment's record, or why it has none that describes what it runs now."""
    found: dict[str, RolloutRecord | str] = {}
    for deployment in deployments:
        metadata = deployment.get("metadata") or {}
        name, notes = metadata.get("name"), metadata.get("annotations") or {}
        text = notes.get(ANNOTATION)
        if not text:
            found[name] = "no rollout measured by a deploy"
            continue
        try:
            record = RolloutRecord.from_annotation(text)
        except SutraError as error:
            found[name] = str(error)
            continue
        current = str(notes.get("deployment.kubernetes.io/revision", ""))
        if current and current != str(record.revision):
            found[name] = f"measured at revision {record.revision}, now at {current} (changed since)"
            continue
        found[name] = record
    return found
