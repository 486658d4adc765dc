"""sutra-api: learn facts into storage-server, query them through sutra-hybrid.

Run with: python3 -m uvicorn sutra_api.main:app --host 0.0.0.0 --port 8000
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings

from sutra_api import __version__
from sutra_api.hybrid_client import HybridClient, SearchHit
from sutra_api.storage_client import StorageClient
from sutra_api.upstream import Reachability, UpstreamError

SERVICE = "sutra-api"
MAX_CONTENT_CHARS = 100_000  # 4 bytes a char at worst stays well under storage's 1 MiB cap
MAX_QUERY_CHARS = 1_000


class Settings(BaseSettings):
    """Read from the environment: STORAGE_URL, HYBRID_SERVICE_URL, ..."""

    storage_url: str = "http://storage-server:50051"
    hybrid_service_url: str = "http://sutra-hybrid:8000"
    upstream_timeout_s: float = 10.0
    health_timeout_s: float = 1.0


class LearnRequest(BaseModel):
    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS)

    @field_validator("content")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content must not be blank")
        return value


class LearnResponse(BaseModel):
    id: str


class QueryRequest(BaseModel):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    limit: int = Field(default=5, ge=1, le=50)


class QueryResponse(BaseModel):
    results: list[SearchHit]


class Dependency(BaseModel):
    ok: bool
    detail: str

    @classmethod
    def of(cls, reachability: Reachability) -> Dependency:
        return cls(ok=reachability.ok, detail=reachability.detail)


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    service: str
    dependencies: dict[str, Dependency]


def content_id(content: str) -> str:
    """Same content, same id: learning a fact twice stores it once."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    storage = StorageClient(settings.storage_url, settings.upstream_timeout_s)
    hybrid = HybridClient(settings.hybrid_service_url, settings.upstream_timeout_s)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await asyncio.gather(storage.aclose(), hybrid.aclose())

    app = FastAPI(title="Sutra API", version=__version__, lifespan=lifespan)
    # The web client is served from another origin (:8080) and calls this API directly.
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])

    @app.exception_handler(UpstreamError)
    async def upstream_failed(_: Request, exc: UpstreamError) -> JSONResponse:
        return JSONResponse(status_code=502, content={"detail": str(exc)})

    @app.get("/health")
    async def health() -> HealthResponse:
        """Always 200 so the API stays in rotation; `status` tells whether deps are up."""
        storage_state, hybrid_state = await asyncio.gather(
            storage.health(settings.health_timeout_s), hybrid.ping(settings.health_timeout_s)
        )
        healthy = storage_state.ok and hybrid_state.ok
        return HealthResponse(
            status="ok" if healthy else "degraded",
            service=SERVICE,
            dependencies={
                "storage": Dependency.of(storage_state),
                "hybrid": Dependency.of(hybrid_state),
            },
        )

    @app.post("/learn", status_code=201)
    async def learn(body: LearnRequest) -> LearnResponse:
        item_id = content_id(body.content)
        await storage.put_item(item_id, body.content)
        return LearnResponse(id=item_id)

    @app.post("/query")
    async def query(body: QueryRequest) -> QueryResponse:
        return QueryResponse(results=await hybrid.query(body.query, body.limit))

    return app


app = create_app()
