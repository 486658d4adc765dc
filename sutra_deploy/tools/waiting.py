"""Waiting by polling with a deadline, never a fixed sleep. The clock is injectable for tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..core.errors import TimedOut

T = TypeVar("T")


@dataclass(frozen=True)
class Clock:
    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


SYSTEM_CLOCK = Clock()


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.5,
    what: str = "the condition",
    clock: Clock | None = None,
) -> T:
    """Call ``check`` until it returns something truthy; return that, or raise TimedOut."""
    clock = clock or SYSTEM_CLOCK
    deadline = clock.now() + timeout
    while True:
        result = check()
        if result:
            return result
        remaining = deadline - clock.now()
        if remaining <= 0:
            raise TimedOut(f"gave up waiting for {what} after {timeout:g}s")
        clock.sleep(min(interval, remaining))
