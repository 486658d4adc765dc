import sys
from pathlib import Path

import pytest

from sutra_deploy.core.errors import NotConfirmed, SutraError
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.k8s.environments import Environment, confirm, environment, with_images

PRODUCTION = Environment("production", Path("k8s/overlays/production"), "prod", "r.io/x", None, True, 600)
STAGING = Environment("staging", Path("k8s/overlays/staging"), "stage", "r.io/x", None, False, 300)


class Terminal:
    def isatty(self) -> bool:
        return True


class Pipe:
    def isatty(self) -> bool:
        return False


def test_an_environment_is_read_from_its_settings():
    settings = {"environments": {"qa": {"context": "kind-qa", "registry": "r.io/qa", "confirm": True}}}
    assert environment(settings, "qa") == Environment(
        name="qa",
        overlay=PROJECT_DIR / "k8s" / "overlays" / "qa",  # the default overlay, under the project
        context="kind-qa",
        registry="r.io/qa",
        tag=None,
        confirm=True,
        rollout_timeout=300,
    )


def test_an_absolute_overlay_is_kept(tmp_path):
    settings = {"environments": {"qa": {"overlay": str(tmp_path), "rollout_timeout": "90"}}}
    qa = environment(settings, "qa")
    assert (qa.overlay, qa.rollout_timeout, qa.confirm) == (tmp_path, 90, False)


def test_an_unknown_environment_names_the_configured_ones():
    known = ", ".join(sorted(DEFAULTS["sutra"]["environments"]))
    with pytest.raises(SutraError) as error:
        environment(DEFAULTS["sutra"], "qa")
    assert str(error.value) == f"unknown environment 'qa'; configured environments: {known}"


def test_flags_replace_the_registry_and_tag_only_when_given():
    assert with_images(STAGING, registry=None, tag=None) == STAGING
    moved = with_images(STAGING, registry="localhost:5000/team", tag="v7")
    assert (moved.registry, moved.tag, moved.context) == ("localhost:5000/team", "v7", STAGING.context)


def test_only_environments_marked_confirm_ask():
    asked = []
    confirm(STAGING, yes=False, dry=False, ask=asked.append)
    confirm(PRODUCTION, yes=True, dry=False, ask=asked.append)
    confirm(PRODUCTION, yes=False, dry=True, ask=asked.append)
    assert asked == []


def test_production_wants_its_name_typed_at_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stdin", Terminal())
    confirm(PRODUCTION, yes=False, dry=False, ask=lambda prompt: "production")
    with pytest.raises(NotConfirmed, match="deploy to production not confirmed"):
        confirm(PRODUCTION, yes=False, dry=False, ask=lambda prompt: "y")


def test_without_a_terminal_production_needs_yes(monkeypatch):
    monkeypatch.setattr(sys, "stdin", Pipe())
    with pytest.raises(NotConfirmed, match=r"deploying to production needs --yes"):
        confirm(PRODUCTION, yes=False, dry=False, ask=lambda prompt: "production")
