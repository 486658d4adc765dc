"""The build preflight's reading of Dockerfiles: what the legacy builder stops at (here-
documents, BuildKit-only RUN flags), and which base images a build needs, ARGs filled as the
build fills them. Its engine and registry side runs in tests/integration/test_dockerfiles.py."""

from __future__ import annotations

from sutra_deploy.images.dockerfiles.parse import parse_dockerfile
from sutra_deploy.images.preflight import base_images, syntax_problems

DOCKERFILE = """\
# syntax=docker/dockerfile:1.4
ARG PYTHON_IMAGE=python:3.11-slim
ARG RUNTIME=${PYTHON_IMAGE}
FROM ${PYTHON_IMAGE} AS build
RUN --mount=type=cache,target=/root/.cache/pip pip install fastapi
RUN cat > /app/settings.ini <<EOF
[app]
port = 8000
EOF
FROM build AS test
RUN true
FROM scratch AS empty
FROM registry.invalid/sutra/runtime:1
COPY --from=build /app /app
"""


def test_what_the_legacy_builder_stops_at_is_named_by_line():
    problems = [str(p) for p in syntax_problems(parse_dockerfile(DOCKERFILE, "packages/x/Dockerfile"))]
    assert len(problems) == 2
    assert problems[0].startswith("packages/x/Dockerfile:5: RUN --mount needs BuildKit; the legacy builder")
    assert problems[1].startswith(
        "packages/x/Dockerfile:6: RUN <<EOF (a heredoc): the legacy builder and the engine's BuildKit v0.8"
    )


def test_what_the_engines_buildkit_stops_at_is_named_by_line():
    labs = DOCKERFILE.replace("RUN true", "RUN --network=none true")
    problems = [str(p) for p in syntax_problems(parse_dockerfile(labs, "packages/x/Dockerfile"), "buildkit")]
    assert len(problems) == 3  # a cache mount is fine: BuildKit v0.8 has it
    assert problems[0].startswith(
        "packages/x/Dockerfile:1: # syntax=docker/dockerfile:1.4: BuildKit would pull"
    )
    assert problems[1].startswith("packages/x/Dockerfile:6: RUN <<EOF (a heredoc)")
    assert problems[2].startswith("packages/x/Dockerfile:11: RUN --network needs a labs Dockerfile frontend")


def test_the_base_images_a_build_needs_with_its_args_filled():
    dockerfile = parse_dockerfile(DOCKERFILE, "Dockerfile")
    assert [image for _, image in base_images(dockerfile, {})] == [
        "python:3.11-slim",
        "registry.invalid/sutra/runtime:1",
    ]  # an earlier stage and scratch are no images to pull
    replaced = base_images(dockerfile, {"PYTHON_IMAGE": "sutra-base/python:3.11-slim"})
    assert replaced[0] == ("Dockerfile:4", "sutra-base/python:3.11-slim")  # the FROM line


def test_a_dockerfile_the_builder_takes_has_no_problem():
    plain = "FROM python:3.11-slim\nRUN printf '[app]\\nport = 8000\\n' > /app.ini\nCMD [\"python3\"]\n"
    assert syntax_problems(parse_dockerfile(plain, "Dockerfile")) == []
