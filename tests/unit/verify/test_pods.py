"""The readers of what a cluster answers with, on objects shaped as the API server's; the
whole cluster verify over them is tests/unit/verify/test_cluster.py."""

from __future__ import annotations

import hashlib

from sutra_deploy.verify.pods import (
    cpu_utilization,
    crash_looping,
    main_container,
    oom_killed,
    parse_top,
    pod_memory_limit,
    pods_of,
    repo_digest,
    restarts,
    short,
    spec_image,
    startup_seconds,
)

DIGEST = "sha256:" + hashlib.sha256(b"sutra-api").hexdigest()


def pod(*statuses: dict, labels: dict | None = None, deleting: bool = False, conditions=()) -> dict:
    metadata = {"name": "sutra-api-6d5f7c9b8d-x7k2p", "labels": labels or {"app": "sutra-api"}}
    if deleting:
        metadata["deletionTimestamp"] = "2025-01-06T10:05:00Z"
    return {
        "metadata": metadata,
        "spec": {"containers": [{"name": "sutra-api", "resources": {"limits": {"memory": "1Gi"}}}]},
        "status": {"containerStatuses": list(statuses), "conditions": list(conditions)},
    }


def status(restart_count: int = 0, state: dict | None = None, last_state: dict | None = None) -> dict:
    return {
        "name": "sutra-api",
        "restartCount": restart_count,
        "state": state or {"running": {}},
        "lastState": last_state or {},
    }


def test_an_oom_kill_is_found_in_the_last_or_current_state():
    killed = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    assert oom_killed(pod(status(1, last_state=killed))) == ["sutra-api"]
    assert oom_killed(pod(status(0, state=killed))) == ["sutra-api"]
    assert oom_killed(pod(status(3, last_state={"terminated": {"reason": "Error"}}))) == []


def test_crash_looping_is_failing_now_not_having_restarted_once():
    assert crash_looping(pod(status(5, state={"waiting": {"reason": "CrashLoopBackOff"}}))) == ["sutra-api"]
    assert crash_looping(pod(status(2, state={"terminated": {"reason": "Error"}}))) == ["sutra-api"]
    recovered = pod(status(1, last_state={"terminated": {"reason": "Error"}}))
    assert (crash_looping(recovered), restarts(recovered)) == ([], 1)


def test_a_deployment_picks_its_pods_by_selector_and_not_those_being_deleted():
    deployment = {"spec": {"selector": {"matchLabels": {"app": "sutra-api"}}}}
    mine, other, old = pod(), pod(labels={"app": "sutra-hybrid"}), pod(deleting=True)
    assert pods_of(deployment, [mine, other, old]) == [mine]


def test_startup_is_scheduled_to_ready():
    def condition(kind, at, ok="True"):
        return {"type": kind, "status": ok, "lastTransitionTime": at}

    scheduled = condition("PodScheduled", "2025-01-06T10:00:00Z")
    ready = pod(conditions=[scheduled, condition("Ready", "2025-01-06T10:00:12.5Z")])
    not_ready = pod(conditions=[scheduled, condition("Ready", "2025-01-06T10:00:12Z", "False")])
    assert startup_seconds(ready) == 12.5
    assert startup_seconds(not_ready) is None


def test_memory_limits_top_and_autoscaler_metrics_are_read():
    assert pod_memory_limit(pod()) == 2**30
    assert parse_top("sutra-api-7d4b-x2   3m   61Mi\nstorage-server-0 1m 12Mi\n") == {
        "sutra-api-7d4b-x2": 61 * 2**20,
        "storage-server-0": 12 * 2**20,
    }
    cpu = {"type": "Resource", "resource": {"name": "cpu", "target": {"averageUtilization": 70}}}
    memory = {"type": "Resource", "resource": {"name": "memory", "target": {"averageUtilization": 80}}}
    assert cpu_utilization([memory, cpu], "target") == 70
    assert cpu_utilization([memory], "target") is None
    assert cpu_utilization(None, "current") is None


def test_image_ids_give_their_registry_digest():
    assert repo_digest(f"registry.example.com/sutra-ai/sutra-api@{DIGEST}") == DIGEST
    assert repo_digest(f"docker-pullable://registry.example.com/sutra-ai/sutra-api@{DIGEST}") == DIGEST
    assert repo_digest("docker://sha256:" + "0" * 64) is None  # a local image ID, not a digest
    assert repo_digest("registry.example.com/sutra-ai/sutra-api:v2") is None
    assert short(DIGEST) == DIGEST[:19]


def test_the_main_container_is_named_as_the_deployment_else_the_first():
    containers = [{"name": "sidecar", "image": "proxy:1"}, {"name": "sutra-api", "image": "api@" + DIGEST}]
    deployment = {
        "metadata": {"name": "sutra-api"},
        "spec": {"template": {"spec": {"containers": containers}}},
    }
    assert main_container(deployment) == "sutra-api"
    assert spec_image(deployment, "sutra-api") == "api@" + DIGEST
    assert spec_image(None, "sutra-api") is None
    deployment["metadata"]["name"] = "renamed"
    assert main_container(deployment) == "sidecar"
