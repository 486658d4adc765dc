import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from sutra_deploy.core.errors import RegistryError
from sutra_deploy.tools.registry import (
    RegistryClient,
    docker_config_auth,
    may_send_credentials,
    split_repository,
)

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


# --- where the docker login password may go (issue 18, data and secrets) ------------------


class RealmRegistry(BaseHTTPRequestHandler):
    """A registry whose challenge names the token service the test sets (``realm``), and a
    token service on the same class: each request is recorded with its Authorization header."""

    realm: ClassVar[str] = ""
    token_answer: ClassVar[tuple[int, bytes]] = (200, b'{"token": "t0ken"}')
    seen: ClassVar[list[tuple[str, str, str | None]]] = []  # (host:port, path, Authorization)

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.seen.append((self.headers["Host"], self.path, self.headers.get("Authorization")))
        if self.path.startswith("/token"):
            status, body = self.token_answer
        elif self.headers.get("Authorization") == "Bearer t0ken":
            status, body = 200, b'{"name": "sutra-ai/sutra-api", "tags": ["v2"]}'
        else:
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="{self.realm}",service="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def serve():
    """Start RealmRegistry on an address; every server is stopped after the test."""
    RealmRegistry.seen = []
    RealmRegistry.token_answer = (200, b'{"token": "t0ken"}')
    servers = []

    def start(address: str) -> str:
        httpd = ThreadingHTTPServer((address, 0), RealmRegistry)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"{address}:{httpd.server_address[1]}"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def logged_in(tmp_path, host: str) -> RegistryClient:
    auth = base64.b64encode(b"ci-bot:s3cret").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return RegistryClient(host, config_dir=tmp_path)


BASIC = "Basic " + base64.b64encode(b"ci-bot:s3cret").decode()


def test_the_password_goes_to_a_token_service_on_the_registrys_own_host(serve, tmp_path):
    registry, tokens = serve("127.0.0.1"), serve("127.0.0.1")  # the same host, another port
    RealmRegistry.realm = f"http://{tokens}/token"
    assert logged_in(tmp_path, registry).tags("sutra-ai/sutra-api") == ["v2"]
    assert [auth for host, path, auth in RealmRegistry.seen if path.startswith("/token")] == [BASIC]


def test_the_password_never_goes_to_a_token_service_on_another_host(serve, tmp_path, caplog):
    registry, elsewhere = serve("127.0.0.1"), serve("127.0.0.2")
    RealmRegistry.realm = f"http://{elsewhere}/token"
    assert logged_in(tmp_path, registry).tags("sutra-ai/sutra-api") == ["v2"]  # an anonymous token
    to_elsewhere = [auth for host, _, auth in RealmRegistry.seen if host == elsewhere]
    assert to_elsewhere == [None]
    assert f"not sending the docker login credentials for {registry}" in caplog.text


def test_a_foreign_token_service_that_wants_the_password_is_one_clear_error(serve, tmp_path):
    registry, elsewhere = serve("127.0.0.1"), serve("127.0.0.2")
    RealmRegistry.realm = f"http://{elsewhere}/token"
    RealmRegistry.token_answer = (401, b"")
    with pytest.raises(RegistryError) as refused:
        logged_in(tmp_path, registry).tags("sutra-ai/sutra-api")
    assert str(refused.value) == (
        f"{registry}: its token service {elsewhere} answered 401; the docker login credentials for "
        f"{registry} were not sent to {elsewhere} (another host, or not https), and it refused an "
        "anonymous token"
    )
    assert all(auth is None for host, _, auth in RealmRegistry.seen if host == elsewhere)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"<html>a login page</html>", "answered without a token"),
        (b'["t0ken"]', "answered without a token"),
        (b'{"token": null}', "answered without a token"),
    ],
)
def test_a_token_answer_that_holds_no_token_is_one_clear_error(serve, tmp_path, answer, message):
    registry = serve("127.0.0.1")
    RealmRegistry.realm = f"http://{registry}/token"
    RealmRegistry.token_answer = (200, answer)
    with pytest.raises(RegistryError, match=message):
        RegistryClient(registry, config_dir=tmp_path).tags("sutra-ai/sutra-api")


@pytest.mark.parametrize("realm", ["file:///etc/passwd", "http://[::1", "token", "ftp://127.0.0.1/t"])
def test_a_realm_that_is_no_http_url_is_refused_before_any_request(serve, tmp_path, realm):
    registry = serve("127.0.0.1")
    RealmRegistry.realm = realm
    with pytest.raises(RegistryError, match="names a token service that is not an http"):
        logged_in(tmp_path, registry).tags("sutra-ai/sutra-api")
    assert [path for _, path, _ in RealmRegistry.seen] == ["/v2/sutra-ai/sutra-api/tags/list"]


@pytest.mark.parametrize(
    ("registry", "realm", "allowed"),
    [
        ("reg.example.com", "https://reg.example.com/token", True),
        ("reg.example.com", "https://REG.example.com:8443/token", True),  # the host, any port
        ("reg.example.com:5000", "https://reg.example.com/token", True),
        ("reg.example.com", "http://reg.example.com/token", False),  # clear text
        ("reg.example.com", "https://auth.example.com/token", False),  # another host
        ("reg.example.com", "https://reg.example.com.evil.io/token", False),
        ("reg.example.com", "https://evil.io/reg.example.com/token", False),
        ("reg.example.com", "https://reg.example.com@evil.io/token", False),  # userinfo trick
        ("localhost:5000", "http://localhost:5001/token", True),  # loopback: http as the registry
        ("127.0.0.1:5000", "http://127.0.0.2/token", False),
        ("[::1]:5000", "http://[::1]:5001/token", True),
        ("reg.example.com", "http://[::1", False),
    ],
)
def test_may_send_credentials(registry, realm, allowed):
    assert may_send_credentials(registry, realm) is allowed


class ShortBlobRegistry(BaseHTTPRequestHandler):
    """Promises a layer of 300 000 bytes and sends 200 000 of them, then hangs up: a registry
    that goes away mid-pull, as a node would see it."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "300000")
        self.end_headers()
        self.wfile.write(b"x" * 200_000)
        self.wfile.flush()
        self.close_connection = True


def test_a_layer_cut_short_is_one_error_naming_it_and_how_much_came(tmp_path):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ShortBlobRegistry)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{httpd.server_address[1]}"
    try:
        received = bytearray()
        with pytest.raises(RegistryError) as caught:
            for chunk in RegistryClient(host, config_dir=tmp_path).blob("sutra-ai/sutra-api", DIGEST):
                received += chunk
    finally:
        httpd.shutdown()
    message = str(caught.value)
    assert message.startswith(f"{host} stopped sending sutra-ai/sutra-api@{DIGEST[:19]}… after ")
    # Whole chunks count: what came after the last one is lost with the connection.
    assert f"after {len(received):,} bytes" in message and 0 < len(received) <= 200_000
