"""Writing a file the user owns: all of it or none of it, never through a link it did not
expect.

Two ways to write, one per kind of file:
- `replace_file` edits a file of the checkout (a pyproject.toml, a Dockerfile). A checkout may
  link one file or folder to another inside it (a pyproject.toml shared by two packages): the
  edit goes to the file the link names, atomically, and the link stays a link. A link that
  leads out of the checkout, or to nothing, is refused: editing a file elsewhere was not asked.
- `write_new` makes a file that must not exist yet (a report): a link or file already at the
  name is never followed or overwritten.

And what the tool makes for itself (a rendered compose file, a Dockerfile for BuildKit, a stack
file's Kubernetes component) goes through `write_if_changed`, under `cache_folder` when it is
the tool's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..core.errors import UnsafeWrite

NEW_FILE_MODE = 0o644


def checkout_target(path: Path, root: Path) -> Path:
    """The file an edit of ``path`` really writes, links resolved, which must lie inside
    ``root``. A missing file is fine (it will be made) unless a link names it."""
    target = path.resolve()
    inside = root.resolve()
    if target != inside and inside not in target.parents:
        raise UnsafeWrite(f"{_shown(path, root)} leads to {target}, outside {inside}; not written")
    if path.is_symlink() and not target.exists():
        raise UnsafeWrite(f"{_shown(path, root)} is a link to {target}, which does not exist; not written")
    return target


def replace_file(path: Path, data: bytes, *, root: Path, suffix: str = ".sutra") -> Path:
    """Write the file ``path`` names (see `checkout_target`) beside itself under a name no one
    can guess (mkstemp: O_EXCL, mode 0o600, so a symlink planted in the folder is never
    followed), with the file's own mode (a new file gets 0o644), flushed to disk, then renamed
    over it: a crash leaves the old file or the new one, never half of one. Returns the file
    written, which differs from ``path`` when ``path`` is a link."""
    target = checkout_target(path, root)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else NEW_FILE_MODE
    fd, staged = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(staged, target)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise
    sync_folder(target.parent)
    return target


def cache_folder(*parts: str) -> Path:
    """Where the tool keeps what it makes: `SUTRA_CACHE`, else `$XDG_CACHE_HOME/sutra-deploy`,
    else `~/.cache/sutra-deploy`; ``parts`` name a folder in it."""
    base = (
        os.environ.get("SUTRA_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sutra-deploy"
    )
    return Path(base).joinpath(*parts)


def write_if_changed(path: Path, text: str) -> Path:
    """``text`` at ``path``, its folder made: written (atomically, as `replace_file` writes) only
    when the file is missing or holds something else, so an unchanged file keeps its time."""
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return path
    except (OSError, UnicodeDecodeError):
        pass  # unreadable or not text: written again
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, text.encode(), root=path.parent)
    return path


def write_new(path: Path, data: bytes) -> None:
    """Create ``path`` and write ``data``: O_CREAT | O_EXCL fails on anything already there,
    a link (dangling or not) included, so nothing is followed or overwritten."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, NEW_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def sync_folder(folder: Path) -> None:
    """The rename is durable once the folder's entry is on disk."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the data itself is synced
        pass
    finally:
        os.close(fd)


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# Inside each temporary folder the tool makes: who made it, so that a folder a killed run left
# (a throwaway registry's data, unpacked layers, a base image's root filesystem) is found and
# removed by `inv cleanup` once that process is gone (local/leftovers.py).
OWNER_FILE = ".sutra-owner"
TEMPORARY_PREFIX = "sutra-"


@contextlib.contextmanager
def owned_temporary_folder(name: str, *, under: Path | None = None) -> Iterator[Path]:
    """A new folder ``sutra-<name>-…`` (in the system's temporary folder by default) that
    names this process as its owner, removed with everything in it on leaving the block."""
    with tempfile.TemporaryDirectory(prefix=f"{TEMPORARY_PREFIX}{name}-", dir=under) as folder:
        owner = {"pid": os.getpid(), "host": socket.gethostname()}
        (Path(folder) / OWNER_FILE).write_text(json.dumps(owner))
        yield Path(folder)


def temporary_folder_owner(folder: Path) -> dict | None:
    """What a temporary folder says of its owner ({"pid", "host"}), or None when it says nothing
    readable (not one of ours)."""
    try:
        owner = json.loads((folder / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None
