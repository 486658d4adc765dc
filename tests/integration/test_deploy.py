"""`inv deploy` end to end on real images, a real registry and a real compose stack, with
the cluster played by the recording kubectl stand-in (tests/standin/kubectl): no Kubernetes
API server can run here, so nothing below claims that a cluster was deployed to."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from sutra_deploy.core.source import PROJECT_DIR, REFERENCE_ROOT
from sutra_deploy.local.compose_stack import port_env
from sutra_deploy.ship.history import CHANGE_CAUSE, COMMIT_ANNOTATION, DIGEST_ANNOTATION, RELEASE_ANNOTATION
from sutra_deploy.ship.release import resolve_release
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.registry import RegistryClient

from ..standin.recording import recording_cluster
from .conftest import STACK, docker, inv

DEPLOYMENTS = list(STACK.service_names)


@pytest.fixture
def cluster(tmp_path):
    return recording_cluster(tmp_path)


def test_dry_deploy_prints_the_whole_sequence_and_touches_nothing(built_v2, cluster):
    result = inv("--dry", "deploy", "--env", "staging", "--tag", "r1", **cluster.env)
    assert result.returncode == 0, result.stderr[-2000:]
    commands = [line for line in result.stdout.splitlines() if line.startswith(("docker ", "kubectl", "/"))]
    verbs = [" ".join(c.split()[1:3]) for c in commands]  # "build --force-rm", "rollout status", …
    first = {verb: verbs.index(verb) for verb in reversed(verbs)}
    # context check, then build, then tag and push the release, then apply, wait, port-forward
    # for smoke; only then the tags that move to it (they never name a rolled-back release)
    assert verbs[0] == "config current-context"
    order = [
        "build --force-rm",
        "tag sutra-storage-server:r1",
        "push registry.example.com/sutra-ai/sutra-storage-server:r1",
        "apply --filename",
        "rollout status",
        "port-forward svc/storage-server",
        "push registry.example.com/sutra-ai/sutra-storage-server:v2",
        "push registry.example.com/sutra-ai/sutra-storage-server:latest",
    ]
    assert [first[v] for v in order] == sorted(first[v] for v in order)
    # Each image is built as the release too, and shipped under its name.
    registry = "registry.example.com/sutra-ai"
    for service in STACK.services:
        [build] = [c for c in commands if c.startswith(f"docker build --force-rm --tag {service.ref('v2')} ")]
        assert f" --tag {service.reference(tag='r1')} " in build
        for tag in ("r1", "v2", "latest"):
            assert (
                f"docker tag {service.reference(tag='r1')} {service.reference(registry, tag=tag)}" in commands
            )
            assert f"docker push {service.reference(registry, tag=tag)}" in commands
    assert verbs.count("apply --filename") == 4
    assert verbs.count("rollout status") == len(DEPLOYMENTS)
    assert "dry run: the size gate runs on the built images" in result.stderr
    assert cluster.calls() == []  # nothing reached the (stand-in) cluster
    assert "registry.example.com" not in docker("images", "--format", "{{.Repository}}").stdout


def test_a_wrong_context_stops_the_deploy_before_anything_is_built_or_pushed(built_v2, cluster, registry):
    address, _ = registry
    cluster.script(context="kind-laptop")
    result = inv(
        "deploy",
        "--env",
        "staging",
        **cluster.env,
        INVOKE_SUTRA_ENVIRONMENTS_STAGING_REGISTRY=f"{address}/sutra-ai",
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: kubectl's current context is 'kind-laptop' but staging lives in 'sutra-staging'; "
        "run `kubectl config use-context sutra-staging` and try again"
    )
    assert cluster.calls() == [["config", "current-context"]]
    assert RegistryClient(address).catalog() == []


FAILING_API_ROLLOUT = {
    "match": ["rollout", "status", "deployment/sutra-api"],
    "exit": 1,
    "times": 1,
    "stderr": 'error: deployment "sutra-api" exceeded its progress deadline',
}


def deploy_staging(cluster, address: str):
    return inv(
        "deploy",
        "--env",
        "staging",
        **cluster.env,
        INVOKE_SUTRA_ENVIRONMENTS_STAGING_REGISTRY=f"{address}/sutra-ai",
    )


def test_a_failed_rollout_is_rolled_back_on_its_own(built_v2, cluster, registry):
    address, _ = registry
    # A cluster already running every Deployment at revision 3; this deploy leaves storage alone.
    cluster.script(
        context="sutra-staging",
        answers=[FAILING_API_ROLLOUT],
        revisions=dict.fromkeys(DEPLOYMENTS, 3),
        unchanged=["storage-server"],
    )
    result = deploy_staging(cluster, address)
    assert result.returncode == 1
    changed = [d for d in DEPLOYMENTS if d != "storage-server"]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: rollout of deployment/sutra-api did not finish: error: deployment")
    assert last.endswith("rolled back " + ", ".join(changed))
    calls = cluster.calls()
    undos = [c for c in calls if c[:2] == ["rollout", "undo"]]
    # Each changed Deployment goes back to exactly where it was; storage keeps running.
    assert undos == [
        ["rollout", "undo", f"deployment/{d}", "--namespace", "sutra-ai-staging", "--to-revision=3"]
        for d in changed
    ]
    first_undo = calls.index(undos[0])
    assert not any(c[0] == "port-forward" for c in calls)  # no smoke after a failed rollout
    waits_after = [c[2] for c in calls[first_undo:] if c[:2] == ["rollout", "status"]]
    assert waits_after == [f"deployment/{d}" for d in changed]
    # What was applied pointed at the release just pushed, by the digests the registry holds;
    # the floating tags were never moved to a release that did not roll out.
    [release] = [
        line.split()[2].rstrip(":")
        for line in result.stderr.splitlines()
        if line.startswith("[build] release ")
    ]
    client = RegistryClient(address)
    for deployment in (d for d in cluster.applied() if d["kind"] == "Deployment"):
        [image] = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
        repository, _, digest = image.partition("@")
        assert client.digest(repository.removeprefix(f"{address}/"), release) == digest
        assert client.digest(repository.removeprefix(f"{address}/"), "v2") is None


@pytest.fixture
def release_name():
    """A release of the test's own; the local tags its build makes are removed afterwards."""
    name = f"it-{uuid.uuid4().hex[:10]}"
    yield name
    docker("image", "rm", *(s.reference(tag=name) for s in STACK.services), check=False)


