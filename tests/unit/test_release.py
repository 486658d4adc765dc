"""Release names from a real git repository made by the test."""

import subprocess

import pytest

from sutra_deploy.commands import Commands
from sutra_deploy.errors import SutraError
from sutra_deploy.release import NoRelease, git_release, resolve_release

VERSIONS = ("v1", "v2")


def git(root, *args):
    return subprocess.run(
        ["git", "-C", str(root), *args],
        check=True,
        capture_output=True,
        text=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "HOME": str(root),
        },
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "checkout"
    root.mkdir()
    git(root, "init", "--quiet")
    (root / "stack.txt").write_text("one\n")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "first")
    return root


def test_a_clean_tree_is_named_by_its_commit(repo):
    release = git_release(Commands(), repo)
    commit = git(repo, "rev-parse", "HEAD")
    assert release.name == commit[:12] and release.commit == commit and not release.dirty


def test_a_dirty_tree_is_marked_dirty(repo):
    (repo / "stack.txt").write_text("changed\n")
    release = git_release(Commands(), repo)
    assert release.name == git(repo, "rev-parse", "HEAD")[:12] + "-dirty" and release.dirty


def test_a_v_tag_on_the_commit_is_the_release(repo):
    git(repo, "tag", "v1.4.0")
    git(repo, "tag", "nightly")
    assert git_release(Commands(), repo).name == "v1.4.0"
    (repo / "stack.txt").write_text("changed\n")  # the tag no longer describes the tree
    assert git_release(Commands(), repo).name.endswith("-dirty")


def test_a_subfolder_of_the_repository_is_named_by_the_repository(repo):
    (repo / "packages").mkdir()
    assert git_release(Commands(), repo / "packages").commit == git(repo, "rev-parse", "HEAD")


def test_outside_git_there_is_no_release_unless_one_is_given(tmp_path):
    assert git_release(Commands(), tmp_path) is None
    assert resolve_release(Commands(), tmp_path, VERSIONS, tag=None, required=False) is None
    with pytest.raises(NoRelease, match="--tag"):
        resolve_release(Commands(), tmp_path, VERSIONS, tag=None, required=True)
    assert (
        resolve_release(Commands(), tmp_path, VERSIONS, tag="2026-11-26.1", required=True).name
        == "2026-11-26.1"
    )


def test_a_release_cannot_be_named_like_a_version(tmp_path, repo):
    with pytest.raises(SutraError, match="is a version of the stack"):
        resolve_release(Commands(), tmp_path, VERSIONS, tag="v2", required=True)
    git(repo, "tag", "v2")
    with pytest.raises(SutraError, match="also a version of the stack"):
        resolve_release(Commands(), repo, VERSIONS, tag=None, required=True)
