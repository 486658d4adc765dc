"""A registry's HTTP API (distribution spec v2), through the project's one requests session.

Shared by everything that asks a registry rather than the engine: manifest digests, tag lists,
and blobs. Manifests are asked for with the v2 and OCI media types, because without them a
registry answers with a schema 1 manifest under another digest. https by default, plain http
for loopback registries (as the engine treats them). Anonymous, or with the credentials
``docker login`` stored in the docker config (basic, or a bearer token fetched for the scope).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from ..core.errors import HttpError, RegistryError
from ..core.references import domain_and_path
from .http import Http, is_loopback

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT_MANIFESTS = {"Accept": ", ".join(MANIFEST_TYPES)}
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
log = logging.getLogger("sutra")


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    body: Mapping[str, Any]

    @property
    def layers(self) -> list[Mapping[str, Any]]:
        return list(self.body.get("layers") or [])


def split_repository(reference: str) -> tuple[str, str]:
    """``host:5000/sutra-ai/sutra-api`` -> (``host:5000``, ``sutra-ai/sutra-api``)."""
    host, path = domain_and_path(reference)
    if host is None:
        return "registry-1.docker.io", path if "/" in path else f"library/{path}"
    return host, path


def docker_config_auth(host: str, config_dir: Path | None = None) -> tuple[str, str] | None:
    """The (user, password) ``docker login`` stored for ``host``, if any (no credential helpers)."""
    folder = config_dir or Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    auths = config.get("auths") or {}
    for key in (host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"):
        entry = auths.get(key)
        if isinstance(entry, dict) and entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            return user, password
    return None


class RegistryClient:
    def __init__(self, host: str, http: Http | None = None, *, config_dir: Path | None = None) -> None:
        self.host = host
        self.http = http or Http()
        self.scheme = "http" if is_loopback(host) else "https"
        self.credentials = docker_config_auth(host, config_dir)
        self._tokens: dict[str, str] = {}

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def ping(self) -> bool:
        try:
            return self._get("/v2/", scope=None, ok=(401,)).status in (200, 401)
        except HttpError:
            return False

    def manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest for a tag or digest, or None when the registry has no such thing."""
        answer = self._get(
            f"/v2/{repository}/manifests/{reference}", scope=repository, headers=ACCEPT_MANIFESTS
        )
        if answer.status == 404:
            return None
        digest = (
            answer.headers.get("Docker-Content-Digest") or answer.headers.get("docker-content-digest") or ""
        )
        body = answer.json()
        media = answer.headers.get("Content-Type", "").split(";")[0] or (body or {}).get("mediaType", "")
        return Manifest(digest, media, body if isinstance(body, dict) else {})

    def digest(self, repository: str, tag: str) -> str | None:
        found = self.manifest(repository, tag)
        return found.digest if found else None

    def catalog(self) -> list[str]:
        """Every repository the registry holds (first page; registries may cap it)."""
        return sorted(self._get("/v2/_catalog", scope=None).json().get("repositories") or [])

    def tags(self, repository: str) -> list[str]:
        answer = self._get(f"/v2/{repository}/tags/list", scope=repository)
        if answer.status == 404:
            return []
        return sorted((answer.json() or {}).get("tags") or [])

    def blob(self, repository: str, digest: str, *, chunk_bytes: int = 1 << 16) -> Iterator[bytes]:
        """A layer's bytes as an iterator of chunks (streamed, not held in memory). A registry
        that stops sending before the end (gone, cut off, reset) is a RegistryError naming the
        layer and how much of it came."""
        import requests

        path = f"/v2/{repository}/blobs/{digest}"
        answer = self._raw(path, scope=repository)
        received = 0
        try:
            for chunk in answer.iter_content(chunk_bytes):
                received += len(chunk)
                yield chunk
        except (requests.exceptions.RequestException, OSError) as error:
            raise RegistryError(
                f"{self.host} stopped sending {repository}@{digest[:19]}… after {received:,} bytes "
                f"({type(error).__name__}): the registry went away or the connection was cut"
            ) from None
        finally:
            answer.close()
        expected = answer.headers.get("Content-Length")
        encoded = answer.headers.get("Content-Encoding")  # then the length counts other bytes
        if expected and expected.isdigit() and not encoded and int(expected) != received:
            raise RegistryError(
                f"{self.host} sent {received:,} of {int(expected):,} bytes of {repository}@{digest[:19]}…"
            )

    # --- plumbing ------------------------------------------------------------------------

    def _get(self, path: str, *, scope: str | None, headers: Mapping[str, str] | None = None, ok=(404,)):
        url = self.base_url + path
        auth_headers = dict(headers or {})
        if scope and scope in self._tokens:
            auth_headers["Authorization"] = f"Bearer {self._tokens[scope]}"
        answer = self.http.get(url, headers=auth_headers, ok=(401, *ok), auth=self._basic())
        if answer.status == 401 and scope and scope not in self._tokens:
            self._tokens[scope] = self._token(answer.headers.get("WWW-Authenticate", ""), scope)
            auth_headers["Authorization"] = f"Bearer {self._tokens[scope]}"
            answer = self.http.get(url, headers=auth_headers, ok=ok)
        if answer.status == 401 and 401 not in ok:
            raise RegistryError(f"{self.host} refused {path}: log in with `docker login {self.host}`")
        return answer

    def _raw(self, path: str, *, scope: str):
        import requests

        headers = {"Authorization": f"Bearer {self._tokens[scope]}"} if scope in self._tokens else {}
        try:
            answer = self.http.session.get(
                self.base_url + path,
                headers=headers,
                auth=self._basic(),
                stream=True,
                timeout=self.http.timeout,
            )
            answer.raise_for_status()
        except requests.exceptions.RequestException as error:
            raise RegistryError(f"GET {self.base_url}{path}: {error}") from None
        return answer

    def _basic(self):
        # Basic credentials go only where they would not cross the network in clear text.
        if self.credentials and self.scheme == "https":
            return self.credentials
        return None

    def _token(self, challenge: str, scope: str) -> str:
        """A bearer token for pulling ``scope``, from the realm the registry's challenge names.
        The `docker login` credentials go with the request only where `may_send_credentials`
        allows; anywhere else the token is asked for anonymously."""
        if not challenge.lower().startswith("bearer "):
            raise RegistryError(f"{self.host} asks for credentials: log in with `docker login {self.host}`")
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.pop("realm", "")
        if not realm:
            raise RegistryError(f"{self.host} sent a token challenge without a realm")
        try:
            parts = urlsplit(realm)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:  # "http://[::1" and the like
            usable = False
        if not usable:
            raise RegistryError(
                f"{self.host} names a token service that is not an http(s) URL: {realm[:200]!r}"
            )
        query = urlencode({"service": params.get("service", ""), "scope": f"repository:{scope}:pull"})
        url = f"{realm}{'&' if parts.query else '?'}{query}"
        withheld = self.credentials is not None and not may_send_credentials(self.host, realm)
        if withheld:
            log.warning(
                "not sending the docker login credentials for %s to its token service %s "
                "(another host, or not https); asking for an anonymous token",
                self.host,
                parts.netloc,
            )
        auth = None if withheld else self.credentials
        answer = self.http.get(url, auth=auth, ok=(401, 403))
        if answer.status in (401, 403):
            why = (
                f"the docker login credentials for {self.host} were not sent to {parts.netloc} "
                "(another host, or not https), and it refused an anonymous token"
                if withheld
                else f"log in with `docker login {self.host}`"
            )
            raise RegistryError(
                f"{self.host}: its token service {parts.netloc} answered {answer.status}; {why}"
            )
        body = answer.json()
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{self.host}: its token service {parts.netloc} answered without a token")
        return token


def may_send_credentials(registry_host: str, url: str) -> bool:
    """Whether a registry's `docker login` password may go to ``url``: only to the registry's
    own host name (any port: a token service often runs beside the registry), over https, or
    over plain http when that host is loopback, as the registry itself is asked. A challenge
    is the registry's to write, so a realm elsewhere would hand the password to whoever that
    registry (or whoever answered in its place) names."""
    try:
        parts = urlsplit(url)
        own = urlsplit(f"//{registry_host}").hostname
    except ValueError:
        return False
    if not parts.hostname or not own or parts.hostname.lower() != own.lower():
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname))
