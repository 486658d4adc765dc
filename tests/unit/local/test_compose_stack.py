import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from sutra_deploy.core.errors import ImageMissing, SutraError
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.local.compose_stack import (
    RESTARTS_BEFORE_GIVING_UP,
    TAG_ENV,
    LocalStack,
    LocalStatus,
    ServiceStatus,
    host_port,
    port_env,
    previous_version,
    why_it_will_not_get_healthy,
)
from sutra_deploy.tools.engine import ContainerInfo

STACK = load_stack(PROJECT_DIR / "stack.toml")


def test_port_variables_are_named_for_their_services():
    # The compose file reads them (tests/unit/test_facts.py checks it with these names).
    names = {s.name: port_env(s) for s in STACK.services}
    assert names == {
        "storage-server": "SUTRA_STORAGE_SERVER_PORT",
        "sutra-api": "SUTRA_API_PORT",
        "sutra-hybrid": "SUTRA_HYBRID_PORT",
        "sutra-control": "SUTRA_CONTROL_PORT",
        "sutra-client": "SUTRA_CLIENT_PORT",
    }


def test_host_port_comes_from_the_stack_unless_overridden():
    api = STACK.service("sutra-api")
    assert host_port(api, {}) == 8000
    assert host_port(api, {"SUTRA_API_PORT": "18000"}) == 18000
    with pytest.raises(SutraError, match="SUTRA_API_PORT='eighty' is not a port number"):
        host_port(api, {"SUTRA_API_PORT": "eighty"})


def test_rollback_goes_to_the_version_before_the_running_one():
    assert previous_version(STACK, "v2") == "v1"
    with pytest.raises(SutraError, match="v1 is the oldest version"):
        previous_version(STACK, "v1")
    with pytest.raises(SutraError, match="cannot tell which version is running"):
        previous_version(STACK, None)


def test_status_table():
    rows = [
        ServiceStatus(STACK.service("sutra-api"), "running", "healthy", 8000, 4.25),
        ServiceStatus(STACK.service("sutra-client"), "", "", 8080, None),
    ]
    lines = LocalStatus(tuple(rows)).table().splitlines()
    assert lines[0].split() == ["Service", "State", "Health", "Host", "port", "Seconds", "to", "healthy"]
    assert lines[2].split() == ["sutra-api", "running", "healthy", "8000", "4.2"]
    assert lines[3].split() == ["sutra-client", "absent", "-", "8080", "-"]


COMPOSE_FILE = PROJECT_DIR / "compose" / "docker-compose.yml"


class FakeRunner:
    """Records each command with the environment it was given; answers ps and inspect."""

    dry = False

    def __init__(self, containers: dict[str, tuple[str, str]] | None = None) -> None:
        self.containers = containers or {}  # container name -> (state, image)
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def run(self, argv, *, env=None, **kwargs):
        argv = [str(a) for a in argv]
        self.calls.append((argv, dict(env or {})))
        stdout = ""
        if "ps" in argv:
            stdout = "\n".join(
                json.dumps({"Service": name.rsplit("-", 1)[0], "Name": name, "State": state, "Health": ""})
                for name, (state, _) in self.containers.items()
            )
        return SimpleNamespace(argv=tuple(argv), returncode=0, stdout=stdout, stderr="", ok=True)

    def project_containers(self, project: str) -> list[SimpleNamespace]:
        """What the engine lists for a compose project (one call, as LocalStack makes it)."""
        self.calls.append((["containers", project], {}))
        return [
            SimpleNamespace(
                service=name.rsplit("-", 1)[0].removeprefix(f"{project}-"), state=state, image=image
            )
            for name, (state, image) in self.containers.items()
        ]

    def commands(self, word: str) -> list[tuple[list[str], dict[str, str]]]:
        return [(argv, env) for argv, env in self.calls if word in argv]


def local(runner: FakeRunner, images: bool = True, compose_file: Path = COMPOSE_FILE) -> LocalStack:
    docker = SimpleNamespace(
        commands=runner,
        dry=False,
        image=lambda ref: object() if images else None,
        project_containers=runner.project_containers,
    )
    return LocalStack(STACK, docker, compose_file, "proj")


def test_one_compose_file_for_every_version_tagged_through_the_environment():
    runner = FakeRunner()
    for version in STACK.versions:
        local(runner).compose(version).stop([])
    assert [argv[:5] for argv, _ in runner.calls] == [
        ["docker-compose", "--file", str(COMPOSE_FILE), "--project-name", "proj"]
    ] * len(STACK.versions)
    assert [env[TAG_ENV] for _, env in runner.calls] == list(STACK.versions)
    # Compose gets every host port that is not the compose file's own default, so a project's
    # ports are its own, not the caller's.
    assert all(
        env.get(port_env(s), str(s.port.host)) == str(s.port.host)
        for _, env in runner.calls
        for s in STACK.services
    )


