import threading
from dataclasses import replace
from pathlib import Path

import pytest

from sutra_deploy.core.errors import SourceRootError, failure_reason
from sutra_deploy.core.source import PROJECT_DIR, REFERENCE_ROOT
from sutra_deploy.core.stack import load_stack
from sutra_deploy.images.build import (
    Builder,
    BuildProgress,
    BuildResult,
    SharedStage,
    concurrency,
    declared_build_args,
    plan_builds,
    shared_stage_builds,
    with_build_args,
)
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.engine import Engine

STACK = load_stack(PROJECT_DIR / "stack.toml")


def test_plan_follows_build_order_and_the_plans_contexts():
    steps = plan_builds(STACK, STACK.services, "v2", REFERENCE_ROOT)
    assert [s.ref for s in steps] == [
        "sutra-storage-server:v2",
        "sutra-api:v2",
        "sutra-hybrid:v2",
        "sutra-control:v2",
        "sutra-client:v2",
    ]
    by_ref = {s.ref: s for s in steps}
    # api and hybrid build from the monorepo root, the others from their package folder.
    assert by_ref["sutra-api:v2"].context == REFERENCE_ROOT
    assert by_ref["sutra-api:v2"].dockerfile == REFERENCE_ROOT / "packages/sutra-api/Dockerfile.optimized"
    assert by_ref["sutra-control:v2"].context == REFERENCE_ROOT / "packages/sutra-control"
    v1 = plan_builds(STACK, STACK.select(["sutra-api"]), "v1", REFERENCE_ROOT)
    assert v1[0].dockerfile == REFERENCE_ROOT / "packages/sutra-api/Dockerfile"


def test_missing_dockerfile_under_a_root_is_named(tmp_path):
    (tmp_path / "packages/sutra-storage").mkdir(parents=True)
    with pytest.raises(SourceRootError) as caught:
        plan_builds(STACK, STACK.select(["storage-server"]), "v2", tmp_path)
    assert str(caught.value).startswith("storage-server: packages/sutra-storage/Dockerfile not found under")
    with pytest.raises(SourceRootError, match=r"sutra-api: build context \. not found under .*nowhere"):
        plan_builds(STACK, STACK.select(["sutra-api"]), "v2", tmp_path / "nowhere")


def test_declared_build_args_and_only_those_are_passed(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "ARG PYTHON_IMAGE=python:3.11-slim\narg RUNTIME\nFROM ${PYTHON_IMAGE}\nARG LATE=1\n"
    )
    assert declared_build_args(dockerfile) == {"PYTHON_IMAGE", "RUNTIME", "LATE"}
    (tmp_path / "packages/sutra-storage").mkdir(parents=True)
    (tmp_path / "packages/sutra-storage/Dockerfile").write_text("ARG RUST_IMAGE=rust\nFROM ${RUST_IMAGE}\n")
    steps = plan_builds(STACK, STACK.select(["storage-server"]), "v2", tmp_path)
    [step] = with_build_args(steps, {"RUST_IMAGE": "sutra-base/rust:bookworm", "PYTHON_IMAGE": "x"})
    assert step.build_args == {"RUST_IMAGE": "sutra-base/rust:bookworm"}


def test_progress_reads_steps_and_cache_hits():
    emitted: list[str] = []
    progress = BuildProgress("sutra-api:v2", emitted.append)
    for line in [
        "Sending build context to Docker daemon  5.12kB",
        "Step 1/3 : ARG PYTHON_IMAGE=python:3.11-slim",
        "Step 2/3 : FROM sutra-base/python:3.11-slim",
        " ---> 8398c6d12c74",
        "Step 3/3 : RUN python3 -m pip install --no-cache-dir --target /opt/site -r /tmp/requirements.txt",
        " ---> Running in 1f2e3d4c5b6a",
    ]:
        progress(line)
    assert progress.total == 3 and progress.ran == 1 and progress.cached == 2
    assert progress.current.startswith("Step 3/3 (RUN python3 -m pip install")
    assert emitted[0] == "[sutra-api:v2] Step 1/3 : ARG PYTHON_IMAGE=python:3.11-slim"
    assert len(emitted) == 3


