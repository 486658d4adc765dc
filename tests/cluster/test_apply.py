"""`inv k8s-apply` against the real control plane: the namespace first, every rollout waited
for by the real Deployment controller, and a second apply that changes nothing."""

from __future__ import annotations

import json
import os
import subprocess

import yaml

from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.k8s.preflight import gaps, served_kinds

from .conftest import OVERLAYS, inv
from .control_plane import ControlPlane
from .node_agent import PRE_STOP_SLEEP


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True)


NAMESPACES = {"staging": "sutra-ai-staging", "production": "sutra-ai"}


def state(cluster: ControlPlane, namespace: str) -> dict[str, tuple]:
    """Each object's generation and its ReplicaSets: what an apply that changes anything moves."""
    found = {}
    kinds = "deployments,services,hpa,pdb,networkpolicies,pvc,replicasets"
    for item in json.loads(cluster.kubectl("get", kinds, "-n", namespace, "-o", "json").stdout)["items"]:
        meta = item["metadata"]
        found[f"{item['kind']}/{meta['name']}"] = (meta.get("generation"), meta["uid"])
    return found


def test_what_the_cluster_lacks_is_found_before_anything_is_applied(cluster, cluster_env):
    """The real staging overlay, as users apply it, on a cluster too old for three of its
    fields: refused from the cluster's own schema, naming each, with nothing applied (this
    test runs before any other applies staging)."""
    env = {**cluster_env("staging")}
    env.pop("INVOKE_SUTRA_ENVIRONMENTS_STAGING_OVERLAY")  # the real k8s/overlays/staging
    result = inv("k8s-apply", "--env", "staging", env=env)
    assert result.returncode == 2, result.stderr[-3000:]
    [line] = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: the cluster lacks what the manifests use: ")
    for lacks in (
        "io.k8s.api.core.v1.Handler has no field sleep (Deployment/sutra-api at "
        "spec.template.spec.containers[0].lifecycle.preStop.sleep, and 3 more)",
        "io.k8s.api.policy.v1.PodDisruptionBudgetSpec has no field unhealthyPodEvictionPolicy",
    ):
        assert lacks in line
    assert "[k8s] apply" not in result.stderr
    # A deploy finds it before it builds or pushes anything.
    deployed = inv("deploy", "--env", "staging", "--tag", "never-built", env=env)
    assert deployed.returncode == 2, deployed.stderr[-3000:]
    assert deployed.stderr.strip().splitlines()[-1] == line
    assert "[build]" not in deployed.stderr and "docker push" not in deployed.stdout
    absent = cluster.kubectl("get", "namespace", NAMESPACES["staging"], check=False)
    assert absent.returncode == 1 and "NotFound" in absent.stderr, "something was applied"


def test_the_test_overlays_remove_exactly_what_the_cluster_lacks(cluster):
    """Every field the test overlays take out is one the server's schema lacks, and none it
    lacks is left (tests/cluster/README.md lists them)."""

    openapi = cluster.api("GET", "/openapi/v2").json()
    for name in NAMESPACES:
        real = list(
            yaml.safe_load_all(
                cluster.kubectl("kustomize", str(PROJECT_DIR / "k8s" / "overlays" / name)).stdout
            )
        )
        tested = list(yaml.safe_load_all(cluster.kubectl("kustomize", str(OVERLAYS / name)).stdout))
        versions = {o["apiVersion"] for o in real}
        discovery = {v: cluster.api("GET", "/api/v1" if v == "v1" else f"/apis/{v}").json() for v in versions}
        served = served_kinds(discovery)
        assert gaps(tested, served, openapi) == []
        lacking = {g.lacks.rsplit(" ", 1)[-1] for g in gaps(real, served, openapi)}
        assert lacking == (
            {"sleep", "unhealthyPodEvictionPolicy"} | ({"matchLabelKeys"} if name == "production" else set())
        )
        # What the agent emulates of a removed preStop sleep is what the real overlay says.
        carried = {
            o["metadata"]["name"]: (o["spec"]["template"]["metadata"].get("annotations") or {}).get(
                PRE_STOP_SLEEP
            )
            for o in tested
            if o["kind"] == "Deployment"
        }
        for deployment in (o for o in real if o["kind"] == "Deployment"):
            [container] = deployment["spec"]["template"]["spec"]["containers"]
            sleep = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep")
            expected = str(sleep["seconds"]) if sleep else None
            assert carried[deployment["metadata"]["name"]] == expected, deployment["metadata"]["name"]


