"""Every parser of user text, given anything: a value, or this tool's one-line error (a
SutraError, which the edge prints as one line, exit 2); never another exception. Hypothesis
generates the text; each property also checks what a value must satisfy when one comes back."""

from __future__ import annotations

import math
import string
import tomllib
from pathlib import Path

import tomlkit
from hypothesis import given, settings
from hypothesis import strategies as st

from sutra_deploy.core.errors import SutraError
from sutra_deploy.core.inputs import number, service_url, split_names
from sutra_deploy.core.references import (
    domain_and_path,
    image_parts,
    parse_digest,
    parse_reference,
    parse_registry,
    parse_tag,
)
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import parse_stack
from sutra_deploy.k8s.quantities import quantity

# Text that looks like what people type into these places, and text that does not.
reference_like = st.text(string.ascii_letters + string.digits + ":/@._-[]", max_size=80)
any_text = st.text(max_size=120)
texts = reference_like | any_text


def one_line(error: SutraError) -> None:
    assert str(error).strip() and "Traceback" not in str(error)


@given(texts)
def test_image_references(text):
    for parse in (parse_reference, parse_registry, parse_tag, parse_digest):
        try:
            parse(text)
        except SutraError as error:
            one_line(error)


@given(texts)
def test_a_reference_that_parses_is_read_the_same_again(text):
    try:
        ref = parse_reference(text)
    except SutraError:
        return
    assert ref.path and str(ref) == text  # nothing dropped, nothing added
    assert parse_reference(str(ref)) == ref


@given(st.one_of(any_text, st.floats(allow_nan=True), st.integers(), st.booleans(), st.none()))
def test_numbers_and_timeouts(value):
    for kind in (float, int):
        try:
            parsed = number(value, "--timeout", kind)
        except SutraError as error:
            one_line(error)
        else:
            assert parsed > 0 and math.isfinite(parsed) and isinstance(parsed, kind)


@given(st.text(string.ascii_letters + string.digits + ":/@.[]?#%-_", max_size=60) | any_text)
def test_urls(text):
    try:
        url = service_url(text, "--base-url x")
    except SutraError as error:
        one_line(error)
    else:
        assert url.split("://", 1)[0] in ("http", "https", "tcp")


@given(st.lists(any_text, max_size=4))
def test_name_lists(values):
    names = split_names(values)
    assert all(name and name == name.strip() and "," not in name for name in names)


@given(st.text(string.digits + ".+-eE" + "numkMGTPEi", max_size=14) | any_text)
def test_quantities(text):
    try:
        value = quantity(text)
    except SutraError as error:
        one_line(error)
    else:
        assert value.is_finite()


REFERENCE_STACK = (PROJECT_DIR / "stack.toml").read_text()
LINES = REFERENCE_STACK.splitlines()


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(LINES) - 1), any_text)
def test_the_stack_file_with_a_line_replaced(index, replacement):
    """A stack file with any line replaced by anything: a stack, or one error naming the file."""
    text = "\n".join([*LINES[:index], replacement, *LINES[index + 1 :]])
    try:
        stack = parse_stack(text, Path("stack.toml"))
    except SutraError as error:
        one_line(error)
        assert str(error).startswith("stack.toml")
    else:
        assert stack.services


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["stack", "services", "journey", "base_images", "x"]),
        st.recursive(
            st.integers(-5, 5) | st.text(max_size=6) | st.booleans(),
            lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
            max_leaves=8,
        ),
        max_size=4,
    )
)
def test_the_stack_file_of_any_shape(data):
    """Any TOML document: a stack, or one error naming the file and the key."""
    text = tomlkit.dumps(data)
    assert tomllib.loads(text) == data
    try:
        parse_stack(text, Path("stack.toml"))
    except SutraError as error:
        one_line(error)
        assert str(error).startswith("stack.toml")


@given(texts)
def test_what_is_read_back_is_split_as_a_user_reference_is(text):
    """image_parts (for what an engine or cluster reports) and parse_reference (for what a
    user gives) split alike wherever the grammar allows the text."""
    parts = image_parts(text)
    try:
        ref = parse_reference(text)
    except SutraError:
        return
    assert (parts.name, parts.tag, parts.digest) == (ref.name, ref.tag, ref.digest)
    assert domain_and_path(parts.name) == (ref.domain, ref.path)
