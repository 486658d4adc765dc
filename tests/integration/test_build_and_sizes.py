"""`inv build` and `inv sizes` on the real reference images."""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from sutra_deploy.core.units import MB
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.engine import Engine

from .conftest import STACK, docker, inv

PLAN_V2_TOTAL = 751 * MB


def test_build_summary_lists_every_image_in_build_order(built_v2):
    refs = re.findall(r"^(sutra-[a-z-]+:v2)\s", built_v2.stdout, re.MULTILINE)
    assert refs == [s.ref("v2") for s in STACK.services]
    assert "[build] builder: BuildKit (docker buildx " in built_v2.stderr  # auto, with buildx here
    for service in STACK.services:  # BuildKit's steps on stderr, or that it had nothing to do
        ref = service.ref("v2")
        assert f"[{ref}] [" in built_v2.stderr or f"[{ref}] unchanged since" in built_v2.stderr


def test_sizes_json_matches_the_engine_and_every_image_is_within_its_limit(built_v2):
    result = inv("sizes", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [s["name"] for s in report["services"]] == list(STACK.service_names)
    for row in report["services"]:
        engine_size = int(docker("image", "inspect", "-f", "{{.Size}}", row["image"]).stdout)
        assert row["size_bytes"] == engine_size
        assert row["status"] in ("ok", "over-target")
        assert row["size_bytes"] <= row["limit_bytes"]
    assert report["total_bytes"] == sum(s["size_bytes"] for s in report["services"])
    assert report["total_bytes"] < PLAN_V2_TOTAL
    # Shared base layers are counted once, so the unique bytes are fewer than the sum.
    assert 0 < report["unique_bytes"] < report["total_bytes"]


def test_table_and_chained_build_sizes(built_v2):
    result = inv("build", "sizes")
    assert result.returncode == 0, result.stderr
    assert "Cached steps" in result.stdout  # build's summary
    assert re.search(r"^TOTAL\s+1604 MB", result.stdout, re.MULTILINE)
    assert "Unique bytes across the 5 images" in result.stdout


def test_an_image_over_its_limit_fails_the_gate(built_v2, tmp_path):
    strict = tmp_path / "stack.toml"
    text = (STACK.path).read_text()
    strict.write_text(
        text.replace(
            "size_mb = { old = 147, target = 100, limit = 120 }",
            "size_mb = { old = 147, target = 1, limit = 2 }",
        )
    )
    result = inv("sizes", INVOKE_SUTRA_STACK_FILE=str(strict))
    assert result.returncode == 1
    assert "OVER LIMIT" in result.stdout
    assert "sutra-control:v2 is" in result.stderr and "(limit 2.0 MB)" in result.stderr
    assert "Traceback" not in result.stderr


def summary_row(result, ref: str) -> list[str]:
    return next(line for line in result.stdout.splitlines() if line.startswith(ref)).split()


@pytest.mark.parametrize("builder", ["buildkit", "legacy"])
def test_rebuild_with_nothing_changed_builds_nothing_on_either_builder(built_v2, builder):
    # The session's images came from BuildKit: legacy builds them again (the builder is an
    # input), then finds them unchanged, as BuildKit does at once.
    if builder == "legacy":
        first = inv("build", "--service", "sutra-control,sutra-client", "--builder", builder)
        assert first.returncode == 0, first.stderr
        assert "[build] builder: legacy (DOCKER_BUILDKIT=0 docker build; asked for)" in first.stderr
        assert "[sutra-client:v2] Step 1/" in first.stderr
    result = inv("build", "--service", "sutra-control,sutra-client", "--builder", builder)
    assert result.returncode == 0, result.stderr
    for ref in ("sutra-control:v2", "sutra-client:v2"):
        assert summary_row(result, ref)[-1] == "unchanged"  # its inputs are those of the image it has
    # --no-cache builds every step again, and records it: the next build is unchanged again.
    fresh = inv("build", "--service", "sutra-client", "--no-cache", "--builder", builder)
    assert fresh.returncode == 0, fresh.stderr
    cached, total = summary_row(fresh, "sutra-client:v2")[-1].split("/")
    assert int(total) > 0 and int(cached) < int(total)
    again = inv("build", "--service", "sutra-client", "--builder", builder)
    assert summary_row(again, "sutra-client:v2")[-1] == "unchanged"
    # What either builder made runs: its health check passes (the services' own test below).
    assert (
        docker("image", "inspect", "-f", "{{.Config.User}}", "sutra-client:v2").stdout.strip()
        == "65532:65532"
    )


def test_every_image_runs_as_non_root_and_becomes_healthy(built_v2):
    network = f"sutra-it-{uuid.uuid4().hex[:8]}"
    docker("network", "create", network)
    started = []
    try:
        for service in STACK.services:
            ref = service.ref("v2")
            user = docker("image", "inspect", "-f", "{{.Config.User}}", ref).stdout.strip()
            assert user and user.split(":")[0] not in ("0", "root"), f"{ref} runs as {user!r}"
            name = f"{network}-{service.name}"
            # Each container gets the service's name on the network, as compose would give it.
            docker("run", "-d", "--name", name, "--network", network, "--network-alias", service.name, ref)
            started.append(name)
        for name in started:
            wait_healthy(name)
    finally:
        for name in started:
            docker("rm", "--force", "--volumes", name, check=False)
        docker("network", "rm", network, check=False)


def wait_healthy(container: str) -> None:
    from sutra_deploy.tools.waiting import wait_until

    def status() -> bool:
        state = docker("inspect", "-f", "{{.State.Health.Status}}", container).stdout.strip()
        assert state != "unhealthy", docker("logs", "--tail", "30", container, check=False).stderr
        return state == "healthy"

    wait_until(status, timeout=90, interval=1, what=f"{container} to become healthy")


@pytest.mark.parametrize("builder", ["buildkit", "legacy"])
def test_a_failing_build_names_the_image_and_the_step(tmp_path, builder):
    root = tmp_path / "sutra"
    shutil.copytree(
        STACK.path.parent / "reference" / "packages" / "sutra-control", root / "packages" / "sutra-control"
    )
    dockerfile = root / "packages" / "sutra-control" / "Dockerfile.optimized"
    lines = dockerfile.read_text().splitlines()
    first_from = next(i for i, line in enumerate(lines) if line.startswith("FROM"))
    lines.insert(first_from + 1, "RUN python3 -c \"raise SystemExit('deliberate failure for the test')\"")
    dockerfile.write_text("\n".join(lines) + "\n")
    result = inv("build", "--service", "sutra-control", "--root", str(root), "--builder", builder)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    step = "Step " if builder == "legacy" else "[build 2/"  # legacy counts the ARGs as steps
    assert last.startswith(f"error: building sutra-control:v2 failed at {step}"), last
    assert "RUN python3 -c" in last and "deliberate failure for the test" in last


def image_files(ref: str) -> dict[str, int]:
    """Every regular file of the image's filesystem: path -> size (docker export of a container
    that never starts)."""
    container = docker("create", ref, "unused").stdout.strip()
    try:
        exported = subprocess.run(["docker", "export", container], capture_output=True, check=True).stdout
    finally:
        docker("rm", container, check=False)
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        return {m.name: m.size for m in tar.getmembers() if m.isreg()}


@pytest.mark.parametrize("service", ["sutra-api", "sutra-hybrid"])
def test_the_images_carry_only_what_a_runtime_loads(built_v2, service):
    """Each file class left out, checked in the built image; the images still start healthy and
    answer the journey (test_every_image_runs_… above, tests/integration/test_local_stack.py)."""
    files = image_files(STACK.service(service).ref("v2"))
    site = [name for name in files if name.startswith(("opt/site/", "opt/shared/"))]
    assert site, "no dependencies installed"
    assert not [n for n in site if "/tests/" in n or "/test/" in n]  # test suites
    assert not [n for n in site if n.endswith((".pyi", ".pxd", ".pyx", ".c", ".h"))]  # stubs, C
    assert not [n for n in site if n.endswith(".py")]  # byte-code alone, in each module's place
    assert "opt/shared/web/fastapi/__init__.pyc" in files  # the web stack, in the shared layer
    assert not [n for n in files if n.startswith("opt/site/fastapi/")]  # and only there
    assert not [n for n in site if "/bin/" in n or n.split("/")[2] in ("pip", "setuptools", "wheel")]
    # The runtime base: the standard library as byte-code, without its tests, docs and tools.
    assert "usr/lib/python3.11/os.pyc" in files and "usr/lib/python3.11/os.py" not in files
    for gone in (
        "usr/lib/python3.11/pydoc_data/",
        "usr/lib/python3.11/test/",
        "usr/lib/python3.11/ensurepip/",
    ):
        assert not [n for n in files if n.startswith(gone)], gone
    libraries = [n.rpartition("/")[2] for n in files if n.startswith("usr/lib/x86_64-linux-gnu/")]
    assert not [n for n in libraries if n.startswith(("libreadline", "libkrb5", "libncursesw", "libdb-"))]
    assert not [n for n in files if n.startswith("usr/share/man/")]
    assert [n for n in files if n.startswith("usr/share/doc/") and n.endswith("/copyright")]  # licences stay


def test_api_and_hybrid_share_the_web_stack_layer(built_v2):
    """The reference's shared stage makes one layer both images carry: a node pulls it once."""
    api, hybrid = (
        json.loads(
            docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", STACK.service(s).ref("v2")).stdout
        )
        for s in ("sutra-api", "sutra-hybrid")
    )
    assert api[0] == hybrid[0]  # the runtime base
    assert api[1] == hybrid[1]  # the web stack, copied straight onto it
    assert api[2] != hybrid[2]  # each one's own dependencies


def test_the_engine_is_asked_once_per_image_and_again_after_it_changes_it(built_v2):
    """A build asks for each image and base several times; the engine answers once per image,
    under whatever name, until the tool itself changes what a name points to."""
    import docker as docker_sdk

    asked: list[str] = []

    def counting_client():
        client = docker_sdk.from_env()
        inspect = client.api.inspect_image
        client.api.inspect_image = lambda ref: asked.append(ref) or inspect(ref)
        return client

    engine = Engine(Commands(), client_factory=counting_client)
    ref = STACK.service("sutra-api").ref("v2")
    found = engine.image(ref)
    assert found is not None and found.ref == ref
    assert engine.image(ref) == found
    assert engine.image(f"docker.io/library/{ref}").id == found.id  # the same image, another name
    assert asked == [ref]
    target = f"sutra-asked-once-{uuid.uuid4().hex[:8]}:t"
    assert engine.image(target) is None
    try:
        engine.tag(ref, target)
        assert engine.image(target).id == found.id  # asked again: the tool changed it
    finally:
        docker("image", "rm", target, check=False)
    assert asked == [ref, target, target]


def test_local_base_images_are_up_to_date_after_a_build(built_v2):
    result = inv("base-images")
    assert result.returncode == 0, result.stderr
    for base in STACK.base_images:
        row = next(line for line in result.stdout.splitlines() if line.startswith(base.local))
        assert "up to date" in row


@pytest.mark.parametrize("service", ["sutra-control"])
def test_v1_baseline_is_measured_from_the_v1_image(built_v2, service):
    result = inv("build", "--service", service, "--version", "v1")
    assert result.returncode == 0, result.stderr[-2000:]
    v1_size = int(docker("image", "inspect", "-f", "{{.Size}}", f"{service}:v1").stdout)
    sizes = inv("sizes", "--service", service, "--baseline", "v1", "--json")
    assert sizes.returncode == 0, sizes.stderr
    [row] = json.loads(sizes.stdout)["services"]
    assert row["old_bytes"] == v1_size
    assert row["size_bytes"] < v1_size  # the optimized image really is smaller


def test_dry_build_prints_the_exact_commands_and_builds_nothing():
    # Local bases: a dry run with official ones asks their registry first (the preflight),
    # which these machines cannot reach.
    result = inv(
        "--dry", "build", "--service", "sutra-client,storage-server", "--bases", "local", "--version", "v1",
        "--builder", "legacy",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    root = STACK.path.parent / "reference"
    rust, debian = STACK.base_image("rust"), STACK.base_image("debian")
    # git's release names a build of the default version only: a v1 build gets no release tag.
    # The legacy builder is asked for by name, as the real run does: the line runs as printed.
    builds = [line for line in result.stdout.splitlines() if " docker build " in line]
    assert builds == [
        f"DOCKER_BUILDKIT=0 docker build --force-rm --tag sutra-storage-server:v1 "
        f"--file {root}/packages/sutra-storage/Dockerfile --build-arg {rust.build_arg}={rust.local} "
        "--label org.sutra.service=storage-server --label org.sutra.version=v1 "
        f"{root}/packages/sutra-storage",
        f"DOCKER_BUILDKIT=0 docker build --force-rm --tag sutra-client:v1 "
        f"--file {root}/packages/sutra-client/Dockerfile --build-arg {debian.build_arg}={debian.local} "
        "--label org.sutra.service=sutra-client --label org.sutra.version=v1 "
        f"{root}/packages/sutra-client",
    ]


def test_a_dry_buildkit_build_prints_commands_that_run_as_printed(built_v2):
    result = inv("--dry", "build", "--service", "sutra-api", "--bases", "local", "--builder", "buildkit")
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("docker buildx build ")]
    argv = shlex.split(line)
    assert argv[:5] == ["docker", "buildx", "build", "--progress=plain", "--load"]
    given = Path(argv[argv.index("--file") + 1])
    # The checkout's Dockerfile, line for line, with pip's download cache as a mount.
    source = STACK.path.parent / "reference" / STACK.service("sutra-api").dockerfile("v2")
    assert len(given.read_text().splitlines()) == len(source.read_text().splitlines())
    assert "RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked python3 -m pip install" in (
        given.read_text()
    )
    # Copied from the dry run, it builds (from the cache the session's build left).
    built = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]


