"""Dockerfiles read as Docker reads them."""

import pytest

from sutra_deploy.core.errors import DockerfileSyntaxError
from sutra_deploy.images.dockerfiles.parse import parse_dockerfile


def keywords(text: str) -> list[str]:
    return [i.keyword for i in parse_dockerfile(text).instructions]


def test_continuations_join_lines_and_skip_comment_and_blank_lines_inside():
    dockerfile = parse_dockerfile(
        "FROM python:3.11-slim\n"
        "RUN apt-get update \\\n"
        "    # a comment inside the instruction\n"
        "\n"
        "    && apt-get install -y gcc\n"
        "run echo lower-case keyword\n"
    )
    run = dockerfile.instructions[1]
    assert run.keyword == "RUN" and run.line == 2
    assert " ".join(run.arguments.split()) == "apt-get update && apt-get install -y gcc"
    assert dockerfile.instructions[2].keyword == "RUN"
    assert dockerfile.instructions[2].line == 6


def test_the_escape_directive_changes_the_continuation_character():
    dockerfile = parse_dockerfile("# escape=`\nFROM windows\nRUN dir C:\\ `\n    && echo done\n")
    assert dockerfile.escape == "`"
    assert " ".join(dockerfile.instructions[1].arguments.split()) == "dir C:\\ && echo done"


def test_exec_form_against_shell_form():
    dockerfile = parse_dockerfile(
        'FROM x\nCMD ["uvicorn", "app:app"]\nENTRYPOINT uvicorn app:app\nCMD ["broken", json\n'
    )
    cmd, entrypoint, broken = dockerfile.instructions[1:]
    assert cmd.exec_form == ["uvicorn", "app:app"]
    assert entrypoint.exec_form is None
    assert broken.exec_form is None  # Docker falls back to the shell form too


def test_run_heredoc_is_the_script_and_the_next_instruction_follows_it():
    dockerfile = parse_dockerfile(
        'FROM x\nRUN <<EOF\npip install fastapi\nFROM not-an-instruction\nEOF\nCMD ["a"]\n'
    )
    run = dockerfile.instructions[1]
    assert [h.delimiter for h in run.heredocs] == ["EOF"]
    assert run.heredocs[0].body == "pip install fastapi\nFROM not-an-instruction\n"
    assert run.heredocs[0].line == 3
    assert keywords(dockerfile_text := 'FROM x\nRUN <<EOF\nFROM y\nEOF\nCMD ["a"]\n') == [
        "FROM",
        "RUN",
        "CMD",
    ]
    assert len(parse_dockerfile(dockerfile_text).stages) == 1


def test_heredoc_in_a_shell_command_with_quoted_and_dash_delimiters():
    dockerfile = parse_dockerfile(
        "FROM x\n"
        "RUN cat > requirements.txt <<'REQS'\n"
        "numpy<2.0\n"
        "REQS\n"
        "COPY <<-EOT /etc/motd\n"
        "\thello\n"
        "\tEOT\n"
    )
    run, copy = dockerfile.instructions[1:]
    assert run.arguments == "cat > requirements.txt <<'REQS'"
    assert run.heredocs[0].body == "numpy<2.0\n" and not run.heredocs[0].expands
    assert run.script() == "cat > requirements.txt <<'REQS'\nnumpy<2.0\nREQS"
    assert copy.heredocs[0].strip_tabs and copy.heredocs[0].body == "hello\n"


def test_two_heredocs_on_one_line_are_read_in_order():
    dockerfile = parse_dockerfile("FROM x\nRUN cat <<A > a && cat <<B > b\none\nA\ntwo\nB\nUSER 1\n")
    assert [h.body for h in dockerfile.instructions[1].heredocs] == ["one\n", "two\n"]
    assert dockerfile.instructions[2].keyword == "USER"


