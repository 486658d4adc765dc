"""`inv dockerfiles` as a user runs it: printing, writing, idempotence, --force, --json, and
one-line errors with the exit codes the README gives."""

from __future__ import annotations

import json
from pathlib import Path

from .checkout import API, API_PYPROJECT, CONTROL, CONTROL_DOCKERFILE, STACK, inv, make_checkout

API_V2 = STACK.service("sutra-api").dockerfile("v2")
CONTROL_V2 = STACK.service("sutra-control").dockerfile("v2")
HYBRID_V2 = STACK.service("sutra-hybrid").dockerfile("v2")


def one_line_error(result, code: int) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file's (inode, mtime in ns): what a write, even of the same bytes, changes."""
    return {
        p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_without_write_it_prints_the_file_and_changes_nothing(checkout):
    before = snapshot(checkout)
    result = inv("--root", str(checkout), "--service", "sutra-api")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# sutra-api v2, written by `inv dockerfiles`")
    assert 'ENTRYPOINT ["python3", "-m", "uvicorn"' in result.stdout
    assert "sutra-api: command from CMD" in result.stderr  # what it did, on stderr
    assert "nothing written: --write writes it" in result.stderr
    assert snapshot(checkout) == before


def test_write_then_a_second_run_writes_nothing(checkout):
    first = inv("--root", str(checkout), "--write")
    assert first.returncode == 0, first.stderr
    rows = {line.split()[0]: line.split()[-1] for line in first.stdout.splitlines()[2:]}
    assert rows == {"sutra-api": "written", "sutra-hybrid": "written", "sutra-control": "written"}
    for path in (API_V2, CONTROL_V2, HYBRID_V2):
        assert (checkout / path).read_text().startswith("# sutra-")
    after_first = snapshot(checkout)
    second = inv("--root", str(checkout), "--write")
    assert second.returncode == 0, second.stderr
    assert "exists, kept" in second.stdout and "written" not in second.stdout
    assert snapshot(checkout) == after_first
    # --force regenerates, finds the same text, and still writes nothing.
    forced = inv("--root", str(checkout), "--write", "--force")
    assert forced.returncode == 0, forced.stderr
    assert [line.split()[-1] for line in forced.stdout.splitlines()[2:]] == ["unchanged"] * 3
    assert snapshot(checkout) == after_first
    shown = inv("--root", str(checkout), "--force")
    assert shown.returncode == 0 and shown.stdout == ""
    assert f"sutra-api: {API_V2} is up to date" in shown.stderr


def test_force_shows_a_diff_against_an_edited_file_and_changes_nothing(checkout):
    assert inv("--root", str(checkout), "--service", "sutra-api", "--write").returncode == 0
    edited = (checkout / API_V2).read_text().replace("USER 65532:65532", "USER root")
    (checkout / API_V2).write_text(edited)
    before = snapshot(checkout)
    result = inv("--root", str(checkout), "--service", "sutra-api", "--force")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"--- a/{API_V2}\n+++ b/{API_V2}\n")
    assert "\n-USER root\n+USER 65532:65532\n" in result.stdout
    assert snapshot(checkout) == before
    # Without --force an existing file is never touched, even with --write.
    kept = inv("--root", str(checkout), "--service", "sutra-api", "--write")
    assert kept.returncode == 0 and (checkout / API_V2).read_text() == edited
    assert inv("--root", str(checkout), "--service", "sutra-api", "--write", "--force").returncode == 0
    assert "USER 65532:65532" in (checkout / API_V2).read_text()


def test_dry_run_writes_nothing(checkout):
    result = inv("--root", str(checkout), "--write", core=("--dry",))
    assert result.returncode == 0, result.stderr
    assert "would write (dry run)" in result.stdout
    assert f"dry run: would write {API_V2}" in result.stderr
    assert not (checkout / API_V2).exists()


