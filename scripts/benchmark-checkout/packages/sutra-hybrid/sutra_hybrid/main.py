"""Hybrid retrieval: ranks candidates by cosine similarity (scikit-learn on numpy), as the real
service does; a gRPC channel to storage and protobuf messages are loaded at start-up."""

import grpc
import numpy as np
from fastapi import FastAPI
from google.protobuf import struct_pb2
from pydantic import BaseModel
from sklearn.metrics.pairwise import cosine_similarity
from sklearn.preprocessing import normalize

app = FastAPI(title="sutra-hybrid")
_channel_options = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]


class Rank(BaseModel):
    query: list[float]
    candidates: list[list[float]]


@app.get("/ping")
def ping():
    return {"pong": True, "grpc": grpc.__version__, "struct": struct_pb2.Struct.DESCRIPTOR.name}


@app.post("/rank")
def rank(body: Rank):
    if not body.candidates:
        return {"order": []}
    candidates = normalize(np.asarray(body.candidates, dtype=np.float32))
    scores = cosine_similarity(np.asarray([body.query], dtype=np.float32), candidates)[0]
    return {"order": [int(i) for i in np.argsort(-scores)]}
