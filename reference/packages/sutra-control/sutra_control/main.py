"""sutra-control: checks every service of the stack and shows the result.

GET /            HTML status table
GET /api/status  the same as JSON: {"services": [{name, target, ok, detail, latency_ms}]}
GET /healthz     "ok": this process's own liveness, no dependency is checked

Targets come from SUTRA_SERVICES, comma-separated `name=url` entries, where url is
`http(s)://host:port/path` (a GET answered 2xx is healthy) or `tcp://host:port` (a TCP
connect is healthy). Standard library only, so the image is just an interpreter.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.client import HTTPException
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from sutra_control import __version__

DEFAULT_SERVICES = (
    "storage-server=tcp://storage-server:50051,"
    "sutra-api=http://sutra-api:8000/health,"
    "sutra-hybrid=http://sutra-hybrid:8000/ping,"
    "sutra-client=http://sutra-client:8080/"
)
DEFAULT_PORT = 5000
CHECK_TIMEOUT_S = 1.5
# Socket timeouts do not cover name resolution; this grace bounds the whole page anyway.
DEADLINE_GRACE_S = 0.5

# No proxies: the targets are in-cluster names that an outside proxy could never reach.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Target:
    name: str
    url: str


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    target: str
    ok: bool
    detail: str
    latency_ms: float | None


class CheckError(Exception):
    pass


def parse_targets(spec: str) -> list[Target]:
    """Parse SUTRA_SERVICES; raises ValueError naming the bad entry."""
    targets: list[Target] = []
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        name, sep, url = (part.strip() for part in entry.partition("="))
        if not sep or not name or not url:
            raise ValueError(f"SUTRA_SERVICES entry {entry!r} is not name=url")
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"SUTRA_SERVICES entry {entry!r}: {exc}") from None
        if parts.scheme not in ("http", "https", "tcp") or not parts.hostname:
            raise ValueError(
                f"SUTRA_SERVICES entry {entry!r}: url must be http(s)://host[:port]/path or tcp://host:port"
            )
        if parts.scheme == "tcp" and port is None:
            raise ValueError(f"SUTRA_SERVICES entry {entry!r}: tcp:// needs a port")
        targets.append(Target(name=name, url=url))
    if not targets:
        raise ValueError("SUTRA_SERVICES names no service")
    return targets


def _check_tcp(url: str, timeout: float) -> str:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None  # parse_targets ensured it
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            return "TCP connect ok"
    except OSError as exc:
        raise CheckError(_os_error_text(exc)) from exc


def _check_http(url: str, timeout: float) -> str:
    request = urllib.request.Request(url, headers={"User-Agent": f"sutra-control/{__version__}"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:  # 4xx/5xx arrive as exceptions
        raise CheckError(f"HTTP {exc.code}") from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = _os_error_text(reason) if isinstance(reason, OSError) else str(reason)
        raise CheckError(text) from exc
    except (OSError, HTTPException) as exc:
        raise CheckError(_os_error_text(exc) if isinstance(exc, OSError) else repr(exc)) from exc
    if not 200 <= status < 300:
        raise CheckError(f"HTTP {status}")
    return f"HTTP {status}"


def _os_error_text(exc: OSError) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__


def check(target: Target, timeout: float = CHECK_TIMEOUT_S) -> ServiceStatus:
    started = time.monotonic()
    probe = _check_tcp if target.url.startswith("tcp://") else _check_http
    try:
        detail, ok = probe(target.url, timeout), True
    except CheckError as exc:
        detail, ok = str(exc), False
    latency_ms = round((time.monotonic() - started) * 1000, 1)
    return ServiceStatus(target.name, target.url, ok, detail, latency_ms)


def check_all(targets: list[Target], timeout: float = CHECK_TIMEOUT_S) -> list[ServiceStatus]:
    """Check every target concurrently; returns within about `timeout` whatever happens."""
    pool = ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix="check")
    try:
        futures = [pool.submit(check, target, timeout) for target in targets]
        done, _ = wait(futures, timeout=timeout + DEADLINE_GRACE_S)
        return [
            future.result()
            if future in done
            else ServiceStatus(target.name, target.url, False, "timed out", None)
            for target, future in zip(targets, futures, strict=True)
        ]
    finally:
        # Do not wait for a straggler (e.g. a hung DNS lookup): it ends on its own.
        pool.shutdown(wait=False, cancel_futures=True)


def status_json(statuses: list[ServiceStatus]) -> str:
    return json.dumps({"services": [asdict(status) for status in statuses]})


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="10">
<title>Sutra control</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1d2330; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: .4rem .9rem; border-bottom: 1px solid #d8dde6; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.ok {{ color: #137333; font-weight: bold; }}
.down {{ color: #b3261e; font-weight: bold; }}
</style>
</head>
<body>
<h1>Sutra stack status</h1>
<p>{summary}</p>
<table>
<thead>
<tr><th>Service</th><th>Target</th><th>Healthy</th><th>Detail</th><th>Latency (ms)</th></tr>
</thead>
<tbody>
{rows}
</tbody>
</table>
<p><a href="/api/status">JSON</a> &middot; refreshes every 10 s</p>
</body>
</html>
"""


def render_html(statuses: list[ServiceStatus]) -> str:
    rows = []
    for s in statuses:
        mark = '<td class="ok">&#x2713;</td>' if s.ok else '<td class="down">&#x2717;</td>'
        latency = "&mdash;" if s.latency_ms is None else f"{s.latency_ms:.1f}"
        rows.append(
            f"<tr><td>{html.escape(s.name)}</td><td>{html.escape(s.target)}</td>{mark}"
            f'<td>{html.escape(s.detail)}</td><td class="num">{latency}</td></tr>'
        )
    healthy = sum(s.ok for s in statuses)
    checked = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    summary = f"{healthy} of {len(statuses)} services healthy &middot; checked {checked}"
    return _PAGE.format(summary=summary, rows="\n".join(rows))


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], targets: list[Target], timeout: float) -> None:
        super().__init__(address, ControlHandler)
        self.targets = targets
        self.check_timeout = timeout


class ControlHandler(BaseHTTPRequestHandler):
    server: ControlServer
    server_version = f"sutra-control/{__version__}"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._send(HTTPStatus.OK, "text/plain; charset=utf-8", "ok")
        elif path == "/api/status":
            statuses = check_all(self.server.targets, self.server.check_timeout)
            self._send(HTTPStatus.OK, "application/json", status_json(statuses))
        elif path in ("/", "/index.html"):
            statuses = check_all(self.server.targets, self.server.check_timeout)
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", render_html(statuses))
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", "not found")

    def _send(self, status: HTTPStatus, content_type: str, body: str) -> None:
        payload = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        # The container healthcheck polls /healthz every few seconds: keep it out of the log.
        if not self.path.startswith("/healthz"):
            super().log_message(format, *args)


def main() -> int:
    try:
        targets = parse_targets(os.environ.get("SUTRA_SERVICES") or DEFAULT_SERVICES)
        port = int(os.environ.get("CONTROL_PORT") or DEFAULT_PORT)
    except ValueError as exc:
        print(f"sutra-control: {exc}", file=sys.stderr)
        return 2
    host = os.environ.get("CONTROL_HOST") or "0.0.0.0"
    # As PID 1 in a container SIGTERM is ignored unless handled: exit cleanly instead of
    # waiting for docker's SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with ControlServer((host, port), targets, CHECK_TIMEOUT_S) as server:
        names = ", ".join(target.name for target in targets)
        print(f"sutra-control listening on {host}:{port}, checking {names}", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
