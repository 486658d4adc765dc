"""`inv dockerfiles` on a synthetic Sutra checkout, then a real build and run of what it wrote:
the image's own HEALTHCHECK reaches healthy, it answers on the stack's health path, runs as
non-root and is under the service's size limit.

Run alone with `pytest -m dockerfiles tests/integration` (or this file's path). The images
are named by a copy of stack.toml (`sutra-gentest-<run>-…`), never the stack's own, and
everything the test creates (the image, the deps stage the builder keeps, the container) is
removed at the end."""

from __future__ import annotations

import json
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from sutra_deploy.core.stack import Stack, load_stack
from sutra_deploy.tools.waiting import wait_until

from ..unit.images.dockerfiles.checkout import STACK, hadolint, make_checkout
from .conftest import docker, inv, own_stack_file

# `-m dockerfiles` selects this file alone. The marker is not registered in a conftest or
# pytest configuration yet (`config.addinivalue_line("markers", "dockerfiles: ...")` in
# tests/integration/conftest.py would do it); until then its unknown-mark warning is silenced here.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    pytestmark = pytest.mark.dockerfiles

SERVICE = STACK.service("sutra-api")
# The synthetic checkout's monorepo client: only this test's deps stages copy it there.
DEPS_STAGE_MARK = "/opt/local/sutra-storage-client"


@dataclass(frozen=True)
class Gentest:
    root: Path
    stack: Stack
    env: dict[str, str]
    prefix: str


@pytest.fixture(scope="module")
def gentest(tmp_path_factory) -> Iterator[Gentest]:
    prefix = f"sutra-gentest-{uuid.uuid4().hex[:8]}-"
    folder = tmp_path_factory.mktemp("dockerfiles")
    root = make_checkout(folder / "sutra")
    stack_file = own_stack_file(folder, prefix)
    stack = load_stack(stack_file)
    assert all(s.image.startswith(prefix) for s in stack.services)
    started = time.time()
    try:
        yield Gentest(root, stack, {"INVOKE_SUTRA_STACK_FILE": str(stack_file)}, prefix)
    finally:
        remove_what_this_run_made(prefix, started)


def remove_what_this_run_made(prefix: str, started: float) -> None:
    containers = docker("ps", "-a", "-q", "--filter", f"name={prefix}", check=False).stdout.split()
    if containers:
        docker("rm", "--force", "--volumes", *containers, check=False)
    listed = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
    ours = [ref for ref in listed if ref.startswith(prefix)]
    if ours:
        docker("image", "rm", "--force", *ours, check=False)
    # The legacy builder keeps each multi-stage build's deps stage as an untagged image: this
    # run's is the one made since it started whose history copies the synthetic client.
    for image in docker(
        "image", "ls", "-q", "--no-trunc", "--filter", "dangling=true", check=False
    ).stdout.split():
        created = docker("image", "inspect", "-f", "{{.Created}}", image, check=False).stdout.strip()
        history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image, check=False).stdout
        ours = DEPS_STAGE_MARK in history or "/opt/shared/" in history  # a deps or a shared stage
        if ours and _epoch(created) >= started - 1:
            docker("image", "rm", image, check=False)


def _epoch(created: str) -> float:
    """Docker's `Created` (UTC, nanoseconds) as seconds since the epoch; whole seconds will do."""
    try:
        return datetime.fromisoformat(created.rstrip("Z").partition(".")[0]).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def wait_healthy(container: str, timeout: float = 120) -> float:
    """Seconds until the image's own HEALTHCHECK says healthy; fails at once on unhealthy."""
    begun = time.monotonic()

    def healthy() -> bool:
        state = docker(
            "inspect", "-f", "{{.State.Status}} {{.State.Health.Status}}", container
        ).stdout.split()
        logs = docker("logs", "--tail", "30", container, check=False)
        assert state[0] == "running", f"{container} is {state[0]}: {logs.stdout}{logs.stderr}"
        assert state[1] != "unhealthy", f"{container} is unhealthy: {logs.stdout}{logs.stderr}"
        return state[1] == "healthy"

    wait_until(healthy, timeout=timeout, interval=1, what=f"{container} to become healthy")
    return time.monotonic() - begun


