"""Every HTTP call of the project, through one ``requests`` session per run.

A deadline on every call (``(connect, read)`` seconds). Retries, with urllib3's ``Retry``, only
where a retry is right: idempotent GETs, and only when the caller asks for them. Callers that
wait for something to come up poll with :func:`waiting.wait_until` instead, so their own
deadline stays the only one.

``requests`` is imported when the first session is made: ``inv --list`` should not pay for it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..core.errors import HttpError

# Seconds to connect and to wait for an answer; a caller may pass its own.
DEFAULT_TIMEOUT = (3.05, 10.0)


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return self.body.decode(errors="replace")


def new_session(*, retries: int = 0, user_agent: str = "sutra-deploy") -> Any:
    """A pooled ``requests.Session``; ``retries`` > 0 retries idempotent GETs with backoff."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util import Retry

    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    if retries:
        retry = Retry(
            total=retries,
            backoff_factor=0.2,
            allowed_methods=frozenset({"GET", "HEAD"}),
            status_forcelist=(502, 503, 504),
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return session


class Http:
    """One session for a run; each call returns a :class:`Response` or raises :class:`HttpError`."""

    def __init__(self, session: Any = None, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        self._session = session
        self.timeout = timeout

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = new_session()
        return self._session

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: Any = None,
        timeout: float | tuple[float, float] | None = None,
        ok: tuple[int, ...] = (),
        stream: bool = False,
    ) -> Response:
        """``ok`` lists the statuses the caller handles itself; any other non-2xx is an error."""
        import requests

        try:
            answer = self.session.request(
                method,
                url,
                json=json_body,
                headers=dict(headers or {}),
                auth=auth,
                timeout=timeout or self.timeout,
                stream=stream,
            )
            body = b"" if stream else answer.content
        except requests.exceptions.Timeout:
            raise HttpError(f"{method} {url}: no answer in time") from None
        except requests.exceptions.ConnectionError as error:
            raise HttpError(f"{method} {url}: {connection_reason(error)}") from None
        except requests.exceptions.RequestException as error:  # an answer, but not HTTP
            raise HttpError(f"{method} {url}: not an HTTP answer ({type(error).__name__})") from None
        if answer.status_code not in ok and not 200 <= answer.status_code < 300:
            raise HttpError(f"{method} {url} answered {answer.status_code}", answer.status_code)
        return Response(answer.status_code, dict(answer.headers), body)

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, body: Any, **kwargs: Any) -> Response:
        return self.request("POST", url, json_body=body, **kwargs)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


def connection_reason(error: Exception) -> str:
    """The few words that say why a connection failed, without urllib3's nesting."""
    text = str(error)
    for marker, words in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("Temporary failure in name resolution", "unknown host"),
        ("RemoteDisconnected", "connection closed without an answer"),
        ("Connection reset", "connection reset"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
        ("wrong version number", "not a TLS server"),
    ):
        if marker in text:
            return words
    return text.splitlines()[0][:160] if text else type(error).__name__


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.x.y.z`` and ``[::1]`` (with or without a port)."""
    name = urlsplit(f"//{host}").hostname or host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