def test_staging_applies_in_order_waits_for_every_rollout_and_converges(cluster, cluster_env):
    first = inv("k8s-apply", "--env", "staging", env=cluster_env("staging"))
    assert first.returncode == 0, first.stderr[-3000:]
    namespace = NAMESPACES["staging"]
    deployments = json.loads(cluster.kubectl("get", "deployments", "-n", namespace, "-o", "json").stdout)
    names = {d["metadata"]["name"] for d in deployments["items"]}
    assert names == {"storage-server", "sutra-api", "sutra-hybrid", "sutra-control", "sutra-client"}
    for deployment in deployments["items"]:
        status = deployment["status"]
        assert status.get("availableReplicas", 0) >= 1, deployment["metadata"]["name"]
        assert status["observedGeneration"] == deployment["metadata"]["generation"]
    claim = cluster.kubectl("get", "pvc", "storage-data", "-n", namespace, "-o", "json").stdout
    assert json.loads(claim)["status"]["phase"] == "Bound"
    hpas = json.loads(cluster.kubectl("get", "hpa.v2.autoscaling", "-n", namespace, "-o", "json").stdout)
    assert len(hpas["items"]) == 4

    before = state(cluster, namespace)
    second = inv("k8s-apply", "--env", "staging", env=cluster_env("staging"))
    assert second.returncode == 0, second.stderr[-3000:]
    assert state(cluster, namespace) == before, "a second apply changed the environment"

    # --diff: the server's dry run of the apply; nothing changes, even when something would.
    same = inv("k8s-apply", "--env", "staging", "--diff", env=cluster_env("staging"))
    assert same.returncode == 0, same.stderr[-3000:]
    assert same.stdout.startswith("staging: no changes")
    other = inv("--dry", "k8s-apply", "--env", "staging", "--diff", "--tag", "v9", env=cluster_env("staging"))
    assert other.returncode == 0, other.stderr[-3000:]
    assert "+        image: " in other.stdout and ":v9" in other.stdout
    assert state(cluster, namespace) == before, "a diff changed the environment"


def test_production_asks_nothing_with_yes_and_rolls_out(cluster, cluster_env):
    result = inv("k8s-apply", "--env", "production", "--yes", env=cluster_env("production"))
    assert result.returncode == 0, result.stderr[-3000:]
    deployments = json.loads(cluster.kubectl("get", "deployments", "-n", "sutra-ai", "-o", "json").stdout)
    assert len(deployments["items"]) == 5
    assert all(d["status"].get("availableReplicas", 0) >= 1 for d in deployments["items"])


def test_the_pods_networks_and_volumes_are_owned_by_this_run_and_cleanup_leaves_them(cluster, cluster_env):
    """What the node agent makes on the engine carries this test process as its owner: `inv
    cleanup` takes it after a killed run (tests/integration/test_leftovers.py), never while the
    run lives."""
    prefix = f"sutra-test-{cluster.agent.id}"
    label = f"label=sutra.dev/test-cluster={cluster.agent.id}"
    owners = {
        kind: docker(kind, "ls", *(["--all"] if kind == "container" else []), "--filter", label,
                     "--format", '{{.Label "ai.sutra.owner-pid"}}').stdout.split()
        for kind in ("container", "network", "volume")
    }  # fmt: skip
    assert owners["container"] and owners["network"] and owners["volume"], owners
    assert {pid for pids in owners.values() for pid in pids} == {str(os.getpid())}
    dry = inv("--dry", "cleanup", "--json", env={})
    assert dry.returncode == 0, dry.stderr
    assert not [f for f in json.loads(dry.stdout)["leftovers"] if f["project"].startswith(prefix)]


def test_a_changed_selector_is_named_with_the_fix(cluster, cluster_env, tmp_path):
    """The server refuses a Deployment whose selector changed (immutable): the Deployment, the
    fix, and what was applied before it, exit 2. Staging runs from the test above."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    relative = os.path.relpath(OVERLAYS / "staging", overlay)
    (overlay / "kustomization.yaml").write_text(
        f"""apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - {relative}
patches:
  - target:
      kind: Deployment
      name: sutra-control
    patch: |-
      - op: add
        path: /spec/selector/matchLabels/track
        value: canary
      - op: add
        path: /spec/template/metadata/labels/track
        value: canary
"""
    )
    env = {**cluster_env("staging"), "INVOKE_SUTRA_ENVIRONMENTS_STAGING_OVERLAY": str(overlay)}
    before = state(cluster, NAMESPACES["staging"])
    result = inv("k8s-apply", "--env", "staging", env=env)
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: apply workloads (8 objects) refused: "), last
    assert 'Deployment "sutra-control" is invalid: spec.selector' in last and "field is immutable" in last
    assert "delete deployment/sutra-control and apply again" in last
    assert "applied before it: namespace (7 objects), storage (3 objects)" in last
    assert (
        state(cluster, NAMESPACES["staging"])["Deployment/sutra-control"]
        == before["Deployment/sutra-control"]
    )
