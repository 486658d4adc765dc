"""Before the first build: every Dockerfile that will run, checked against the builder that
will run it, with each problem named by file:line and the way out (exit 2, nothing built).

The legacy builder (``DOCKER_BUILDKIT=0``) cannot parse a here-document (``RUN <<EOF``) and
knows no ``RUN --mount``, ``--network`` or ``--security``. The engine's own BuildKit (v0.8, the
one `docker buildx` drives here) rejects here-documents too and takes ``--mount``, but not
``--network`` or ``--security`` (labs frontends), and a ``# syntax=`` frontend that would add
them must be pulled. A base image (``FROM``) the engine does not have must be pullable: a dry run
asks the registry (read-only), a real run pulls it, as the build would.

For BuildKit the file checked is the one it is given (with the cache mounts of
:mod:`.buildkit`), on the checkout's line numbers, which the rendering keeps.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence

from ..core.errors import BadReference, DockerfileSyntaxError, HttpError, PreflightFailed, SutraError
from ..core.findings import Finding
from ..core.references import parse_reference
from ..tools.engine import Engine
from ..tools.http import Http
from ..tools.registry import RegistryClient
from .dockerfiles.parse import Dockerfile, read_dockerfile

log = logging.getLogger("sutra")

BUILDKIT_ONLY_RUN_FLAGS = ("mount", "network", "security")
LABS_RUN_FLAGS = ("network", "security")  # BuildKit v0.8's built-in frontend has neither
_SYNTAX_DIRECTIVE = re.compile(r"^#\s*syntax\s*=\s*(\S+)", re.IGNORECASE)
PROBE_TIMEOUT = (3.05, 10.0)
WAY_OUT = (
    "pull or load it on this engine, or take the base as a build ARG that stack.toml's "
    "[base_images] replaces with a local one (`inv base-images`)"
)


def check_builds(
    steps: Sequence, engine: Engine, root, made_here: Iterable[str] = (), builder: str = "legacy"
) -> None:
    """Every problem of every planned step, logged one per line; then one error line.
    ``made_here``: images this run makes before it needs them (the local base images, the
    steps' own images), which need not exist yet."""
    problems: list[Finding] = []
    checked_bases: dict[str, str | None] = dict.fromkeys([*made_here, *(s.ref for s in steps)])
    for step in steps:
        path = step.dockerfile
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        try:
            dockerfile = read_dockerfile(getattr(step, "build_file", None) or step.dockerfile, rel)
        except DockerfileSyntaxError as error:
            problems.append(Finding(rel, str(error)))
            continue
        problems += syntax_problems(dockerfile, builder)
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


def syntax_problems(dockerfile: Dockerfile, builder: str = "legacy") -> list[Finding]:
    problems = []
    first = dockerfile.instructions[0].line if dockerfile.instructions else 1
    for number, line in enumerate(dockerfile.text.splitlines()[: first - 1], start=1):
        syntax = _SYNTAX_DIRECTIVE.match(line.strip())
        if syntax and builder == "buildkit":
            problems.append(
                Finding(f"{dockerfile.path}:{number}", f"# syntax={syntax.group(1)}: BuildKit would pull "
                        "that frontend, and nothing can be pulled here; remove the line (the engine's own "
                        "frontend builds the rest)")
            )  # fmt: skip
    for instruction in dockerfile.instructions:
        where = dockerfile.where(instruction)
        if instruction.heredocs:
            problems.append(
                Finding(where, f"{instruction.keyword} <<{instruction.heredocs[0].delimiter} (a heredoc):"
                        " the legacy builder and the engine's BuildKit v0.8 cannot parse it; write the file"
                        " with COPY, or with printf in the RUN, or let `inv dockerfiles` write a v2 one")
            )  # fmt: skip
        if instruction.keyword != "RUN":
            continue
        for flag in BUILDKIT_ONLY_RUN_FLAGS if builder == "legacy" else LABS_RUN_FLAGS:
            if instruction.flag(flag) is None:
                continue
            if builder == "legacy":
                problem = (
                    f"RUN --{flag} needs BuildKit; the legacy builder stops at it: build with "
                    "--builder buildkit, or remove the flag (a cache mount only speeds up a build)"
                )
            else:
                problem = (
                    f"RUN --{flag} needs a labs Dockerfile frontend, which the engine's BuildKit "
                    "v0.8 lacks and which would have to be pulled: remove the flag"
                )
            problems.append(Finding(where, problem))
    return problems


def base_images(dockerfile: Dockerfile, build_args: Mapping[str, str]) -> list[tuple[str, str]]:
    """(where, image) of each FROM that names an image (:meth:`Dockerfile.base_images`)."""
    return [(dockerfile.where(line), image) for line, image in dockerfile.base_images(build_args)]


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
