"""Before the first build: every Dockerfile that will run, checked against the builder that
will run it, with each problem named by file:line and the way out (exit 2, nothing built).

The builds here run on the legacy builder (``DOCKER_BUILDKIT=0``), which cannot parse a
here-document (``RUN <<EOF``) and knows no ``RUN --mount``, ``--network`` or ``--security``;
the engine's own BuildKit (v0.8) rejects here-documents too, and a ``# syntax=`` frontend that
would add them must be pulled. A base image (``FROM``) the engine does not have must be
pullable: a dry run asks the registry (read-only), a real run pulls it, as the build would.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence

from ..core.errors import SutraError
from ..core.findings import Finding
from ..core.references import BadReference, parse_reference
from ..tools.engine import Engine
from ..tools.http import Http, HttpError
from ..tools.registry import RegistryClient
from .dockerfiles.parse import Dockerfile, DockerfileSyntaxError, read_dockerfile

log = logging.getLogger("sutra")

BUILDKIT_ONLY_RUN_FLAGS = ("mount", "network", "security")
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}?")
PROBE_TIMEOUT = (3.05, 10.0)
WAY_OUT = (
    "pull or load it on this engine, or take the base as a build ARG that stack.toml's "
    "[base_images] replaces with a local one (`inv base-images`)"
)


class PreflightFailed(SutraError):
    """The Dockerfiles to build have problems the builder would stop at: exit 2."""


def check_builds(steps: Sequence, engine: Engine, root, made_here: Iterable[str] = ()) -> None:
    """Every problem of every planned step, logged one per line; then one error line.
    ``made_here``: images this run makes before it needs them (the local base images, the
    steps' own images), which need not exist yet."""
    problems: list[Finding] = []
    checked_bases: dict[str, str | None] = dict.fromkeys([*made_here, *(s.ref for s in steps)])
    for step in steps:
        path = step.dockerfile
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        try:
            dockerfile = read_dockerfile(step.dockerfile, rel)
        except DockerfileSyntaxError as error:
            problems.append(Finding(rel, str(error)))
            continue
        problems += syntax_problems(dockerfile)
        for where, image in base_images(dockerfile, step.build_args):
            if image not in checked_bases:
                checked_bases[image] = unavailable(engine, image)
            if checked_bases[image]:
                problems.append(Finding(where, checked_bases[image]))
    if problems:
        for problem in problems:
            log.info("[preflight] %s", problem)
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise PreflightFailed(f"{count} in the Dockerfiles to build, each named above; nothing was built")


def syntax_problems(dockerfile: Dockerfile) -> list[Finding]:
    problems = []
    for instruction in dockerfile.instructions:
        where = dockerfile.where(instruction)
        if instruction.heredocs:
            problems.append(
                Finding(where, f"{instruction.keyword} <<{instruction.heredocs[0].delimiter} (a heredoc):"
                        " the legacy builder and the engine's BuildKit v0.8 cannot parse it; write the file"
                        " with COPY, or with printf in the RUN, or let `inv dockerfiles` write a v2 one")
            )  # fmt: skip
        if instruction.keyword == "RUN":
            for flag in BUILDKIT_ONLY_RUN_FLAGS:
                if instruction.flag(flag) is not None:
                    problems.append(
                        Finding(where, f"RUN --{flag} needs BuildKit; the legacy builder these builds use "
                                "stops at it: remove the flag (a cache mount only speeds up a build)")
                    )  # fmt: skip
    return problems


def base_images(dockerfile: Dockerfile, build_args: Mapping[str, str]) -> list[tuple[str, str]]:
    """(where, image) of each FROM that names an image (not an earlier stage, not scratch),
    with the ARGs before the first FROM filled as the build fills them."""
    defaults: dict[str, str] = {}
    for instruction in dockerfile.instructions:
        if instruction.stage == -1 and instruction.keyword == "ARG":
            name, _, value = instruction.arguments.strip().partition("=")
            defaults[name.strip()] = value.strip().strip('"')
    values = {**defaults, **build_args}
    stages: set[str] = set()
    found = []
    froms = [i for i in dockerfile.instructions if i.keyword == "FROM"]
    for stage, line in zip(dockerfile.stages, froms, strict=False):
        image = _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(2) or ""), stage.base)
        if image.lower() != "scratch" and image.lower() not in stages and image:
            found.append((dockerfile.where(line), image))
        if stage.name:
            stages.add(stage.name.lower())
    return found


def unavailable(engine: Engine, image: str) -> str | None:
    """Why the build could not have ``image``, or None when it can."""
    if engine.image(image) is not None:
        return None
    if not engine.dry:
        if engine.pull(image):
            return None
        return f"FROM {image}: not on this engine and it cannot be pulled here; " + WAY_OUT
    try:
        parsed = parse_reference(image, f"FROM {image}")
    except BadReference as error:
        return f"{error}; " + WAY_OUT
    host = parsed.domain or "registry-1.docker.io"
    repository = parsed.path if parsed.domain or "/" in parsed.path else f"library/{parsed.path}"
    tag = parsed.digest or parsed.tag or "latest"
    http = Http(timeout=PROBE_TIMEOUT)
    try:
        if RegistryClient(host, http).manifest(repository, tag) is not None:
            return None
        return f"FROM {image}: the registry {host} has no such image; " + WAY_OUT
    except (HttpError, SutraError) as error:
        reason = f"not on this engine and its registry cannot be reached ({error})"
        return f"FROM {image}: {reason}; " + WAY_OUT
    finally:
        http.close()
