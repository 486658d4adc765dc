"""A lock file the generated Dockerfiles install from: every package pinned to one version
(``name==version``, as ``pip-compile``, ``uv pip compile`` or ``pip freeze`` write it), given
with ``inv dockerfiles --lock FILE`` or ``sutra.dockerfiles.lock``. Its pins become each deps
stage's constraints, so every build installs the same versions, transitive dependencies too;
and because they are the same for every service, the dependencies services share can go into
layers they share (:mod:`.layers`).

Read before anything is written: a line that is not an exact pin, a file outside the checkout,
or a declared range the lock's version falls outside of is one line naming file:line."""

from __future__ import annotations

from pathlib import Path

from packaging.utils import canonicalize_name

from ...core.errors import LockError
from .model import Lock, LockedPin, within
from .pins import requirement_lines


def read_lock(root: Path, given: str) -> Lock:
    path = (root / given).expanduser() if not Path(given).is_absolute() else Path(given)
    if not path.is_file():
        raise LockError(f"lock file {given}: not found under {root} (--lock or sutra.dockerfiles.lock)")
    if not within(path, root):
        raise LockError(f"lock file {given}: outside the checkout {root}; keep the lock in the checkout")
    rel = path.resolve().relative_to(root.resolve()).as_posix()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise LockError(f"lock file {rel}: cannot be read ({error})") from None
    pins: dict[str, LockedPin] = {}
    for entry in requirement_lines(text):
        where = f"{rel}:{entry.line}"
        if entry.requirement is None:
            raise LockError(f"{where}: a lock pins every package itself; an include (-r/-c) is not one")
        requirement = entry.requirement
        clauses = list(requirement.specifier)
        exact = len(clauses) == 1 and clauses[0].operator == "==" and "*" not in clauses[0].version
        if not exact or requirement.url:
            raise LockError(
                f"{where}: {requirement} is not an exact pin (name==version); regenerate the lock "
                "with pip-compile or `uv pip compile`"
            )
        key = canonicalize_name(requirement.name)
        if key in pins:
            raise LockError(f"{where}: {requirement.name} is pinned twice (also line {pins[key].line})")
        version = clauses[0].version
        pin = f"{key}=={version}" + (f"; {requirement.marker}" if requirement.marker else "")
        pins[key] = LockedPin(key, version, pin, entry.line)
    if not pins:
        raise LockError(f"lock file {rel}: pins nothing")
    hashed = "--hash" in text
    return Lock(rel, tuple(sorted(pins.values(), key=lambda p: p.name)), hashed)
