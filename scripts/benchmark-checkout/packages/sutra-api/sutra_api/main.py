"""The public API: stores facts as vectors and asks sutra-hybrid to rank them. It imports what
it declares at start-up, as the real service does (a gRPC channel to storage, protobuf
messages, numpy vectors), so the image's import check loads every library."""

import hashlib
import uuid

import grpc
import httpx
import numpy as np
from fastapi import FastAPI
from google.protobuf import struct_pb2
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUTRA_API_")
    storage_addr: str = "storage-server:50051"
    hybrid_url: str = "http://sutra-hybrid:8000"


settings = Settings()
app = FastAPI(title="sutra-api")
FACTS: dict[str, tuple[str, np.ndarray]] = {}


class Learn(BaseModel):
    content: str


class Query(BaseModel):
    query: str
    limit: int = 5


def embed(text: str) -> np.ndarray:
    digest = hashlib.sha256(text.encode()).digest()
    vector = np.frombuffer(digest, dtype=np.uint8).astype(np.float32)
    return vector / np.linalg.norm(vector)


@app.get("/health")
def health():
    channel = grpc.insecure_channel(settings.storage_addr)
    channel.close()
    return {"status": "ok", "facts": len(FACTS)}


@app.post("/learn")
def learn(body: Learn):
    fact_id = uuid.uuid4().hex
    FACTS[fact_id] = (body.content, embed(body.content))
    meta = struct_pb2.Struct()
    meta.update({"id": fact_id})
    return {"id": fact_id, "stored": True}


@app.post("/query")
async def query(body: Query):
    probe = embed(body.query)
    ranked = sorted(FACTS.items(), key=lambda item: -float(item[1][1] @ probe))
    async with httpx.AsyncClient(timeout=2) as client:
        client.base_url = settings.hybrid_url
    return {"results": [{"id": i, "content": c} for i, (c, _) in ranked[: body.limit]]}
