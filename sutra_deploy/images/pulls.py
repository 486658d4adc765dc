"""Pulls that failed lately, so that a machine no registry answers is not asked on every build.

`--bases auto` keeps an official base image the engine has or can pull. Where no registry
answers (an air-gapped site, a proxy that drops the connection), each try can take the
daemon's whole timeout, on every `inv build`, a no-op included. A failed pull is remembered in
this machine's cache and not tried again for an hour; a pull that works forgets it.
`--bases official` leaves pulling to the builder, which always asks.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from ..tools import files
from ..tools.engine import Engine

RETRY_AFTER_SECONDS = 3600.0


class PullMemory:
    """image -> when a pull of it last failed, in one JSON file of the cache folder."""

    def __init__(self, path: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.path = path or files.cache_folder("failed-pulls.json")
        self.clock = clock
        self.held_back: list[float] = []  # when each pull this run did not try is tried again
        try:
            loaded = json.loads(self.path.read_text())
        except (OSError, ValueError):
            loaded = {}
        self._failed = (
            {k: v for k, v in loaded.items() if isinstance(v, int | float)}
            if isinstance(loaded, dict)
            else {}
        )

    def pull(self, engine: Engine, ref: str) -> bool:
        """Pull ``ref`` unless a failure holds it back; True when the engine has it now."""
        retry_at = self.retry_at(ref)
        if retry_at is not None:
            self.held_back.append(retry_at)
            return False
        pulled = engine.pull(ref)
        self.record(ref, pulled)
        return pulled

    def held_back_note(self) -> str:
        """What a log line adds when a remembered failure kept a pull from being tried."""
        if not self.held_back:
            return ""
        again = time.strftime("%H:%M", time.localtime(max(self.held_back)))
        return f" (a pull failed within the hour; tried again after {again})"

    def retry_at(self, ref: str) -> float | None:
        """When a pull of ``ref`` is tried again, while a failure holds it back; else None."""
        failed = self._failed.get(ref)
        if failed is None or not failed <= self.clock() < failed + RETRY_AFTER_SECONDS:
            return None  # never failed, an hour passed, or a clock that went back
        return failed + RETRY_AFTER_SECONDS

    def record(self, ref: str, pulled: bool) -> None:
        if pulled:
            self._failed.pop(ref, None)
        else:
            self._failed[ref] = self.clock()
        with contextlib.suppress(OSError):  # a cache that cannot be written only costs time
            files.write_if_changed(self.path, json.dumps(self._failed, indent=1, sort_keys=True))
