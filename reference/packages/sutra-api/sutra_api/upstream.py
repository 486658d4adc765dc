"""What sutra-api's upstream clients share: one error type and one reachability probe."""

from __future__ import annotations

from dataclasses import dataclass

import httpx


class UpstreamError(Exception):
    """An upstream service failed or answered something unusable; the API answers 502."""


@dataclass(frozen=True)
class Reachability:
    ok: bool
    detail: str


def describe(exc: httpx.HTTPError) -> str:
    """One line naming the failure and the URL, for logs and health details."""
    try:
        url = str(exc.request.url)
    except RuntimeError:  # raised by httpx when the error carries no request
        url = "?"
    return f"{type(exc).__name__} calling {url}: {exc or 'no detail'}"


def new_client(base_url: str, timeout: float) -> httpx.AsyncClient:
    # trust_env=False: these are in-cluster calls; an HTTP(S)_PROXY meant for the outside
    # world must never capture them.
    return httpx.AsyncClient(base_url=base_url, timeout=timeout, trust_env=False)


async def probe(client: httpx.AsyncClient, path: str, timeout: float) -> Reachability:
    """GET `path` with a short timeout; any 2xx counts as reachable."""
    try:
        response = await client.get(path, timeout=timeout)
    except httpx.HTTPError as exc:
        return Reachability(ok=False, detail=describe(exc))
    return Reachability(ok=response.is_success, detail=f"HTTP {response.status_code}")
