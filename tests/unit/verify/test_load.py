"""The load generator, through the reference stack's journey, against a real HTTP server that
speaks that contract."""

import threading
from typing import ClassVar

import pytest

from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.verify.journey import Fact
from sutra_deploy.verify.load import missing_facts, run_load

from ...json_servers import JsonHandler, serving

JOURNEY = load_stack(PROJECT_DIR / "stack.toml").journey


class MemoryApi(JsonHandler):
    facts: ClassVar[dict[str, str]] = {}
    fail_every: ClassVar[int] = 0
    seen: ClassVar[list[str]] = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.body()
        with self.lock:
            self.seen.append(self.path)
            failing = self.fail_every and len(self.seen) % self.fail_every == 0
        if failing:
            return self.reply(503, {"detail": "storage unavailable"})
        if self.path == "/learn":
            fact_id = f"f{len(self.facts)}"
            with self.lock:
                self.facts[fact_id] = body["content"]
            return self.reply(201, {"id": fact_id})
        hits = [{"id": i, "content": t} for i, t in self.facts.items() if body["query"] in t]
        return self.reply(200, {"results": hits})


@pytest.fixture
def api():
    MemoryApi.facts, MemoryApi.seen, MemoryApi.fail_every = {}, [], 0
    with serving(MemoryApi) as url:
        yield {"sutra-api": url}


def test_a_bounded_load_learns_and_queries_and_times_each_request(api):
    result = run_load(JOURNEY, api, requests=40, concurrency=4)
    assert (result.requests, result.errors) == (40, 0)
    assert len(MemoryApi.seen) == 40
    assert MemoryApi.seen.count("/learn") == len(result.facts) >= 20
    assert len(result.latencies) == 40
    assert 0 < result.percentile(50) <= result.percentile(95) <= result.percentile(99)
    assert result.throughput > 0
    assert missing_facts(JOURNEY, api, result.facts) == []


def test_errors_are_counted_and_the_first_kept(api):
    MemoryApi.fail_every = 5
    result = run_load(JOURNEY, api, requests=20, concurrency=2)
    assert result.errors == 4
    assert "answered 503" in result.first_errors[0]


def test_a_fact_the_api_no_longer_finds_is_missing(api):
    result = run_load(JOURNEY, api, requests=10, concurrency=1)
    MemoryApi.facts.pop(result.facts[0].id)
    assert missing_facts(JOURNEY, api, result.facts) == [result.facts[0]]
    assert missing_facts(JOURNEY, api, [Fact("nope", "never-learned")]) == [Fact("nope", "never-learned")]
