"""Changing a cluster, against the recording kubectl stand-in: the context check, applying in
the plan's order, waiting for rollouts, rolling back.

Why a stand-in here, with a real control plane in tests/cluster/: these are unit tests (no
Docker, no control-plane build, seconds on any machine), and what they check is what only a
recording shows: the exact sequence of kubectl calls, and scripted failures at one precise
step (this Deployment's rollout fails, that undo is refused). The same flows against the real
server: tests/cluster/test_apply.py, test_deploy.py, test_rollback.py."""

from __future__ import annotations

import json

import pytest
import yaml

from sutra_deploy.core.errors import RolloutFailed
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.k8s.environments import environment
from sutra_deploy.k8s.manifests import namespace_of, render, stateful_names
from sutra_deploy.k8s.rollout import apply_groups, deployments_in_order, rollback
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.kubectl import Kubectl

from ...standin.recording import REAL_KUBECTL, STANDIN, recording_cluster

STACK = load_stack(PROJECT_DIR / "stack.toml")
STAGING = environment(DEFAULTS["sutra"], "staging")
PRODUCTION = environment(DEFAULTS["sutra"], "production")
RENDERED = render(Kubectl(Commands(), str(REAL_KUBECTL)), STAGING, STACK)
NAMESPACE = namespace_of(RENDERED)
STATEFUL = stateful_names(RENDERED)
# What every rollout wait looks for: the storage tier first, then the stack's build order.
ROLLOUT_ORDER = sorted(STACK.service_names, key=lambda name: name not in STATEFUL)


def documents(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def canonical(objects: list[dict]) -> list[str]:
    return sorted(json.dumps(o, sort_keys=True) for o in objects)


def wait_argv(name: str, env=STAGING) -> list[str]:
    return [
        "rollout",
        "status",
        f"deployment/{name}",
        "--namespace",
        NAMESPACE,
        f"--timeout={env.rollout_timeout}s",
    ]


def network_policy(name: str, selector: dict, ingress: list | None = None) -> dict:
    spec: dict = {"podSelector": selector, "policyTypes": ["Ingress"]}
    if ingress is not None:
        spec["ingress"] = ingress
    return {"kind": "NetworkPolicy", "metadata": {"name": name}, "spec": spec}


def test_groups_and_waits_follow_the_plans_order():
    storage = {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}
    objects = [
        network_policy("default-deny-ingress", {}),
        {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "b"}},
        {"kind": "Deployment", "metadata": {"name": "b"}, "spec": {"template": {"spec": {}}}},
        {"kind": "PersistentVolumeClaim", "metadata": {"name": "data"}},
        # Named like the storage Deployment, still applied with the namespace.
        network_policy("s", {"matchLabels": {"app.kubernetes.io/name": "s"}}, [{"from": []}]),
        {"kind": "Namespace", "metadata": {"name": "ns"}},
        {"kind": "Deployment", "metadata": {"name": "s"}, "spec": {"template": {"spec": storage}}},
        {"kind": "Deployment", "metadata": {"name": "a"}, "spec": {"template": {"spec": {}}}},
        {"kind": "PodDisruptionBudget", "metadata": {"name": "a"}},
    ]
    groups = {
        label: [(o["kind"], o["metadata"]["name"]) for o in members]
        for label, members in apply_groups(objects)
    }
    assert list(groups) == ["namespace", "storage", "workloads", "autoscalers"]
    # The namespace, the policies that allow, and only then the default deny.
    assert groups["namespace"] == [
        ("Namespace", "ns"),
        ("NetworkPolicy", "s"),
        ("NetworkPolicy", "default-deny-ingress"),
    ]
    assert groups["storage"] == [("PersistentVolumeClaim", "data"), ("Deployment", "s")]
    assert groups["workloads"] == [("Deployment", "b"), ("Deployment", "a")]
    assert deployments_in_order(objects, ["b", "a"]) == ["s", "b", "a"]
    assert deployments_in_order(objects) == ["s", "a", "b"]


def test_apply_goes_in_the_plans_order_and_waits_for_every_rollout(standin):
    standin.cluster.script(context=STAGING.context)
    result = standin.run("k8s-apply", "--env", "staging")
    assert result.returncode == 0, result.stderr
    records = standin.cluster.records()
    assert records[0]["argv"] == ["config", "current-context"]
    groups = [documents(r["stdin"]) for r in records if r["argv"][0] == "apply"]
    kinds = [[(d["kind"], d["metadata"]["name"]) for d in group] for group in groups]
    # The namespace with its network policies, the default deny last; then the workloads.
    assert [k for k, _ in kinds[0]] == ["Namespace"] + ["NetworkPolicy"] * (len(kinds[0]) - 1)
    assert kinds[0][-1] == ("NetworkPolicy", "default-deny-ingress")
    assert {n for k, n in kinds[0] if k == "NetworkPolicy"} >= set(STACK.service_names)
    assert {k for k, _ in kinds[1]} == {"PersistentVolumeClaim", "Deployment", "Service"}
    assert all(("Deployment", name) in kinds[1] and ("Service", name) in kinds[1] for name in STATEFUL)
    assert {k for k, _ in kinds[2]} == {"Deployment", "Service"}
    assert {k for k, _ in kinds[3]} <= {"HorizontalPodAutoscaler", "PodDisruptionBudget"}
    # Exactly the rendered manifests: nothing added, dropped or rewritten on the way.
    assert canonical([d for group in groups for d in group]) == canonical(RENDERED)
    assert [r["argv"] for r in records if r["argv"][:2] == ["rollout", "status"]] == [
        wait_argv(name) for name in ROLLOUT_ORDER
    ]
    assert records[-1]["argv"] == ["get", "pods,hpa", "--namespace", NAMESPACE]
    assert result.stdout == "NAME  READY  STATUS\n(stand-in: no cluster)\n"  # what kubectl printed


