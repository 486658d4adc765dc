"""Client for storage-server's HTTP item API."""

from __future__ import annotations

import httpx

from sutra_api.upstream import Reachability, UpstreamError, describe, new_client, probe


class StorageClient:
    def __init__(self, base_url: str, timeout: float) -> None:
        self._client = new_client(base_url, timeout)

    async def put_item(self, item_id: str, content: str) -> None:
        """Store `content` under `item_id`; storage answers 201 whether new or replaced."""
        try:
            response = await self._client.put(
                f"/items/{item_id}",
                content=content.encode("utf-8"),
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
        except httpx.HTTPError as exc:
            raise UpstreamError(f"storage unreachable: {describe(exc)}") from exc
        if response.status_code != 201:
            raise UpstreamError(f"storage answered HTTP {response.status_code}: {response.text[:200]}")

    async def health(self, timeout: float) -> Reachability:
        return await probe(self._client, "/health", timeout)

    async def aclose(self) -> None:
        await self._client.aclose()
