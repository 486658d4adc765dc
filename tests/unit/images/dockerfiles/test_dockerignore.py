"""`inv dockerfiles --write` gives each context it writes for a `.dockerignore` when it has
none (one file for the services that share the context), never changes one that exists, and
leaves a pattern out when a Dockerfile of that context copies what it would ignore."""

from __future__ import annotations

import logging

import pytest

from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.images.dockerfiles import generate_dockerfiles
from sutra_deploy.images.dockerfiles.dockerignore import _ignores

from .checkout import API, CONTROL, STACK


def write(checkout) -> None:
    generate_dockerfiles(
        STACK, checkout, names=[], deps_settings=DEFAULTS["sutra"]["deps"], write=True, force=False
    )


@pytest.fixture
def logged(caplog):
    sutra = logging.getLogger("sutra")
    sutra.addHandler(caplog.handler)  # the tool's logger does not propagate (edge.py)
    with caplog.at_level(logging.INFO, logger="sutra"):
        yield caplog
    sutra.removeHandler(caplog.handler)


def test_each_context_gets_one_that_keeps_out_what_no_image_needs(checkout, logged):
    (checkout / ".dockerignore").unlink()
    (checkout / API / "sutra_api.egg-info").mkdir()
    (checkout / CONTROL / "node_modules" / "left-pad").mkdir(parents=True)
    write(checkout)
    contexts = {STACK.service(n).context for n in ("sutra-api", "sutra-control")}
    for context in contexts:
        path = checkout / context / ".dockerignore"
        lines = path.read_text().splitlines()
        assert {"**/node_modules", "**/*.egg-info", "**/__pycache__", "**/.git", "build", "dist"} <= set(
            lines
        )
        assert f"wrote {path.relative_to(checkout).as_posix()}" in logged.text
    again = (checkout / ".dockerignore").read_text()
    write(checkout)  # a second run changes nothing
    assert (checkout / ".dockerignore").read_text() == again


def test_an_existing_one_stays_and_what_it_misses_is_said(checkout, logged):
    (checkout / CONTROL / "node_modules" / "left-pad").mkdir(parents=True)
    before = (checkout / ".dockerignore").read_text()  # the checkout's own: __pycache__ and tests
    write(checkout)
    assert (checkout / ".dockerignore").read_text() == before
    assert (
        ".dockerignore does not ignore **/node_modules, which this checkout has: it goes to the daemon "
        "on every build; add the line"
    ) in logged.text


@pytest.mark.parametrize(
    ("pattern", "copied", "ignored"),
    [
        ("**/node_modules", "packages/sutra-client/node_modules", True),
        ("**/node_modules", "packages/sutra-client/node_modules/react/index.js", True),
        ("**/node_modules", "packages/sutra-client/www", False),
        ("**/*.egg-info", "packages/sutra-api/sutra_api.egg-info/PKG-INFO", True),
        ("build", "build/lib", True),
        ("build", "packages/sutra-api/build", False),
        ("packages/*/build", "packages/sutra-api/build", True),
        ("packages/*/build", "packages/sutra-api/builder.py", False),
    ],
)
def test_a_pattern_matches_as_docker_reads_it(pattern, copied, ignored):
    assert _ignores(pattern, copied) is ignored
