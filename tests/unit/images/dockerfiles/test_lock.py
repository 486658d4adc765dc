"""A lock file: its exact pins become every deps stage's constraints; what cannot be a lock,
or a lock that no longer fits what a package declares, is one line naming file:line."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sutra_deploy.core.errors import DockerfileRefused, LockError, SutraError
from sutra_deploy.images.dockerfiles.lock import read_lock
from sutra_deploy.images.dockerfiles.model import DockerfileSettings
from sutra_deploy.images.dockerfiles.parse import parse_dockerfile

from .benchmark_checkout import SERVICES, benchmark_checkout
from .checkout import plan


@pytest.fixture
def locked(tmp_path):
    return benchmark_checkout(tmp_path)


def _constraints(text: str, stage: str) -> list[str]:
    """The lines the stage's RUN writes to /tmp/constraints.txt."""
    run = next(
        i.arguments
        for s in parse_dockerfile(text).stages
        if s.name == stage
        for i in s.instructions
        if i.keyword == "RUN"
    )
    block = run.split("/tmp/requirements.txt", 1)[1].split("> /tmp/constraints.txt", 1)[0]
    return [w.strip("'") for w in block.replace("\\", " ").split() if "==" in w]


def test_every_install_pins_to_the_lock(locked):
    root, stack = locked
    lock = read_lock(root, "requirements.lock")
    results = plan(root, stack=stack, settings={"lock": "requirements.lock"})
    assert sorted(results) == sorted(SERVICES)
    for result in results.values():
        # Transitive dependencies too: every pin of the lock, in every deps stage.
        assert _constraints(result.text, "deps") == list(lock.constraints)
        assert result.summary["lock"] == "requirements.lock"
    # The lock's pins are exact, by canonical name, in name order.
    names = [c.split("==")[0] for c in lock.constraints]
    assert all("==" in c for c in lock.constraints) and names == sorted(names)
    assert "pydantic-core" in names and "typing-extensions" in names
    assert lock.pin("scikit_learn").version == "1.3.2"


def test_without_a_lock_only_the_declared_packages_are_pinned(locked):
    root, stack = locked
    text = plan(root, "sutra-hybrid", stack=stack)["sutra-hybrid"].text
    pinned = {c.split("==")[0] for c in _constraints(text, "deps")}
    # The pre-plan Dockerfile's -r requirements.lock pins what hybrid declares, nothing more.
    assert "scikit-learn" in pinned and "scipy" not in pinned


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("numpy>=1.26", "numpy>=1.26 is not an exact pin (name==version)"),
        ("numpy==1.*", "numpy==1.* is not an exact pin"),
        ("-r other.txt", "an include (-r/-c) is not one"),
        ("numpy==1.26.4\nnumpy==1.26.3", "numpy is pinned twice (also line 1)"),
    ],
)
def test_what_is_no_lock_is_named_with_its_line(tmp_path, line, problem):
    (tmp_path / "requirements.lock").write_text(line + "\n")
    with pytest.raises(LockError, match=r"requirements\.lock:[12]: ") as caught:
        read_lock(tmp_path, "requirements.lock")
    assert problem in str(caught.value)


def test_a_missing_lock_or_one_outside_the_checkout_is_refused(tmp_path):
    (tmp_path / "inside").mkdir()
    (tmp_path / "outside.lock").write_text("numpy==1.26.4\n")
    with pytest.raises(SutraError, match=r"lock file nope\.lock: not found under"):
        read_lock(tmp_path / "inside", "nope.lock")
    with pytest.raises(SutraError, match="outside the checkout"):
        read_lock(tmp_path / "inside", "../outside.lock")


def test_hashes_are_read_past_and_said(tmp_path):
    (tmp_path / "requirements.lock").write_text(
        "numpy==1.26.4 \\\n    --hash=sha256:" + "0" * 64 + "\n# via sutra-api\n"
    )
    lock = read_lock(tmp_path, "requirements.lock")
    assert lock.constraints == ("numpy==1.26.4",) and lock.hashed


def test_a_stale_lock_is_refused_before_anything_is_written(locked):
    root, stack = locked
    path = root / "requirements.lock"
    path.write_text(path.read_text().replace("scikit-learn==1.3.2", "scikit-learn==1.5.0"))
    with pytest.raises(
        DockerfileRefused,
        match=r"requirements.lock:\d+ pins scikit-learn==1.5.0, outside "
        r"packages/sutra-hybrid/pyproject.toml's scikit-learn<1.4,>=1.3: the lock is stale",
    ):
        plan(root, stack=stack, settings={"lock": "requirements.lock"})
    assert not list(root.glob("packages/*/Dockerfile.optimized"))


def test_a_package_the_lock_lacks_is_said(locked):
    root, stack = locked
    path = root / "requirements.lock"
    kept = [line for line in path.read_text().splitlines() if not line.startswith("psutil==")]
    path.write_text("\n".join(kept))
    notes = plan(root, "sutra-control", stack=stack, settings={"lock": "requirements.lock"})[
        "sutra-control"
    ].notes
    assert "requirements.lock does not pin psutil: pip picks a version at each build" in notes


def test_the_setting_must_be_a_path():
    with pytest.raises(SutraError, match=r"sutra\.dockerfiles\.lock: expected a file's path"):
        DockerfileSettings.from_settings({"lock": ["a"]})


@given(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
    | st.text("abcxyz019=<>.*,;[]-# \n\\", max_size=120)
)
@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_lock_text_is_a_lock_or_one_line_naming_its_line(tmp_path, text):
    (tmp_path / "requirements.lock").write_text(text, encoding="utf-8")
    try:
        lock = read_lock(tmp_path, "requirements.lock")
    except SutraError as error:
        assert "\n" not in str(error) and "requirements.lock" in str(error)
    else:
        assert lock.pins and all("==" in c for c in lock.constraints)
