"""Processes the tests start (registries, the control plane): none may outlive the test run."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Any

from sutra_deploy.tools.commands import die_with_parent


def start_owned(argv: Sequence[str], **options: Any) -> subprocess.Popen:
    """``argv`` started as a child that ends when this process does, however it ends (the same
    parent-death signal the tool's own background commands get)."""
    return subprocess.Popen(list(argv), preexec_fn=die_with_parent(), **options)
