from pathlib import Path
from types import SimpleNamespace

from sutra_deploy.tools.compose import Compose


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
    compose.logs(["sutra-api"], tail=5)
    compose.up()
    compose.up(["sutra-api"])  # one service alone: the others are left as they run
    prefix = ["docker-compose", "--file", "compose/docker-compose.yml", "--project-name", "proj"]
    assert [argv for argv, _ in calls] == [
        [*prefix, "down", "--remove-orphans"],
        [*prefix, "down", "--remove-orphans", "--volumes"],
        [*prefix, "logs", "--no-color", "--tail", "5", "sutra-api"],
        [*prefix, "up", "--detach", "--remove-orphans"],
        [*prefix, "up", "--detach", "sutra-api", "--no-deps"],
    ]
    assert all(kwargs["env"] == {"SUTRA_TAG": "v1"} for _, kwargs in calls)
    assert [kwargs["mutates"] for _, kwargs in calls] == [True, True, False, True, True]
