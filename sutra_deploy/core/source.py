"""Where the services' sources are: the reference implementation, or a real Sutra checkout."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SourceRootError

PROJECT_DIR = Path(__file__).resolve().parents[2]
REFERENCE_ROOT = PROJECT_DIR / "reference"
REFERENCE_STACK_FILE = PROJECT_DIR / "stack.toml"  # the reference stack: the default stack file
ROOT_ENV = "SUTRA_ROOT"


def resolve_source_root(
    explicit: str | os.PathLike[str] | None = None,
    recorded: Path | None = None,
    *,
    explicit_from: str = "--root",
) -> Path:
    """``--root`` first (or the setting ``explicit_from`` names), then SUTRA_ROOT, then the root
    the stack file records (``recorded``), then the reference implementation in this repo."""
    from_env = os.environ.get(ROOT_ENV)
    chosen = explicit or from_env or recorded or REFERENCE_ROOT
    origin = (
        explicit_from
        if explicit
        else ROOT_ENV
        if from_env
        else "the stack file's root"
        if recorded
        else "default root"
    )
    try:
        root = Path(chosen).expanduser().resolve()
        is_dir = root.is_dir()
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop, or no such ~user
        raise SourceRootError(f"source root {chosen} (from {origin}) cannot be resolved: {error}") from None
    if not is_dir:
        raise SourceRootError(f"source root {root} (from {origin}) is not a directory")
    return root
