"""Client for the sutra-hybrid service.

The API used to import sutra-hybrid in-process, which dragged its whole ML stack into the
API image. It now calls hybrid's HTTP API instead (deployment plan, phase 1.2).
"""

from __future__ import annotations

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from sutra_api.upstream import Reachability, UpstreamError, describe, new_client, probe


class SearchHit(BaseModel):
    id: str
    content: str
    score: float


_HITS = TypeAdapter(list[SearchHit])


class HybridClient:
    def __init__(self, base_url: str, timeout: float) -> None:
        self._client = new_client(base_url, timeout)

    async def query(self, query: str, limit: int) -> list[SearchHit]:
        try:
            response = await self._client.post("/query", json={"query": query, "limit": limit})
        except httpx.HTTPError as exc:
            raise UpstreamError(f"hybrid unreachable: {describe(exc)}") from exc
        if response.status_code != 200:
            raise UpstreamError(f"hybrid answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            return _HITS.validate_python(response.json()["results"])
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            # json.JSONDecodeError is a ValueError; a non-dict payload raises TypeError.
            raise UpstreamError(f"hybrid answered an unexpected payload: {exc}") from exc

    async def ping(self, timeout: float) -> Reachability:
        # /ping, not /health: hybrid's /health checks storage too, which the API already does.
        return await probe(self._client, "/ping", timeout)

    async def aclose(self) -> None:
        await self._client.aclose()
