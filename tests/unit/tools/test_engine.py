import io
import tarfile

import pytest

from sutra_deploy.core.errors import DockerUnavailable
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.engine import (
    ChunkReader,
    ContainerInfo,
    Engine,
    ImageInfo,
    daemon_detail,
    image_key,
    split_tag,
)


def unreachable_engine(dry: bool) -> Engine:
    def no_client():
        raise AssertionError("a dry write must not reach the engine")

    return Engine(Commands(dry=dry), client_factory=no_client)


def test_dry_writes_print_the_docker_command_and_never_touch_the_engine(capsys):
    engine = unreachable_engine(dry=True)
    engine.tag("sutra-api:v2", "reg.example.com:5000/sutra-ai/sutra-api:v2")
    assert engine.push("reg.example.com:5000/sutra-ai/sutra-api:v2") is None
    engine.remove_image("reg.example.com:5000/sutra-ai/sutra-api:v2")
    assert engine.commands.printed == [
        "docker tag sutra-api:v2 reg.example.com:5000/sutra-ai/sutra-api:v2",
        "docker push reg.example.com:5000/sutra-ai/sutra-api:v2",
        "docker image rm reg.example.com:5000/sutra-ai/sutra-api:v2",
    ]
    assert capsys.readouterr().out.splitlines() == engine.commands.printed


def test_the_client_is_made_only_when_first_needed():
    made = []

    def factory():
        made.append(object())
        return made[-1]

    engine = Engine(Commands(), client_factory=factory)
    assert made == []
    assert engine.client is engine.client
    assert len(made) == 1


def test_an_unreachable_daemon_is_one_typed_error(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    with pytest.raises(DockerUnavailable, match=rf"no socket at unix://{tmp_path}/no.sock"):
        Engine(Commands()).ensure_available()


def test_daemon_detail_names_the_reason_and_the_address(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.9:2375")
    assert (
        daemon_detail("... [Errno 111] Connection refused ...") == "connection refused at tcp://10.0.0.9:2375"
    )
    monkeypatch.delenv("DOCKER_HOST")
    assert daemon_detail("Read timed out.") == "no answer in time at unix:///var/run/docker.sock"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("sutra-api:v2", ("sutra-api", "v2")),
        ("localhost:5000/sutra-ai/sutra-api:v2", ("localhost:5000/sutra-ai/sutra-api", "v2")),
        ("localhost:5000/sutra-api", ("localhost:5000/sutra-api", None)),
        ("r.io/a@sha256:" + "0" * 64, ("r.io/a@sha256:" + "0" * 64, None)),
    ],
)
def test_split_tag(ref, expected):
    assert split_tag(ref) == expected


def test_a_chunk_stream_reads_as_a_tar_file():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = b"x" * 70_000
        info = tarfile.TarInfo("layer.tar")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    chunks = (raw[i : i + 4096] for i in range(0, len(raw), 4096))
    with tarfile.open(fileobj=ChunkReader(chunks), mode="r|") as archive:
        assert [(m.name, m.size) for m in archive] == [("layer.tar", 70_000)]


def test_models_read_the_engine_api_fields():
    image = ImageInfo.from_attrs(
        "sutra-api:v2",
        {
            "Id": "sha256:abc",
            "Size": 72_456_997,
            "RootFS": {"Layers": ["sha256:l1", "sha256:l2"]},
            "RepoDigests": ["r.io/sutra-api@sha256:def"],
            "Config": {"Labels": {"a": "b"}, "Env": ["PATH=/usr/bin"], "User": "65532"},
        },
    )
    assert (image.size_bytes, image.layers, image.repo_digests, image.user) == (
        72_456_997,
        ("sha256:l1", "sha256:l2"),
        ("r.io/sutra-api@sha256:def",),
        "65532",
    )
    container = ContainerInfo.from_attrs(
        {
            "Name": "/sutra-api-1",
            "Config": {"Image": "sutra-api:v2"},
            "State": {"Status": "running", "Health": {"Status": "healthy"}, "OOMKilled": False},
            "RestartCount": 2,
        }
    )
    assert (container.name, container.image, container.health, container.restart_count) == (
        "sutra-api-1",
        "sutra-api:v2",
        "healthy",
        2,
    )


def test_one_key_for_every_spelling_of_a_reference_and_none_shared_with_another():
    same = [
        "sutra-api",
        "sutra-api:latest",
        "docker.io/library/sutra-api:latest",
        "index.docker.io/library/sutra-api",
    ]
    assert len({image_key(ref) for ref in same}) == 1
    digest = "sha256:" + "a" * 64
    others = [
        "sutra-api:v2",
        "r.io/sutra-api:latest",
        "localhost:5000/sutra-api",
        f"sutra-api@{digest}",
        "sutra-api@sha256:abc",  # malformed: its own text, never the tag's image
        "me/sutra-api",
    ]
    assert len({image_key(ref) for ref in [same[0], *others]}) == len(others) + 1
