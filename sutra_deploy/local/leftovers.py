"""What a run killed before its teardown left behind, found by labels, and removed on request.

Whatever the tool or its tests start for a while only carries owner labels: the process and
host that own it, and what that owner is. verify runs its own compose project (`sutra-verify-…`)
and pushes under tags of its own (`…:verify-<hex>`); a test run's local stack
(`sutra.owner_pid`, set by the integration fixtures) and a test cluster's pods, networks and
volumes are labelled the same way. All of it goes when its owner ends, also on Ctrl-C, SIGTERM or
SIGHUP (edge.py, tests/conftest.py). Only a SIGKILL, a crash of the machine or of Docker leaves
it. A group (a compose project, or the objects sharing an owner-group label) is a leftover only
when its owner is gone: `inv cleanup` never takes what a live process owns, here or on another
machine sharing the engine, and never a stack without owner labels (the user's own).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from ..core import yaml_text
from ..tools.engine import Engine, ProjectObject
from ..tools.files import TEMPORARY_PREFIX, cache_folder, temporary_folder_owner, write_if_changed

VERIFY_PROJECT_PREFIX = "sutra-verify-"
OWNER_PID_LABEL = "ai.sutra.owner-pid"
OWNER_HOST_LABEL = "ai.sutra.owner-host"
OWNER_ROLE_LABEL = "ai.sutra.owner-role"  # what owns it, for the reason `inv cleanup` shows
OWNER_GROUP_LABEL = "ai.sutra.owner-group"  # objects that go together outside a compose project
VERIFY_TAG = re.compile(r":verify-[0-9a-f]{8}$")
REMOVAL_ORDER = ("container", "network", "volume")  # a network or volume in use cannot go


def owner_labels(role: str, *, pid: int | None = None, group: str | None = None) -> dict[str, str]:
    """The labels that name ``pid`` (this process by default) as the owner of what it starts."""
    labels = {
        OWNER_PID_LABEL: str(pid or os.getpid()),
        OWNER_HOST_LABEL: socket.gethostname(),
        OWNER_ROLE_LABEL: role,
    }
    if group:
        labels[OWNER_GROUP_LABEL] = group
    return labels


def owned_compose(labels: Mapping[str, str], services: Mapping[str, Mapping[str, Any]]) -> dict:
    """A compose document laying ``labels`` on each of ``services`` (with what each already
    sets) and on the project's network, which compose makes before any container: a cleanup
    in that moment sees the live owner, not a project with no container left."""
    return {
        "services": {name: {**settings, "labels": dict(labels)} for name, settings in services.items()},
        "networks": {"default": {"labels": dict(labels)}},
    }


def owner_override(service_names: Sequence[str], project: str, pid: int) -> Path:
    """A compose file that labels a test run's local stack as owned by process ``pid``: `inv
    cleanup` removes it once that process is gone."""
    document = owned_compose(owner_labels("test run", pid=pid), {name: {} for name in service_names})
    return write_if_changed(cache_folder("compose") / f"{project}-owner.yml", yaml_text.dump(document))


@dataclass(frozen=True)
class Leftover:
    kind: str  # container, network, volume, image tag
    name: str
    project: str  # the compose project, or "" for a tag
    why: str


@dataclass(frozen=True)
class Leftovers:
    found: tuple[Leftover, ...]
    objects: tuple[ProjectObject, ...]  # the compose objects among them, to remove
    tags: tuple[str, ...]
    folders: tuple[Path, ...] = ()

    def summary(self) -> str:
        projects = sorted({f.project for f in self.found if f.project})
        parts = (
            [f"{len(self.objects)} containers, networks and volumes of {', '.join(projects)}"]
            if projects
            else []
        )
        if self.tags:
            more = ", …" if len(self.tags) > 3 else ""
            parts.append(f"{len(self.tags)} image tags ({', '.join(self.tags[:3])}{more})")
        if self.folders:
            shown = ", ".join(map(str, self.folders[:2])) + (", …" if len(self.folders) > 2 else "")
            parts.append(f"{len(self.folders)} temporary folders ({shown})")
        return "; ".join(parts)

    def table(self) -> str:
        if not self.found:
            return "nothing left behind by an earlier run"
        rows = [[f.kind, f.name, f.project or "-", f.why] for f in self.found]
        return tabulate(rows, headers=["Kind", "Name", "Project", "Why it is a leftover"])

    def to_json(self) -> str:
        return json.dumps({"leftovers": [asdict(f) for f in self.found]}, indent=2)


def find_leftovers(engine: Engine) -> Leftovers:
    """Every group with owner labels whose owner is gone, and verify's tags no running verify
    owns. Containers, networks and volumes of a compose project go with it."""
    listed = {(o.kind, o.id): o for o in engine.compose_objects() + engine.labelled_objects(OWNER_PID_LABEL)}
    groups: dict[str, list[ProjectObject]] = {}
    for obj in listed.values():
        groups.setdefault(obj.project or obj.labels.get(OWNER_GROUP_LABEL) or obj.name, []).append(obj)
    found: list[Leftover] = []
    removable: list[ProjectObject] = []
    verify_running = False
    for group, members in sorted(groups.items()):
        throwaway = group.startswith(VERIFY_PROJECT_PREFIX) or any(
            OWNER_PID_LABEL in o.labels for o in members
        )
        if not throwaway:
            continue  # the user's own stack, or another tool's project
        why = _why_left(members)
        if why is None:
            verify_running |= group.startswith(VERIFY_PROJECT_PREFIX)
            continue
        for obj in sorted(members, key=lambda o: (REMOVAL_ORDER.index(o.kind), o.name)):
            found.append(Leftover(obj.kind, obj.name, group, why))
            removable.append(obj)
    tags = [] if verify_running else [t for t in engine.image_tags() if VERIFY_TAG.search(t)]
    found += [Leftover("image tag", tag, "", "verify's own tag, pushed and never untagged") for tag in tags]
    folders = []
    for folder, why in _left_folders(Path(tempfile.gettempdir())):
        found.append(Leftover("folder", str(folder), "", why))
        folders.append(folder)
    return Leftovers(tuple(found), tuple(removable), tuple(tags), tuple(folders))


def _left_folders(under: Path) -> list[tuple[Path, str]]:
    """The tool's temporary folders (a throwaway registry's data, unpacked layers, a base
    image's root filesystem) whose owner is gone, with why."""
    left = []
    with contextlib.suppress(OSError):
        for folder in sorted(under.glob(f"{TEMPORARY_PREFIX}*")):
            owner = temporary_folder_owner(folder) if folder.is_dir() and not folder.is_symlink() else None
            if owner is None:
                continue
            why = _gone(str(owner.get("pid", "")), str(owner.get("host", "")), "owner")
            if why is not None:
                left.append((folder, why))
    return left


def remove_leftovers(engine: Engine, leftovers: Leftovers) -> None:
    """Containers first (a network or volume in use cannot go), then networks, volumes, tags."""
    for kind in REMOVAL_ORDER:
        for obj in (o for o in leftovers.objects if o.kind == kind):
            engine.remove(obj)
    for tag in leftovers.tags:
        engine.remove_image(tag)
    for folder in leftovers.folders:  # a command, so that --dry prints it
        engine.commands.run(["rm", "-rf", "--", str(folder)], mutates=True)


def _why_left(members: Sequence[ProjectObject]) -> str | None:
    """Why a throwaway group is a leftover; None while any of its owners runs."""
    carriers = [o for o in members if OWNER_PID_LABEL in o.labels]
    if not carriers:  # a verify project from before the labels, or one whose containers went
        has_container = any(o.kind == "container" for o in members)
        return (
            "no owner label (made before they were added)"
            if has_container
            else "its project has no container left"
        )
    whys = [_owner_gone(o.labels) for o in carriers]
    return None if None in whys else whys[0]


def _owner_gone(labels: Mapping[str, str]) -> str | None:
    """Why something labelled with an owner has none any more; None while its owner runs."""
    return _gone(
        labels.get(OWNER_PID_LABEL, ""), labels.get(OWNER_HOST_LABEL), labels.get(OWNER_ROLE_LABEL, "verify")
    )


def _gone(pid: str, host: str | None, role: str) -> str | None:
    """Why the owner ``pid`` on ``host`` is gone; None while it runs (or cannot be told)."""
    if not pid.isdigit() or not host:
        return f"its owner label reads {pid!r}, no process"
    if host != socket.gethostname():
        return None  # another machine's process: it cannot be told from here, so it stays
    if not _alive(int(pid)):
        return f"its {role} (pid {pid}) is gone"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__: Sequence[str] = ["Leftovers", "find_leftovers", "owner_labels", "owner_override", "remove_leftovers"]
