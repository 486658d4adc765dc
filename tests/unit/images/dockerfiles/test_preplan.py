"""What a pre-plan Dockerfile says about its service."""

from pathlib import Path

from sutra_deploy.images.dockerfiles.parse import env_pairs
from sutra_deploy.images.dockerfiles.preplan import pip_install_arguments, read_preplan

from .checkout import API, make_checkout


def preplan_of(root: Path, text: str, rel: str = "Dockerfile"):
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)
    return read_preplan(root / rel, rel, root, root)


def pins(plan) -> dict[str, tuple[str, str]]:
    return {
        p.requirement.name: (str(p.requirement.specifier), p.where)
        for p in plan.pins
        if p.requirement.specifier
    }


def test_the_synthetic_checkout(tmp_path):
    root = make_checkout(tmp_path)
    plan = read_preplan(root / API / "Dockerfile", f"{API}/Dockerfile", root, root)
    # The here-document's lines, named by their line in the Dockerfile.
    assert pins(plan) == {
        "fastapi": ("<1.0,>=0.100", f"{API}/Dockerfile:9"),
        "uvicorn": (">=0.23", f"{API}/Dockerfile:10"),
        "torch": ("==2.1.0", f"{API}/Dockerfile:11"),
    }
    # The final stage's command, port, health check and environment; the builder's are gone.
    assert plan.cmd.exec_form[:2] == ["uvicorn", "sutra_api.main:app"]
    assert plan.entrypoint is None
    assert plan.exposed == (8080,)
    assert plan.healthcheck.arguments.startswith("CMD curl")
    assert dict(plan.env) == {
        "PATH": "/root/.local/bin:$PATH",
        "PYTHONUNBUFFERED": "1",
        "SUTRA_GREETING": "hello from the checkout",
        "PIP_NO_CACHE_DIR": "1",
        "SSL_CERT_FILE": "/etc/ssl/certs/corp-proxy.pem",
        "HTTPS_PROXY": "http://proxy.corp:3128",
    }
    assert plan.workdir == "/app"
    assert ("apk", "curl") in plan.system_packages and ("apt-get", "gcc") in plan.system_packages
    assert {(c.source.relative_to(root.resolve()).as_posix(), c.dest) for c in plan.copies} == {
        ("packages/sutra-storage-client", "/tmp/client"),
        (f"{API}/sutra_api", "/app/sutra_api"),
        (f"{API}/templates", "/app/templates"),
    }


def test_requirements_files_are_found_through_copy_workdir_and_cd(tmp_path):
    (tmp_path / "reqs").mkdir()
    (tmp_path / "reqs" / "base.txt").write_text("httpx>=0.25\n-r extra.txt\n")
    (tmp_path / "reqs" / "extra.txt").write_text("numpy<2.0\n")
    plan = preplan_of(
        tmp_path,
        "FROM python:3.11\n"
        "WORKDIR /src\n"
        "COPY reqs/ ./reqs/\n"
        "RUN cd reqs && pip install --no-cache-dir -r base.txt 'pydantic>=2,<3' --index-url https://x\n"
        "COPY <<EOF /etc/pins.txt\n"
        "fastapi==0.110.0\n"
        "EOF\n"
        "RUN python3.11 -m pip install -c /etc/pins.txt fastapi\n"
        "RUN pip install -r missing.txt\n",
    )
    assert pins(plan) == {
        "httpx": (">=0.25", "reqs/base.txt:1"),
        "numpy": ("<2.0", "reqs/extra.txt:1"),
        "pydantic": ("<3,>=2", "Dockerfile:4"),
        "fastapi": ("==0.110.0", "Dockerfile:6"),
    }
    assert any("pip installs from /src/missing.txt" in note for note in plan.notes)


def test_run_heredoc_scripts_are_read(tmp_path):
    plan = preplan_of(
        tmp_path,
        "FROM python:3.11\n"
        "RUN <<EOF\n"
        "set -e\n"
        "cat > /r.txt <<REQS\n"
        "flask<3\n"
        "REQS\n"
        "pip install -r /r.txt\n"
        "EOF\n",
    )
    assert pins(plan) == {"flask": ("<3", "Dockerfile:5")}


def test_entrypoint_drops_an_inherited_cmd_but_not_its_own_stages(tmp_path):
    plan = preplan_of(tmp_path, 'FROM x AS base\nCMD ["a"]\nFROM base\nENTRYPOINT ["b"]\n')
    assert plan.cmd is None and plan.entrypoint.exec_form == ["b"]
    plan = preplan_of(tmp_path, 'FROM x\nCMD ["--port", "1"]\nENTRYPOINT ["b"]\n')
    assert plan.cmd.exec_form == ["--port", "1"]


def test_env_forms_and_pip_command_lines():
    from sutra_deploy.images.dockerfiles.parse import parse_dockerfile

    legacy, modern = parse_dockerfile('FROM x\nENV NAME some value\nENV A=1 B="x y"\n').instructions[1:]
    assert list(env_pairs(legacy)) == [("NAME", "some value")]
    assert list(env_pairs(modern)) == [("A", "1"), ("B", "x y")]
    assert pip_install_arguments(["pip3", "install", "-r", "r.txt"]) == ["-r", "r.txt"]
    assert pip_install_arguments(["/usr/bin/python3", "-m", "pip", "--no-cache-dir", "install", "x"]) == ["x"]
    assert pip_install_arguments(["uv", "pip", "install", "x"]) == ["x"]
    assert pip_install_arguments(["pip", "download", "x"]) is None
    assert pip_install_arguments(["pipx", "install", "x"]) is None
