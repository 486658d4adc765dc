"""`inv deploy --env staging` against the real control plane, end to end: build, size gate,
push to the loopback registry, apply by digest, wait for the real rollouts, smoke through
`kubectl port-forward`; and a release that cannot start, rolled back on its own."""

from __future__ import annotations

import json
import re
import shutil
import threading

import pytest

from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.k8s.zero_downtime import ANNOTATION, RolloutRecord
from sutra_deploy.ship.history import (
    CHANGE_CAUSE,
    COMMIT_ANNOTATION,
    DIGEST_ANNOTATION,
    RELEASE_ANNOTATION,
    RELEASE_KEYS,
)
from sutra_deploy.tools.registry import RegistryClient

from ..git_repos import git
from .conftest import inv
from .control_plane import ControlPlane

STACK = load_stack(PROJECT_DIR / "stack.toml")
NAMESPACE = "sutra-ai-staging"
BREAK_AT_STARTUP = """

import contextlib as _contextlib


@_contextlib.asynccontextmanager
async def _this_release_cannot_start(_app):
    raise RuntimeError("this release cannot start")
    yield


app.router.lifespan_context = _this_release_cannot_start
"""


def deployments(cluster: ControlPlane) -> dict[str, dict]:
    listed = json.loads(cluster.kubectl("get", "deployments", "-n", NAMESPACE, "-o", "json").stdout)
    return {d["metadata"]["name"]: d for d in listed["items"]}


def image_of(deployment: dict) -> str:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container["image"]


