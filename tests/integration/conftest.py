"""Integration tests run the real `inv` against a real Docker engine and real images."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.local.compose_stack import port_env
from sutra_deploy.tools.ports import free_port
from sutra_deploy.tools.waiting import wait_until

from ..processes import start_owned

STACK = load_stack(PROJECT_DIR / "stack.toml")


def inv(*args: str, timeout: float = 1800, **env: str) -> subprocess.CompletedProcess:
    """Run `inv` as a user would; stdout and stderr kept apart."""
    result = subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,  # never a terminal's answer: a test that would prompt fails
    )
    sys.stderr.write(result.stderr[-4000:])  # kept by pytest, shown when a test fails
    return result


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=300)


@pytest.fixture(scope="session", autouse=True)
def docker_engine() -> None:
    if shutil.which("docker") is None or docker("version", check=False).returncode != 0:
        pytest.fail("integration tests need a running Docker engine")


@pytest.fixture(scope="session")
def built_v2() -> subprocess.CompletedProcess:
    """The five v2 images, built once for the session by `inv build`."""
    result = inv("build")
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def own_stack_file(folder: Path, prefix: str, *, bases: bool = False) -> Path:
    """stack.toml with every image renamed `<prefix><image>` (and, with ``bases``, every local
    base image too): a test's builds never touch the stack's own images."""
    text = STACK.path.read_text()
    renames = [(f'image = "{s.image}"', f'image = "{prefix}{s.image}"') for s in STACK.services]
    if bases:
        renames += [
            (f'local = "{b.local}"', f'local = "{prefix}base-{b.local.split("/", 1)[-1]}"')
            for b in STACK.base_images
        ]
    for line, renamed in renames:
        assert text.count(line) == 1, line
        text = text.replace(line, renamed)
    path = folder / "stack.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    """A compose project of this run's own, on free host ports: never the user's stack."""
    # `nox -s integration` names the project so that it can always tear it down itself.
    env = {"INVOKE_SUTRA_PROJECT": os.environ.get("INVOKE_SUTRA_PROJECT") or f"sutra-it-{os.getpid()}"}
    # This process owns the stack: if it is killed before its teardown, `inv cleanup` takes it.
    env["INVOKE_SUTRA_OWNER_PID"] = str(os.getpid())
    env.update({port_env(s): str(free_port()) for s in STACK.services})
    return env


def own_project(stack_env: dict[str, str], suffix: str) -> dict[str, str]:
    """A compose project of this test's own, on free ports: never the session's stack."""
    env = {**stack_env, "INVOKE_SUTRA_PROJECT": f"{stack_env['INVOKE_SUTRA_PROJECT']}-{suffix}"}
    env.update({port_env(s): str(free_port()) for s in STACK.services})
    return env


@pytest.fixture(scope="session")
def built_v1() -> None:
    result = inv("build", "--version", "v1")
    assert result.returncode == 0, result.stderr[-3000:]


ARTIFACTS = PROJECT_DIR / ".artifacts"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        item.session.config._sutra_failed = True  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def local_stack(built_v2, stack_env, request):
    """The v2 stack up under the run's project; always torn down, logs kept on failure."""
    up = inv("local-up", **stack_env)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        yield stack_env
    finally:
        if getattr(request.config, "_sutra_failed", False) or up.returncode != 0:
            ARTIFACTS.mkdir(exist_ok=True)
            logs = inv("logs", **stack_env)
            (ARTIFACTS / f"{stack_env['INVOKE_SUTRA_PROJECT']}.log").write_text(logs.stdout)
        # The test run owns this project's volume, so it goes too.
        inv("local-down", "--volumes", **stack_env)


@pytest.fixture
def registry(tmp_path):
    """Debian's distribution registry on a free loopback port, for this test only."""
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    process = start_owned(
        ["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        try:
            return requests.get(url + "/v2/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(answering, timeout=30, what="the registry")
        yield f"127.0.0.1:{port}", url
    finally:
        process.terminate()
        process.wait(timeout=30)
        remove_tags_of(f"127.0.0.1:{port}/")


def remove_tags_of(prefix: str) -> None:
    """Untag every local image reference under ``prefix``: a test removes what it created."""
    listed = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
    ours = [ref for ref in listed if ref.startswith(prefix)]
    if ours:
        docker("image", "rm", *ours, check=False)
