"""Kubernetes tasks: real `kubectl kustomize` rendering; cluster calls go to the recording
stand-in (tests/standin/kubectl), since no API server can run on these machines."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from sutra_deploy.source import PROJECT_DIR

from ..plan import PLAN_RESOURCES as PLAN
from ..standin.recording import recording_cluster

SERVICES = list(PLAN)


@pytest.fixture
def standin(tmp_path):
    """Run `inv` with kubectl replaced by the recording stand-in; returns (run, records, script)."""
    cluster = recording_cluster(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=PROJECT_DIR,
            env={**os.environ, **cluster.env},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )

    return run, cluster.records, cluster.script


def render(run, env: str, *flags: str) -> list[dict]:
    result = run("k8s-render", "--env", env, *flags)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_render_resolves_images_to_registry_and_tag(standin):
    objects = render(standin[0], "staging", "--registry", "localhost:5000/team", "--tag", "v7")
    images = sorted(
        c["image"]
        for o in objects
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    )
    assert images == sorted(
        f"localhost:5000/team/{s if s.startswith('sutra-') else 'sutra-' + s}:v7" for s in SERVICES
    )


def test_apply_goes_in_the_plans_order_and_waits_for_every_rollout(standin):
    run, calls, script = standin
    script(context="sutra-staging")
    result = run("k8s-apply", "--env", "staging")
    assert result.returncode == 0, result.stderr
    recorded = calls()
    assert recorded[0]["argv"] == ["config", "current-context"]
    applied = [c for c in recorded if c["argv"][0] == "apply"]
    kinds = [
        [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(c["stdin"]) if d] for c in applied
    ]
    assert [k for k, _ in kinds[0]] == ["Namespace"]
    assert {k for k, _ in kinds[1]} == {"PersistentVolumeClaim", "Deployment", "Service"}
    assert ("Deployment", "storage-server") in kinds[1] and ("Service", "storage-server") in kinds[1]
    assert {k for k, _ in kinds[2]} == {"Deployment", "Service"}
    assert {k for k, _ in kinds[3]} <= {"HorizontalPodAutoscaler", "PodDisruptionBudget"}
    deployments = {
        n: d
        for c in applied
        for d in yaml.safe_load_all(c["stdin"])
        if d and d["kind"] == "Deployment"
        for n in [d["metadata"]["name"]]
    }
    # The HPAs own the replica counts of what they scale; storage keeps its single replica.
    assert deployments["storage-server"]["spec"]["replicas"] == 1
    assert all("replicas" not in d["spec"] for n, d in deployments.items() if n != "storage-server")
    waits = [c["argv"][2] for c in recorded if c["argv"][:2] == ["rollout", "status"]]
    assert waits[0] == "deployment/storage-server"
    assert sorted(waits) == sorted(f"deployment/{s}" for s in SERVICES)
    namespaced = [c["argv"] for c in recorded if c["argv"][0] in ("rollout", "get")]
    assert all(argv[argv.index("--namespace") + 1] == "sutra-ai-staging" for argv in namespaced)
    assert all(
        d["metadata"].get("namespace") in (None, "sutra-ai-staging")
        for c in applied
        for d in yaml.safe_load_all(c["stdin"])
        if d
    )
    assert recorded[-1]["argv"][:2] == ["get", "pods,hpa"]


def test_a_wrong_context_stops_everything_before_the_first_apply(standin):
    run, calls, script = standin
    script(context="kind-laptop")
    result = run("k8s-apply", "--env", "staging")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: kubectl's current context is 'kind-laptop' but staging lives in 'sutra-staging'; "
        "run `kubectl config use-context sutra-staging` and try again"
    )
    assert [c["argv"] for c in calls()] == [["config", "current-context"]]


def test_production_needs_confirmation(standin):
    run, calls, script = standin
    script(context="sutra-production")
    result = run("k8s-apply", "--env", "production")
    assert result.returncode == 2
    assert "needs --yes" in result.stderr
    assert calls() == []
    assert run("k8s-apply", "--env", "production", "--yes").returncode == 0


def test_rollback_undoes_or_sets_an_image_then_waits(standin):
    run, calls, _ = standin
    assert run("rollback", "--env", "staging", "--service", "sutra-api").returncode == 0
    argvs = [c["argv"] for c in calls()]
    assert argvs[1][:3] == ["rollout", "undo", "deployment/sutra-api"]
    assert argvs[2][:3] == ["rollout", "status", "deployment/sutra-api"]
    result = run("rollback", "--env", "staging", "--to", "v1")
    assert result.returncode == 0, result.stderr
    sets = [c["argv"] for c in calls() if c["argv"][:2] == ["set", "image"]]
    api_image = "sutra-api=registry.example.com/sutra-ai/sutra-api:v1"
    assert sets[1][:4] == ["set", "image", "deployment/sutra-api", api_image]
    assert len(sets) == 5


def test_a_rollout_that_times_out_is_reported(standin):
    run, _, script = standin
    script(
        answers=[
            {
                "match": ["rollout", "status", "deployment/sutra-hybrid"],
                "exit": 1,
                "stderr": "error: timed out waiting for the condition",
            }
        ]
    )
    result = run("k8s-apply", "--env", "staging")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: rollout of deployment/sutra-hybrid did not finish: error: timed out waiting for the condition"
    )


def test_capacity_is_computed_from_the_production_manifests(standin):
    run, _, _ = standin
    result = run("capacity", "--env", "production", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected_min_cpu = sum(low * int(cpu[0].rstrip("m")) for (low, _), cpu, _ in PLAN.values())
    expected_max_cpu = sum(high * int(cpu[1].rstrip("m")) for (_, high), cpu, _ in PLAN.values())
    assert report["min"]["cpu_millicores"] == expected_min_cpu == 2200
    assert report["max"]["cpu_millicores"] == expected_max_cpu == 77000
    assert report["max"]["memory_bytes"] == 77 * 2**30
    assert [s["name"] for s in report["services"]] == sorted(SERVICES, key=[*PLAN].index)
