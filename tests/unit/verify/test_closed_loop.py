"""The finds-only closed loop against a real HTTP server: every request answered and timed,
connections kept alive, chunked and closing answers read right, errors counted."""

from __future__ import annotations

import threading
from typing import ClassVar

from sutra_deploy.verify.closed_loop import closed_loop, encode_request

from ...json_servers import JsonHandler, serving


class Counting(JsonHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn answers
    connections: ClassVar[set[tuple]] = set()
    seen: ClassVar[list[tuple[str, object]]] = []
    lock = threading.Lock()

    def setup(self) -> None:
        super().setup()
        with self.lock:
            self.connections.add(self.client_address)  # one per TCP connection

    def do_POST(self) -> None:
        with self.lock:
            self.seen.append((self.path, self.body()))
        if self.path == "/missing":
            self.reply(404, {"detail": "no"})
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"results": ', b"[]}"):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/closing":
            self.close_connection = True
            raw = b'{"results": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(raw)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(raw)
        else:
            self.reply(200, {"results": [{"id": "f1"}]})


def fresh() -> type[Counting]:
    return type("Fresh", (Counting,), {"connections": set(), "seen": []})


def test_every_request_is_sent_answered_and_timed_over_kept_alive_connections():
    handler = fresh()
    with serving(handler) as url:
        result = closed_loop(
            url + "/query", "POST", {"query": "fact m1", "limit": 5}, requests=40, concurrency=4
        )
    assert (result.requests, result.errors, len(result.latencies)) == (40, 0, 40)
    assert handler.seen == [("/query", {"query": "fact m1", "limit": 5})] * 40
    assert len(handler.connections) == 4  # one per worker, reused: as `ab -k`
    assert all(latency > 0 for latency in result.latencies) and result.percentile(50) is not None
    assert result.throughput > 0


def test_chunked_and_closing_answers_are_read_and_a_closed_connection_is_opened_again():
    for path, connections in (("/chunked", 2), ("/closing", 10)):
        handler = fresh()
        with serving(handler) as url:
            result = closed_loop(url + path, "POST", {}, requests=10, concurrency=2)
        assert (result.errors, len(result.latencies)) == (0, 10), path
        assert len(handler.connections) == connections, path


def test_an_answer_that_is_no_success_and_a_server_that_is_not_there_are_errors():
    with serving(fresh()) as url:
        missing = closed_loop(url + "/missing", "POST", {}, requests=6, concurrency=2)
    assert (missing.errors, missing.latencies) == (6, [])
    assert missing.first_error.endswith("answered 404")
    gone = closed_loop(url + "/query", "POST", {}, requests=3, concurrency=1, timeout=2)  # server shut down
    assert gone.errors == 3 and "ConnectionRefusedError" in gone.first_error


def test_a_get_carries_no_body_and_keeps_its_query_string():
    host, port, request = encode_request("GET", "http://127.0.0.1:9/api/v1/search?q=m1", None)
    assert (host, port) == ("127.0.0.1", 9)
    assert (
        request == b"GET /api/v1/search?q=m1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nConnection: keep-alive\r\n\r\n"
    )
