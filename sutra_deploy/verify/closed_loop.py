"""One request, again and again, in a closed loop, as ApacheBench measures it (`ab -k -c C -n N`):
C connections kept alive, each sending its next request as soon as it has read the answer to
the last one, and every request timed from its first byte sent to its last byte read.

verify's mixed load (:mod:`.load`) is a pool of `requests` sessions in threads: on two cores its
own cost per request (sessions, JSON, the GIL) competes with the services it measures, and its
latencies were half as long again as ApacheBench's. This client is one thread of asyncio streams:
the request encoded once, nothing of the answer parsed but the status line and the framing
headers, so what it times is the service's.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class TimedRequests:
    """Requests made and timed: what the mixed load and the closed loop both report."""

    requests: int
    errors: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, the successful ones

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float | None:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else None
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(p) - 1]


@dataclass
class ClosedLoopResult(TimedRequests):
    concurrency: int = 1
    first_error: str | None = None


def encode_request(method: str, url: str, body: Any) -> tuple[str, int, bytes]:
    """(host, port, the request's bytes): HTTP/1.1, kept alive, a JSON body when there is one."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    payload = b"" if body is None else json.dumps(body).encode()
    head = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return host, port, ("\r\n".join(head) + "\r\n\r\n").encode() + payload


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; (status, whether the server keeps the connection)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() != "close"


def closed_loop(
    url: str, method: str, body: Any, *, requests: int, concurrency: int, timeout: float = 30.0
) -> ClosedLoopResult:
    """``requests`` of one request, ``concurrency`` connections at a time."""
    host, port, request = encode_request(method, url, body)
    latencies: list[float] = []
    errors: list[str] = []
    remaining = [requests]

    async def connection() -> None:
        reader = writer = None
        while remaining[0] > 0:
            remaining[0] -= 1
            started = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
                writer.write(request)
                status, keep = await asyncio.wait_for(_answer(reader), timeout)  # type: ignore[arg-type]
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
                errors.append(f"{method} {url}: {type(error).__name__}: {error}")
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            if 200 <= status < 300:
                latencies.append(time.perf_counter() - started)
            else:
                errors.append(f"{method} {url} answered {status}")
            if not keep:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    async def everything() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(max(1, min(concurrency, requests)))))
        return time.perf_counter() - started

    seconds = asyncio.run(everything())
    first = errors[0] if errors else None
    return ClosedLoopResult(
        requests, len(errors), seconds, latencies, concurrency=concurrency, first_error=first
    )
