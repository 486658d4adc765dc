"""`inv init` on a checkout shaped like a real one (monorepo.py), through the real `inv`: the
stack file it prints loads, says what the code really does, and every disagreement is a
finding with file:line; the same file twice; --write never overwrites without --force."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sutra_deploy.core.source import PROJECT_DIR, REFERENCE_ROOT
from sutra_deploy.core.stack import load_stack, parse_stack
from sutra_deploy.images.dockerfiles.parse import parse_dockerfile
from sutra_deploy.init.describe import _data

from .monorepo import line_of, make_monorepo


def inv(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_DIR), *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture
def checkout(tmp_path):
    return make_monorepo(tmp_path / "checkout")


def test_init_describes_what_the_code_really_does(checkout, tmp_path):
    result = inv("init", "--root", str(checkout), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stack = parse_stack(result.stdout, tmp_path / "stack.toml")
    assert stack.source_root == checkout.resolve()
    assert [s.name for s in stack.services] == ["storage-server", "sutra-api", "sutra-client"]
    storage, api, web = stack.services
    assert (storage.health.protocol, storage.port.container, storage.context) == (
        "tcp",
        50051,
        "packages/sutra-storage",
    )
    assert storage.dockerfile("v2") == "packages/sutra-storage/Dockerfile"  # no Python: one Dockerfile
    # The port its __main__ really serves on, not EXPOSE's or the settings default; the compose
    # file's host port; the app's own route for health, not the one its HEALTHCHECK probes.
    assert (api.port.container, api.port.host) == (9000, 8000)
    assert (api.health.protocol, api.health.path) == ("http", "/")
    assert api.context == "."  # its Dockerfile copies packages/sutra-api from the checkout
    assert api.dockerfile("v2") == "packages/sutra-api/Dockerfile.optimized"
    # What its code reads (pydantic-settings with its prefix, os.getenv), and what compose sets.
    assert set(api.reads) >= {"SUTRA_API_STORAGE_ADDR", "SUTRA_API_PORT", "LOG_LEVEL"}
    assert "ONLY_IN_TESTS" not in api.reads  # its tests are not the service
    # What compose gives it that it reads, its peer's address as {service}; not what it never reads.
    assert api.environment == (("SUTRA_API_STORAGE_ADDR", "{storage-server}"),)
    assert (api.budget.target_bytes, api.budget.limit_bytes) == (150_000_000, 200_000_000)  # the plan's
    assert (web.port.container, web.health.path) == (8080, "/")
    # The journey from its routes: stores at POST /api/v1/facts, finds by GET with the marker.
    journey = stack.journey
    assert (journey.learn.method, journey.learn.path) == ("POST", "/api/v1/facts")
    assert (journey.find.method, journey.find.path) == ("GET", "/api/v1/search?q={marker}")
    assert stack.public_api == "sutra-api"

    findings = [line.removeprefix("[init] ") for line in result.stderr.splitlines()]
    main = "packages/sutra-api/sutra_api/main.py"
    dockerfile = "packages/sutra-api/Dockerfile"
    served = f"sutra-api listens on 9000 (the code, {main}:{line_of(main, 'uvicorn.run(')})"
    for expected in (
        f"{dockerfile}:{line_of(dockerfile, 'EXPOSE')}: EXPOSE says port 8000, but {served}",
        f"{main}:{line_of(main, 'port: int')}: its settings says port 8080, but {served}",
        f"docker-compose.yml (services.sutra-api): the compose file says port 8000, but {served}",
        f"{dockerfile}:{line_of(dockerfile, 'HEALTHCHECK')}: probes /healthz, which is no route of "
        "sutra-api's app (its GET routes: /, /api/v1/search)",
        f"{dockerfile}.optimized: missing; `inv dockerfiles --write` writes it",
        "docker-compose.yml (services.sutra-api): sets SUTRA_API_UNUSED_FLAG, which sutra-api's code "
        "never reads",
    ):
        assert expected in findings, "\n".join(findings)
    assert all(":" in line for line in findings)


def test_the_folder_a_service_keeps_its_data_in_comes_from_its_volume(checkout, tmp_path):
    """Where the compose file mounts a volume, else the image's VOLUME: locally a named volume
    goes there, so the data outlives the container."""
    compose = checkout / "docker-compose.yml"
    ports = '    ports: ["50051:50051"]\n'  # storage-server's
    assert ports in compose.read_text()
    # A config file, the code and the docker socket bound from the host, scratch space: none of
    # them is where it keeps its data.
    mounts = '["./storage.toml:/etc/storage.toml:ro", ".:/src", "/var/run/docker.sock:/var/run/docker.sock", '
    mounts += '"/tmp/scratch", "facts:/var/lib/facts:rw,z"]'
    volumes = f"    volumes: {mounts}\n"
    compose.write_text(compose.read_text().replace(ports, ports + volumes, 1))
    dockerfile = checkout / "packages" / "sutra-api" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("EXPOSE", 'VOLUME ["/srv/cache"]\nEXPOSE', 1))
    result = inv("init", "--root", str(checkout), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = {s.name: s.data for s in parse_stack(result.stdout, tmp_path / "stack.toml").services}
    assert found == {"storage-server": "/var/lib/facts", "sutra-api": "/srv/cache", "sutra-client": None}


def test_a_service_the_plan_does_not_know_gets_a_placeholder_budget_and_a_finding(checkout, tmp_path):
    (checkout / "packages" / "sutra-docs").mkdir()
    (checkout / "packages" / "sutra-docs" / "Dockerfile").write_text("FROM scratch\nEXPOSE 8090\n")
    result = inv("init", "--root", str(checkout), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    docs = parse_stack(result.stdout, tmp_path / "stack.toml").service("sutra-docs")
    assert (docs.port.container, docs.budget.limit_bytes) == (8090, 1000_000_000)
    assert (
        "[init] packages/sutra-docs: the plan gives sutra-docs no size budget: size_mb is a placeholder "
        "(1000 MB)" in result.stderr.splitlines()
    )


def test_init_gives_the_same_file_twice_and_writes_only_what_it_is_told(checkout, tmp_path):
    first = inv("init", "--root", str(checkout), cwd=tmp_path)
    assert inv("init", "--root", str(checkout), cwd=tmp_path).stdout == first.stdout
    target = tmp_path / "stacks" / "mine.toml"
    target.parent.mkdir()
    written = inv("init", "--root", str(checkout), "--write", str(target), cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    stack = load_stack(target)  # the root is recorded relative to the file
    assert stack.source_root == checkout.resolve()
    assert 'root = "../checkout"' in target.read_text()
    target.write_text(target.read_text().replace("limit = 200", "limit = 210"))
    refused = inv("init", "--root", str(checkout), "--write", str(target), cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: {target} exists; not overwritten (add --force to replace it, which shows the diff)"
    )
    assert "limit = 210" in target.read_text()
    forced = inv("init", "--root", str(checkout), "--write", str(target), "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "-size_mb = { old = 703, target = 150, limit = 210 }" in forced.stdout
    assert "+size_mb = { old = 703, target = 150, limit = 200 }" in forced.stdout
    assert "limit = 210" not in target.read_text()
    dry = inv("--dry", "init", "--root", str(checkout), "--write", str(tmp_path / "new.toml"), cwd=tmp_path)
    assert dry.returncode == 0 and not (tmp_path / "new.toml").exists()


def test_a_root_that_is_no_checkout_or_a_place_it_cannot_write_is_one_line_and_exit_2(tmp_path, checkout):
    (tmp_path / "empty").mkdir()
    for args, message in (
        (("--root", str(tmp_path / "empty")), f"error: {tmp_path / 'empty'} is no checkout: no service"),
        (("--root", str(tmp_path / "missing")), "error: source root"),
        (("--root", str(checkout), "--write", str(tmp_path / "nowhere" / "s.toml")),
         f"error: --write {tmp_path / 'nowhere' / 's.toml'}: {tmp_path / 'nowhere'} is no folder"),
        (("--root", str(checkout), "--write", "/proc/s.toml"), "error: --write /proc/s.toml: "),
    ):  # fmt: skip
        result = inv("init", *args, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        last = result.stderr.strip().splitlines()[-1]  # what init found comes first, if it got that far
        assert last.startswith(message), last
        assert "Traceback" not in result.stderr


def test_the_reference_tree_is_described_as_its_stack_file_says():
    """Run on the reference services, init gives what stack.toml (written by hand) says, where
    the tree itself says it: names (the plan's, for a folder it names), ports, health paths,
    contexts, Dockerfiles, budgets, and the peers whose addresses the code reads as defaults."""
    result = inv("init", "--root", str(REFERENCE_ROOT), cwd=PROJECT_DIR)
    assert result.returncode == 0, result.stderr
    found = {s.name: s for s in parse_stack(result.stdout, PROJECT_DIR / "stack.toml").services}
    reference = load_stack(PROJECT_DIR / "stack.toml")
    assert sorted(found) == sorted(reference.service_names)  # packages/sutra-storage: storage-server
    for service in reference.services:
        mine = found[service.name]
        assert (mine.image, mine.port.container, mine.health, mine.context) == (
            service.image,
            service.port.container,
            service.health,
            service.context,
        )
        assert dict(mine.dockerfiles) == dict(service.dockerfiles)
        assert mine.budget == service.budget
        assert mine.data == service.data  # storage-server's VOLUME /data; nobody else keeps data
    # sutra-api's code reads STORAGE_URL and HYBRID_SERVICE_URL with its peers' addresses as
    # defaults: given as {peer}, as stack.toml gives them, so they follow the peers' ports.
    assert found["sutra-api"].environment == reference.service("sutra-api").environment


def test_a_volume_named_by_a_variable_is_filled_as_a_build_fills_it():
    """`VOLUME $DATA_DIR`: an ENV of the stage or of the stage it is built on, an ARG the stage
    declares (a global default reaches it only through a declaration); what stays unset is empty."""
    text = (
        "ARG ROOT=/var/lib\nARG UNSEEN=/nowhere\n"
        "FROM python:3.11-slim AS base\nARG ROOT\nENV DATA_DIR=${ROOT}/sutra\n"
        "FROM base AS other\nENV DATA_DIR=/other\n"
        "FROM base\nVOLUME $UNSEEN ${DATA_DIR}\n"
    )
    assert _data(None, parse_dockerfile(text)) == "/var/lib/sutra"
    legacy_env = 'FROM python:3.11-slim\nARG NAME=facts\nENV STORE /srv/$NAME\nVOLUME ["$STORE"]\n'
    assert _data(None, parse_dockerfile(legacy_env)) == "/srv/facts"
