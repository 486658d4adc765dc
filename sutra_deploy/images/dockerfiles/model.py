"""What the parts of `inv dockerfiles` share: the settings, the errors, the generated image's
layout, and the records passed along: :class:`Inputs` and :class:`ImagePlanning` (one image
while its parts are worked out), :class:`ImageSpec` (from planning an image to writing its
Dockerfile) and :class:`Generated` (from writing to reporting)."""

from __future__ import annotations

import difflib
import posixpath
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from ...core.errors import DockerfileRefused, SutraError
from ...core.settings import DEFAULTS
from ...core.stack import HealthCheck, Service, Stack
from ...deps.model import Finding
from ...deps.monorepo import Monorepo
from .package import PackageFacts
from .preplan import PrePlan

# The generated image's layout: the installed dependencies, the service's code and data (the
# working directory), and the monorepo packages the deps stage installs from their folders.
SITE = "/opt/site"
APP = "/opt/app"
LOCAL = "/opt/local"
SHARED = "/opt/shared"  # layers of dependencies several images share, one folder each
RUNTIME_USER = "65532:65532"
# What the generated image sets itself (PYTHONPATH to its own folders).
OWN_ENV = {"PYTHONPATH": "", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}

# Programs that a pre-plan CMD runs as console scripts and that run as `python3 -m NAME` too
# (extend with sutra.dockerfiles.script_modules).
SCRIPT_MODULES = {
    "uvicorn": "uvicorn",
    "gunicorn": "gunicorn",
    "hypercorn": "hypercorn",
    "celery": "celery",
    "flask": "flask",
}


@dataclass(frozen=True)
class DockerfileSettings:
    build_packages: Mapping[str, tuple[str, ...]]  # service (or "*") -> Debian packages
    script_modules: Mapping[str, str]
    build_base: str
    runtime_base: str
    lock: str = ""

    @classmethod
    def from_settings(cls, raw: Mapping[str, Any] | None) -> DockerfileSettings:
        defaults = {**DEFAULTS["sutra"]["dockerfiles"], "build_packages": []}  # see core/settings.py
        merged = {**defaults, **dict(raw or {})}
        unknown = sorted(set(merged) - set(defaults))
        if unknown:
            raise SutraError(
                f"setting sutra.dockerfiles.{unknown[0]}: unknown (known: {', '.join(sorted(defaults))})"
            )
        packages = merged["build_packages"] or []
        if isinstance(packages, str):
            packages = packages.replace(",", " ").split()
        if isinstance(packages, (list, tuple)):
            table = {"*": packages}
        elif isinstance(packages, Mapping):
            table = dict(packages)
        else:
            raise SutraError(
                "setting sutra.dockerfiles.build_packages: expected a list of Debian packages "
                f"or a table of service = [packages], got {packages!r}"
            )
        checked: dict[str, tuple[str, ...]] = {}
        for service, names in table.items():
            if isinstance(names, str):
                names = names.replace(",", " ").split()
            if not isinstance(names, (list, tuple)) or not all(_debian_name(n) for n in names):
                raise SutraError(
                    f"setting sutra.dockerfiles.build_packages: {names!r} is not a list of Debian "
                    "package names"
                )
            checked[str(service)] = tuple(names)
        modules = merged["script_modules"] or {}
        if not isinstance(modules, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in modules.items()
        ):
            raise SutraError("setting sutra.dockerfiles.script_modules: expected a table of script = module")
        for key in ("build_base", "runtime_base"):
            if not isinstance(merged[key], str) or not merged[key]:
                raise SutraError(f"setting sutra.dockerfiles.{key}: expected a [base_images] key")
        lock = merged["lock"] or ""
        if not isinstance(lock, str):
            raise SutraError(f"setting sutra.dockerfiles.lock: expected a file's path, got {lock!r}")
        return cls(checked, {**SCRIPT_MODULES, **modules}, merged["build_base"], merged["runtime_base"], lock)

    def packages_for(self, service: str) -> tuple[str, ...]:
        return tuple(
            dict.fromkeys((*self.build_packages.get("*", ()), *self.build_packages.get(service, ())))
        )


