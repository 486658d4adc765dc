"""A `.dockerignore` at each build context root that `inv dockerfiles` writes for, so the context
is what the images need: without one, a checkout's node_modules, build/ and *.egg-info of
local packages go to the daemon on every build, and into any stage that copies a folder whole.

One file serves every service that shares the context (the checkout root, for services built
from it). A pattern is left out when a Dockerfile built from that context copies a path it
would ignore (a static client that copies its node_modules, say). An existing file is never
changed: what it does not ignore that the checkout has is said, with the way out.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...core.errors import DockerfileSyntaxError
from ...core.stack import Service, Stack
from ...tools import files
from .parse import read_dockerfile

log = logging.getLogger("sutra")

# (pattern, what it keeps out, a folder or file name that shows the checkout has it)
PATTERNS: tuple[tuple[str, str], ...] = (
    ("**/.git", ".git"),
    ("**/node_modules", "node_modules"),
    ("**/__pycache__", "__pycache__"),
    ("**/*.py[co]", "*.pyc"),
    ("**/*.egg-info", "*.egg-info"),
    ("**/.venv", ".venv"),
    ("**/.tox", ".tox"),
    ("**/.pytest_cache", ".pytest_cache"),
    ("**/.mypy_cache", ".mypy_cache"),
    ("build", "build"),
    ("dist", "dist"),
    ("packages/*/build", "build"),
    ("packages/*/dist", "dist"),
)
HEADER = (
    "# Written by `inv dockerfiles`: what no image of this context needs, kept from the daemon.\n"
    "# Edit freely; it is never overwritten.\n"
)


@dataclass(frozen=True)
class Dockerignore:
    path: str  # relative to the root
    text: str | None  # what to write; None: the file exists and stays
    notes: tuple[str, ...]


def plan_dockerignores(stack: Stack, root: Path, services: Sequence[Service]) -> list[Dockerignore]:
    """One per context root of ``services`` (each written Dockerfile's context)."""
    by_context: dict[str, list[Service]] = {}
    for service in stack.services:
        by_context.setdefault(service.context, []).append(service)
    planned = []
    for context in dict.fromkeys(s.context for s in services):
        folder = root / context
        sharing = by_context.get(context, [])
        copied = list(_copied_paths(root, sharing, stack.versions))
        patterns = [p for p, _ in PATTERNS if not any(_ignores(p, c) for c in copied)]
        dropped = [p for p, _ in PATTERNS if p not in patterns]
        rel = (Path(context) / ".dockerignore").as_posix() if context != "." else ".dockerignore"
        notes = [
            f"{rel}: {p} not ignored: a Dockerfile of this context copies what it matches" for p in dropped
        ]
        existing = folder / ".dockerignore"
        if existing.exists() or existing.is_symlink():
            have = existing.read_text(encoding="utf-8", errors="replace").split()
            present = _present_names(folder)
            for pattern, name in PATTERNS:
                if pattern in patterns and pattern not in have and name in present:
                    notes.append(
                        f"{rel} does not ignore {pattern}, which this checkout has: it goes to the daemon "
                        "on every build; add the line"
                    )
            planned.append(Dockerignore(rel, None, tuple(notes)))
            continue
        planned.append(Dockerignore(rel, HEADER + "".join(f"{p}\n" for p in patterns), tuple(notes)))
    return planned


def write_dockerignores(root: Path, planned: Iterable[Dockerignore], *, dry: bool) -> None:
    for item in planned:
        for note in item.notes:
            log.info("[dockerfiles] %s", note)
        if item.text is None:
            continue
        if dry:
            log.info("dry run: would write %s", item.path)
            continue
        files.write_new(files.checkout_target(root / item.path, root), item.text.encode())
        log.info("wrote %s", item.path)


def _copied_paths(root: Path, services: Sequence[Service], versions: Sequence[str]) -> Iterable[str]:
    for service in services:
        for version in dict.fromkeys(service.dockerfile(v) for v in versions):
            path = root / version
            if not path.is_file():
                continue
            try:
                dockerfile = read_dockerfile(path, version)
            except (DockerfileSyntaxError, OSError, UnicodeDecodeError):
                continue
            for instruction in dockerfile.instructions:
                if instruction.keyword in ("COPY", "ADD") and instruction.flag("from") is None:
                    yield from (w.lstrip("./") or "." for w in instruction.words()[:-1])


def _ignores(pattern: str, copied: str) -> bool:
    """Whether ``pattern`` would keep out ``copied`` or something under it."""
    bare = pattern.removeprefix("**/")
    parts = copied.strip("/").split("/")
    if pattern.startswith("**/"):
        return any(fnmatch.fnmatch(part, bare) for part in parts)
    depth = len(pattern.split("/"))
    return len(parts) >= depth and fnmatch.fnmatch("/".join(parts[:depth]), pattern)


def _present_names(folder: Path) -> set[str]:
    """Which of the patterns' names the tree under ``folder`` has (one walk, never into what
    it matched: a node_modules is not walked through)."""
    names = {name for _, name in PATTERNS}
    found: set[str] = set()
    for _, dirnames, filenames in os.walk(folder):
        for directory in list(dirnames):
            matched = {name for name in names if fnmatch.fnmatch(directory, name)}
            if matched:
                found |= matched
                dirnames.remove(directory)
        if "*.pyc" not in found and any(fnmatch.fnmatch(f, "*.py[co]") for f in filenames):
            found.add("*.pyc")
    return found