# What `docker buildx build --progress=plain` printed here (buildx 0.13.1, the engine's BuildKit
# v0.8) for sutra-control, two stages, its build stage cached.
BUILDKIT_OUTPUT = """\
#0 building with "default" instance using docker driver

#1 [internal] load build definition from Dockerfile.optimized
#1 transferring dockerfile: 1.48kB done
#1 DONE 0.0s

#5 [stage-1 1/3] FROM docker.io/sutra-base/python-distroless:3.11
#5 DONE 0.0s

#6 [build 1/3] FROM docker.io/sutra-base/python:3.11-slim
#6 DONE 0.0s

#8 [build 2/3] COPY sutra_control /opt/app/sutra_control
#8 CACHED

#9 [build 3/3] RUN python3 -m compileall -q -f --invalidation-mode unchecked-hash /opt/app
#9 CACHED

#10 [stage-1 2/3] COPY --from=build /opt/app /opt/app
#10 DONE 0.0s

#11 [stage-1 3/3] RUN ["python3", "-c", "import sutra_control.main"]
#11 0.412 Traceback (most recent call last):
#11 0.413 ModuleNotFoundError: No module named 'sutra_control'
#11 ERROR: process "python3 -c import sutra_control.main" did not complete successfully: exit code: 1
------
 > [stage-1 3/3] RUN ["python3", "-c", "import sutra_control.main"]:
------
ERROR: failed to solve: process "python3 -c import sutra_control.main" did not complete successfully
"""


def test_progress_reads_buildkits_steps_cache_hits_and_the_step_that_failed():
    emitted: list[str] = []
    progress = BuildProgress("sutra-control:v2", emitted.append)
    for line in BUILDKIT_OUTPUT.splitlines():
        progress(line)
    # Six steps (the internal ones are not the Dockerfile's); the two FROMs and two cache hits ran
    # nothing.
    assert (progress.total, progress.cached) == (6, 4)
    assert progress.current == '[stage-1 3/3] RUN ["python3", "-c", "import sutra_control.main"]'
    assert progress.failure == "ModuleNotFoundError: No module named 'sutra_control'"  # what it said
    assert emitted[0] == "[sutra-control:v2] [stage-1 1/3] FROM docker.io/sutra-base/python-distroless:3.11"
    assert len(emitted) == 6


def test_failure_reason_prefers_the_error_line():
    output = "\n".join(
        [
            "Step 4/9 : RUN pip install -r requirements.txt",
            "Collecting fastapi==99",
            "ERROR: No matching distribution found for fastapi==99",
            "The command '/bin/sh -c pip install -r requirements.txt' returned a non-zero code: 1",
        ]
    )
    assert failure_reason(output) == "ERROR: No matching distribution found for fastapi==99"
    assert failure_reason("just one line\n") == "just one line"


def test_reference_dockerfiles_take_their_bases_as_args():
    for service in STACK.services:
        for version in STACK.versions:
            path = REFERENCE_ROOT / service.dockerfile(version)
            args = declared_build_args(path)
            assert args & {b.build_arg for b in STACK.base_images}, f"{path} declares no base image ARG"
            assert Path(path).read_text().count("USER ") >= 1, f"{path} does not drop root"


def test_the_reference_web_stack_is_one_stage_written_alike_in_both_images_that_share_it():
    """sutra-api and sutra-hybrid share a layer only if their shared stage is the same text and
    installs what each would have installed itself: the same pins as their requirements."""

    def stage(service: str) -> str:
        text = (REFERENCE_ROOT / "packages" / service / "Dockerfile.optimized").read_text()
        return text.split("AS shared-web\n", 1)[1].split("\nFROM ", 1)[0]

    assert stage("sutra-api") == stage("sutra-hybrid")
    shared = _pins((REFERENCE_ROOT / "requirements-web.txt").read_text())
    assert shared
    for service in ("sutra-api", "sutra-hybrid"):
        own = _pins((REFERENCE_ROOT / "packages" / service / "requirements.txt").read_text())
        assert shared.items() <= own.items(), service


def _pins(text: str) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    return dict(line.split("==", 1) for line in lines if line)


