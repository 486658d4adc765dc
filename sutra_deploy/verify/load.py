"""A bounded load of the stack file's journey, and the integrity check after it.

Each request is timed on its own; the run stops after ``requests`` requests, whatever
happens, and every request has a deadline. Half the requests learn a fact with a unique
marker (the journey's learn), the other half find facts already learned (its find), so on the
reference stack the queries exercise the whole path api -> hybrid -> storage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..core.journey import Journey
from ..tools.http import Http, new_session
from .closed_loop import TimedRequests
from .journey import Fact, JourneyFailed, find, learn, new_marker

REQUEST_TIMEOUT = (3.05, 30.0)


@dataclass
class LoadResult(TimedRequests):
    facts: list[Fact] = field(default_factory=list)
    first_errors: list[str] = field(default_factory=list)


def run_load(
    journey: Journey,
    urls: Mapping[str, str],
    *,
    requests: int,
    concurrency: int,
    progress: Callable[[str], None] = lambda line: None,
) -> LoadResult:
    """``requests`` requests, ``concurrency`` at a time: a learn first in each pair, then a find."""
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
                fact = learn(http(), journey, urls, new_marker(), timeout=REQUEST_TIMEOUT)
                with lock:
                    learned.append(fact)
            else:  # whether it is found is the integrity check's question; here, that find answers
                find(http(), journey, urls, target, timeout=REQUEST_TIMEOUT)
        except JourneyFailed as error:
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


def missing_facts(
    journey: Journey, urls: Mapping[str, str], facts: Sequence[Fact], *, concurrency: int = 4
) -> list[Fact]:
    """The facts the journey's find no longer finds."""
    local = threading.local()

    def lost(fact: Fact) -> bool:
        if not hasattr(local, "http"):
            local.http = Http(new_session(), timeout=REQUEST_TIMEOUT)
        try:
            return not find(local.http, journey, urls, fact, timeout=REQUEST_TIMEOUT)
        except JourneyFailed:
            return True

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        flags = list(pool.map(lost, facts))
    return [fact for fact, gone in zip(facts, flags, strict=True) if gone]
