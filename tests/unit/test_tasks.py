"""The task edge, driven through the real `inv` program: a user's mistake is one line."""

import os
import subprocess
import sys

import pytest

from sutra_deploy.core.source import PROJECT_DIR


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


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("build", "--bases", "nosuch"),
            "unknown base image mode 'nosuch'; choose one of auto, local, official",
        ),
        (("build", "--builder", "nosuch"), "unknown builder 'nosuch'; choose one of auto, buildkit, legacy"),
        (("sizes", "--baseline", "v3"), "unknown baseline 'v3'; choose one of recorded, v1"),
        (("base-images", "--only", "nosuch"), "no base image 'nosuch'; stack.toml defines debian, python,"),
        (("local-up", "--version", "a b"), "--version 'a b' is not a valid tag"),
        (
            ("verify", "--env", "staging", "--memory", "sutra-api=1Gi"),
            "--memory: only for `inv verify --env local`",
        ),
    ],
)
def test_a_wrong_flag_is_named_before_the_daemon_is_asked(args, expected):
    result = inv(*args, DOCKER_HOST="unix:///nonexistent/docker.sock")  # no daemon there
    assert_one_line_error(result, 2, expected)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("build", "--servce", "x"),
            "build has no flag --servce; did you mean --service? (`inv --help build`",
        ),
        (("biuld",), "no task 'biuld'; did you mean build? (`inv --list` lists them)"),
        (("deploy", "--env"), "--env needs a value (--env VALUE, or --env=VALUE)"),
        (("build", "--frobnicate"), "build has no flag --frobnicate (`inv --help build` lists them)"),
    ],
)
def test_invokes_parse_errors_are_one_line_exit_2_with_the_name_meant(args, expected):
    result = inv(*args)
    assert_one_line_error(result, 2, f"error: {expected}")


def test_loading_the_tasks_imports_no_heavy_library():
    # Every `inv` call loads tasks.py; each task imports what it needs when it runs.
    heavy = ("docker", "sh", "requests", "libcst", "tomlkit", "kubernetes_validate", "packaging")
    probe = f"import sys, tasks; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


BOOM_TASKS = """
from invoke import Collection, task

from sutra_deploy.edge import user_errors


@task
@user_errors
def boom(c):
    raise ValueError("a bug\\nover two lines")


ns = Collection(boom)
"""


@pytest.mark.parametrize("debug", [(), ("--debug",)])
def test_an_unexpected_exception_is_one_line_and_exit_3(tmp_path, debug):
    (tmp_path / "boomtasks.py").write_text(BOOM_TASKS)
    args = (*debug, "--search-root", str(tmp_path), "--collection", "boomtasks", "boom")
    result = inv(*args, PYTHONPATH=str(PROJECT_DIR))
    assert result.returncode == 3, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == "internal error: ValueError: a bug over two lines; please report"
    if debug:  # `inv --debug` shows where it came from
        assert "Traceback" in result.stderr and 'raise ValueError("a bug' in result.stderr
    else:
        assert_one_line_error(result, 3, "internal error: ValueError")


def test_sutra_debug_shows_the_traceback(tmp_path):
    (tmp_path / "boomtasks.py").write_text(BOOM_TASKS)
    args = ("--search-root", str(tmp_path), "--collection", "boomtasks", "boom")
    result = inv(*args, PYTHONPATH=str(PROJECT_DIR), SUTRA_DEBUG="1")
    assert result.returncode == 3
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("internal error: ValueError: a bug")


def test_a_mistyped_setting_variable_is_one_line(tmp_path):
    # Invoke casts INVOKE_SUTRA_* to the default's type before any task runs: numbers are text.
    assert_one_line_error(inv("build", "--dry", INVOKE_SUTRA_JOBS="abc"), 2, "sutra.jobs", "'abc'")
    assert_one_line_error(inv("smoke", INVOKE_SUTRA_SMOKE_TIMEOUT="nan"), 2, "sutra.smoke_timeout", "'nan'")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_output_to_a_full_disk_is_one_line_exit_2():
    """`inv capacity --json > file-on-a-full-disk`: the machine's state, not a bug (was exit 3)."""
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_DIR), "capacity", "--json"],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: cannot write (the output): No space left on device; free some space"
    ]