def test_json_on_stdout_logs_on_stderr(checkout):
    result = inv("--root", str(checkout), "--service", "sutra-api,sutra-control", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["root"] == str(checkout) and out["write"] is False
    api, control = out["services"]
    assert (api["service"], api["path"], api["status"], api["written"]) == ("sutra-api", API_V2, "new", False)
    assert api["constraints"] == ["fastapi<1.0"]
    assert api["local_packages"] == ["packages/sutra-storage-client"]
    assert api["package_data"] == [f"{API}/templates"]
    assert api["port"] == STACK.service("sutra-api").port.container
    assert api["entrypoint"]["argv"][:3] == ["python3", "-m", "uvicorn"]
    assert api["dockerfile"].startswith("# sutra-api v2") and api["diff"] is None
    assert any("torch" in note for note in api["notes"])
    assert control["context"] == STACK.service("sutra-control").context
    assert "sutra-api: " in result.stderr
    # With every file present and no --force: each one listed as it is.
    assert inv("--root", str(checkout), "--write").returncode == 0
    listed = json.loads(inv("--root", str(checkout), "--json").stdout)["services"]
    assert {(s["service"], s["status"]) for s in listed} == {
        ("sutra-api", "exists"),
        ("sutra-hybrid", "exists"),
        ("sutra-control", "exists"),
    }


def test_build_packages_from_invoke_config(checkout, tmp_path):
    config = tmp_path / "invoke.yaml"
    config.write_text("sutra:\n  dockerfiles:\n    build_packages:\n      sutra-api: [gcc, libc6-dev]\n")
    result = inv("--root", str(checkout), "--service", "sutra-api", core=("-f", str(config)))
    assert result.returncode == 0, result.stderr
    assert "apt-get install -y --no-install-recommends gcc libc6-dev" in result.stdout
    config.write_text("sutra:\n  dockerfiles:\n    build_pkgs: [gcc]\n")
    error = one_line_error(inv("--root", str(checkout), core=("-f", str(config))), 2)
    assert "setting sutra.dockerfiles.build_pkgs: unknown" in error


# --- errors: one line; 2 for bad input, 1 for a refusal -----------------------------


def test_bad_input_is_exit_2(checkout, tmp_path):
    assert "unknown service 'sutra-apii'" in one_line_error(
        inv("--root", str(checkout), "--service", "sutra-apii"), 2
    )
    assert "is not a directory" in one_line_error(inv("--root", str(tmp_path / "missing")), 2)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no Python service package under" in one_line_error(inv("--root", str(empty)), 2)
    assert "sutra-client is not a Python service here" in one_line_error(
        inv("--root", str(checkout), "--service", "sutra-client"), 2
    )
    assert "unknown extra 'gpu'" in one_line_error(
        inv("--root", str(checkout), "--service", "sutra-api", "--extras", "gpu"), 2
    )
    broken = "FROM python:3.11\nRUN cat > r.txt <<EOF\nfastapi\n"
    make_checkout(checkout, {f"{API}/Dockerfile": broken})
    assert f"{API}/Dockerfile:2: here-document 'EOF' is not terminated" in one_line_error(
        inv("--root", str(checkout), "--service", "sutra-api"), 2
    )


def test_refusals_are_exit_1_and_write_nothing(checkout):
    coupled = API_PYPROJECT.replace('"uvicorn>=0.23",', '"uvicorn>=0.23",\n    "sutra-hybrid>=1.0",')
    make_checkout(checkout, {f"{API}/pyproject.toml": coupled})
    error = one_line_error(inv("--root", str(checkout), "--write"), 1)
    assert "sutra-api: fix-deps finds service-coupling sutra-hybrid" in error
    assert "inv fix-deps --root" in error
    # The other services were fine, but a refusal leaves every file as it was.
    assert not (checkout / CONTROL_V2).exists() and not (checkout / HYBRID_V2).exists()
    make_checkout(checkout, {f"{API}/pyproject.toml": API_PYPROJECT})
    shell_form = CONTROL_DOCKERFILE.replace(
        "CMD exec python -m sutra_control", "CMD python -m sutra_control $ARGS"
    )
    make_checkout(checkout, {f"{CONTROL}/Dockerfile": shell_form})
    error = one_line_error(inv("--root", str(checkout), "--service", "sutra-control"), 1)
    assert "needs a shell (`$ARGS`)" in error


def test_build_names_this_command_when_a_v2_dockerfile_is_missing(checkout):
    result = inv("--root", str(checkout), "--service", "sutra-api", task="build")
    error = one_line_error(result, 2)
    assert error == (
        f"error: sutra-api: {API_V2} not found under {checkout}; write it with "
        f"`inv dockerfiles --root {checkout} --service sutra-api --write`"
    )
