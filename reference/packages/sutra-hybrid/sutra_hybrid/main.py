"""sutra-hybrid: answers queries by ranking storage-server's items by similarity.

Run with: python3 -m uvicorn sutra_hybrid.main:app --host 0.0.0.0 --port 8000
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from sutra_hybrid import __version__
from sutra_hybrid.embedding import rank

SERVICE = "sutra-hybrid"


@dataclass(frozen=True)
class Settings:
    storage_url: str = "http://storage-server:50051"
    storage_timeout_s: float = 10.0
    health_timeout_s: float = 1.0

    @classmethod
    def from_env(cls) -> Settings:
        # Plain os.environ: two variables do not justify another dependency in the image.
        return cls(
            storage_url=os.environ.get("STORAGE_URL", cls.storage_url),
            storage_timeout_s=float(os.environ.get("STORAGE_TIMEOUT_S", cls.storage_timeout_s)),
        )


class StorageError(Exception):
    """storage-server failed or answered something unusable; mapped to 502."""


class Item(BaseModel):
    id: str
    content: str


_ITEMS = TypeAdapter(list[Item])


class QueryRequest(BaseModel):
    query: str = Field(min_length=1, max_length=1_000)
    limit: int = Field(default=5, ge=1, le=50)


class Hit(BaseModel):
    id: str
    content: str
    score: float


class QueryResponse(BaseModel):
    results: list[Hit]


class Dependency(BaseModel):
    ok: bool
    detail: str


class PingResponse(BaseModel):
    status: Literal["ok"] = "ok"
    service: str = SERVICE


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    service: str = SERVICE
    dependencies: dict[str, Dependency]


def _describe(exc: httpx.HTTPError) -> str:
    try:
        url = str(exc.request.url)
    except RuntimeError:  # raised by httpx when the error carries no request
        url = "?"
    return f"{type(exc).__name__} calling {url}: {exc or 'no detail'}"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    # trust_env=False: storage is in-cluster; a proxy meant for the outside must not apply.
    storage = httpx.AsyncClient(
        base_url=settings.storage_url, timeout=settings.storage_timeout_s, trust_env=False
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await storage.aclose()

    app = FastAPI(title="Sutra Hybrid", version=__version__, lifespan=lifespan)

    @app.exception_handler(StorageError)
    async def storage_failed(_: Request, exc: StorageError) -> JSONResponse:
        return JSONResponse(status_code=502, content={"detail": str(exc)})

    async def fetch_items() -> list[Item]:
        try:
            response = await storage.get("/items")
        except httpx.HTTPError as exc:
            raise StorageError(f"storage unreachable: {_describe(exc)}") from exc
        if response.status_code != 200:
            raise StorageError(f"storage answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            return _ITEMS.validate_json(response.content)
        except ValidationError as exc:
            raise StorageError(f"storage answered an unexpected payload: {exc}") from exc

    @app.get("/ping")
    async def ping() -> PingResponse:
        """Liveness only: no dependency is checked."""
        return PingResponse()

    @app.get("/health")
    async def health() -> HealthResponse:
        try:
            response = await storage.get("/health", timeout=settings.health_timeout_s)
            state = Dependency(ok=response.is_success, detail=f"HTTP {response.status_code}")
        except httpx.HTTPError as exc:
            state = Dependency(ok=False, detail=_describe(exc))
        return HealthResponse(status="ok" if state.ok else "degraded", dependencies={"storage": state})

    @app.post("/query")
    async def query(body: QueryRequest) -> QueryResponse:
        # Fetching and embedding every item per query is O(n) and fine at this scale; an
        # index (and an embedding cache keyed by item id) is the next step if it grows.
        items = await fetch_items()
        # Embedding is CPU work: off the event loop, so /ping stays answerable meanwhile.
        ranked = await asyncio.to_thread(rank, body.query, [item.content for item in items], body.limit)
        return QueryResponse(
            results=[Hit(id=items[i].id, content=items[i].content, score=score) for i, score in ranked]
        )

    return app


app = create_app()
