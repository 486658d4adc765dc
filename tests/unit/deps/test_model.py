"""The settings fix-deps reads, and the diff a change prints."""

import pytest

from sutra_deploy.core.errors import SutraError
from sutra_deploy.deps.model import Change, DepsPolicy, ListEdit


def test_policy_names_compare_canonically():
    policy = DepsPolicy.from_settings({"runtime_only": ["Gunicorn"], "known_specs": ["Pydantic_Settings>=2"]})
    assert policy.runtime_only == {"gunicorn"}
    assert policy.known_specs == {"pydantic-settings": "Pydantic_Settings>=2"}
    assert DepsPolicy.from_settings({}) == DepsPolicy(frozenset(), {}, {})
    assert DepsPolicy.from_settings({}).max_file_bytes is None  # no limit unless the settings give one
    assert DepsPolicy.from_settings({"max_file_bytes": 1000}).max_file_bytes == 1000


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"runtime_only": "uvicorn"}, "setting sutra.deps.runtime_only: expected a list of names"),
        ({"import_names": {"yaml": 1}}, "setting sutra.deps.import_names: expected a table"),
        ({"known_specs": ["not a requirement!"]}, "setting sutra.deps.known_specs: 'not a requirement!'"),
        ({"max_file_bytes": 0}, "sutra.deps.max_file_bytes must be a positive whole number"),
        ({"max_file_bytes": -1}, "sutra.deps.max_file_bytes must be a positive whole number"),
        ({"max_file_bytes": "5MB"}, "sutra.deps.max_file_bytes must be a positive whole number"),
        ({"max_file_bytes": True}, "sutra.deps.max_file_bytes must be a positive whole number"),
    ],
)
def test_malformed_settings_are_one_error(settings, message):
    with pytest.raises(SutraError, match=message):
        DepsPolicy.from_settings(settings)


def test_diff_marks_a_missing_final_newline():
    diff = Change("p/pyproject.toml", 'a = ["x"]', 'a = ["y"]\n').diff
    assert diff.startswith("--- a/p/pyproject.toml\n+++ b/p/pyproject.toml\n")
    assert '-a = ["x"]\n\\ No newline at end of file\n+a = ["y"]\n' in diff


def test_an_empty_list_edit_is_no_edit():
    assert not ListEdit()
    assert ListEdit(append=["x"]) and ListEdit(drop={0}) and ListEdit(replace={0: "x"})
