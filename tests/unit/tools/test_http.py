import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from sutra_deploy.core.errors import HttpError
from sutra_deploy.tools.http import Http, is_loopback, new_session


class Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first GET of /flaky, 200 after; /missing is 404; POSTs count."""

    seen: ClassVar[dict[str, int]] = {}

    def log_message(self, *args):
        pass

    def answer(self, status: int, body: bytes = b'{"ok": true}') -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.seen[self.path] = self.seen.get(self.path, 0) + 1
        if self.path == "/flaky":
            self.answer(503 if self.seen[self.path] == 1 else 200)
        else:
            self.answer(404 if self.path == "/missing" else 200)

    def do_POST(self):
        self.seen["POST " + self.path] = self.seen.get("POST " + self.path, 0) + 1
        self.rfile.read(int(self.headers["Content-Length"]))
        self.answer(503)


@pytest.fixture
def server():
    Flaky.seen = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_non_2xx_is_an_error_unless_the_caller_handles_it(server):
    http = Http()
    assert http.get(server + "/health").json() == {"ok": True}
    with pytest.raises(HttpError, match=r"GET .*/missing answered 404") as caught:
        http.get(server + "/missing")
    assert caught.value.status == 404
    assert http.get(server + "/missing", ok=(404,)).status == 404


def test_a_refused_connection_is_one_short_line():
    with pytest.raises(HttpError, match=r": connection refused$"):
        Http().get(f"http://127.0.0.1:{closed_port()}/health")


def test_retries_are_only_for_idempotent_gets_when_asked(server):
    assert Http(new_session(retries=2)).get(server + "/flaky").status == 200
    assert Flaky.seen["/flaky"] == 2
    with pytest.raises(HttpError, match="answered 503"):
        Http(new_session(retries=2)).post(server + "/learn", {"content": "x"})
    assert Flaky.seen["POST /learn"] == 1
    Flaky.seen.clear()
    with pytest.raises(HttpError, match="answered 503"):
        Http().get(server + "/flaky")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("[::1]:5000", True),
        ("registry.example.com", False),
    ],
)
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback
