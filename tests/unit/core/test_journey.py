"""The journey in the stack file: read and checked at load (a malformed one is one line naming
the key), JSON Pointers resolved as RFC 6901 says, answers judged by what the journey declares."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sutra_deploy.core.errors import JourneyMismatch, StackFileError
from sutra_deploy.core.journey import PointerMissing, fill, resolve
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack

from .test_stack import write_stack

JOURNEY = load_stack(PROJECT_DIR / "stack.toml").journey


def test_the_reference_stack_declares_todays_journey():
    method, path, body = JOURNEY.learn.render({"marker": "m1"})
    assert (JOURNEY.learn.service, method, path) == ("sutra-api", "POST", "/learn")
    assert "m1" in body["content"]
    method, path, body = JOURNEY.find.render({"marker": "m1", "id": "f7"})
    assert (method, path, body) == ("POST", "/query", {"query": "journey fact m1", "limit": 5})
    assert JOURNEY.learned_id({"id": "f7", "content": "…"}) == "f7"
    assert JOURNEY.finds({"results": [{"id": "f6"}, {"id": "f7"}]}, {"marker": "m1", "id": "f7"})
    assert not JOURNEY.finds({"results": [{"id": "f6"}]}, {"marker": "m1", "id": "f7"})


def test_answers_of_another_shape_say_what_was_expected_where():
    with pytest.raises(JourneyMismatch, match=r"POST /learn gave no id at '/id': \{'uuid': 'x'\}"):
        JOURNEY.learned_id({"uuid": "x"})
    with pytest.raises(JourneyMismatch, match=r"POST /learn gave no usable id at '/id': None"):
        JOURNEY.learned_id({"id": None})
    with pytest.raises(JourneyMismatch, match=r"POST /query answered without a list at '/results'"):
        JOURNEY.finds({"results": {"id": "f7"}}, {"marker": "m", "id": "f7"})


def test_pointers_follow_rfc_6901():
    document = {"a/b": {"m~n": [10, {"": "empty key"}]}, "list": [1, 2]}
    assert resolve(document, "") is document
    assert resolve(document, "/a~1b/m~0n/0") == 10
    assert resolve(document, "/a~1b/m~0n/1/") == "empty key"
    for missing in ("/nope", "/list/2", "/list/-1", "/list/x", "/a~1b/m~0n/0/deeper"):
        with pytest.raises(PointerMissing):
            resolve(document, missing)


@given(st.recursive(st.text(max_size=5) | st.integers(), lambda inner: st.lists(inner, max_size=3)))
def test_filling_leaves_text_without_placeholders_alone(value):
    if "{" not in repr(value):
        assert fill(value, {"marker": "m"}) == value


LEARN = 'service = "sutra-api"\nmethod = "POST"\npath = "/learn"'
JOURNEY_EDITS = [
    (f"{LEARN}=>{LEARN.replace('sutra-api', 'sutra-apx')}",
     "journey.learn.service: no service 'sutra-apx'; known: storage-server"),
    (f"{LEARN}=>{LEARN.replace('POST', 'FETCH')}",
     "journey.learn.method: expected one of GET, POST, PUT, PATCH, got 'FETCH'"),
    ('path = "/learn"=>path = "learn"',
     "journey.learn.path: expected a URL path starting with '/', got 'learn'"),
    ('id = "/id"=>id = "id"',
     "journey.learn.id: expected a JSON Pointer ('' or starting with '/'), got 'id'"),
    ('id = "/id"\n=>', "journey.learn: missing key 'id'"),
    ('equals = "{id}"=>equals = "{ident}"',
     "journey.find.found.equals: unknown placeholder {ident} (here: {marker}, {id})"),
    ("journey fact {marker}: the=>journey fact {id}: the",
     "journey.learn.body: unknown placeholder {id} (here: {marker})"),
    ('equals = "{id}"=>equals = "{id}", contains = "{marker}"',
     "journey.find.found: expected one of equals or contains"),
    ("found = { list=>fund = { list", "journey.find.fund: unknown key"),
    ('method = "POST"\npath = "/query"=>method = "GET"\npath = "/query"',
     "journey.find.body: a GET sends no body"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "message"), JOURNEY_EDITS)
def test_a_malformed_journey_is_one_line_naming_the_key(tmp_path, edit, message):
    path = write_stack(tmp_path, edit)
    assert path.read_text() != (PROJECT_DIR / "stack.toml").read_text(), "the edit did not apply"
    with pytest.raises(StackFileError) as caught:
        load_stack(path)
    assert str(caught.value).startswith(f"{path}: {message}")
    assert "\n" not in str(caught.value)


def test_a_stack_file_without_a_journey_has_none(tmp_path):
    text = (PROJECT_DIR / "stack.toml").read_text()
    start, end = text.index("[journey.learn]"), text.index("# Base images.")
    path = tmp_path / "stack.toml"
    path.write_text(text[:start] + text[end:])
    assert load_stack(path).journey is None
