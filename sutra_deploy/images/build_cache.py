"""Skipping a build whose inputs have not changed since it was last built here.

A `docker build` that the builder answers wholly from its cache still sends the context and
walks every step: about a tenth of a second per image, more than the check below. The
fingerprint covers everything the builder's cache keys on: the Dockerfile, the build arguments,
the image ID every `FROM` resolves to, and every file of the context (only what
`.dockerignore` leaves out by a plain name is skipped, so a change the builder would see is
never missed). It is recorded, with the image ID the build produced, in a cache file of this
machine's; the build is skipped only while the image's tag still points at that same ID.
`--no-cache` and `--dry` never skip.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from ..core.errors import DockerfileSyntaxError
from ..tools.files import cache_folder
from .dockerfiles.parse import read_dockerfile

log = logging.getLogger("sutra")


def cache_file() -> Path:
    return cache_folder() / "builds.json"


def context_digest(context: Path, dockerfile: Path) -> str:
    """Every file of the build context, by relative path, mode and content."""
    skipped = _plain_ignores(context / ".dockerignore")
    digest = hashlib.sha256()
    for folder, subfolders, files in os.walk(context):
        relative_folder = Path(folder).relative_to(context)
        subfolders[:] = sorted(d for d in subfolders if not _skipped(relative_folder / d, skipped))
        for name in sorted(files):
            relative = relative_folder / name
            if _skipped(relative, skipped):
                continue
            path = Path(folder) / name
            stat = path.lstat()
            digest.update(f"{relative.as_posix()}\0{stat.st_mode:o}\0".encode())
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
            else:
                with path.open("rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
    digest.update(b"\0dockerfile\0" + dockerfile.read_bytes())
    ignore = context / ".dockerignore"
    digest.update(b"\0dockerignore\0" + (ignore.read_bytes() if ignore.is_file() else b""))
    return digest.hexdigest()


def fingerprint(
    context: Path,
    dockerfile: Path,
    build_args: Mapping[str, str],
    image_id: Callable[[str], str | None],
    builder: str = "legacy",
) -> str | None:
    """The build's inputs as one digest; None when a base image is not there (then build).
    The builder is one of them: `--builder legacy` after a BuildKit build builds again."""
    try:
        parsed = read_dockerfile(dockerfile, dockerfile.name)
    except (OSError, UnicodeDecodeError, DockerfileSyntaxError):
        return None  # the build itself says what is wrong with it
    bases = []
    for _, image in parsed.base_images(build_args):
        found = image_id(image)
        if found is None:
            return None
        bases.append(f"{image}={found}")
    digest = hashlib.sha256()
    inputs = {"args": dict(sorted(build_args.items())), "bases": bases, "builder": builder}
    digest.update(json.dumps(inputs).encode())
    digest.update(context_digest(context, dockerfile).encode())
    return digest.hexdigest()


class BuildCache:
    """ref -> (fingerprint, image ID) of the last build made here, in one JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_file()
        self._lock = threading.Lock()
        try:
            self._entries: dict[str, dict[str, str]] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self._entries = {}

    def unchanged(self, ref: str, fingerprint: str | None, image_id: str | None) -> bool:
        entry = self._entries.get(ref) or {}
        return bool(fingerprint and image_id) and entry == {"inputs": fingerprint, "image": image_id}

    def record(self, ref: str, fingerprint: str | None, image_id: str | None) -> None:
        if not (fingerprint and image_id):
            return
        with self._lock:
            self._entries[ref] = {"inputs": fingerprint, "image": image_id}
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                temporary = self.path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
                temporary.write_text(json.dumps(self._entries, indent=1, sort_keys=True))
                os.replace(temporary, self.path)
            except OSError as error:  # a cache that cannot be written only costs time
                log.debug("build cache not written: %s", error)


def _plain_ignores(dockerignore: Path) -> tuple[set[str], set[str]]:
    """Names `.dockerignore` leaves out plainly: at the top (`name`) or anywhere (`**/name`).

    Anything with a wildcard or an exception (`!`) is not interpreted: those files are hashed
    like the rest, which can only cause a build the builder would have answered from cache.
    """
    try:
        lines = dockerignore.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return set(), set()
    patterns = [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]
    if any(p.startswith("!") for p in patterns):
        return set(), set()
    top, anywhere = set(), set()
    for pattern in patterns:
        name = pattern.removeprefix("**/")
        if not name or any(c in name for c in "*?[]\\") or "/" in name:
            continue
        (anywhere if pattern.startswith("**/") else top).add(name)
    return top, anywhere


def _skipped(relative: Path, ignores: tuple[set[str], set[str]]) -> bool:
    top, anywhere = ignores
    return (len(relative.parts) == 1 and relative.name in top) or relative.name in anywhere