def _debian_name(name: object) -> bool:
    """A Debian package name (policy 5.6.1), optionally with =version: nothing a shell reads."""
    if not isinstance(name, str) or not name:
        return False
    package, _, version = name.partition("=")
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789+-.")
    return (
        len(package) >= 2
        and package[0].isalnum()
        and set(package) <= allowed
        and set(version) <= allowed | set(":~ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    )


@dataclass(frozen=True)
class LockedPin:
    name: str  # canonical
    version: str
    text: str  # the constraint line: name==version, with its marker
    line: int


@dataclass(frozen=True)
class Lock:
    path: str  # relative to the source root
    pins: tuple[LockedPin, ...]  # sorted by name
    hashed: bool  # the file carried --hash options (not carried into the Dockerfiles)

    def pin(self, name: str) -> LockedPin | None:
        key = canonicalize_name(name)
        return next((p for p in self.pins if p.name == key), None)

    @property
    def constraints(self) -> tuple[str, ...]:
        return tuple(p.text for p in self.pins)


@dataclass(frozen=True)
class SharedLayer:
    key: str  # a digest of what makes it: the same in every Dockerfile that uses it
    requirements: tuple[str, ...]  # what it installs, the lock deciding versions
    services: tuple[str, ...]  # the images that carry it
    parents: tuple[SharedLayer, ...]  # the shared layers under it, most shared first
    constraints: tuple[str, ...]  # the lock's pins

    @property
    def folder(self) -> str:
        return f"{SHARED}/{self.key}"

    @property
    def stage(self) -> str:
        return f"shared-{self.key}"


@dataclass(frozen=True)
class ImageSpec:
    """One service's v2 Dockerfile as worked out (:mod:`.image`), before it is written as
    text (:mod:`.render`)."""

    service: Service
    version: str
    dockerfile: str  # relative to the source root
    context: str  # relative to the source root, as stack.toml gives it
    declared_in: str
    old: str | None  # the pre-plan Dockerfile it was read from
    bases: tuple[tuple[str, str], ...]  # (build ARG, official default): build, runtime
    description: str | None
    build_packages: tuple[str, ...]
    requirements: tuple[str, ...]  # lines of the requirements file pip installs
    constraints: tuple[tuple[str, str], ...]  # (constraint, why)
    lock: Lock | None  # its pins are constraints too
    local_copies: tuple[tuple[str, str], ...]  # (source in the context, folder in the deps stage)
    code_copies: tuple[tuple[str, str], ...]
    app_data: tuple[tuple[str, str], ...]  # package data into /opt/app, from the context
    other_data: tuple[tuple[str, str], ...]  # package data the old image kept elsewhere
    env: tuple[tuple[str, str], ...]
    smoke: tuple[str, ...]  # modules the runtime image imports at build time
    port: int
    health: HealthCheck
    health_options: tuple[tuple[str, str], ...]
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    entrypoint_source: str
    notes: tuple[str, ...] = field(default=())
    # Layers of dependencies this image shares with other services' images, most shared first
    # (:mod:`.layers`); its own deps stage installs the rest.
    shared: tuple[SharedLayer, ...] = field(default=())

    def summary(self) -> dict:
        return {
            "context": self.context,
            "from": [p for p in (self.declared_in, self.old) if p],
            "requirements": list(self.requirements),
            "constraints": [c for c, _ in self.constraints],
            "lock": self.lock.path if self.lock else None,
            "shared_layers": [
                {
                    "folder": layer.folder,
                    "requirements": list(layer.requirements),
                    "services": list(layer.services),
                }
                for layer in self.shared
            ],
            "local_packages": [s for s, _ in self.local_copies],
            "package_data": [s for s, _ in (*self.app_data, *self.other_data)],
            "build_packages": list(self.build_packages),
            "env": dict(self.env),
            "port": self.port,
            "entrypoint": {"source": self.entrypoint_source, "argv": [*self.entrypoint, *self.cmd]},
        }


@dataclass(frozen=True)
class Inputs:
    """What one service's plan is made from."""

    stack: Stack
    service: Service
    root: Path
    monorepo: Monorepo
    facts: PackageFacts
    preplan: PrePlan | None
    findings: Sequence[Finding]
    services_by_package: Mapping[str, str]  # canonical distribution -> service
    extras: Sequence[str]
    settings: DockerfileSettings
    lock: Lock | None = None

    @property
    def reads_known(self) -> bool:
        """The service's `reads` describe this checkout's code: the stack file records this root
        (`inv init` wrote it from the code). Another stack's `reads` (the reference stack's,
        given another checkout with --root) say nothing about this code."""
        recorded = self.stack.source_root
        return bool(self.service.reads) and recorded is not None and recorded.resolve() == self.root.resolve()


class ImagePlanning:
    """One service's image while its parts are worked out: the inputs, the build context, and
    the notes each part adds (reported in the order they were added)."""

    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self.service = inputs.service
        self.facts = inputs.facts
        self.preplan = inputs.preplan
        self.context = (inputs.root / inputs.service.context).resolve()
        self.notes: list[str] = []

    def refuse(self, problem: str) -> DockerfileRefused:
        return DockerfileRefused(f"{self.service.name}: {problem}")

    def hint_root(self) -> str:
        return shlex.quote(str(self.inputs.root))

    def in_context(self, path: Path) -> str:
        return posixpath.normpath(path.resolve().relative_to(self.context).as_posix())


def within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or inside it, symlinks resolved."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


class Status(StrEnum):
    """A generated Dockerfile against the file in the checkout (the text --json shows)."""

    NEW = "new"  # no file yet
    CHANGED = "changed"  # the file differs (--force)
    UNCHANGED = "unchanged"  # the file is what the generator writes
    EXISTS = "exists"  # a file is there and --force was not given: nothing generated

    @property
    def to_write(self) -> bool:
        return self in (Status.NEW, Status.CHANGED)


@dataclass(frozen=True)
class Generated:
    """One service's v2 Dockerfile: what was generated and how it compares with the file."""

    service: str
    path: str  # relative to the source root
    status: Status
    text: str | None = None  # None when the file exists and --force was not given
    existing: str | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    written: bool = False

    @property
    def diff(self) -> str:
        if self.text is None or self.existing is None or self.text == self.existing:
            return ""
        return "".join(
            difflib.unified_diff(
                self.existing.splitlines(keepends=True),
                self.text.splitlines(keepends=True),
                f"a/{self.path}",
                f"b/{self.path}",
            )
        )

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "service": self.service,
            "path": self.path,
            "status": self.status,
            "written": self.written,
        }
        if self.text is not None:
            out.update(self.summary)
            out["notes"] = list(self.notes)
            out["dockerfile"] = self.text
            out["diff"] = self.diff or None
        return out
