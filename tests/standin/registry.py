"""A registry RECORDING STAND-IN, for unit tests only: it is not a registry and stores no image.

The unit tests run without Docker, so no real registry (Debian's `docker-registry`, which the
integration tests start) is there to answer. This answers the few read-only calls of the
distribution API that `inv releases` and `inv rollback --to RELEASE` make, from a table the
test gives: `GET /v2/<name>/tags/list` and `GET /v2/<name>/manifests/<tag>` (a schema 2
manifest with its `Docker-Content-Digest`); anything else is 404. Every path asked is recorded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


@dataclass
class RegistryStandIn:
    address: str  # 127.0.0.1:PORT
    # repository -> tag -> manifest digest, or (manifest digest, config digest) when they differ
    tags: Mapping[str, Mapping[str, str | tuple[str, str]]]
    asked: list[str] = field(default_factory=list)


@contextmanager
def registry_standin(tags: Mapping[str, Mapping[str, str | tuple[str, str]]]) -> Iterator[RegistryStandIn]:
    """Serve ``tags`` (``{"sutra-ai/sutra-api": {"rel-1": "sha256:…"}}``) on a free loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    standin = RegistryStandIn(f"127.0.0.1:{server.server_address[1]}", tags)
    server.standin = standin  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        standin: RegistryStandIn = self.server.standin  # type: ignore[attr-defined]
        standin.asked.append(self.path)
        path = self.path.split("?", 1)[0]
        if path == "/v2/":
            return self._answer(200, {})
        name, _, rest = path.removeprefix("/v2/").rpartition("/tags/")
        if rest == "list" and name in standin.tags:
            return self._answer(200, {"name": name, "tags": sorted(standin.tags[name])})
        name, _, reference = path.removeprefix("/v2/").rpartition("/manifests/")
        held = standin.tags.get(name, {}).get(reference)
        if held is not None:
            digest, config = held if isinstance(held, tuple) else (held, held)
            body = {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": {"digest": config},
                "layers": [],
            }
            return self._answer(200, body, {"Docker-Content-Digest": digest, "Content-Type": MANIFEST_TYPE})
        return self._answer(404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]})

    def _answer(self, status: int, body: dict, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # quiet: the test reads `asked`
        pass
