"""The task edge, driven through the real `inv` program: a user's mistake is one line."""

import os
import subprocess
import sys

import pytest

from sutra_deploy.source import PROJECT_DIR


def inv(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_list_shows_every_phase_task():
    out = inv("--list").stdout
    for name in ("base-images", "build", "sizes"):
        assert name in out


def test_unknown_service():
    result = inv("sizes", "--service", "sutra-apii")
    assert_one_line_error(result, 2, "unknown service 'sutra-apii'", "known services: storage-server")
    result = inv("build", "--service", "storage-server,nope")
    assert_one_line_error(result, 2, "unknown service 'nope'")


def test_unknown_version_and_baseline():
    assert_one_line_error(inv("build", "--version", "v9"), 2, "unknown version 'v9'")
    assert_one_line_error(inv("sizes", "--baseline", "yesterday"), 2, "unknown baseline 'yesterday'")


def test_docker_daemon_unreachable(tmp_path):
    result = inv("sizes", DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock")
    assert_one_line_error(result, 2, "cannot reach the Docker daemon", "DOCKER_HOST")


def test_malformed_stack_file(tmp_path):
    bad = tmp_path / "stack.toml"
    bad.write_text((PROJECT_DIR / "stack.toml").read_text().replace("limit = 200", 'limit = "lots"'))
    result = inv("sizes", INVOKE_SUTRA_STACK_FILE=str(bad))
    assert_one_line_error(result, 2, str(bad), "services.sutra-api.size_mb.limit")


def test_missing_dockerfile_under_root(tmp_path):
    (tmp_path / "packages" / "sutra-storage").mkdir(parents=True)
    result = inv("build", "--service", "storage-server", "--root", str(tmp_path))
    assert_one_line_error(result, 2, "packages/sutra-storage/Dockerfile not found under", str(tmp_path))
    result = inv("build", SUTRA_ROOT=str(tmp_path / "missing"))
    assert_one_line_error(result, 2, "is not a directory", "SUTRA_ROOT")


@pytest.mark.parametrize("flag", ["--bases=weird"])
def test_bad_base_mode(flag):
    result = inv("build", "--service", "sutra-client", flag, "--dry")
    assert_one_line_error(result, 2, "unknown base image mode 'weird'")


def test_loading_the_tasks_imports_no_heavy_library():
    # Every `inv` call loads tasks.py; each task imports what it needs when it runs.
    heavy = ("docker", "sh", "requests", "libcst", "tomlkit", "kubernetes_validate")
    probe = f"import sys, tasks; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"
