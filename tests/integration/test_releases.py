"""Releases on a real engine and a real registry (Debian's `docker-registry` on a free loopback
port): the release tag pushed and the floating tags moved to it, a release tag never
overwritten with another image unless asked, release names
from a temporary git repository, and the local stack moved to a release and back.

Every tag a test makes is its own (`it-<random>`) and removed again; the `registry` fixture
untags the `127.0.0.1:<port>/…` references the pushes leave."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import pytest

from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.ship.release import git_release
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.registry import RegistryClient

from ..git_repos import git
from .conftest import STACK, docker, inv

CLIENT = STACK.service("sutra-client")
# "Another image" for the client's release: a build of another service, as a mistake would be.
OTHER = STACK.service("storage-server")


@pytest.fixture
def release_name():
    """A clean release name of the test's own; its local tags are removed afterwards."""
    name = f"it-{uuid.uuid4().hex[:10]}"
    yield name
    for service in STACK.services:
        for tag in (name, f"{name}-dirty"):
            docker("image", "rm", service.reference(tag=tag), check=False)


@pytest.fixture
def address(registry):
    """The `registry` fixture's address; afterwards the digest references its pushes left on the
    local images go too (the fixture untags `…:tag` references only)."""
    address, _ = registry
    yield address
    listed = docker("image", "ls", "--digests", "--format", "{{.Repository}}@{{.Digest}}", check=False)
    ours = [ref for ref in listed.stdout.split() if ref.startswith(f"{address}/") and "@sha256:" in ref]
    if ours:
        docker("image", "rm", *ours, check=False)


def image_id(ref: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_a_push_ships_the_commit_as_a_release_and_moves_the_floating_tags(built_v2, address):
    # The reference source root is in this project's repository: the release is its commit
    # (`-dirty` in a working tree with changes).
    release = git_release(Commands(), PROJECT_DIR / "reference")
    assert release is not None
    result = inv("push", "--registry", f"{address}/sutra-ai", "--service", CLIENT.name)
    assert result.returncode == 0, result.stderr
    client = RegistryClient(address)
    repository = f"sutra-ai/{CLIENT.image}"
    assert client.tags(repository) == sorted([release.name, "latest", "v2"])
    digests = {tag: client.digest(repository, tag) for tag in (release.name, "v2", "latest")}
    assert len(set(digests.values())) == 1 and digests[release.name].startswith("sha256:")
    # The table shows what was pushed, the release first.
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    assert rows == [[f"{address}/{repository}:{tag}", digests[tag]] for tag in (release.name, "v2", "latest")]


def test_a_release_tag_is_never_overwritten_with_another_image_unless_asked(built_v2, address, release_name):
    target = f"{address}/sutra-ai"
    repository = f"sutra-ai/{CLIENT.image}"
    client = RegistryClient(address)

    def push(*flags: str, tag: str = release_name) -> subprocess.CompletedProcess:
        return inv("push", "--registry", target, "--service", CLIENT.name, "--tag", tag, *flags)

    first = push()
    assert first.returncode == 0, first.stderr
    shipped = client.digest(repository, release_name)
    assert shipped == client.digest(repository, "v2")

    again = push()  # the same image: nothing to do for the release tag
    assert again.returncode == 0, again.stderr
    assert f"{target}/{CLIENT.image}:{release_name} is already in the registry" in again.stderr
    assert "not pushed again" in again.stderr
    assert client.digest(repository, release_name) == shipped

    # Another image built as the release (push takes `image:<release>` when it exists).
    docker("tag", OTHER.ref("v2"), CLIENT.reference(tag=release_name))
    refused = push()
    assert refused.returncode == 1, refused.stderr
    assert "Traceback" not in refused.stderr
    line = last_line(refused)
    assert line.startswith(f"error: {target}/{CLIENT.image}:{release_name} already exists with another image")
    assert shipped in line and image_id(OTHER.ref("v2")) in line  # the registry's, and this build's
    assert "--force" in line
    # Refused before anything was pushed: every tag stays where it was.
    assert {tag: client.digest(repository, tag) for tag in (release_name, "v2", "latest")} == dict.fromkeys(
        (release_name, "v2", "latest"), shipped
    )

    forced = push("--force")
    assert forced.returncode == 0, forced.stderr
    assert f"overwriting {target}/{CLIENT.image}:{release_name} (--force)" in forced.stderr
    overwritten = client.digest(repository, release_name)
    assert overwritten != shipped and client.digest(repository, "v2") == overwritten


def test_a_dirty_release_is_overwritten_with_a_warning(built_v2, address, release_name):
    target = f"{address}/sutra-ai"
    repository = f"sutra-ai/{CLIENT.image}"
    dirty = f"{release_name}-dirty"  # what git names a working tree with changes
    first = inv("push", "--registry", target, "--service", CLIENT.name, "--tag", dirty)
    assert first.returncode == 0, first.stderr
    before = RegistryClient(address).digest(repository, dirty)
    docker("tag", OTHER.ref("v2"), CLIENT.reference(tag=dirty))
    second = inv("push", "--registry", target, "--service", CLIENT.name, "--tag", dirty)
    assert second.returncode == 0, second.stderr
    assert f"overwriting {target}/{CLIENT.image}:{dirty} (a -dirty release names no commit)" in second.stderr
    assert RegistryClient(address).digest(repository, dirty) not in (None, before)


# --- release names from a temporary git repository as the source root --------------------------


@pytest.fixture
def checkout(tmp_path):
    """A copy of the reference source root as a git repository of its own, one commit."""
    root = tmp_path / "checkout"
    shutil.copytree(PROJECT_DIR / "reference", root)
    git(root, "init", "--quiet")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "the reference")
    return root