def pods_of(cluster: ControlPlane, name: str) -> list[dict]:
    selector = f"app.kubernetes.io/name={name}"
    listed = json.loads(cluster.kubectl("get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "json").stdout)
    return listed["items"]


def test_deploy_ships_by_digest_waits_and_smokes_through_the_cluster(cluster, cluster_env, registry):
    result = inv("deploy", "--env", "staging", env=cluster_env("staging"), timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    # The release the deploy named (git's: the commit, `-dirty` for a tree with changes).
    [release] = re.findall(r"^\[build\] release (\S+): ", result.stderr, re.MULTILINE)
    assert "end-to-end" in result.stdout and "and found it (POST /query on sutra-api)" in result.stdout
    client = RegistryClient(registry)
    for name, deployment in deployments(cluster).items():
        service = STACK.service(name)
        repository, _, digest = image_of(deployment).partition("@")
        assert repository == f"{registry}/sutra-ai/{service.image}"
        assert digest == client.digest(f"sutra-ai/{service.image}", "v2"), name
        running = [p for p in pods_of(cluster, name) if not p["metadata"].get("deletionTimestamp")]
        assert running, name
        for pod in running:
            [status] = pod["status"]["containerStatuses"]
            assert status["ready"] and status["imageID"].endswith(digest), (name, status)
        # The release, its commit and the digest, on the Deployment's own metadata (on the pod
        # template they would roll every Deployment on every release).
        notes = deployment["metadata"]["annotations"]
        assert notes[DIGEST_ANNOTATION] == digest and notes[RELEASE_ANNOTATION] == release
        commit = notes[COMMIT_ANNOTATION]  # a `-dirty` release too: the commit it started from
        assert commit.startswith(release.removesuffix("-dirty")) and len(commit) == 40
        assert notes[CHANGE_CAUSE].startswith(f"sutra release {release}")
        template = deployment["spec"]["template"]["metadata"].get("annotations") or {}
        assert not set(RELEASE_KEYS) & set(template)


def cluster_state(cluster: ControlPlane, namespace: str = NAMESPACE) -> dict[str, tuple]:
    """Each object's uid, generation and resourceVersion: anything that changes one moves it."""
    kinds = "deployments,replicasets,services,hpa,pdb,networkpolicies,pvc"
    listed = json.loads(cluster.kubectl("get", kinds, "-n", namespace, "-o", "json").stdout)["items"]
    return {
        f"{o['kind']}/{o['metadata']['name']}": (o["metadata"]["uid"], o["metadata"].get("generation"))
        for o in listed
    }


def test_a_dry_deploy_shows_the_servers_diff_and_changes_nothing(cluster, cluster_env, registry):
    before, tags = cluster_state(cluster), RegistryClient(registry).tags("sutra-ai/sutra-api")
    result = inv("--dry", "deploy", "--env", "staging", "--tag", "dry-r1", env=cluster_env("staging"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[deploy] dry run: what applying would change, from kubectl diff" in result.stderr
    # The server's own merge: each Deployment would move from the digest it runs to the tag.
    for name in STACK.service_names:
        assert f"apps.v1.Deployment.{NAMESPACE}.{name}" in result.stdout, name
    by_tag = rf"^\+\s+(- )?image: {re.escape(registry)}/sutra-ai/sutra-api:v2$"
    assert re.search(by_tag, result.stdout, re.MULTILINE), result.stdout[-3000:]
    assert "docker push" in result.stdout and "apply --filename -" in result.stdout  # printed only
    assert cluster_state(cluster) == before
    assert RegistryClient(registry).tags("sutra-ai/sutra-api") == tags


def test_a_wrong_context_stops_the_deploy_before_anything_is_built_or_pushed(cluster, cluster_env, registry):
    env = cluster_env("staging")
    elsewhere = cluster.kubeconfig.with_name("kubeconfig-elsewhere")
    shutil.copy(env["KUBECONFIG"], elsewhere)
    cluster.kubectl(f"--kubeconfig={elsewhere}", "config", "use-context", "sutra-production")
    before, tags = cluster_state(cluster), RegistryClient(registry).tags("sutra-ai/sutra-api")
    result = inv("deploy", "--env", "staging", "--tag", "wrong-r1", env={**env, "KUBECONFIG": str(elsewhere)})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: kubectl's current context is 'sutra-production' but staging lives in 'sutra-staging'; "
        "run `kubectl config use-context sutra-staging` and try again"
    )
    assert cluster_state(cluster) == before
    assert RegistryClient(registry).tags("sutra-ai/sutra-api") == tags


def test_production_deploy_needs_confirmation(cluster, cluster_env):
    before = cluster_state(cluster, "sutra-ai")
    result = inv("deploy", "--env", "production", env=cluster_env("production"))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: deploying to production needs --yes (no terminal to ask for confirmation)"
    )
    assert cluster_state(cluster, "sutra-ai") == before


ROLLING = ("sutra-api", "sutra-hybrid", "sutra-control", "sutra-client")  # outside the storage tier
CHANGED_FILES = (
    "sutra-api/sutra_api/main.py",
    "sutra-hybrid/sutra_hybrid/main.py",
    "sutra-control/sutra_control/main.py",
    "sutra-client/www/app.js",
)


@pytest.fixture
def changed_root(tmp_path):
    """A checkout whose four rolling services differ from the running release by a comment: a
    release that changes every image but storage's, so each of those Deployments rolls."""
    root = tmp_path / "checkout"
    shutil.copytree(PROJECT_DIR / "reference", root)
    for name in CHANGED_FILES:
        source = root / "packages" / name
        source.write_text(
            source.read_text()
            + "\n// a release that only rolls\n".replace("//", "#" if name.endswith(".py") else "//")
        )
    git(root, "init", "--quiet")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "a release that only rolls")
    yield root
    restored = inv("build", env={}, timeout=1800)  # the reference's images take v2 back
    assert restored.returncode == 0, restored.stderr[-3000:]


class AvailabilityWatch(threading.Thread):
    """The test's own look at the rollouts, beside the deploy's: each Deployment's lowest
    available replica count while the deploy runs."""

    def __init__(self, cluster: ControlPlane) -> None:
        super().__init__(daemon=True)
        self.cluster, self.lowest, self.done = cluster, {}, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.3):
            for name, deployment in deployments(self.cluster).items():
                available = deployment["status"].get("availableReplicas", 0)
                self.lowest[name] = min(available, self.lowest.get(name, available))


def test_a_rolling_release_is_measured_without_downtime_and_verify_reports_it(
    cluster, cluster_env, changed_root
):
    before = deployments(cluster)
    assert all(before[name]["status"].get("availableReplicas", 0) >= 1 for name in ROLLING)
    watch = AvailabilityWatch(cluster)
    watch.start()
    try:
        result = inv(
            "deploy",
            "--env",
            "staging",
            env={**cluster_env("staging"), "SUTRA_ROOT": str(changed_root)},
            timeout=1800,
        )
    finally:
        watch.done.set()
        watch.join()
    assert result.returncode == 0, result.stderr[-3000:]
    after = deployments(cluster)
    for name in ROLLING:
        assert image_of(after[name]) != image_of(before[name]), f"{name} did not roll"
        notes = after[name]["metadata"]["annotations"]
        record = RolloutRecord.from_annotation(notes[ANNOTATION])
        assert record.revision == int(notes["deployment.kubernetes.io/revision"])
        # One replica in staging, maxUnavailable 0: the floor is every replica.
        assert (record.replicas, record.floor) == (
            after[name]["spec"]["replicas"],
            after[name]["spec"]["replicas"],
        )
        assert record.min_available >= record.floor, record
        assert record.requests > 0 and record.failed == 0, record
        assert watch.lowest[name] >= record.floor, (name, watch.lowest)
        print(f"{name}: {record.summary()} over {record.seconds} s")  # the figures, with -rP
    assert "storage-server" not in {
        n for n, d in after.items() if ANNOTATION in d["metadata"].get("annotations", {})
    }

    verified = inv("verify", "--env", "staging", "--json", env=cluster_env("staging"), timeout=900)
    metrics = {m["name"]: m for m in json.loads(verified.stdout)["metrics"]}
    zero = metrics["zero-downtime deployments"]
    assert zero["status"] == "pass", zero
    assert zero["value"] == 0 and zero["how"].startswith("measured by the last deploy during each rollout")
    assert all(name in zero["how"] for name in ROLLING)


@pytest.fixture
def broken_root(tmp_path):
    """A checkout whose sutra-api exits as it starts: a release whose pods crash."""
    root = tmp_path / "checkout"
    shutil.copytree(PROJECT_DIR / "reference", root)
    main = root / "packages" / "sutra-api" / "sutra_api" / "main.py"
    # Imports fine (the build's smoke import passes), then fails as the server starts it.
    main.write_text(main.read_text() + BREAK_AT_STARTUP)
    git(root, "init", "--quiet")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "a broken API")
    yield root
    # The broken build moved sutra-api:v2 here; the reference's image takes it back.
    restored = inv("build", "--service", "sutra-api", env={}, timeout=1800)
    assert restored.returncode == 0, restored.stderr[-3000:]