def test_an_unterminated_heredoc_names_the_file_and_line():
    with pytest.raises(DockerfileSyntaxError, match=r"Dockerfile:2: here-document 'EOF' is not terminated"):
        parse_dockerfile("FROM x\nRUN cat > r.txt <<EOF\nfastapi\n")


def test_flags_and_stages():
    dockerfile = parse_dockerfile(
        "ARG BASE=python:3.11\n"
        "FROM --platform=linux/amd64 ${BASE} AS builder\n"
        "RUN --mount=type=cache,target=/root/.cache pip install x\n"
        "FROM builder AS test\n"
        "FROM python:3.11-alpine\n"
        "COPY --from=builder --chown=1:1 /root/.local /root/.local\n"
        "HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost/ || exit 1\n"
    )
    assert [(s.name, s.base) for s in dockerfile.stages] == [
        ("builder", "${BASE}"),
        ("test", "builder"),
        (None, "python:3.11-alpine"),
    ]
    assert [s.index for s in dockerfile.chain(dockerfile.stages[1])] == [0, 1]
    assert dockerfile.chain(dockerfile.final) == [dockerfile.final]
    copy = dockerfile.instructions[-2]
    assert copy.flag("from") == "builder" and copy.flag("chown") == "1:1"
    assert copy.arguments == "/root/.local /root/.local"
    health = dockerfile.instructions[-1]
    assert health.flag("interval") == "30s"
    assert health.arguments.startswith("CMD curl")
    assert dockerfile.instructions[2].flag("mount") == "type=cache,target=/root/.cache"


def test_words_split_with_shell_quoting():
    dockerfile = parse_dockerfile("FROM x\nENV A=1 B=\"two words\" C='$literal'\nEXPOSE 8000/tcp 9000\n")
    assert dockerfile.instructions[1].words() == ["A=1", "B=two words", "C=$literal"]
    assert dockerfile.instructions[2].words() == ["8000/tcp", "9000"]


BASES = """\
ARG PYTHON_IMAGE=python:3.11-slim
ARG PYTHON_RUNTIME_IMAGE=gcr.io/distroless/python3 TOOLS="sutra-base/tools:1"
FROM ${PYTHON_IMAGE} AS deps
ARG LATE
RUN echo deps
FROM deps AS test
FROM ${MISSING:-debian:bookworm-slim} AS extra
FROM $PYTHON_RUNTIME_IMAGE
COPY --from=deps /opt /opt
"""


def test_the_base_images_are_what_each_from_resolves_to_earlier_stages_left_out():
    dockerfile = parse_dockerfile(BASES, "Dockerfile")
    assert [(line.line, image) for line, image in dockerfile.base_images({})] == [
        (3, "python:3.11-slim"),
        (7, "debian:bookworm-slim"),
        (8, "gcr.io/distroless/python3"),
    ]
    replaced = dockerfile.base_images({"PYTHON_IMAGE": "sutra-base/python:3.11-slim"})
    assert replaced[0][1] == "sutra-base/python:3.11-slim"
    assert parse_dockerfile("FROM scratch\nCOPY x /x\n").base_images({}) == []


def test_every_arg_is_declared_several_on_one_line_too():
    assert parse_dockerfile(BASES).declared_args() == {
        "PYTHON_IMAGE",
        "PYTHON_RUNTIME_IMAGE",
        "TOOLS",
        "LATE",
    }


def test_a_default_applies_to_an_empty_arg_too_as_docker_expands_it():
    dockerfile = parse_dockerfile("ARG BASE\nFROM ${BASE:-python:3.11-slim}\nFROM ${OTHER}x\n")
    assert [image for _, image in dockerfile.base_images({})] == ["python:3.11-slim", "x"]
    assert dockerfile.base_images({"BASE": ""})[0][1] == "python:3.11-slim"
    assert (
        dockerfile.base_images({"BASE": "sutra-base/python:3.11-slim"})[0][1] == "sutra-base/python:3.11-slim"
    )