def test_generated_dockerfile_builds_runs_and_is_healthy(gentest):
    root, env = gentest.root, gentest.env
    service = gentest.stack.service(SERVICE.name)
    ref = service.ref("v2")

    written = inv("dockerfiles", "--root", str(root), "--service", service.name, "--write", **env)
    assert written.returncode == 0, written.stderr
    dockerfile = root / service.dockerfile("v2")
    assert dockerfile.is_file()
    linted = hadolint(dockerfile)
    assert linted.returncode == 0 and linted.stdout == "", linted.stdout

    built = inv("build", "--root", str(root), "--service", service.name, "--bases", "local", **env)
    assert built.returncode == 0, built.stderr[-3000:]
    assert ref in built.stdout

    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", ref).stdout)
    assert config["User"] == "65532:65532"
    assert config["Healthcheck"]["Test"][:3] == ["CMD", "python3", "-c"]
    assert f"{service.port.container}/tcp" in config["ExposedPorts"]
    # Distroless: no shell to run anything but Python.
    no_shell = docker("run", "--rm", "--entrypoint", "/bin/sh", ref, "-c", "true", check=False)
    assert no_shell.returncode != 0

    container = f"{gentest.prefix}api"
    docker("run", "-d", "--name", container, "-p", f"127.0.0.1::{service.port.container}", ref)
    seconds = wait_healthy(container)
    host_port = (
        docker("port", container, str(service.port.container)).stdout.splitlines()[0].rsplit(":", 1)[1]
    )
    answer = requests.get(f"http://127.0.0.1:{host_port}{service.health.path}", timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body == {
        "status": "ok",
        "storage": "storage client 0.1.0",  # the monorepo package, installed in the deps stage
        "greeting": "hello from the checkout",  # ENV carried over
        "template": "<h1>sutra templates</h1>",  # templates/ next to the code, found from WORKDIR
        "uid": 65532,  # not root
    }
    uid = docker("exec", container, "python3", "-c", "import os; print(os.getuid(), os.getgid())").stdout
    assert uid.split() == ["65532", "65532"]

    sizes = inv("sizes", "--service", service.name, "--json", **env)
    assert sizes.returncode == 0, sizes.stderr
    [row] = json.loads(sizes.stdout)["services"]
    assert row["image"] == ref
    assert row["size_bytes"] <= row["limit_bytes"] == service.budget.limit_bytes
    print(
        f"\n{ref}: {row['size_bytes'] / 1e6:.1f} MB (target {row['target_bytes'] / 1e6:.0f} MB, "
        f"limit {row['limit_bytes'] / 1e6:.0f} MB), healthy after {seconds:.1f}s"
    )


def test_a_second_generation_changes_nothing_and_the_rebuild_is_cached(gentest):
    root, env = gentest.root, gentest.env
    service = gentest.stack.service(SERVICE.name)
    dockerfile = root / service.dockerfile("v2")
    if not dockerfile.exists():
        pytest.skip("needs the first test's Dockerfile")
    before = dockerfile.stat().st_mtime_ns
    again = inv("dockerfiles", "--root", str(root), "--service", service.name, "--write", "--force", **env)
    assert again.returncode == 0, again.stderr
    assert "unchanged" in again.stdout and dockerfile.stat().st_mtime_ns == before
    rebuilt = inv("build", "--root", str(root), "--service", service.name, "--bases", "local", **env)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    row = next(line for line in rebuilt.stdout.splitlines() if line.startswith(service.ref("v2")))
    assert row.split()[-1] == "unchanged", row  # the file really did not change: nothing rebuilt


def test_the_checkout_has_no_v2_dockerfile_until_it_is_generated(gentest, tmp_path):
    # `inv build` on a checkout as the plan finds it stops at once, naming the command.
    fresh = make_checkout(tmp_path / "fresh")
    result = inv("build", "--root", str(fresh), "--service", SERVICE.name, **gentest.env)
    assert result.returncode == 2
    assert f"`inv dockerfiles --root {fresh} --service {SERVICE.name} --write`" in result.stderr


def test_a_pre_plan_dockerfile_the_builder_cannot_run_stops_at_the_preflight(gentest, tmp_path):
    """v1 of the synthetic checkout (a here-document, a base no registry here serves) stops
    before the first build, dry too, one line per problem with file:line; v2 (written by
    `inv dockerfiles`) passes the same check."""
    from ..unit.images.dockerfiles.checkout import API, API_DOCKERFILE

    # Bases no registry serves, wherever the test runs (.invalid never resolves).
    unpullable = API_DOCKERFILE.replace("FROM python:", "FROM registry.invalid/python:")
    fresh = make_checkout(tmp_path / "fresh", {f"{API}/Dockerfile": unpullable})
    dockerfile = f"{API}/Dockerfile"
    heredoc = 1 + unpullable.splitlines().index("RUN cat > requirements.txt <<EOF")
    runtime = 1 + unpullable.splitlines().index("FROM registry.invalid/python:3.11-alpine")
    # The legacy builder ignores the file's `# syntax=` line; BuildKit would pull that frontend.
    for dry, builder, count in (((), "legacy", 3), (("--dry",), "buildkit", 4)):
        result = inv(
            *dry, "build", "--version", "v1", "--root", str(fresh), "--service", SERVICE.name,
            "--builder", builder, **gentest.env,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr[-2000:]
        lines = result.stderr.strip().splitlines()
        assert (
            lines[-1]
            == f"error: {count} problems in the Dockerfiles to build, each named above; nothing was built"
        )
        syntax = f"[preflight] {dockerfile}:1: # syntax=docker/dockerfile:1.4: BuildKit would pull"
        assert any(line.startswith(syntax) for line in lines) is (builder == "buildkit"), lines
        assert any(
            line.startswith(f"[preflight] {dockerfile}:{heredoc}: RUN <<EOF (a heredoc)") for line in lines
        )
        assert any(
            line.startswith(f"[preflight] {dockerfile}:{runtime}: FROM registry.invalid/python:3.11-alpine: ")
            for line in lines
        ), lines
        assert "docker build" not in result.stdout and "docker buildx" not in result.stdout
        assert "] building from " not in result.stderr
    written = inv("dockerfiles", "--root", str(fresh), "--service", SERVICE.name, "--write", **gentest.env)
    assert written.returncode == 0, written.stderr[-2000:]
    v2 = inv("--dry", "build", "--root", str(fresh), "--service", SERVICE.name, **gentest.env)
    assert v2.returncode == 0, v2.stderr[-2000:]
    assert "[preflight]" not in v2.stderr


@pytest.mark.parametrize("builder", ["buildkit", "legacy"])
def test_with_a_lock_the_images_share_their_common_dependencies_layer(gentest, tmp_path, builder):
    """api and hybrid both declare fastapi and uvicorn: with a lock (the benchmark checkout's),
    both images carry the same layer for them (one digest: a node pulls it once), straight on
    the runtime base, on either builder; the API still answers its health check from it."""
    from ..unit.images.dockerfiles.benchmark_checkout import BENCHMARK_CHECKOUT

    root = make_checkout(tmp_path / "locked")
    (root / "requirements.lock").write_bytes((BENCHMARK_CHECKOUT / "requirements.lock").read_bytes())
    names = ("sutra-api", "sutra-hybrid")
    selected = [arg for name in names for arg in ("--service", name)]
    written = inv(
        "dockerfiles", "--root", str(root), *selected, "--lock", "requirements.lock", "--write", **gentest.env
    )
    assert written.returncode == 0, written.stderr[-2000:]
    assert "in one layer (/opt/shared/" in written.stderr
    # Two at a time: the legacy builder then builds the shared stage alone first, and both
    # images after it, side by side; BuildKit builds both at once and shares the steps.
    built = inv(
        "build", "--root", str(root), *selected, "--bases", "local", "--builder", builder, "--jobs", "2",
        **gentest.env,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    assert ("building the stage sutra-api, sutra-hybrid share" in built.stderr) == (builder == "legacy")

    def layers(ref: str) -> list[str]:
        return json.loads(docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", ref).stdout)

    runtime = gentest.stack.base_image("python-runtime").local
    base = layers(runtime)
    api, hybrid = (layers(gentest.stack.service(n).ref("v2")) for n in names)
    assert api[: len(base)] == hybrid[: len(base)] == base
    # The shared layer is the first after the runtime base, the same in both; then each differs.
    assert api[len(base)] == hybrid[len(base)]
    assert api[len(base) + 1 :] != hybrid[len(base) + 1 :]

    ref = gentest.stack.service("sutra-api").ref("v2")
    container = f"{gentest.prefix}api-locked-{builder}"
    docker("run", "-d", "--name", container, ref)
    wait_healthy(container)
    answer = docker(
        "exec", container, "python3", "-c", "import fastapi, sutra_api.main; print(fastapi.__file__)"
    )
    assert answer.stdout.startswith("/opt/shared/"), answer.stdout
