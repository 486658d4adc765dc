"""The synthetic checkout, fresh for each test that asks for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from .checkout import make_checkout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return make_checkout(tmp_path / "sutra")
