"""`inv verify --env local` on the real reference images: its own project on free ports, the
production manifests' limits, a real load, and a what-if that cannot fit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.k8s.capacity import capacity
from sutra_deploy.k8s.environments import environment
from sutra_deploy.k8s.manifests import render
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.kubectl import Kubectl

from .conftest import STACK, docker, inv

MEASURED = (
    "image size:", "image pull:", "pod startup:", "memory:", "cpu:", "load: throughput", "load: p",
    "finds only: throughput", "finds only: p",
)  # fmt: skip


@pytest.fixture(scope="module")
def production_limits():
    objects = render(Kubectl(Commands(), "kubectl"), environment(DEFAULTS["sutra"], "production"), STACK)
    return {s.name: s.limits for s in capacity(objects).services}


def verify_projects() -> list[str]:
    listed = docker("ps", "--all", "--format", '{{.Label "com.docker.compose.project"}}').stdout.split()
    return sorted({p for p in listed if p.startswith("sutra-verify-")})


def test_verify_on_the_reference_stack_passes_with_real_measurements(built_v2, production_limits, tmp_path):
    before = verify_projects()
    result = inv(
        "verify", "--requests", "120", "--concurrency", "3", "--json", "--report", str(tmp_path / "r"),
        INVOKE_SUTRA_COST_PULL_MEGABYTES_PER_SECOND="7",  # the user's rate, not the plan's 10
    )  # fmt: skip
    report = json.loads(result.stdout)
    failed = [m for m in report["metrics"] if m["status"] == "fail"]
    assert result.returncode == 0, (failed, result.stderr[-2000:])
    assert report["ok"] is True and report["env"] == "local"
    metrics = {m["name"]: m for m in report["metrics"]}
    for name, metric in metrics.items():
        if name.startswith(MEASURED) and metric["status"] in ("pass", "info"):
            assert isinstance(metric["value"], int | float) and metric["value"] > 0, metric
    for service in STACK.service_names:
        for prefix in ("image size", "image pull", "pod startup", "memory", "limits"):
            assert metrics[f"{prefix}: {service}"]["status"] == "pass", metrics[f"{prefix}: {service}"]
    # The limits docker inspect read back are the production manifests' (CPU clamped to the host).
    cpus = int(docker("info", "--format", "{{.NCPU}}").stdout)
    for service, limits in production_limits.items():
        shown = metrics[f"limits: {service}"]["value"]
        memory_mib = limits.memory_bytes // 2**20
        assert shown.startswith(f"{memory_mib // 1024}Gi" if memory_mib >= 1024 else f"{memory_mib}Mi"), shown
        assert f"{min(limits.cpu_millicores, cpus * 1000)}m CPU" in shown and "swap off" in shown
    assert metrics["integrity: facts found after a storage restart"]["status"] == "pass"
    # The finds alone, in a closed loop: 60 of them (half the requests), none failing.
    assert metrics["finds only: errors"]["status"] == "pass"
    assert "60 x POST /query on sutra-api, closed loop, 3 connections" in metrics["finds only: errors"]["how"]
    assert metrics["finds only: p95 latency"]["value"] >= metrics["finds only: p50 latency"]["value"] > 0
    # What the estimate row says it used is what it used: the user's sutra.cost rate.
    estimate = metrics["image pull: all images, at the plan's rate"]
    assert " MB unique bytes at 7 MB/s (sutra.cost.pull_megabytes_per_second)" in estimate["how"]
    unique_mb = float(estimate["how"].split(" MB unique")[0])
    assert estimate["value"] == round(unique_mb / 7, 1) or abs(estimate["value"] - unique_mb / 7) < 0.2
    assert metrics["HPA scale-up"]["status"] == "estimate"
    assert metrics["zero-downtime deployments"]["status"] == "needs a cluster"
    assert (tmp_path / "r" / "index.html").is_file() and (tmp_path / "r" / "verify.json").is_file()
    # Its own project is gone, and so are the tags it pushed under.
    assert verify_projects() == before
    assert "verify-" not in docker("image", "ls", "--format", "{{.Tag}}").stdout


def test_an_api_memory_limit_below_its_need_fails_verify(built_v2):
    result = inv("verify", "--requests", "40", "--memory", "sutra-api=24Mi", "--json")
    assert result.returncode == 1, result.stderr[-2000:]
    report = json.loads(result.stdout)
    failed = {m["name"] for m in report["metrics"] if m["status"] == "fail"}
    assert failed & {"memory: sutra-api", "no OOMKilled containers", "pod startup: sutra-api"}, failed
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: verify failed: ") and "sutra-api" in last


def test_verify_refuses_bad_input_before_starting_anything(built_v2):
    before = verify_projects()
    for args, message in (
        (("--memory", "nope=1Gi"), "unknown service 'nope'"),
        (("--requests", "0"), "--requests must be a positive whole number"),
        (("--registry", "HTTP://bad"), "is not a registry reference"),
    ):
        result = inv("verify", *args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [f"error: {result.stderr.strip()[7:]}"]
        assert message in result.stderr
    assert verify_projects() == before


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_verify_stopped_by_a_signal_tears_its_project_down(built_v2, signum):
    """`timeout 60 inv verify`, a cancelled CI job: the signal ends it as Ctrl-C does, after its
    teardown, instead of leaving its whole compose project running."""
    before = verify_projects()
    process = subprocess.Popen(
        [sys.executable, "-m", "invoke", "verify", "--requests", "400"],
        cwd=PROJECT_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    lines = []
    try:
        for line in process.stderr:  # until its project is up and the load runs
            lines.append(line)
            if line.startswith("[verify] load: "):
                break
        assert set(verify_projects()) - set(before), "".join(lines[-20:])
        process.send_signal(signum)
        rest = process.stderr.read()
        assert process.wait(timeout=120) == 128 + signum, rest[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
    name = signal.Signals(signum).name
    assert rest.strip().splitlines()[-1] == f"stopped by {name}: what it had started was torn down"
    assert verify_projects() == before  # no container of its project is left


def test_what_a_killed_verify_left_is_named_and_inv_cleanup_removes_it(built_v2):
    """SIGKILL leaves no chance to tear down: the next verify names the leftovers, and `inv
    cleanup` removes them, and only them (its owner is gone)."""
    before = verify_projects()
    process = subprocess.Popen(
        [sys.executable, "-m", "invoke", "verify", "--requests", "400"],
        cwd=PROJECT_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        for line in process.stderr:
            if line.startswith("[verify] load: "):
                break
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # it and its children: no teardown at all
        process.wait(timeout=30)
    [left] = sorted(set(verify_projects()) - set(before))
    dry = inv("--dry", "cleanup")
    assert dry.returncode == 0, dry.stderr
    assert f"docker rm --force {left}-" in dry.stdout and left in verify_projects()  # dry: named only
    removed = inv("cleanup", "--json")
    assert removed.returncode == 0, removed.stderr
    found = json.loads(removed.stdout)["leftovers"]
    assert {f["project"] for f in found if f["kind"] == "container"} == {left}
    assert all("is gone" in f["why"] for f in found if f["kind"] == "container")
    assert verify_projects() == before
    assert left not in docker("network", "ls", "--format", "{{.Name}}").stdout
    assert inv("cleanup").stdout.strip() == "nothing left behind by an earlier run"
