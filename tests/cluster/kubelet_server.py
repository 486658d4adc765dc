"""The node agent's kubelet endpoint (HTTPS, the port each Node reports in
`status.daemonEndpoints.kubeletEndpoint`): what the API server reaches a kubelet for.

- `/portForward/NAMESPACE/POD`: `kubectl port-forward`, over SPDY/3.1 (`spdy`). kubectl 1.37
  first asks for SPDY tunnelled over WebSocket, which 1.20's kubelets never served: that request
  is refused, and kubectl falls back to the plain SPDY upgrade, as it does with a real 1.20 node.
- `/containerLogs/NAMESPACE/POD/CONTAINER`: `kubectl logs`, from the engine's log of the container.

The API server is started without `--kubelet-certificate-authority`, so it does not verify this
endpoint's self-signed certificate, as with kubelets whose serving certificates are self-signed.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from . import spdy

PORT_FORWARD_PROTOCOL = "portforward.k8s.io"


class KubeletServer:
    def __init__(self, agent, folder: Path) -> None:
        self.agent = agent
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = folder / "kubelet.crt", folder / "kubelet.key"
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
                *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=sutra-test-agent"),
                *("-addext", "subjectAltName=IP:127.0.0.1"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert, key)
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                try:
                    conn = server.tls.wrap_socket(self.request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                with contextlib.suppress(OSError, spdy.Closed):
                    server.serve(conn)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="kubelet", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- one request ---------------------------------------------------------------------

    def serve(self, conn: ssl.SSLSocket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(65536)
            if not data:
                return
            head += data
        head, _, rest = head.partition(b"\r\n\r\n")
        request, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request.split(" ", 2)
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        url = urlsplit(target)
        parts = [p for p in url.path.split("/") if p]
        if parts[:1] == ["portForward"] and len(parts) == 3:
            self.port_forward(conn, parts[1], parts[2], headers, rest)
        elif parts[:1] == ["containerLogs"] and len(parts) == 4 and method == "GET":
            self.logs(conn, parts[1], parts[2], parts[3], parse_qs(url.query))
        elif url.path == "/healthz":
            respond(conn, 200, b"ok")
        else:
            respond(conn, 404, b"not served by the sutra test agent")

    def logs(self, conn, namespace: str, pod: str, container: str, query) -> None:
        runtime = self.agent.runtime_named(namespace, pod)
        found = (
            next((s for s in runtime.containers if s.spec["name"] == container), None) if runtime else None
        )
        if found is None or found.container is None:
            respond(conn, 404, f"container {container} of {namespace}/{pod} not found".encode())
            return
        tail = query.get("tailLines", ["all"])[0]
        respond(conn, 200, found.container.logs(tail=int(tail) if tail.isdigit() else "all"))

    def port_forward(self, conn, namespace: str, pod: str, headers: dict, rest: bytes) -> None:
        upgrade = ",".join(headers.get("upgrade", [])).lower()
        if "websocket" in upgrade:
            respond(conn, 400, b"port-forward over WebSocket is not served by this kubelet; use SPDY/3.1")
            return
        protocols = [p.strip() for v in headers.get("x-stream-protocol-version", []) for p in v.split(",")]
        if "spdy/3.1" not in upgrade or PORT_FORWARD_PROTOCOL not in protocols:
            respond(conn, 400, b"port-forward needs Upgrade: SPDY/3.1 and portforward.k8s.io")
            return
        runtime = self.agent.runtime_named(namespace, pod)
        if runtime is None or not runtime.ip:
            respond(conn, 404, f"pod {namespace}/{pod} is not running on this node".encode())
            return
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
            + f"X-Stream-Protocol-Version: {PORT_FORWARD_PROTOCOL}\r\n\r\n".encode()
        )
        session = spdy.Session(conn)
        session.buffer = rest
        Forwarding(session, runtime.ip).run()


class Forwarding:
    """The streams of one port-forward connection: per request id an error stream and a data
    stream, the data stream copied to and from a connection to the pod's port."""

    def __init__(self, session: spdy.Session, pod_ip: str) -> None:
        self.session = session
        self.pod_ip = pod_ip
        self.errors: dict[str, int] = {}  # request id -> error stream
        self.sockets: dict[int, socket.socket] = {}  # data stream -> connection to the pod

    def run(self) -> None:
        try:
            while True:
                kind, number, flags, payload = self.session.read_frame()
                if kind == "data":
                    self.from_client(number, flags, payload)
                elif number == spdy.SYN_STREAM:
                    (stream,) = struct.unpack(">I", payload[:4])
                    self.opened(stream & 0x7FFFFFFF, self.session.headers(payload[10:]))
                elif number == spdy.RST_STREAM:
                    (stream,) = struct.unpack(">I", payload[:4])
                    self.close(stream & 0x7FFFFFFF)
                elif number == spdy.PING:
                    self.session.ping(payload)
                elif number == spdy.GOAWAY:
                    return
                # SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do (no flow control, see spdy)
        except spdy.Closed:
            pass
        finally:
            for stream in list(self.sockets):
                self.close(stream)

    def opened(self, stream: int, headers: dict[str, str]) -> None:
        self.session.syn_reply(stream)
        request = headers.get("requestid", "")
        if headers.get("streamtype") == "error":
            self.errors[request] = stream
            return
        if headers.get("streamtype") != "data":
            self.session.rst(stream)
            return
        error_stream = self.errors.get(request)
        try:
            upstream = socket.create_connection((self.pod_ip, int(headers.get("port", "0"))), timeout=10)
        except (OSError, ValueError) as error:
            message = f"error forwarding port {headers.get('port')} to pod: {error}"
            if error_stream is not None:
                self.session.data(error_stream, message.encode(), fin=True)
            self.session.data(stream, b"", fin=True)
            return
        upstream.settimeout(None)
        self.sockets[stream] = upstream
        threading.Thread(target=self.to_client, args=(stream, upstream, error_stream), daemon=True).start()

    def from_client(self, stream: int, flags: int, payload: bytes) -> None:
        upstream = self.sockets.get(stream)
        if upstream is None:
            return
        try:
            if payload:
                upstream.sendall(payload)
            if flags & spdy.FLAG_FIN:
                upstream.shutdown(socket.SHUT_WR)
        except OSError:
            self.close(stream)

    def to_client(self, stream: int, upstream: socket.socket, error_stream: int | None) -> None:
        try:
            while data := upstream.recv(65536):
                self.session.data(stream, data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            self.session.data(stream, b"", fin=True)
            if error_stream is not None:
                self.session.data(error_stream, b"", fin=True)

    def close(self, stream: int) -> None:
        upstream = self.sockets.pop(stream, None)
        if upstream is not None:
            with contextlib.suppress(OSError):
                upstream.close()


def respond(conn, status: int, body: bytes) -> None:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    conn.sendall(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n".encode()
        + body
    )
