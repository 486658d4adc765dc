"""The benchmark checkout (scripts/benchmark-checkout: three Python services with a real
checkout's dependency sets and one lock), copied into a test's folder and described by `inv
init` as a user would, for the lock and shared-layer tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import Stack, load_stack
from sutra_deploy.init import init_stack

BENCHMARK_CHECKOUT = PROJECT_DIR / "scripts" / "benchmark-checkout"
SERVICES = ("sutra-api", "sutra-control", "sutra-hybrid")


def benchmark_checkout(folder: Path) -> tuple[Path, Stack]:
    root = folder / "checkout"
    shutil.copytree(BENCHMARK_CHECKOUT, root)
    init_stack(root, write=root / "stack.toml", force=False, dry=False)
    return root, load_stack(root / "stack.toml")
