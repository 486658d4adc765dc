"""Fixtures for the reference services' tests (helpers live in reference_harness.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The helpers module sits beside this file; make it importable whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_harness import STORAGE_DIR, Launcher


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(log_dir=tmp_path)
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture(scope="module")
def module_launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    launcher = Launcher(log_dir=tmp_path_factory.mktemp("logs"))
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture(scope="session")
def storage_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """storage-server built in release mode, as the image builds it (minus static linking).

    SUTRA_STORAGE_TARGET_DIR reuses a target directory between runs to skip the rebuild.
    """
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.skip("cargo is not installed, so storage-server cannot be built")
    target_dir = Path(os.environ.get("SUTRA_STORAGE_TARGET_DIR") or tmp_path_factory.mktemp("storage-target"))
    argv = [
        cargo, "build", "--release", "--locked", "--quiet",
        "--manifest-path", str(STORAGE_DIR / "Cargo.toml"),
        "--target-dir", str(target_dir),
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"cargo build failed ({result.returncode}):\n{result.stderr}")
    return target_dir / "release" / "storage-server"
