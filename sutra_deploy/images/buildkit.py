"""Which builder runs the builds, and the Dockerfile each one gets.

Two builders: BuildKit through `docker buildx build` (the docker driver: the engine's own
BuildKit, v0.8 on Debian's 20.10 engine), and the legacy builder (`DOCKER_BUILDKIT=0 docker
build`), which Docker deprecated but every engine still has. `auto` takes BuildKit when the CLI
has buildx, else legacy, and says which.

The Dockerfiles in a checkout stay ones both builders parse: no `RUN --mount`, no heredocs. For
BuildKit the tool renders each into its cache with cache mounts added (pip's download cache on
`pip install`, cargo's registry on `cargo build|fetch`), so downloads survive a cold build of
every image and are shared between images, while the legacy builder builds the file as it is.
The rendering adds flags on the lines they belong to and nothing else, so a line number in the
rendered file is the same line in the checkout's (the preflight names the checkout's file).
Rendered rather than written once because a Dockerfile with `--mount` breaks the legacy builder,
and a checkout's Dockerfiles must build with both.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Literal

from ..core.errors import DockerfileSyntaxError, UnknownBuilder
from ..tools.engine import Engine
from ..tools.files import cache_folder, write_if_changed
from .dockerfiles.parse import parse_dockerfile

log = logging.getLogger("sutra")

BuilderName = Literal["buildkit", "legacy"]
BUILDER_CHOICES = ("auto", "buildkit", "legacy")

PIP_CACHE = "--mount=type=cache,target=/root/.cache/pip,sharing=locked"
CARGO_CACHE = (
    "--mount=type=cache,target=/usr/local/cargo/registry,sharing=locked "
    "--mount=type=cache,target=/root/.cargo/registry,sharing=locked"
)
_PIP_INSTALL = re.compile(r"\bpip3?(\.\d+)?\s+install\b")  # pip, pip3, pip3.11, `-m pip`
_CARGO_DOWNLOADS = re.compile(r"\bcargo\s+(build|fetch|install)\b")
_NO_CACHE_DIR = re.compile(r"[ \t]+--no-cache-dir\b")
_RUN_KEYWORD = re.compile(r"^(\s*RUN\s+)", re.IGNORECASE)
_ROOT_USERS = {"", "root", "0", "0:0", "root:root"}


def check_builder(choice: str) -> None:
    """`--builder` / `sutra.builder` is one of the choices (checked before the daemon is asked)."""
    if choice not in BUILDER_CHOICES:
        raise UnknownBuilder(f"unknown builder {choice!r}; choose one of {', '.join(BUILDER_CHOICES)}")


def choose_builder(choice: str, engine: Engine) -> BuilderName:
    """`auto`, `buildkit` or `legacy` (`--builder`, `sutra.builder`) as the builder that runs."""
    check_builder(choice)
    buildx = None if choice == "legacy" else engine.buildx_version()
    if choice == "buildkit" and buildx is None:
        raise UnknownBuilder(
            "--builder buildkit: this docker CLI has no buildx plugin (scripts/bootstrap.sh installs "
            "Debian's docker-buildx); or use --builder legacy"
        )
    if choice == "legacy" or buildx is None:
        why = "asked for" if choice == "legacy" else "no docker buildx on this machine"
        log.info("[build] builder: legacy (DOCKER_BUILDKIT=0 docker build; %s)", why)
        return "legacy"
    log.info("[build] builder: BuildKit (docker buildx %s, the engine's own BuildKit)", buildx)
    return "buildkit"


def for_buildkit(text: str, name: str = "Dockerfile") -> str:
    """The Dockerfile with BuildKit's cache mounts on the RUNs that download: pip's cache (and
    without `--no-cache-dir`, which would leave it unused: the cache is a mount, never a layer)
    and cargo's registry. Only RUNs of root are given them (the caches are root's folders)."""
    try:
        dockerfile = parse_dockerfile(text, name)
    except DockerfileSyntaxError:
        return text  # the preflight names it; nothing to add to a file the builder cannot read
    lines = text.splitlines(keepends=True)
    instructions = dockerfile.instructions
    user_by_stage: dict[int, str] = {}
    for index, instruction in enumerate(instructions):
        if instruction.keyword == "USER":
            user_by_stage[instruction.stage] = instruction.arguments.strip()
            continue
        if instruction.keyword != "RUN" or instruction.flag("mount") is not None:
            continue
        if user_by_stage.get(instruction.stage, "") not in _ROOT_USERS:
            continue
        script = instruction.script()
        mounts = [
            m
            for m, pattern in ((PIP_CACHE, _PIP_INSTALL), (CARGO_CACHE, _CARGO_DOWNLOADS))
            if pattern.search(script)
        ]
        if not mounts:
            continue
        first = instruction.line - 1
        last = instructions[index + 1].line - 1 if index + 1 < len(instructions) else len(lines)
        flags = " ".join(mounts) + " "
        lines[first] = _RUN_KEYWORD.sub(lambda m, flags=flags: m.group(1) + flags, lines[first], count=1)
        if PIP_CACHE in mounts:
            for number in range(first, last):
                lines[number] = _NO_CACHE_DIR.sub("", lines[number])
    return "".join(lines)


def build_file(builder: BuilderName, dockerfile: Path, cache: Path | None = None) -> Path:
    """The Dockerfile the builder is given: the checkout's for legacy; for BuildKit its rendering,
    in the tool's cache and named by its content (so a dry run's command line works as printed),
    or the checkout's file itself when the rendering changes nothing."""
    if builder == "legacy":
        return dockerfile
    text = dockerfile.read_text(encoding="utf-8")
    rendered = for_buildkit(text, dockerfile.name)
    if rendered == text:
        return dockerfile
    digest = hashlib.sha256(rendered.encode()).hexdigest()[:12]
    name = f"{dockerfile.parent.name}-{dockerfile.name}.{digest}.buildkit"
    return write_if_changed((cache or cache_folder("dockerfiles")) / name, rendered)