def test_a_port_the_callers_environment_sets_is_overridden_by_the_projects_own(monkeypatch):
    monkeypatch.setenv("SUTRA_API_PORT", "9999")  # the caller's shell; this project has its own
    runner = FakeRunner()
    docker = SimpleNamespace(commands=runner, dry=False, image=lambda ref: object())
    ports = {port_env(s): str(20000 + i) for i, s in enumerate(STACK.services)}
    LocalStack(STACK, docker, COMPOSE_FILE, "proj", env=ports).compose("v2").stop([])
    [(_, env)] = runner.calls
    assert {name: env[name] for name in ports} == ports
    runner.calls.clear()
    LocalStack(STACK, docker, COMPOSE_FILE, "proj", env={}).compose("v2").stop([])
    [(_, env)] = runner.calls
    assert env["SUTRA_API_PORT"] == str(STACK.service("sutra-api").port.host)


def test_an_unknown_version_or_a_missing_file_is_one_error(tmp_path):
    with pytest.raises(SutraError, match="is not a valid tag"):
        local(FakeRunner()).compose("v9;rm")
    with pytest.raises(SutraError, match=r"compose file .*nowhere\.yml not found"):
        local(FakeRunner(), compose_file=tmp_path / "nowhere.yml").compose("v2")


def test_running_version_reads_the_projects_running_containers_tags_once():
    runner = FakeRunner(
        {
            "proj-sutra-api-1": ("running", "sutra-api:v1"),
            "proj-sutra-client-1": ("running", "sutra-client:v1"),
            "proj-storage-server-1": ("exited", "sutra-storage-server:v2"),
        }
    )
    assert local(runner).running_version() == "v1"
    assert runner.commands("containers") == [(["containers", "proj"], {})]
    assert runner.commands("ps") == []  # the engine lists the project: no compose process per look


def test_running_version_is_unknown_when_nothing_runs_or_the_tags_disagree():
    assert local(FakeRunner()).running_version() is None
    mixed = FakeRunner(
        {"p-sutra-api-1": ("running", "sutra-api:v1"), "p-sutra-client-1": ("running", "c:v2")}
    )
    assert local(mixed).running_version() is None


def test_move_takes_the_project_down_keeping_the_volume_then_brings_the_target_up(monkeypatch):
    runner = FakeRunner()
    stack = local(runner)
    ups = []
    monkeypatch.setattr(stack, "up", lambda version, *, timeout: ups.append((version, timeout)) or [])
    stack.move("v1", timeout=30)
    [(down, env)] = runner.commands("down")
    assert "--volumes" not in down
    assert env[TAG_ENV] == "v1"
    assert ups == [("v1", 30)]


def test_move_checks_the_targets_images_before_taking_anything_down():
    runner = FakeRunner()
    with pytest.raises(ImageMissing):
        local(runner, images=False).move("v1", timeout=30)
    assert runner.commands("down") == []


def container(state: str, restarts: int = 0, health: str = "starting", id_: str = "c1") -> ContainerInfo:
    return ContainerInfo(
        name="p-sutra-hybrid-1",
        image="sutra-hybrid:v2",
        state=state,
        health=health,
        exit_code=1,
        oom_killed=False,
        restart_count=restarts,
        id=id_,
        service="sutra-hybrid",
    )


def test_waiting_longer_cannot_help_a_container_that_exited_or_crash_loops():
    limit = RESTARTS_BEFORE_GIVING_UP
    assert why_it_will_not_get_healthy(container("running", health="healthy"), {}) is None
    assert why_it_will_not_get_healthy(container("running", restarts=1), {}) is None  # slow, not dead
    assert why_it_will_not_get_healthy(container("exited"), {}) == "sutra-hybrid exited (exit code 1)"
    looping = why_it_will_not_get_healthy(container("running", restarts=limit + 2), {"c1": 2})
    assert looping == f"sutra-hybrid keeps restarting (exit code 1, {limit + 2} restarts)"
    # Restarts before this `up` do not count, unless the container is still restarting.
    assert why_it_will_not_get_healthy(container("running", restarts=limit + 2), {"c1": limit + 2}) is None
    assert why_it_will_not_get_healthy(container("restarting", restarts=limit), {"c1": limit}) is not None


def test_a_tag_variable_in_the_callers_shell_never_chooses_an_image(monkeypatch):
    monkeypatch.setenv("SUTRA_API_TAG", "v9")  # left over in the user's shell
    runner = FakeRunner()
    local(runner).compose("v2").stop([])
    [(_, env)] = runner.calls
    assert env["SUTRA_API_TAG"] == "v2" and env[TAG_ENV] == "v2"
    runner.calls.clear()
    local(runner).compose("v2", {"sutra-api": "v1"}).stop([])
    [(_, env)] = runner.calls
    assert env["SUTRA_API_TAG"] == "v1"
