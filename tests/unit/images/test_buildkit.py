"""Which builder runs, and the Dockerfile BuildKit is given: the checkout's, with cache mounts
on the RUNs that download, line for line. The builds themselves run in
tests/integration/test_build_and_sizes.py, on both builders."""

from __future__ import annotations

import pytest

from sutra_deploy.core.errors import UnknownBuilder
from sutra_deploy.core.source import REFERENCE_ROOT
from sutra_deploy.images.buildkit import CARGO_CACHE, PIP_CACHE, build_file, choose_builder, for_buildkit
from sutra_deploy.images.dockerfiles.parse import parse_dockerfile
from sutra_deploy.images.preflight import syntax_problems
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.engine import Engine

DOCKERFILE = """\
FROM python:3.11-slim AS deps
RUN python3 -m pip install --no-cache-dir --disable-pip-version-check \\
        --target /opt/site -r /tmp/requirements.txt \\
    && rm -rf /opt/site/bin
RUN apt-get update && apt-get install -y --no-install-recommends curl
FROM rust:1-slim AS storage
RUN cargo build --release
USER 1000
RUN pip install --no-cache-dir requests
FROM scratch
"""


def test_the_runs_that_download_get_cache_mounts_and_nothing_else_changes():
    rendered = for_buildkit(DOCKERFILE)
    lines, original = rendered.splitlines(), DOCKERFILE.splitlines()
    assert len(lines) == len(original)  # line for line: the preflight's file:line stays true
    assert lines[1] == f"RUN {PIP_CACHE} python3 -m pip install --disable-pip-version-check \\"
    assert lines[4] == original[4]  # apt: no download cache of its own here
    assert lines[6] == f"RUN {CARGO_CACHE} cargo build --release"
    assert lines[8] == original[8]  # user 1000: root's cache folders are not its own
    assert [i for i, (a, b) in enumerate(zip(lines, original, strict=True)) if a != b] == [1, 6]
    assert syntax_problems(parse_dockerfile(rendered), "buildkit") == []
    assert for_buildkit(rendered) == rendered  # a RUN with a mount already is left as it is


def test_buildkit_gets_a_rendering_in_the_cache_and_legacy_the_file_itself(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(DOCKERFILE)
    assert build_file("legacy", dockerfile, tmp_path / "cache") == dockerfile
    rendered = build_file("buildkit", dockerfile, tmp_path / "cache")
    assert rendered.parent == tmp_path / "cache" and rendered.read_text() == for_buildkit(DOCKERFILE)
    assert build_file("buildkit", dockerfile, tmp_path / "cache") == rendered  # by content: stable
    plain = tmp_path / "plain" / "Dockerfile"
    plain.parent.mkdir()
    plain.write_text("FROM scratch\nCOPY www /www\n")
    assert build_file("buildkit", plain, tmp_path / "cache") == plain  # nothing to add


@pytest.mark.parametrize("dockerfile", sorted(REFERENCE_ROOT.glob("packages/*/Dockerfile*")), ids=str)
def test_every_reference_dockerfile_renders_into_one_buildkit_takes(dockerfile):
    rendered = for_buildkit(dockerfile.read_text())
    assert syntax_problems(parse_dockerfile(rendered, dockerfile.name), "buildkit") == []
    assert len(rendered.splitlines()) == len(dockerfile.read_text().splitlines())


def test_auto_takes_buildkit_where_the_cli_has_buildx_and_legacy_where_it_has_none(tmp_path, monkeypatch):
    engine = Engine(Commands())
    assert engine.buildx_version()  # scripts/bootstrap.sh installs it
    assert choose_builder("auto", engine) == "buildkit"
    assert choose_builder("legacy", engine) == "legacy"
    # A docker config folder without the plugin: the CLI finds no buildx, as on a machine without it.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    bare = Engine(Commands())
    assert bare.buildx_version() is None
    assert choose_builder("auto", bare) == "legacy"
    with pytest.raises(UnknownBuilder, match="--builder buildkit: this docker CLI has no buildx plugin"):
        choose_builder("buildkit", bare)
    with pytest.raises(
        UnknownBuilder, match="unknown builder 'kaniko'; choose one of auto, buildkit, legacy"
    ):
        choose_builder("kaniko", engine)


def test_the_buildx_answer_is_kept_until_the_plugin_changes(tmp_path, monkeypatch):
    """`docker buildx version` costs a tenth of a second: the answer is kept in the cache
    folder, and asked again once a file the CLI finds plugins by changes."""
    monkeypatch.setenv("SUTRA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    plugin = tmp_path / "docker" / "cli-plugins" / "docker-buildx"
    plugin.parent.mkdir(parents=True)

    def install(version: str) -> None:
        plugin.write_text(
            "#!/bin/sh\n"
            'if [ "$1" = docker-cli-plugin-metadata ]; then\n'
            f'  echo \'{{"SchemaVersion":"0.1.0","Vendor":"test","Version":"{version}"}}\'; exit 0\n'
            "fi\n"
            f'echo "github.com/docker/buildx {version} test"\n'
        )
        plugin.chmod(0o755)

    class Counting(Commands):
        runs = 0

        def run(self, argv, **kwargs):
            Counting.runs += 1
            return super().run(argv, **kwargs)

    install("v9.9.1")
    assert Engine(Counting()).buildx_version() == "v9.9.1" and Counting.runs == 1
    assert Engine(Counting()).buildx_version() == "v9.9.1" and Counting.runs == 1  # kept
    install("v9.9.22")  # another size: another plugin
    assert Engine(Counting()).buildx_version() == "v9.9.22" and Counting.runs == 2
    plugin.unlink()
    assert Engine(Counting()).buildx_version() is None and Counting.runs == 3
    (tmp_path / "cache" / "buildx-version.json").write_text("[1]")  # whatever is there is no answer
    assert Engine(Counting()).buildx_version() is None and Counting.runs == 4
