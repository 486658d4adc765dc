"""The test harness itself: a cancelled test run (SIGTERM, SIGHUP) still tears down what its
fixtures started, and processes the tests start never outlive the run."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from sutra_deploy.tools.waiting import wait_until
from tests.conftest import PROJECT_DIR
from tests.processes import ends_with_its_starter

A_LONG_TEST = """
import pathlib, time, pytest

@pytest.fixture
def started():
    pathlib.Path("{folder}/started").write_text("")
    yield
    pathlib.Path("{folder}/torn-down").write_text("")

def test_runs_long(started):
    time.sleep(120)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_the_test_run_runs_every_fixtures_teardown(tmp_path, signum):
    test_file = tmp_path / "test_long.py"
    test_file.write_text(textwrap.dedent(A_LONG_TEST.format(folder=tmp_path)))
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "-p", "no:cacheprovider",
         str(test_file)],
        cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: (tmp_path / "started").exists(), timeout=60, what="the fixture")
        run.send_signal(signum)
        output, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert (tmp_path / "torn-down").exists(), output
    assert f"stopped by {signal.Signals(signum).name}" in output


def test_a_started_process_ends_when_its_starter_is_killed(tmp_path):
    """SIGKILL runs no teardown: the parent-death signal still ends what the run started."""
    pid_file = tmp_path / "child.pid"
    script = (
        "import pathlib, time\n"
        "from tests.processes import start_owned\n"
        "child = start_owned(['sleep', '300'])\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))\n"
        "time.sleep(300)\n"
    )
    ends_with_its_starter(script, pid_file, PROJECT_DIR)
