"""What `--json` prints, byte for byte, held against files in tests/unit/golden/: machines read
it, so a refactor (issue 19's reports and one renderer) must not change it by accident. A
deliberate change rewrites the files with SUTRA_UPDATE_GOLDEN=1 and says so in its commit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sutra_deploy.core.source import PROJECT_DIR, REFERENCE_ROOT
from sutra_deploy.images.base_images import Action, BaseImageResult, BaseImagesReport
from sutra_deploy.images.build import BuildReport, BuildResult, plan_builds
from sutra_deploy.images.cost import CostRates
from sutra_deploy.images.sizes import compare
from sutra_deploy.local.compose_stack import LocalStatus, ServiceStatus
from sutra_deploy.ship.push import Pushed, PushReport

from .deps.monorepos import SCENARIO, tree
from .images.test_sizes import STACK, at_targets, report_with

GOLDEN = Path(__file__).parent / "golden"


def inv_json(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "invoke", *args, "--json"],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300,
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"},  # nothing here needs it
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    return result.stdout


def check(name: str, text: str) -> None:
    golden = GOLDEN / name
    if os.environ.get("SUTRA_UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert golden.is_file(), f"no golden file {golden.name}: run with SUTRA_UPDATE_GOLDEN=1 once"
    assert text == golden.read_text(), f"--json output differs from {golden.relative_to(PROJECT_DIR)}"


@pytest.mark.parametrize("env", ["production", "staging"])
def test_capacity(env):
    check(f"capacity-{env}.json", inv_json("capacity", "--env", env))


def test_fix_deps_on_the_plans_starting_point(tmp_path):
    root = tree(tmp_path / "checkout", SCENARIO)
    printed = inv_json("fix-deps", "--root", str(root), "--service", "sutra-api,sutra-hybrid")
    check("fix-deps.json", printed.replace(str(root), "<root>"))


def test_sizes_and_their_cost():
    report = report_with(at_targets({"sutra-hybrid": 999_000_000}))
    check("sizes.json", report.to_json())
    check("sizes-cost.json", compare(report, CostRates.from_settings({})).to_json())


def test_build():
    steps = plan_builds(STACK, STACK.services, "v2", REFERENCE_ROOT)
    results = [BuildResult(steps[0], seconds=0.0, steps_total=0, steps_cached=0, unchanged=True)]
    results += [BuildResult(step, 12.345 * index, 9, index) for index, step in enumerate(steps) if index]
    sizes = {step.ref: 1_000_000 * (index + 1) for index, step in enumerate(steps) if index != 4}
    check("build.json", BuildReport(tuple(results), sizes).to_json())


def test_base_images():
    layer = "sha256:" + "a" * 64
    results = (
        BaseImageResult("debian", "sutra-base/debian:bookworm-slim", Action.UP_TO_DATE, 0.0, 74_000, layer),
        BaseImageResult("python", "sutra-base/python:3.11-slim", Action.BUILT, 61.25, 157_000_000, layer),
        BaseImageResult("rust", "sutra-base/rust:bookworm", Action.WOULD_BUILD, 0.0, None, None),
    )
    check("base-images.json", BaseImagesReport(results).to_json())


def test_local_status():
    rows = (
        ServiceStatus(STACK.service("sutra-api"), "running", "healthy", 8000, 4.256),
        ServiceStatus(STACK.service("sutra-client"), "", "", 8080, None),
    )
    check("local-status.json", LocalStatus(rows).to_json())


def test_push():
    digest = "sha256:" + "c" * 64
    pushed = tuple(
        Pushed(s.name, f"registry.example.com:5000/{s.image}:{tag}", digest)
        for s in STACK.services[:2]
        for tag in ("cc8fb61088a1", "v2", "latest")
    )
    check("push.json", PushReport("cc8fb61088a1", pushed).to_json())
