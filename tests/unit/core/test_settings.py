"""Settings as Invoke reads them, before any task runs: a variable's text by its default's kind,
and a settings file whose shape disagrees with the defaults, each one line naming what to fix."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st
from invoke.config import AmbiguousMergeError, merge_dicts

from sutra_deploy.core.errors import SutraError
from sutra_deploy.core.settings import DEFAULTS, setting_from_variable, shape_problem, variable_name

words = st.text(st.characters(blacklist_characters=",", blacklist_categories=("Cs",)), min_size=1).filter(
    lambda w: w.strip()
)


@given(st.lists(words, min_size=1, max_size=5))
def test_a_list_comes_from_a_variable_comma_separated(items):
    text = ",".join(items)
    assert setting_from_variable(["sutra", "floating_tags"], ["{version}", "latest"], text) == [
        i.strip() for i in items
    ]


@given(st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=4))
def test_a_list_of_numbers_comes_from_a_variable_as_numbers(numbers):
    text = ",".join(map(str, numbers))
    assert setting_from_variable(["sutra", "verify", "cpu_utilization"], [50, 80], text) == numbers


@given(st.text(max_size=200))
def test_whatever_a_variable_holds_is_a_value_or_one_line_naming_it(text):
    for key_path, default in (
        (["sutra", "verify", "cpu_utilization"], [50, 80]),
        (["sutra", "verify", "cpu_gate"], False),
        (["sutra", "deps", "runtime_only"], ["uvicorn"]),
        (["sutra", "jobs"], "auto"),
        (["run", "echo_stdin"], None),
    ):
        try:
            value = setting_from_variable(key_path, default, text)
        except SutraError as error:
            message = str(error)
            assert message.startswith(variable_name(key_path) + "=") and "\n" not in message
            assert len(message) < 600  # a long value is cut (to 80 characters), not echoed whole
        else:
            assert type(value) is type(default) or default is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("Yes", True),
        ("on", True),
        ("1", True),
        ("false", False),
        ("no", False),
        ("0", False),
        ("", False),
    ],
)
def test_yes_or_no_as_people_write_it(text, expected):
    # Invoke alone reads every text but "0" and "" as true: "false" would turn the gate on.
    assert setting_from_variable(["sutra", "verify", "cpu_gate"], False, text) is expected


def test_a_file_whose_shape_disagrees_is_named_by_its_key():
    assert shape_problem(DEFAULTS, {"sutra": {"environments": {"staging": "oops"}}}, "") == (
        "sutra.environments.staging: expected a table of settings (confirm, context, overlay, registry, "
        "rollout_timeout), got 'oops'"
    )
    assert (
        shape_problem(DEFAULTS, {"sutra": {"jobs": {"a": 1}}}, "")
        == "sutra.jobs: expected a value, like 'auto', got a table"
    )
    assert shape_problem(DEFAULTS, {"sutra": {"jobs": "4", "new_key": {"a": 1}}, "other": [1]}, "") is None


@given(
    st.recursive(
        st.none() | st.integers() | st.text(max_size=5),
        lambda kids: st.dictionaries(st.text(max_size=8), kids, max_size=3) | st.lists(kids, max_size=3),
        max_leaves=10,
    )
)
def test_any_file_data_is_either_mergeable_or_named(data):
    """Where shape_problem finds nothing under `sutra`, Invoke's own merge succeeds."""
    given_data = {"sutra": data}
    problem = shape_problem(DEFAULTS, given_data, "")
    try:
        merge_dicts(copy.deepcopy(DEFAULTS), given_data)
    except AmbiguousMergeError:
        assert problem is not None and problem.startswith("sutra")
    else:
        assert problem is None


def test_build_packages_merges_as_a_list_or_a_table():
    """`sutra.dockerfiles.build_packages` takes either form, so it has no default for Invoke to
    refuse merging the other form over; the other dockerfiles settings have theirs."""
    for value in (["gcc"], {"sutra-hybrid": ["gcc", "g++"]}):
        data = {"sutra": {"dockerfiles": {"build_packages": value}}}
        assert shape_problem(DEFAULTS, data, "") is None
        assert merge_dicts(copy.deepcopy(DEFAULTS), data)["sutra"]["dockerfiles"]["build_packages"] == value
    assert DEFAULTS["sutra"]["dockerfiles"]["runtime_base"] == "python-runtime"
