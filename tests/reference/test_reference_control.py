"""sutra-control: target parsing, the status page and its JSON, and its own liveness."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from reference_harness import Launcher, free_port
from sutra_control.main import (
    DEFAULT_SERVICES,
    ServiceStatus,
    Target,
    parse_targets,
    render_html,
)


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/ok" else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_target() -> Iterator[int]:
    """A real HTTP server answering 200 on /ok and 503 elsewhere."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_target() -> Iterator[int]:
    """Accepts TCP connections (the kernel does) but never answers HTTP."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def test_parse_targets() -> None:
    assert parse_targets(" a=http://h:1/x , b=tcp://h:2 ,") == [
        Target("a", "http://h:1/x"),
        Target("b", "tcp://h:2"),
    ]
    names = [target.name for target in parse_targets(DEFAULT_SERVICES)]
    assert names == ["storage-server", "sutra-api", "sutra-hybrid", "sutra-client"]


@pytest.mark.parametrize(
    "spec", ["", "noequals", "=http://h/", "a=", "a=ftp://h/", "a=tcp://h", "a=http://h:x/"]
)
def test_parse_targets_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_targets(spec)


def test_html_escapes_everything() -> None:
    page = render_html([ServiceStatus("<b>x</b>", "http://h/?a=1&b=2", False, "<script>", None)])
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "a=1&amp;b=2" in page


def test_status_reports_up_and_down_targets(launcher: Launcher, http_target: int, silent_target: int) -> None:
    closed = free_port()
    services = ",".join(
        [
            f"web-up=http://127.0.0.1:{http_target}/ok",
            f"web-503=http://127.0.0.1:{http_target}/broken",
            f"web-down=http://127.0.0.1:{closed}/",
            f"web-silent=http://127.0.0.1:{silent_target}/",
            f"tcp-up=tcp://127.0.0.1:{http_target}",
            f"tcp-down=tcp://127.0.0.1:{closed}",
        ]
    )
    control = launcher.control(services)
    with httpx.Client(base_url=control.url, timeout=10, trust_env=False) as client:
        started = time.monotonic()
        response = client.get("/api/status")
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        statuses = {s["name"]: s for s in response.json()["services"]}
        assert list(statuses) == [
            "web-up", "web-503", "web-down", "web-silent", "tcp-up", "tcp-down"
        ]  # fmt: skip
        assert {name: s["ok"] for name, s in statuses.items()} == {
            "web-up": True,
            "web-503": False,
            "web-down": False,
            "web-silent": False,
            "tcp-up": True,
            "tcp-down": False,
        }
        assert statuses["web-503"]["detail"] == "HTTP 503"
        assert statuses["web-silent"]["detail"] == "timed out"
        assert statuses["web-up"]["target"] == f"http://127.0.0.1:{http_target}/ok"
        assert isinstance(statuses["web-up"]["latency_ms"], float)
        # Checks run concurrently: one slow target does not add up with the others.
        assert elapsed < 3.5

        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "2 of 6 services healthy" in page.text
        assert "&#x2713;" in page.text and "&#x2717;" in page.text

        health = client.get("/healthz")
        assert health.status_code == 200 and health.text == "ok"
        assert client.get("/nowhere").status_code == 404


def test_invalid_services_spec_exits_with_code_2(launcher: Launcher) -> None:
    control = launcher.control("broken", expect_exit=True)
    assert control.process.wait(timeout=10) == 2
    assert "SUTRA_SERVICES" in control.logs()
