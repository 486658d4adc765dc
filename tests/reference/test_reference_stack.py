"""sutra-api + sutra-hybrid + storage-server running together as subprocesses."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from reference_harness import Launcher, Service, free_port

FACTS = [
    "The Eiffel Tower is in Paris",
    "The Colosseum is an amphitheatre in Rome",
    "Photosynthesis converts sunlight into chemical energy",
]


@dataclass(frozen=True)
class Stack:
    storage: Service
    hybrid: Service
    api: Service


@pytest.fixture(scope="module")
def stack(module_launcher: Launcher, storage_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    storage = module_launcher.storage(storage_binary, tmp_path_factory.mktemp("data"))
    hybrid = module_launcher.hybrid(storage.url)
    api = module_launcher.api(storage.url, hybrid.url)
    return Stack(storage=storage, hybrid=hybrid, api=api)


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api.url, timeout=10, trust_env=False) as client:
        yield client


def test_learned_fact_comes_back_as_the_top_result(api: httpx.Client) -> None:
    for fact in FACTS:
        response = api.post("/learn", json={"content": fact})
        assert response.status_code == 201, response.text

    response = api.post("/query", json={"query": "Where is the Eiffel Tower?", "limit": 2})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert 1 <= len(results) <= 2
    top = results[0]
    assert top["content"] == FACTS[0]
    assert top["id"] == hashlib.sha256(FACTS[0].encode()).hexdigest()[:16]
    assert 0 < top["score"] <= 1


def test_learning_is_idempotent(api: httpx.Client, stack: Stack) -> None:
    content = "Learning the same fact twice stores it once"
    first = api.post("/learn", json={"content": content}).json()
    count = httpx.get(f"{stack.storage.url}/health", trust_env=False).json()["items"]
    second = api.post("/learn", json={"content": content}).json()
    assert first == second == {"id": hashlib.sha256(content.encode()).hexdigest()[:16]}
    assert httpx.get(f"{stack.storage.url}/health", trust_env=False).json()["items"] == count
    stored = httpx.get(f"{stack.storage.url}/items/{first['id']}", trust_env=False)
    assert stored.text == content


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/learn", {"content": ""}),
        ("/learn", {"content": "   "}),
        ("/learn", {"content": "x" * 100_001}),
        ("/learn", {}),
        ("/query", {"query": ""}),
        ("/query", {"query": "Paris", "limit": 0}),
        ("/query", {"query": "Paris", "limit": 51}),
    ],
)
def test_invalid_requests_are_422(api: httpx.Client, path: str, payload: dict[str, object]) -> None:
    assert api.post(path, json=payload).status_code == 422


def test_health_reports_dependencies(api: httpx.Client, stack: Stack) -> None:
    body = api.get("/health").json()
    assert body["status"] == "ok"
    assert body["service"] == "sutra-api"
    assert body["dependencies"]["storage"]["ok"] is True
    assert body["dependencies"]["hybrid"]["ok"] is True
    assert isinstance(body["dependencies"]["storage"]["detail"], str)

    hybrid = httpx.get(f"{stack.hybrid.url}/health", trust_env=False).json()
    assert hybrid["status"] == "ok"
    assert hybrid["service"] == "sutra-hybrid"
    assert hybrid["dependencies"]["storage"]["ok"] is True
    ping = httpx.get(f"{stack.hybrid.url}/ping", trust_env=False).json()
    assert ping == {"status": "ok", "service": "sutra-hybrid"}


def test_cors_allows_the_web_client(api: httpx.Client) -> None:
    response = api.options(
        "/query",
        headers={
            "Origin": "http://localhost:8080",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "http://localhost:8080")


def test_api_answers_502_when_hybrid_is_down(launcher: Launcher, stack: Stack) -> None:
    dead_hybrid = f"http://127.0.0.1:{free_port()}"
    api = launcher.api(stack.storage.url, dead_hybrid)
    with httpx.Client(base_url=api.url, timeout=10, trust_env=False) as client:
        response = client.post("/query", json={"query": "Paris"})
        assert response.status_code == 502
        assert "hybrid" in response.json()["detail"]

        health = client.get("/health")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "degraded"
        assert body["dependencies"]["hybrid"]["ok"] is False
        assert body["dependencies"]["storage"]["ok"] is True

        # Learning needs only storage, so it still works.
        assert client.post("/learn", json={"content": "still learning"}).status_code == 201


def test_hybrid_answers_502_when_storage_is_down(launcher: Launcher) -> None:
    hybrid = launcher.hybrid(f"http://127.0.0.1:{free_port()}")
    with httpx.Client(base_url=hybrid.url, timeout=10, trust_env=False) as client:
        response = client.post("/query", json={"query": "Paris"})
        assert response.status_code == 502
        assert "storage" in response.json()["detail"]
        assert client.get("/health").json()["status"] == "degraded"
        assert client.get("/ping").status_code == 200
