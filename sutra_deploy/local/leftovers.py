"""What a run killed before its teardown left behind, found by labels, and removed on request.

verify runs its own compose project (`sutra-verify-<hex>`) and pushes under tags of its own
(`…:verify-<hex>`); both go when it ends, also on Ctrl-C, SIGTERM or SIGHUP (edge.py). Only a
SIGKILL, a crash of the machine or of Docker leaves them. Each of verify's containers is
labelled with the process and host that own it, so a project is a leftover only when its owner
is gone: `inv cleanup` never takes a verify that is still running, here or on another machine
sharing the engine.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from tabulate import tabulate

from ..tools.engine import Engine, ProjectObject

VERIFY_PROJECT_PREFIX = "sutra-verify-"
OWNER_PID_LABEL = "ai.sutra.owner-pid"
OWNER_HOST_LABEL = "ai.sutra.owner-host"
VERIFY_TAG = re.compile(r":verify-[0-9a-f]{8}$")


def owner_labels() -> dict[str, str]:
    """The labels that name this process as the owner of what it starts."""
    return {OWNER_PID_LABEL: str(os.getpid()), OWNER_HOST_LABEL: socket.gethostname()}


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
        return "; ".join(parts)

    def table(self) -> str:
        if not self.found:
            return "nothing left behind by an earlier run"
        rows = [[f.kind, f.name, f.project or "-", f.why] for f in self.found]
        return tabulate(rows, headers=["Kind", "Name", "Project", "Why it is a leftover"])

    def to_json(self) -> str:
        return json.dumps({"leftovers": [asdict(f) for f in self.found]}, indent=2)


def find_leftovers(engine: Engine) -> Leftovers:
    """verify's projects whose owner is gone, and verify's tags no running verify owns."""
    objects = [o for o in engine.compose_objects() if o.project.startswith(VERIFY_PROJECT_PREFIX)]
    owners: dict[str, str | None] = {}  # project -> why it is a leftover, None while its owner lives
    for obj in objects:
        if obj.kind == "container":
            why = _owner_gone(obj)
            owners[obj.project] = why if owners.get(obj.project, "") is not None else None
    found, removable = [], []
    for obj in objects:
        why = owners.get(obj.project, "its project has no container left")
        if why is None:
            continue
        found.append(Leftover(obj.kind, obj.name, obj.project, why))
        removable.append(obj)
    live = any(why is None for why in owners.values())
    tags = [] if live else [t for t in engine.image_tags() if VERIFY_TAG.search(t)]
    found += [Leftover("image tag", tag, "", "verify's own tag, pushed and never untagged") for tag in tags]
    return Leftovers(tuple(found), tuple(removable), tuple(tags))


def remove_leftovers(engine: Engine, leftovers: Leftovers) -> None:
    """Containers first (a network or volume in use cannot go), then networks, volumes, tags."""
    for kind in ("container", "network", "volume"):
        for obj in (o for o in leftovers.objects if o.kind == kind):
            engine.remove(obj)
    for tag in leftovers.tags:
        engine.remove_image(tag)


def _owner_gone(container: ProjectObject) -> str | None:
    """Why a verify container has no owner any more; None while its owner runs."""
    pid, host = container.labels.get(OWNER_PID_LABEL), container.labels.get(OWNER_HOST_LABEL)
    if not pid or not host:
        return "no owner label (made before they were added)"
    if host != socket.gethostname():
        return None  # another machine's verify: it cannot be told from here, so it stays
    if not _alive(int(pid)):
        return f"its verify (pid {pid}) is gone"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__: Sequence[str] = ["Leftovers", "find_leftovers", "owner_labels", "remove_leftovers"]