def dry_build(root, *flags: str) -> str:
    """The build line `inv --dry build` prints for sutra-api (nothing is built), by either builder."""
    result = inv("--dry", "build", "--service", "sutra-api", "--bases", "local", "--root", str(root), *flags)
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if " build " in line]
    return line


def test_build_tags_the_commit_of_a_clean_tree(checkout):
    sha12 = git(checkout, "rev-parse", "--short=12", "HEAD")
    assert f" --tag sutra-api:v2 --tag sutra-api:{sha12} " in dry_build(checkout)
    assert dry_build(checkout, "--builder", "legacy").startswith(
        f"DOCKER_BUILDKIT=0 docker build --force-rm --tag sutra-api:v2 --tag sutra-api:{sha12} "
    )


def test_build_marks_a_dirty_tree(checkout):
    sha12 = git(checkout, "rev-parse", "--short=12", "HEAD")
    dockerfile = checkout / "packages" / "sutra-api" / "Dockerfile.optimized"
    dockerfile.write_text(dockerfile.read_text() + "\n# changed\n")
    assert f" --tag sutra-api:{sha12}-dirty " in dry_build(checkout)


def test_build_takes_a_v_tag_on_the_commit(checkout):
    git(checkout, "tag", "v1.4.0")
    assert " --tag sutra-api:v2 --tag sutra-api:v1.4.0 " in dry_build(checkout)
    # --tag names a release of its own; it beats git.
    assert " --tag sutra-api:v2 --tag sutra-api:2026-11-26.1 " in dry_build(checkout, "--tag", "2026-11-26.1")


def test_a_build_of_another_version_does_not_take_the_commits_release(checkout):
    line = dry_build(checkout, "--version", "v1")
    assert " --tag sutra-api:v1 --file " in line  # no release tag
    assert " --tag sutra-api:r-v1 " in dry_build(checkout, "--version", "v1", "--tag", "r-v1")


# --- the local stack moved to a release and back --------------------------------------------------


def test_the_local_stack_moves_to_a_release_and_back(local_stack, release_name):
    for service in STACK.services:  # the v2 images, as `inv build --tag` would have named them
        docker("tag", service.ref("v2"), service.reference(tag=release_name))
    listed = inv("releases", "--env", "local", "--json", **local_stack)
    assert listed.returncode == 0, listed.stderr
    local_tags = json.loads(listed.stdout)["local_tags"]
    assert all(release_name in local_tags[s.image] for s in STACK.services)
    try:
        moved = inv("rollback", "--env", "local", "--to", release_name, **local_stack)
        assert moved.returncode == 0, moved.stderr[-2000:]
        images = docker(
            "ps",
            "--filter",
            f"label=com.docker.compose.project={local_stack['INVOKE_SUTRA_PROJECT']}",
            "--format",
            "{{.Image}}",
        ).stdout.split()
        assert sorted(images) == sorted(s.reference(tag=release_name) for s in STACK.services)
        assert inv("smoke", **local_stack).returncode == 0
        # Running a release, there is no "version before" to guess.
        guess = inv("rollback", "--env", "local", **local_stack)
        assert guess.returncode == 2
        assert (
            last_line(guess)
            == f"error: the local stack runs release {release_name}; say where to go with --to"
        )
    finally:
        back = inv("rollback", "--env", "local", "--to", "v2", **local_stack)
    assert back.returncode == 0, back.stderr[-2000:]


def test_a_release_that_was_never_built_here_is_named_with_how_to_build_it(local_stack, release_name):
    result = inv("rollback", "--env", "local", "--to", release_name, **local_stack)
    assert result.returncode == 2
    assert last_line(result) == (
        f"error: image {STACK.services[0].reference(tag=release_name)} not found; "
        f"build the release with `inv build --tag {release_name}`"
    )
