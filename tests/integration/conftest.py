"""Integration tests run the real `inv` against a real Docker engine and real images."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from sutra_deploy.source import PROJECT_DIR
from sutra_deploy.stack import load_stack

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