def test_a_release_whose_pods_crash_is_rolled_back_on_its_own(cluster, cluster_env, broken_root, registry):
    before = {name: image_of(d) for name, d in deployments(cluster).items()}
    client = RegistryClient(registry)
    floating = {s.image: client.digest(f"sutra-ai/{s.image}", "v2") for s in STACK.services}
    assert len(before) == 5, "the deploy test before this one left the environment running"
    env = {
        **cluster_env("staging"),
        "SUTRA_ROOT": str(broken_root),
        "INVOKE_SUTRA_ENVIRONMENTS_STAGING_ROLLOUT_TIMEOUT": "40",
    }
    result = inv("deploy", "--env", "staging", env=env, timeout=1800)

    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: rollout of deployment/sutra-api did not finish"), last
    assert "rolled back" in last and "sutra-api" in last.split("rolled back", 1)[1]
    after = deployments(cluster)
    assert {name: image_of(d) for name, d in after.items()} == before, "not every Deployment went back"
    api = after["sutra-api"]
    assert api["status"].get("availableReplicas", 0) >= 1
    serving = [p for p in pods_of(cluster, "sutra-api") if not p["metadata"].get("deletionTimestamp")]
    assert serving and all(p["spec"]["containers"][0]["image"] == before["sutra-api"] for p in serving)
    assert all(p["status"]["containerStatuses"][0]["ready"] for p in serving)
    # The floating tags were never moved to the release that did not roll out.
    assert {s.image: client.digest(f"sutra-ai/{s.image}", "v2") for s in STACK.services} == floating


def test_a_first_deploy_that_fails_has_nothing_to_roll_back(cluster, cluster_env, broken_root):
    """Production's namespace emptied first (test_apply applied it): every Deployment is new."""
    cluster.kubectl("delete", "namespace", "sutra-ai", "--wait=true", "--timeout=180s")
    env = {
        **cluster_env("production"),
        "SUTRA_ROOT": str(broken_root),
        "INVOKE_SUTRA_ENVIRONMENTS_PRODUCTION_ROLLOUT_TIMEOUT": "40",
    }
    result = inv("deploy", "--env", "production", "--yes", env=env, timeout=1800)
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: rollout of deployment/sutra-api did not finish"), last
    assert last.endswith("; nothing to roll back (new or unchanged)"), last
    assert "deployment/sutra-api is new: nothing to roll back to" in result.stderr
    assert "rollout undo" not in result.stderr
