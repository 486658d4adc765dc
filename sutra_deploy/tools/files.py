"""Writing a file the user owns: all of it or none of it, never through a planted link."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

NEW_FILE_MODE = 0o644


def replace_file(path: Path, data: bytes, *, suffix: str = ".sutra") -> None:
    """Write beside the file under a name no one can guess (mkstemp: O_EXCL, mode 0o600, so a
    symlink planted in the folder is never followed), with the file's own mode (a new file
    gets 0o644), flushed to disk, then renamed over it: a crash leaves the old file or the new
    one, never half of one."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else NEW_FILE_MODE
    fd, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(staged, path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


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
