"""Whether a service answers, asked from this machine through the address it is reached at: the
stack file's health check (an HTTP GET of its path, or a TCP connect), with short timeouts.

`inv local-up` polls this itself while the stack starts, so that the containers' own health
checks can run at a calm interval for as long as the stack runs (an interval of 500 ms had five
interpreters start twice a second: about 45 % of a core, doing nothing); `inv smoke` probes the
same way."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from ..core.errors import HttpError
from ..core.stack import Service
from ..tools.http import Http

REQUEST_TIMEOUT = 3.0


class NotReady(Exception):
    """One failed try; retried until a deadline, then its message is the detail."""


def http_json(http: Http, method: str, url: str, body: dict | None = None) -> tuple[int, object]:
    try:
        answer = http.request(method, url, json_body=body, timeout=REQUEST_TIMEOUT)
    except HttpError as error:
        raise NotReady(str(error)) from None
    return answer.status, answer.json()


def probe(http: Http, service: Service, base_url: str) -> str:
    """One health probe; a short detail on success, :class:`NotReady` otherwise."""
    if service.health.protocol == "tcp":
        parts = urlsplit(base_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or service.port.host
        try:
            with socket.create_connection((host, port), timeout=REQUEST_TIMEOUT):
                return f"tcp {host}:{port} accepts connections"
        except OSError as error:
            raise NotReady(f"tcp {host}:{port}: {error.strerror or error}") from None
    url = base_url.rstrip("/") + (service.health.path or "/")
    status, _ = http_json(http, "GET", url)
    return f"GET {url} -> {status}"