def test_dry_base_images_prints_mmdebstrap_and_import_without_running_them():
    result = inv("--dry", "base-images", "--only", "debian", "--force")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # With the fixed file times it runs with: the line runs as printed, to the same bytes.
    assert (
        lines[0].startswith("SOURCE_DATE_EPOCH=") and " mmdebstrap --variant=minbase --format=tar" in lines[0]
    )
    assert lines[1].startswith("docker import --change") and lines[1].endswith(
        "sutra-base/debian:bookworm-slim"
    )


def test_explain_attributes_an_images_bytes_to_layers_and_packages(built_v2):
    result = inv("sizes", "--explain", "sutra-hybrid", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    engine_size = int(docker("image", "inspect", "-f", "{{.Size}}", "sutra-hybrid:v2").stdout)
    assert report["image"] == "sutra-hybrid:v2" and report["size_bytes"] == engine_size
    in_layers = sum(layer["bytes"] for layer in report["layers"])
    # Layers hold the files' bytes; the engine also counts a little directory and link metadata.
    assert engine_size - 64 * 1024 <= in_layers <= engine_size
    assert any("/opt/site" in layer["created_by"] for layer in report["layers"])
    packages = {p["name"]: p for p in report["packages"]}
    assert packages["numpy"]["chain"] == ["numpy", "sutra-hybrid"]
    assert packages["pydantic_core"]["chain"][-2:] == ["fastapi", "sutra-hybrid"]
    dependency_layers = [
        layer
        for layer in report["layers"]
        if "/opt/site" in layer["created_by"] or "/opt/shared/" in layer["created_by"]
    ]
    assert len(dependency_layers) == 2  # the service's own, and the web stack it shares with sutra-api
    assert sum(p["bytes"] for p in report["packages"]) <= sum(layer["bytes"] for layer in dependency_layers)
    assert report["wasted_bytes"] >= 0


def test_explain_reads_an_image_without_a_shell(built_v2):
    result = inv("sizes", "--explain", "storage-server")
    assert result.returncode == 0, result.stderr
    assert "sutra-storage-server:v2" in result.stdout and "Python distributions: 0.0 MB in 0" in result.stdout


def test_cost_uses_measured_unique_bytes(built_v2):
    result = inv("sizes", "--cost", "--json")
    assert result.returncode == 0, result.stderr
    cost = json.loads(result.stdout)
    sizes = json.loads(inv("sizes", "--json").stdout)
    assert cost["after"]["stored_bytes"] == sizes["unique_bytes"]
    assert cost["before"]["stored_bytes"] == sizes["old_total_bytes"]
    assert cost["after"]["total_dollars_per_month"] < cost["before"]["total_dollars_per_month"]