def test_a_successful_deploy_smokes_through_port_forwards(
    built_v2, cluster, registry, local_stack, release_name
):
    address, _ = registry
    # The stand-in's port-forwards relay to the real local stack: the smoke test runs for real.
    relay = {f"svc/{s.name}": int(local_stack[port_env(s)]) for s in STACK.services}
    cluster.script(context="sutra-staging", relay=relay)
    result = inv(
        "deploy",
        "--env",
        "staging",
        "--tag",
        release_name,
        **cluster.env,
        INVOKE_SUTRA_ENVIRONMENTS_STAGING_REGISTRY=f"{address}/sutra-ai",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "end-to-end" in result.stdout and "FAILED" not in result.stdout
    forwards = [c for c in cluster.calls() if c[0] == "port-forward"]
    assert sorted(c[1] for c in forwards) == sorted(relay)
    assert not any(c[:2] == ["rollout", "undo"] for c in cluster.calls())
    # Each Deployment records the release, its commit (a clean tree's) and the digest it runs,
    # on its own metadata: on the pod template they would roll every Deployment every release.
    client = RegistryClient(address)
    commit = resolve_release(
        Commands(), REFERENCE_ROOT, STACK.versions, tag=release_name, required=True
    ).commit
    deployments = [d for d in cluster.applied() if d["kind"] == "Deployment"]
    assert sorted(d["metadata"]["name"] for d in deployments) == sorted(DEPLOYMENTS)
    for deployment in deployments:
        service = STACK.service(deployment["metadata"]["name"])
        digest = client.digest(f"sutra-ai/{service.image}", release_name)
        [image] = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
        assert image == service.reference(f"{address}/sutra-ai", digest=digest)
        notes = deployment["metadata"]["annotations"]
        assert notes[RELEASE_ANNOTATION] == release_name and notes[DIGEST_ANNOTATION] == digest
        assert notes.get(COMMIT_ANNOTATION) == commit
        assert notes[CHANGE_CAUSE].startswith(f"sutra release {release_name}")
        template = deployment["spec"]["template"]["metadata"].get("annotations") or {}
        assert not {RELEASE_ANNOTATION, COMMIT_ANNOTATION, DIGEST_ANNOTATION, CHANGE_CAUSE} & set(template)


def test_a_first_deploy_that_fails_has_nothing_to_roll_back(built_v2, cluster, registry):
    address, _ = registry
    cluster.script(context="sutra-staging", answers=[FAILING_API_ROLLOUT])  # an empty namespace
    result = deploy_staging(cluster, address)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].endswith("; nothing to roll back (new or unchanged)")
    assert not any(c[:2] == ["rollout", "undo"] for c in cluster.calls())
    assert "deployment/sutra-api is new: nothing to roll back to" in result.stderr


def test_production_deploy_needs_confirmation(built_v2, cluster):
    result = inv("deploy", "--env", "production", **cluster.env)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: deploying to production needs --yes (no terminal to ask for confirmation)"
    )
    assert cluster.calls() == []


def test_local_deploy_runs_build_sizes_up_and_smoke(local_stack):
    result = inv("deploy", "--env", "local", **local_stack)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TOTAL" in result.stdout and "end-to-end" in result.stdout


def run_script(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(PROJECT_DIR / "scripts" / "deploy-optimized.sh")],
        env={**os.environ, "INV": f"{sys.executable} -m invoke", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_plans_script_wraps_inv_deploy_and_honours_its_variables(built_v2, cluster):
    dry = {"INVOKE_RUN_DRY": "true", **cluster.env}
    script = {"DEPLOY": "k8s", "REGISTRY": "localhost:5999/team", "VERSION": "v2", "TAG": "r1"}
    result = run_script({**dry, **script})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "docker push localhost:5999/team/sutra-api:r1" in result.stdout  # TAG: the release
    assert "docker push localhost:5999/team/sutra-api:v2" in result.stdout
    assert "rollout status deployment/sutra-api --namespace sutra-ai-staging" in result.stdout
    assert cluster.calls() == []
    pushed = run_script({**dry, "PUSH": "true", "REGISTRY": "localhost:5999/team"})
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    assert "docker push localhost:5999/team/sutra-client:latest" in pushed.stdout
    assert "kubectl" not in pushed.stdout
    wrong = run_script({"DEPLOY": "cloud"})
    assert wrong.returncode == 2 and "DEPLOY=cloud: expected k8s, local or nothing" in wrong.stderr
