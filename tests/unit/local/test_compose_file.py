"""The compose file is rendered from the stack file: the repository's compose/docker-compose.yml
is that rendering of stack.toml (one home), a user's stack file gets its own, and what compose
reads of it (through `docker compose config`, no engine needed) is what the stack file says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.local.compose_file import compose_file_for, render
from sutra_deploy.local.compose_stack import port_env

from ..init.monorepo import make_monorepo

COMPOSE = Path(sys.executable).parent / "docker-compose"
STACK = load_stack(PROJECT_DIR / "stack.toml")


def compose_reads(path: Path) -> dict:
    result = subprocess.run(
        [str(COMPOSE), "--file", str(path), "config", "--format", "json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_repositorys_compose_file_is_the_rendering_of_stack_toml():
    committed = Path(DEFAULTS["sutra"]["compose_file"])
    assert committed.read_text() == render(STACK, project=str(DEFAULTS["sutra"]["project"])), (
        "compose/docker-compose.yml differs from stack.toml's rendering: write it with "
        "`python -c 'from sutra_deploy.local.compose_file import …'` (see that module)"
    )


def test_compose_reads_what_the_stack_file_says(tmp_path):
    read = compose_reads(compose_file_for(STACK, "sutra", cache=tmp_path))
    for service in STACK.services:
        got = read["services"][service.name]
        assert got["image"] == f"{service.image}:{STACK.default_version}"
        [port] = got["ports"]
        assert (int(port["published"]), port["target"]) == (service.port.host, service.port.container)
        addresses = {s.name: f"{s.name}:{s.port.container}" for s in STACK.services}
        assert (got.get("environment") or {}) == service.environment_for(addresses.__getitem__)
        assert set(got.get("depends_on") or {}) == set(service.peers()) - {service.name}
    storage = STACK.service("storage-server")
    [volume] = read["services"]["storage-server"]["volumes"]
    assert (volume["source"], volume["target"]) == ("storage-data", storage.data)  # the name users' data has


def test_a_users_stack_file_gets_its_own_rendering(tmp_path):
    make_monorepo(tmp_path / "checkout")
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_DIR), "init", "--root",
         str(tmp_path / "checkout"), "--write", str(tmp_path / "mine.toml")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stack = load_stack(tmp_path / "mine.toml")
    path = compose_file_for(stack, "mine", cache=tmp_path / "cache")
    assert compose_file_for(stack, "mine", cache=tmp_path / "cache") == path  # named by its content
    read = compose_reads(path)
    assert set(read["services"]) == set(stack.service_names)
    api = read["services"]["sutra-api"]
    assert api["ports"][0]["target"] == 9000
    # What its code reads and the compose file set, the peer's address as compose names it.
    assert api["environment"] == {"SUTRA_API_STORAGE_ADDR": "storage-server:50051"}
    assert port_env(stack.service("sutra-api")) == "SUTRA_API_PORT"
