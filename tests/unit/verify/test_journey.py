"""A journey other than the reference's, over real HTTP: an API that stores facts at another
path, answers with another id field, and searches by GET; smoke and the load follow the stack
file, not the reference services' contract."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.tools.http import Http
from sutra_deploy.verify.journey import JourneyFailed, walk
from sutra_deploy.verify.load import missing_facts, run_load
from sutra_deploy.verify.smoke import run_smoke

from ...json_servers import JsonHandler, serving

OTHER_JOURNEY = """
[journey.learn]
service = "sutra-api"
method = "PUT"
path = "/api/v1/facts"
body = { fact = { text = "other fact {marker}", tags = ["journey"] } }
id = "/fact/uuid"

[journey.find]
service = "sutra-api"
method = "GET"
path = "/api/v1/search?q={marker}"
found = { list = "/data/hits", match = "/text", contains = "{marker}" }

"""


class OtherApi(JsonHandler):
    facts: ClassVar[dict[str, str]] = {}

    def do_PUT(self):
        body = self.body()
        if self.path != "/api/v1/facts":
            return self.reply(404, {})
        uuid = f"u-{len(self.facts)}"
        self.facts[uuid] = body["fact"]["text"]
        return self.reply(200, {"fact": {"uuid": uuid, "stored": True}})

    def do_GET(self):
        parts = urlsplit(self.path)
        if parts.path == "/health":
            return self.reply(200, {"ok": True})
        if parts.path != "/api/v1/search":
            return self.reply(404, {})
        query = parse_qs(parts.query)["q"][0]
        hits = [{"text": text, "score": 0.9} for text in self.facts.values() if query in text]
        return self.reply(200, {"data": {"hits": hits, "total": len(hits)}})


@pytest.fixture
def stack(tmp_path):
    text = (PROJECT_DIR / "stack.toml").read_text()
    start, end = text.index("[journey.learn]"), text.index("# Base images.")
    path = tmp_path / "stack.toml"
    path.write_text(text[:start] + OTHER_JOURNEY.lstrip() + text[end:])
    return load_stack(path)


@pytest.fixture
def urls():
    OtherApi.facts = {}
    with serving(OtherApi) as url:
        yield {"sutra-api": url}


def test_smoke_walks_the_stack_files_journey(stack, urls):
    report = run_smoke([stack.service("sutra-api")], urls, timeout=2, journey=stack.journey)
    checks = {c.name: c for c in report.checks}
    assert report.ok, report.table()
    assert checks["end-to-end"].detail == (
        "learned u-0 (PUT /api/v1/facts on sutra-api) and found it "
        "(GET /api/v1/search?q={marker} on sutra-api)"
    )
    [stored] = OtherApi.facts.values()
    assert stored.startswith("other fact ")


def test_the_load_and_the_integrity_check_follow_it_too(stack, urls):
    result = run_load(stack.journey, urls, requests=20, concurrency=2)
    assert (result.requests, result.errors) == (20, 0)
    assert len(result.facts) == len(OtherApi.facts) >= 10
    assert missing_facts(stack.journey, urls, result.facts) == []
    gone = result.facts[0]
    OtherApi.facts.pop(gone.id)
    assert missing_facts(stack.journey, urls, result.facts) == [gone]


def test_the_reference_journey_against_this_api_says_what_differs(urls):
    reference = load_stack(PROJECT_DIR / "stack.toml").journey
    http = Http()
    try:
        with pytest.raises(JourneyFailed, match=r"^POST http://127\.0\.0\.1:\d+/learn answered 501$"):
            walk(http, reference, urls)
    finally:
        http.close()
