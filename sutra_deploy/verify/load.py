"""A bounded learn + query load through sutra-api, and the integrity check after it.

Each request is timed on its own; the run stops after ``requests`` requests, whatever
happens, and every request has a deadline. Half the requests learn a fact with a unique
marker, the other half query for facts already learned, so the queries exercise the whole
path api -> hybrid -> storage.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..tools.http import Http, HttpError, new_session

REQUEST_TIMEOUT = (3.05, 30.0)


@dataclass(frozen=True)
class Fact:
    id: str
    text: str


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    facts: list[Fact] = field(default_factory=list)
    first_errors: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float | None:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else None
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(p) - 1]


def fact_text(marker: str) -> str:
    return f"verify fact {marker}: the keeper of lighthouse {marker[:4]} logged a calm sea"


def run_load(
    api_url: str,
    *,
    requests: int,
    concurrency: int,
    progress: Callable[[str], None] = lambda line: None,
) -> LoadResult:
    """``requests`` requests, ``concurrency`` at a time: learns first in each pair, then queries."""
    api = api_url.rstrip("/")
    learned: list[Fact] = []
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    local = threading.local()

    def http() -> Http:
        if not hasattr(local, "http"):  # a session per worker: pooled, and never shared across threads
            local.http = Http(new_session(), timeout=REQUEST_TIMEOUT)
        return local.http

    def one(index: int) -> None:
        started = time.monotonic()
        try:
            with lock:
                target = learned[index // 2 % len(learned)] if index % 2 and learned else None
            if target is None:
                marker = uuid.uuid4().hex
                answer = http().post(api + "/learn", {"content": fact_text(marker)}).json()
                fact_id = answer.get("id") if isinstance(answer, dict) else None
                if not fact_id:
                    raise HttpError(f"/learn gave no id: {answer!r:.120}")
                with lock:
                    learned.append(Fact(fact_id, fact_text(marker)))
            else:
                answer = http().post(api + "/query", {"query": target.text, "limit": 5}).json()
                if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
                    raise HttpError(f"/query answered without results: {answer!r:.120}")
        except HttpError as error:
            with lock:
                errors.append(str(error))
            return
        with lock:
            latencies.append(time.monotonic() - started)
            done = len(latencies) + len(errors)
        if done % max(1, requests // 10) == 0:
            progress(f"[verify] load: {done}/{requests} requests")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(requests)))
    seconds = time.monotonic() - started
    return LoadResult(requests, len(errors), seconds, latencies, list(learned), errors[:5])


def missing_facts(api_url: str, facts: Sequence[Fact], *, concurrency: int = 4) -> list[Fact]:
    """The facts a query no longer finds (each queried by its own text)."""
    api = api_url.rstrip("/")
    local = threading.local()

    def lost(fact: Fact) -> bool:
        if not hasattr(local, "http"):
            local.http = Http(new_session(), timeout=REQUEST_TIMEOUT)
        try:
            answer = local.http.post(api + "/query", {"query": fact.text, "limit": 5}).json()
        except HttpError:
            return True
        results = answer.get("results", []) if isinstance(answer, dict) else []
        return not any(isinstance(r, dict) and r.get("id") == fact.id for r in results)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        flags = list(pool.map(lost, facts))
    return [fact for fact, gone in zip(facts, flags, strict=True) if gone]
