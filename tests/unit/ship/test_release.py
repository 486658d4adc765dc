"""Release names from a real git repository made by the test; a release tag held in a registry
(the registry stand-in) is never overwritten with another image unless asked to."""

import socket
import subprocess
from dataclasses import dataclass

import pytest

from sutra_deploy.core.errors import HttpError, NoRelease, ReleaseExists, SutraError
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.local.compose_stack import previous_version
from sutra_deploy.ship.push import already_there
from sutra_deploy.ship.release import Release, floating_tags, git_release, resolve_release
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.engine import ImageInfo

from ...standin.registry import registry_standin
from ..test_tasks import assert_one_line_error, inv

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


def test_a_repository_before_its_first_commit_has_no_release(tmp_path):
    git(tmp_path, "init", "-q")
    assert git_release(Commands(), tmp_path) is None
    assert git_release(Commands(), tmp_path / ".git") is None  # inside git's own folder: no work tree


def test_a_release_cannot_be_named_like_a_version(tmp_path, repo):
    with pytest.raises(SutraError, match="is a version of the stack"):
        resolve_release(Commands(), tmp_path, VERSIONS, tag="v2", required=True)
    git(repo, "tag", "v2")
    with pytest.raises(SutraError, match="also a version of the stack"):
        resolve_release(Commands(), repo, VERSIONS, tag=None, required=True)


def test_a_release_named_with_tag_still_names_a_clean_commit(tmp_path, repo):
    commit = git(repo, "rev-parse", "HEAD")
    given = resolve_release(Commands(), repo, VERSIONS, tag="2026-11-26.1", required=True)
    assert (given.name, given.commit, given.source) == ("2026-11-26.1", commit, "--tag")
    (repo / "stack.txt").write_text("changed\n")  # the commit no longer describes the build
    assert resolve_release(Commands(), repo, VERSIONS, tag="2026-11-26.1", required=True).commit is None
    assert resolve_release(Commands(), tmp_path, VERSIONS, tag="r1", required=True).commit is None


def test_push_from_a_source_root_outside_git_needs_a_tag(tmp_path):
    root = tmp_path / "export"  # a source tree without its repository (an archive, say)
    root.mkdir()
    result = inv(
        "push",
        "--registry",
        "localhost:5000/x",
        "--root",
        str(root),
        DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock",  # refused before the engine is asked
    )
    assert_one_line_error(
        result, 2, f"error: no release name: {root} is not in a git repository with a commit", "--tag"
    )


# --- a release tag is immutable in the registry ----------------------------------------------

CLIENT = load_stack(PROJECT_DIR / "stack.toml").service("sutra-client")
MANIFEST, CONFIG, OTHER = ("sha256:" + c * 64 for c in "abc")


@dataclass
class Images:
    """The engine's `image()` for the one local image a push would send (None: none)."""

    found: ImageInfo | None

    def image(self, ref: str) -> ImageInfo | None:
        return self.found


def local_image(image_id: str, repo_digests: tuple[str, ...] = ()) -> Images:
    return Images(ImageInfo("sutra-client:r1", image_id, 0, (), {}, repo_digests))


def checked(engine: Images, registry: str, release: str = "r1", *, force: bool = False) -> dict[str, str]:
    """What `push_images` asks before pushing: release tags already held with this image."""
    given = Release(release, None, "git commit" if release.endswith("-dirty") else "--tag")
    return already_there(engine, [CLIENT], {CLIENT.name: "sutra-client:r1"}, registry, given, force)


@pytest.mark.parametrize("store", ["classic", "containerd", "pushed-before"])
def test_the_same_image_under_the_release_is_not_pushed_again(store):
    with registry_standin({"sutra-ai/sutra-client": {"r1": (MANIFEST, CONFIG)}}) as registry:
        path = f"{registry.address}/sutra-ai"
        engine = {
            "classic": local_image(CONFIG),  # the image ID is the config's digest
            "containerd": local_image(MANIFEST),  # the image ID is the manifest's digest
            "pushed-before": local_image(OTHER, (f"{path}/sutra-client@{MANIFEST}",)),
        }[store]
        assert checked(engine, path) == {CLIENT.reference(path, tag="r1"): MANIFEST}


def test_another_image_under_a_clean_release_is_refused_naming_both_digests():
    with registry_standin({"sutra-ai/sutra-client": {"r1": (MANIFEST, CONFIG)}}) as registry:
        path = f"{registry.address}/sutra-ai"
        with pytest.raises(ReleaseExists) as refused:
            checked(local_image(OTHER), path)
        # --force, and a -dirty release (it names no commit), overwrite it instead.
        assert checked(local_image(OTHER), path, force=True) == {}
        assert checked(local_image(OTHER), path, "0123456789ab-dirty") == {}
    message = str(refused.value)
    assert refused.value.exit_code == 1
    assert MANIFEST in message and OTHER in message and "--force" in message


def test_a_release_the_registry_does_not_hold_is_pushed():
    with registry_standin({}) as registry:
        assert checked(local_image(OTHER), f"{registry.address}/sutra-ai") == {}


def test_force_does_not_depend_on_reading_the_registry():
    with socket.socket() as held:  # bound, never listening: a connection is refused at once
        held.bind(("127.0.0.1", 0))
        path = f"127.0.0.1:{held.getsockname()[1]}/sutra-ai"
        with pytest.raises(HttpError, match="connection refused"):
            checked(local_image(OTHER), path)
        assert checked(local_image(OTHER), path, force=True) == {}


def test_a_local_stack_running_a_release_has_no_previous_version_to_guess():
    stack = load_stack(PROJECT_DIR / "stack.toml")
    with pytest.raises(
        SutraError, match="the local stack runs release 0123456789ab; say where to go with --to"
    ):
        previous_version(stack, "0123456789ab")


def test_floating_tags_follow_the_version_and_a_text_in_place_of_a_list_is_refused():
    assert floating_tags(["{version}", "latest", "v2"], "v2") == ["v2", "latest"]
    assert floating_tags(["{version}", "latest"], "v1", latest=False) == ["v1"]
    # `floating_tags: "latest"` in invoke.yaml: once five one-letter tags; now one line.
    with pytest.raises(SutraError, match=r"sutra.floating_tags must be a list of tags, .* got 'latest'"):
        floating_tags("latest", "v2")
    with pytest.raises(SutraError, match=r"sutra\.floating_tags must be a list of tags, got 3"):
        floating_tags([3], "v2")