def test_a_stage_images_share_is_built_first_under_legacy_and_they_build_side_by_side_after(tmp_path):
    """Two images with the same shared stage, built at the same time by the legacy builder,
    would each make their own copy of the layer: the stage is built alone first, then both
    take it from the cache, side by side. Images that share nothing never wait."""
    shared = "FROM ${PYTHON_IMAGE} AS shared-web\nRUN true\n"
    texts = {
        "storage-server": "FROM scratch\n",
        "sutra-api": f"ARG PYTHON_IMAGE=python\n{shared}\nFROM ${{PYTHON_IMAGE}} AS deps\n",
        "sutra-hybrid": f"ARG PYTHON_IMAGE=python\n{shared}\nFROM ${{PYTHON_IMAGE}} AS deps\n",
        "sutra-control": "FROM ${PYTHON_IMAGE} AS shared-ffffffffffff\nFROM scratch\n",  # only its own
        "sutra-client": "FROM scratch\n",
    }
    steps = []
    for step in plan_builds(STACK, STACK.services, "v2", REFERENCE_ROOT):
        path = tmp_path / f"{step.service.name}.Dockerfile"
        path.write_text(texts[step.service.name])
        steps.append(replace(step, dockerfile=path))
    names = [s.service.name for s in steps]
    assert names == ["storage-server", "sutra-api", "sutra-hybrid", "sutra-control", "sutra-client"]
    assert shared_stage_builds(steps) == [SharedStage("shared-web", (1, 2))]  # control's is its own

    running: set[str] = set()
    overlaps: list[set[str]] = []
    ended: list[str] = []
    lock = threading.Lock()

    def working(name: str, seconds: float) -> None:
        with lock:
            running.add(name)
            overlaps.append(set(running))
        threading.Event().wait(seconds)
        with lock:
            running.discard(name)
            ended.append(name)

    class Recording(Builder):
        stage_first = True

        def build_stage(self, stage, steps):
            working(stage.name, 0.3)  # longest: an image that did not wait would start beside it

        def build_one(self, step, no_cache):
            if step.service.name in ("sutra-api", "sutra-hybrid") and self.stage_first:
                assert "shared-web" in ended  # the shared stage is in the cache by now
            working(step.service.name, 0.1)
            return BuildResult(step, 0.1, 1, 0)

    engine = Engine(Commands())
    # Two at a time: a waiting image must not hold a place meanwhile.
    results = Recording(engine).build_all(steps, jobs=2, no_cache=False)
    assert [r.step.service.name for r in results] == names  # plan order, the stage not among them
    assert overlaps[1] == {"shared-web", "storage-server"}  # the stage does not build alone
    assert any({"shared-web", "sutra-control"} <= o for o in overlaps)  # others pass the waiting ones
    assert any({"sutra-api", "sutra-hybrid"} <= o for o in overlaps)  # after it, side by side

    # One at a time, the order alone puts the stage in the cache before hybrid needs it; with
    # --no-cache nothing comes from the cache, so nothing waits; BuildKit shares the steps
    # builds running at once have in common. No stage build in any of them.
    for builder, jobs, no_cache in (("legacy", 1, False), ("legacy", 3, True), ("buildkit", 3, False)):
        overlaps.clear()
        ended.clear()
        recording = Recording(engine, builder=builder)
        recording.stage_first = False
        recording.build_all(steps, jobs=jobs, no_cache=no_cache)
        assert "shared-web" not in ended
        assert any({"sutra-api", "sutra-hybrid"} <= o for o in overlaps) == (jobs > 1)

    started: list[str] = []

    class Broken(Builder):
        def build_one(self, step, no_cache):
            started.append(step.service.name)
            if step.service.name == "sutra-api":
                raise RuntimeError("a bug")
            return BuildResult(step, 0.0, 1, 0)

    # A build that raises stops what waits for it, as a failed one does; the error comes out.
    with pytest.raises(RuntimeError, match="a bug"):
        Broken(engine).build_all(steps, jobs=1, no_cache=False)
    assert started == ["storage-server", "sutra-api"]


def test_auto_builds_every_image_at_once_under_buildkit_and_one_per_core_under_legacy():
    def cpus() -> int:
        return 2  # the engine's

    assert concurrency(None, "buildkit", 5, cpus) == 5
    assert concurrency(None, "legacy", 5, cpus) == 2
    assert concurrency(None, "legacy", 1, cpus) == 1  # never more places than images
    assert concurrency(3, "buildkit", 5, cpus) == concurrency(3, "legacy", 5, cpus) == 3  # --jobs as given
