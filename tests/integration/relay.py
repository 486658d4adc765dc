"""A loopback TCP relay that can cut every connection after N bytes: a network fault on demand.

It sits in front of a real server (a registry). While ``cut_after`` is set, each connection is
reset once the client has sent that many bytes through it; with ``cut_after = None`` it passes
everything. ``cut_blob_downloads_after`` cuts the other way: a layer being fetched ends after that
many of the server's bytes (a registry going away mid-pull: its sockets closed). Each cut records the
HTTP request the cut landed in, read from the client's bytes, so a test can check that it cut
what it meant to (a blob upload, not a ping).
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import struct
import threading
from dataclasses import dataclass

# A request line at the start of a request; bodies (compressed layers) practically never
# contain one. Only read on connections that get cut, whose bytes are few (at most N).
REQUEST_LINE = re.compile(rb"(GET|HEAD|POST|PUT|PATCH|DELETE) (/\S*) HTTP/1\.[01]\r\n")
POLL_SECONDS = 0.2  # how often the relay's loops look at their stop flag
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Cut:
    method: str  # of the request the cut landed in ("" if no request line was seen)
    path: str
    bytes_into_request: int  # bytes of that request (line, headers, body) that got through

    @property
    def in_blob_upload(self) -> bool:
        return self.method in ("PATCH", "PUT") and "/blobs/uploads/" in self.path

    @property
    def in_blob_download(self) -> bool:
        return self.method == "GET" and "/blobs/sha256:" in self.path


class CuttingRelay:
    def __init__(
        self, upstream: tuple[str, int], *, cut_after: int | None, cut_blob_downloads_after: int | None = None
    ) -> None:
        self.upstream = upstream
        self.cut_after = cut_after  # read per chunk, so it can change between runs
        # The other way: a layer being fetched (GET …/blobs/…) is reset after this many of the
        # server's bytes, as a registry that goes away mid-pull.
        self.cut_blob_downloads_after = cut_blob_downloads_after
        self.cuts: list[Cut] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL_SECONDS)
        self.port = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"

    def __enter__(self) -> CuttingRelay:
        self._spawn(self._accept_loop)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)
        self._listener.close()

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            self._spawn(self._relay, client)

    def _relay(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        sent: bytearray = bytearray()  # the client's bytes, kept only while cutting
        request: tuple[str, str] = ("", "")  # the last request the client sent on this connection
        answered = 0  # the server's bytes since it
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([client, server], [], [], POLL_SECONDS)
                for source in readable:
                    data = source.recv(CHUNK_BYTES)
                    if not data:
                        return
                    if source is server:
                        limit = self.cut_blob_downloads_after
                        fetching = request[0] == "GET" and "/blobs/" in request[1]
                        if limit is not None and fetching and answered + len(data) > limit:
                            client.sendall(data[: limit - answered])
                            with self._lock:
                                self.cuts.append(Cut(request[0], request[1], limit))
                            # Closed, not reset: a registry process that dies closes its sockets
                            # (FIN), and a reset would let the client's kernel drop what it had
                            # not read yet, so how much came would be a race.
                            client.shutdown(socket.SHUT_WR)
                            reset(server)
                            return
                        answered += len(data)
                        client.sendall(data)
                        continue
                    for found in REQUEST_LINE.finditer(data):
                        request, answered = (found.group(1).decode(), found.group(2).decode()), 0
                    limit = self.cut_after
                    if limit is not None and len(sent) + len(data) > limit:
                        head = data[: limit - len(sent)]
                        server.sendall(head)
                        sent += head
                        self._record_cut(bytes(sent))
                        reset(client)
                        reset(server)
                        return
                    server.sendall(data)
                    if limit is not None:
                        sent += data
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def _record_cut(self, sent: bytes) -> None:
        last = None
        for last in REQUEST_LINE.finditer(sent):  # noqa: B007 (the last match is the one wanted)
            pass
        if last is None:
            cut = Cut("", "", len(sent))
        else:
            cut = Cut(last.group(1).decode(), last.group(2).decode(), len(sent) - last.start())
        with self._lock:
            self.cuts.append(cut)


def reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN: what a dropped network connection looks like."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
