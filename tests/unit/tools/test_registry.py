import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from sutra_deploy.tools.registry import RegistryClient, RegistryError, docker_config_auth, split_repository

DIGEST = "sha256:" + "ab" * 32


class TokenRegistry(BaseHTTPRequestHandler):
    """The token dance of a registry that needs a bearer token for every repository.

    The real distribution registry runs in the integration tests; its token server cannot,
    so this small one speaks the challenge, the token request and the Accept rule.
    """

    requests_seen: ClassVar[list[tuple[str, dict]]] = []

    def log_message(self, *args):
        pass

    def answer(self, status: int, body: dict, headers: dict | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        self.requests_seen.append((self.path, dict(self.headers)))
        host = self.headers["Host"]
        if self.path.startswith("/token"):
            self.answer(200, {"token": "t0ken"})
        elif self.headers.get("Authorization") != "Bearer t0ken":
            challenge = f'Bearer realm="http://{host}/token",service="test",scope="repository:x:pull"'
            self.answer(401, {}, {"WWW-Authenticate": challenge})
        elif self.path.endswith("/tags/list"):
            self.answer(200, {"name": "sutra-ai/sutra-api", "tags": ["v2", "abc1234", "latest"]})
        elif "/manifests/" in self.path:
            # Without the v2 media types a registry answers a schema 1 manifest, another digest.
            v2 = "application/vnd.docker.distribution.manifest.v2+json" in self.headers.get("Accept", "")
            media = "application/vnd.docker.distribution.manifest.v2+json" if v2 else "application/json"
            digest = DIGEST if v2 else "sha256:" + "00" * 32
            self.answer(
                200,
                {"schemaVersion": 2, "layers": [{"size": 5}]},
                {"Docker-Content-Digest": digest, "Content-Type": media},
            )
        else:
            self.answer(404, {})


@pytest.fixture
def registry_host():
    TokenRegistry.requests_seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), TokenRegistry)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_token_challenge_is_answered_once_per_repository(registry_host, tmp_path):
    client = RegistryClient(registry_host, config_dir=tmp_path)
    assert client.scheme == "http"  # loopback registries are plain http, as the engine treats them
    assert client.tags("sutra-ai/sutra-api") == ["abc1234", "latest", "v2"]
    manifest = client.manifest("sutra-ai/sutra-api", "v2")
    assert manifest.digest == DIGEST
    assert manifest.layers == [{"size": 5}]
    token_requests = [path for path, _ in TokenRegistry.requests_seen if path.startswith("/token")]
    assert len(token_requests) == 1
    assert "scope=repository%3Asutra-ai%2Fsutra-api%3Apull" in token_requests[0]


def test_credentials_come_from_the_docker_config(tmp_path):
    auth = base64.b64encode(b"ci-bot:s3cret").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"https://reg.example.com": {"auth": auth}}}))
    assert docker_config_auth("reg.example.com", tmp_path) == ("ci-bot", "s3cret")
    assert docker_config_auth("other.example.com", tmp_path) is None
    assert RegistryClient("reg.example.com", config_dir=tmp_path).scheme == "https"


def test_a_registry_without_a_token_realm_asks_for_login(tmp_path):
    client = RegistryClient("127.0.0.1:1", config_dir=tmp_path)
    with pytest.raises(RegistryError, match="docker login"):
        client._token('Basic realm="registry"', "sutra-ai/sutra-api")


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("localhost:5000/sutra-ai/sutra-api", ("localhost:5000", "sutra-ai/sutra-api")),
        ("reg.example.com/sutra-api", ("reg.example.com", "sutra-api")),
        ("sutra-api", ("registry-1.docker.io", "library/sutra-api")),
    ],
)
def test_split_repository(reference, expected):
    assert split_repository(reference) == expected
