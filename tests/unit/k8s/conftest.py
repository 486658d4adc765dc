"""Kubernetes unit tests: real `kubectl kustomize` rendering; cluster calls go to the recording
stand-in (tests/standin/kubectl), so that they run in seconds without Docker or the control
plane's build, and can assert the exact calls. Against the real server: tests/cluster/."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from sutra_deploy.core.source import PROJECT_DIR

from ...standin.recording import RecordingCluster, recording_cluster


@dataclass(frozen=True)
class Standin:
    """`inv` with kubectl replaced by the recording stand-in, and what the stand-in saw."""

    cluster: RecordingCluster
    run: Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def standin(tmp_path) -> Standin:
    cluster = recording_cluster(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=PROJECT_DIR,
            env={**os.environ, **cluster.env},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )

    return Standin(cluster, run)