def test_a_wrong_context_stops_everything_before_the_first_apply(standin):
    standin.cluster.script(context="kind-laptop")
    result = standin.run("k8s-apply", "--env", "staging")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: kubectl's current context is 'kind-laptop' but staging lives in '{STAGING.context}'; "
        f"run `kubectl config use-context {STAGING.context}` and try again"
    )
    assert standin.cluster.calls() == [["config", "current-context"]]


def test_production_needs_confirmation(standin):
    standin.cluster.script(context=PRODUCTION.context)
    result = standin.run("k8s-apply", "--env", "production")
    assert result.returncode == 2
    assert "needs --yes" in result.stderr
    assert standin.cluster.calls() == []
    assert standin.run("k8s-apply", "--env", "production", "--yes").returncode == 0


def test_a_rollout_that_times_out_is_reported(standin):
    hybrid = STACK.service("sutra-hybrid").name
    standin.cluster.script(
        answers=[
            {
                "match": ["rollout", "status", f"deployment/{hybrid}"],
                "exit": 1,
                "stderr": "error: timed out waiting for the condition",
            }
        ]
    )
    result = standin.run("k8s-apply", "--env", "staging")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: rollout of deployment/{hybrid} did not finish: error: timed out waiting for the condition"
    )


def test_rollback_undoes_the_last_rollout_then_waits(standin):
    api = STACK.service("sutra-api").name
    assert standin.run("rollback", "--env", "staging", "--service", api).returncode == 0
    assert standin.cluster.calls() == [
        ["config", "current-context"],
        ["rollout", "undo", f"deployment/{api}", "--namespace", NAMESPACE],
        wait_argv(api),
    ]


def test_rollback_to_a_version_sets_each_image_to_the_environments_reference(standin):
    result = standin.run("rollback", "--env", "staging", "--to", "v1")
    assert result.returncode == 0, result.stderr
    calls = standin.cluster.calls()
    sets = [c for c in calls if c[:2] == ["set", "image"]]
    assert sets == [
        [
            "set",
            "image",
            f"deployment/{name}",
            f"{name}={STACK.service(name).reference(STAGING.registry, tag='v1')}",
            "--namespace",
            NAMESPACE,
        ]
        for name in ROLLOUT_ORDER
    ]
    assert calls[-len(ROLLOUT_ORDER) :] == [wait_argv(name) for name in ROLLOUT_ORDER]


@pytest.fixture
def cluster(tmp_path):
    return recording_cluster(tmp_path)


def test_back_to_recorded_revisions_moves_only_what_the_deploy_changed(cluster):
    api, client, hybrid = "sutra-api", "sutra-client", "sutra-hybrid"
    cluster.script(context=STAGING.context, revisions={api: 4, client: 2})
    kubectl = Kubectl(Commands(env=cluster.env), str(STANDIN))
    before = {api: 3, client: 2, hybrid: None}  # hybrid was created by the deploy
    assert rollback(kubectl, STAGING, [api, client, hybrid], NAMESPACE, revisions=before) == [api]
    assert [c for c in cluster.calls() if c[0] in ("rollout", "set")] == [
        ["rollout", "undo", f"deployment/{api}", "--namespace", NAMESPACE, "--to-revision=3"],
        wait_argv(api),
    ]


def test_a_refused_rollback_is_logged_and_the_others_still_go_back(cluster):
    api, client = "sutra-api", "sutra-client"
    cluster.script(
        answers=[{"match": ["rollout", "undo", f"deployment/{api}"], "exit": 1, "stderr": "error: no"}]
    )
    kubectl = Kubectl(Commands(env=cluster.env), str(STANDIN))
    assert rollback(kubectl, STAGING, [api, client], NAMESPACE) == [client]
    waits = [c for c in cluster.calls() if c[:2] == ["rollout", "status"]]
    assert waits == [wait_argv(client)]


def test_a_failed_wait_after_a_rollback_is_a_rollout_failure(cluster):
    api = "sutra-api"
    cluster.script(answers=[{"match": ["rollout", "status"], "exit": 1, "stderr": "error: timed out"}])
    kubectl = Kubectl(Commands(env=cluster.env), str(STANDIN))
    with pytest.raises(RolloutFailed, match=f"rollout of deployment/{api} did not finish: error: timed out"):
        rollback(kubectl, STAGING, [api], NAMESPACE)
