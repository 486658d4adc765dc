from pathlib import Path
from types import SimpleNamespace

from sutra_deploy.tools.compose import Compose, parse_ps

LINE = (
    '{"Service":"sutra-api","Name":"sutra-sutra-api-1","State":"running","Health":"healthy","ExitCode":0,'
    '"Publishers":[{"URL":"0.0.0.0","TargetPort":8000,"PublishedPort":8000,"Protocol":"tcp"},'
    '{"URL":"::","TargetPort":8000,"PublishedPort":8000,"Protocol":"tcp"}]}'
)
STARTING = '{"Service":"sutra-hybrid","Name":"h","State":"running","Health":"starting","Publishers":[]}'
EXITED = '{"Service":"storage-server","Name":"s","State":"exited","Health":"","ExitCode":137}'


def test_one_object_per_line():
    api, hybrid, storage = parse_ps("\n".join([LINE, STARTING, EXITED]) + "\n")
    assert (api.service, api.published, api.healthy) == ("sutra-api", (8000,), True)
    assert hybrid.healthy is False
    assert (storage.state, storage.exit_code, storage.healthy) == ("exited", 137, False)


def test_older_array_form_and_nothing_running():
    assert [c.service for c in parse_ps(f"[{LINE}, {STARTING}]")] == ["sutra-api", "sutra-hybrid"]
    assert parse_ps("") == []


def test_a_running_container_without_a_health_check_counts_as_healthy():
    [plain] = parse_ps('{"Service":"x","Name":"x","State":"running","Health":""}')
    assert plain.healthy


def test_every_command_names_the_file_and_project_and_carries_the_environment():
    calls = []

    def run(argv, **kwargs):
        calls.append((list(argv), kwargs))
        return SimpleNamespace(stdout="", ok=True)

    compose = Compose(
        SimpleNamespace(run=run), Path("compose/docker-compose.yml"), "proj", env={"SUTRA_TAG": "v1"}
    )
    compose.down(volumes=False)
    compose.down(volumes=True)
    compose.ps()
    prefix = ["docker-compose", "--file", "compose/docker-compose.yml", "--project-name", "proj"]
    assert [argv for argv, _ in calls] == [
        [*prefix, "down", "--remove-orphans"],
        [*prefix, "down", "--remove-orphans", "--volumes"],
        [*prefix, "ps", "--all", "--format", "json"],
    ]
    assert all(kwargs["env"] == {"SUTRA_TAG": "v1"} for _, kwargs in calls)
    assert [kwargs["mutates"] for _, kwargs in calls] == [True, True, False]
