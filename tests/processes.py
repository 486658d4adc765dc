"""Processes the tests start (registries, the control plane): none may outlive the test run."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sutra_deploy.tools.commands import die_with_parent


def start_owned(argv: Sequence[str], **options: Any) -> subprocess.Popen:
    """``argv`` started as a child that ends when this process does, however it ends (the same
    parent-death signal the tool's own background commands get)."""
    return subprocess.Popen(list(argv), preexec_fn=die_with_parent(), **options)


def running(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def ends_with_its_starter(starter_script: str, pid_file: Path, cwd: Path) -> None:
    """Run ``starter_script`` (it starts a child and writes the child's pid to ``pid_file``),
    SIGKILL it once the child runs, and wait for the child to end: no teardown ran, only the
    parent-death signal can have stopped it."""
    from sutra_deploy.tools.waiting import wait_until

    starter = subprocess.Popen([sys.executable, "-c", starter_script], cwd=cwd)
    try:
        wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=30, what="the child")
        child = int(pid_file.read_text())
        assert running(child)
        starter.kill()
        starter.wait(timeout=30)
        wait_until(lambda: not running(child), timeout=30, what="the child to end")
    finally:
        if starter.poll() is None:
            starter.kill()
