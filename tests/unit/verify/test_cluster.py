"""The cluster verify against the kubectl RECORDING STAND-IN (tests/standin/kubectl), which
talks to no cluster. Its scripted answers are shaped like the API server's: v1 Pod (with its
PodStatus, conditions and ContainerStatus), apps/v1 Deployment, autoscaling/v2
HorizontalPodAutoscaler, v1 Node, and the rows of `kubectl top pods`. The scenarios are an
OOM-killed pod, a crash-looping one, and a cluster without metrics-server.

Why a stand-in, with the real control plane in tests/cluster/test_verify.py: the test cluster
has no metrics API (no kubelet to scrape), so rows with measured CPU and memory exist only as
scripted `kubectl top` answers, and the arithmetic of each row is checked against exact figures."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import replace

import pytest

from sutra_deploy.core.errors import VerifyFailed, WrongContext
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.k8s.environments import environment
from sutra_deploy.k8s.manifests import hpa_by_deployment, namespace_of, render, stateful_names
from sutra_deploy.k8s.quantities import memory_bytes, millicores
from sutra_deploy.ship.deploy import verify_deployed
from sutra_deploy.tools.commands import Commands
from sutra_deploy.tools.kubectl import Kubectl
from sutra_deploy.verify import verify_cluster_environment
from sutra_deploy.verify.cluster import METRICS_UNAVAILABLE, verify_cluster, verify_environment
from sutra_deploy.verify.model import ESTIMATE, FAIL, INFO, NOT_MEASURED, PASS
from sutra_deploy.verify.settings import VerifySettings
from sutra_deploy.verify.smoke import Check, SmokeReport

from ...standin.recording import REAL_KUBECTL, STANDIN, recording_cluster

STACK = load_stack(PROJECT_DIR / "stack.toml")
STAGING = environment(DEFAULTS["sutra"], "staging")
RENDERED = render(Kubectl(Commands(), str(REAL_KUBECTL)), STAGING, STACK)
NAMESPACE = namespace_of(RENDERED)
DEPLOYMENTS = {o["metadata"]["name"]: o for o in RENDERED if o.get("kind") == "Deployment"}
HPAS = hpa_by_deployment(RENDERED)
SETTINGS = VerifySettings.from_settings()  # the plan's, as `sutra.verify` defaults them
SCHEDULED = "2025-01-06T10:00:00Z"
MI = 2**20


def digest_of(service: str) -> str:
    return "sha256:" + hashlib.sha256(service.encode()).hexdigest()


PUSHED = {name: digest_of(name) for name in DEPLOYMENTS}


def image(service: str, digest: str) -> str:
    return f"{STAGING.registry}/{STACK.service(service).image}@{digest}"


# --- API objects, shaped as `kubectl get … --output json` returns them ------------------------


def pod(
    deployment: str,
    suffix: str,
    *,
    ready_after: int = 12,
    restarts: int = 0,
    state: dict | None = None,
    last_state: dict | None = None,
    ready: bool = True,
    digest: str | None = None,
    deleting: bool = False,
) -> dict:
    """A v1 Pod of the Deployment's current ReplicaSet, from its rendered template."""
    template = DEPLOYMENTS[deployment]["spec"]["template"]
    name = f"{deployment}-6d5f7c9b8d-{suffix}"
    ready_at = f"2025-01-06T10:00:{ready_after:02d}Z"
    container = template["spec"]["containers"][0]
    digest = digest or PUSHED[deployment]
    metadata = {
        "name": name,
        "namespace": NAMESPACE,
        "uid": f"0b6e5c1a-{suffix}",
        "creationTimestamp": SCHEDULED,
        "labels": {**template["metadata"]["labels"], "pod-template-hash": "6d5f7c9b8d"},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": f"{deployment}-6d5f7c9b8d",
                "uid": "6f1d2c3b-rs",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if deleting:
        metadata["deletionTimestamp"] = "2025-01-06T10:05:00Z"
        metadata["deletionGracePeriodSeconds"] = 30
    flag = "True" if ready else "False"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {**template["spec"], "nodeName": "node-a", "restartPolicy": "Always"},
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": "2025-01-06T10:00:02Z"},
                {"type": "Initialized", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": SCHEDULED},
                {"type": "Ready", "status": flag, "lastProbeTime": None, "lastTransitionTime": ready_at},
                {"type": "ContainersReady", "status": flag, "lastProbeTime": None,
                 "lastTransitionTime": ready_at},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": SCHEDULED},
            ],
            "hostIP": "10.0.0.4",
            "podIP": "10.244.1.17",
            "startTime": SCHEDULED,
            "qosClass": "Burstable",
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": image(deployment, digest),
                    "imageID": image(deployment, digest),
                    "containerID": f"containerd://{suffix * 8}",
                    "ready": ready,
                    "started": ready,
                    "restartCount": restarts,
                    "state": state or {"running": {"startedAt": "2025-01-06T10:00:03Z"}},
                    "lastState": last_state or {},
                }
            ],
        },
    }  # fmt: skip


def live_deployment(name: str, digest: str | None = None) -> dict:
    """The apps/v1 Deployment as the API server holds it after the rollout."""
    deployment = copy.deepcopy(DEPLOYMENTS[name])
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image(name, digest or PUSHED[name])
    deployment["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "4"}
    deployment["status"] = {
        "observedGeneration": 4,
        "replicas": 1,
        "updatedReplicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
    }
    return deployment


def live_hpa(deployment: str, *, current: int | None, replicas: int = 1) -> dict:
    """The autoscaling/v2 HorizontalPodAutoscaler with the status the controller writes."""
    hpa = copy.deepcopy(HPAS[deployment])
    status: dict = {"currentReplicas": replicas, "desiredReplicas": replicas}
    if current is not None:
        status["currentMetrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "current": {"averageUtilization": current, "averageValue": "41m"},
                },
            }
        ]
        status["conditions"] = [
            {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound",
             "lastTransitionTime": SCHEDULED},
        ]  # fmt: skip
    else:
        status["conditions"] = [
            {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric",
             "message": "the HPA was unable to compute the replica count: failed to get cpu utilization: "
             "unable to get metrics for resource cpu: no metrics returned from resource metrics API",
             "lastTransitionTime": SCHEDULED},
        ]  # fmt: skip
    hpa["status"] = status
    return hpa


def node(name: str, cpu: str = "3920m", memory: str = "15944136Ki") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"podCIDR": "10.244.1.0/24"},
        "status": {
            "capacity": {"cpu": "4", "memory": "16393536Ki", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def healthy_pods() -> list[dict]:
    return [pod(name, "x7k2p") for name in DEPLOYMENTS]


def smoke_passed() -> SmokeReport:
    names = [*DEPLOYMENTS, "end-to-end"]
    return SmokeReport(tuple(Check(name, True, 0.1, "ok") for name in names))


def scripted_cluster(cluster, pods: list[dict], *, top: dict | None = None, **script) -> None:
    objects = [
        *pods,
        *(live_deployment(name) for name in DEPLOYMENTS),
        *(live_hpa(name, current=42) for name in HPAS),
        node("node-a"),
        node("node-b"),
    ]
    usage = top if top is not None else {p["metadata"]["name"]: ["3m", "61Mi"] for p in pods}
    cluster.script(context=STAGING.context, objects=objects, top=usage, **script)


@pytest.fixture
def cluster(tmp_path):
    return recording_cluster(tmp_path)


@pytest.fixture
def kubectl(cluster):
    return Kubectl(Commands(env=cluster.env), str(STANDIN))


def verify(kubectl, **kwargs):
    kwargs.setdefault("smoke", smoke_passed())
    return verify_cluster(kubectl, STAGING, STACK, objects=RENDERED, **kwargs)


def rows(report) -> dict:
    return {m.name: m for m in report.metrics}


# --- the tests ---------------------------------------------------------------------------


def test_a_healthy_cluster_meets_every_metric_a_read_can_show(cluster, kubectl):
    pods = healthy_pods()
    scripted_cluster(cluster, pods)
    report = verify(kubectl, pushed_digests=PUSHED)
    by_name = rows(report)
    assert report.ok, report.table()
    assert by_name["health checks passing"].status == PASS
    assert by_name["health checks passing"].value == f"{len(DEPLOYMENTS) + 1}/{len(DEPLOYMENTS) + 1}"
    assert (by_name["no OOMKilled pods"].status, by_name["no OOMKilled pods"].value) == (PASS, 0)
    assert (by_name["restarts"].status, by_name["restarts"].value) == (PASS, 0)
    for name in DEPLOYMENTS:
        assert (by_name[f"pod startup: {name}"].status, by_name[f"pod startup: {name}"].value) == (PASS, 12.0)
        assert (by_name[f"memory: {name}"].status, by_name[f"memory: {name}"].value) == (PASS, 61.0)
        assert by_name[f"image digest: {name}"].status == PASS
    assert by_name["memory: sutra-api"].target == "< 512Mi (plan)"  # tighter than its 1Gi limit
    for name in HPAS:
        cpu = by_name[f"cpu: {name}"]
        assert (cpu.status, cpu.value, cpu.unit) == (INFO, 42, "%")  # no gate configured
        assert "min 1, max" in cpu.how and "target 70 %" in cpu.how
    # Read, not reachable by a read: what was checked instead, and no figure.
    zero = by_name["zero-downtime deployments"]
    assert (zero.status, zero.value) == (NOT_MEASURED, None)
    assert "maxUnavailable 0 with readiness probes: sutra-api" in zero.how
    assert all(name in zero.how for name in stateful_names(RENDERED))
    scale_up = by_name["HPA scale-up"]
    assert (scale_up.status, scale_up.value) == (NOT_MEASURED, None)
    assert "sutra-api CPU 70 %, window 0 s" in scale_up.how
    # Efficiency: an estimate from the pods' requests and the nodes' allocatable.
    cpu_requested = sum(
        millicores(c["resources"]["requests"]["cpu"]) for p in pods for c in p["spec"]["containers"]
    )
    efficiency = by_name["cluster efficiency"]
    assert efficiency.status == ESTIMATE
    assert efficiency.value == round(cpu_requested / (2 * millicores("3920m")) * 100, 1)
    assert efficiency.how.startswith("estimate, not a measurement")
    # Only reads reached the cluster.
    assert sorted(c[:2] for c in cluster.calls()) == sorted(
        [["get", "pods"], ["get", "deployments"], ["get", "horizontalpodautoscalers"], ["get", "nodes"],
         ["top", "pods"]]
    )  # fmt: skip
    assert ["get", "nodes", "--output", "json"] in cluster.calls()
    assert report.memory[0] == {
        "service": "storage-server",
        "peak_bytes": 61 * MI,
        "limit_bytes": memory_bytes("1Gi"),
        "max_usage_bytes": None,
    }


def test_an_oom_killed_pod_and_a_crash_looping_one_fail_and_are_named(cluster, kubectl):
    oom = pod(
        "sutra-hybrid",
        "q9w3z",
        restarts=1,
        last_state={
            "terminated": {
                "exitCode": 137,
                "reason": "OOMKilled",
                "startedAt": "2025-01-06T10:00:03Z",
                "finishedAt": "2025-01-06T10:03:41Z",
                "containerID": "containerd://0f3c",
            }
        },
    )
    looping = pod(
        "sutra-api",
        "m4n8v",
        restarts=5,
        ready=False,
        state={
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": "back-off 2m40s restarting failed container=sutra-api "
                "pod=sutra-api-6d5f7c9b8d-m4n8v_sutra-ai-staging",
            }
        },
        last_state={
            "terminated": {
                "exitCode": 1,
                "reason": "Error",
                "startedAt": "2025-01-06T10:04:10Z",
                "finishedAt": "2025-01-06T10:04:12Z",
            }
        },
    )
    api_target = SETTINGS.memory_targets["sutra-api"]
    over = f"{api_target // MI + 88}Mi"
    pods = [*healthy_pods(), oom, looping]
    usage = {p["metadata"]["name"]: ["3m", "61Mi"] for p in pods}
    usage[pods[1]["metadata"]["name"]] = ["812m", over]  # the ready sutra-api pod, over the plan
    scripted_cluster(cluster, pods, top=usage)
    report = verify(kubectl, pushed_digests=PUSHED)
    by_name = rows(report)
    oom_row = by_name["no OOMKilled pods"]
    assert (oom_row.status, oom_row.value) == (FAIL, 1)
    assert "sutra-hybrid-6d5f7c9b8d-q9w3z (sutra-hybrid)" in oom_row.how
    restarts = by_name["restarts"]
    assert (restarts.status, restarts.value) == (FAIL, 6)
    assert "crash-looping: sutra-api-6d5f7c9b8d-m4n8v (sutra-api)" in restarts.how
    assert "sutra-hybrid-6d5f7c9b8d-q9w3z 1x" in restarts.how  # restarted, ready again: listed
    # Restarted pods are left out of startup: their Ready time is their last recovery's.
    assert "1 restarted pod(s) left out" in by_name["pod startup: sutra-hybrid"].how
    memory = by_name["memory: sutra-api"]
    assert (memory.status, memory.value) == (FAIL, float(api_target // MI + 88))
    with pytest.raises(VerifyFailed) as failed:
        report.raise_if_failed()
    assert {"no OOMKilled pods", "restarts", "memory: sutra-api"} <= {m.name for m in report.failed}
    assert "no OOMKilled pods (1)" in str(failed.value)


def test_cpu_utilisation_fails_outside_the_plans_range_only_when_a_gate_is_set(cluster, kubectl):
    scripted_cluster(cluster, healthy_pods())  # every autoscaler reads 42 %
    gated = replace(SETTINGS, cpu_gate=True)
    low, high = gated.cpu_utilization
    assert not low <= 42 <= high
    by_name = rows(verify(kubectl, settings=gated))
    assert {by_name[f"cpu: {name}"].status for name in HPAS} == {FAIL}
    assert by_name["cpu: sutra-api"].target == f"{low:g}-{high:g} % of request"


def test_without_metrics_server_memory_and_utilisation_are_not_measured(cluster, kubectl):
    pods = healthy_pods()
    objects = [
        *pods,
        *(live_deployment(name) for name in DEPLOYMENTS),
        *(live_hpa(name, current=None) for name in HPAS),
    ]
    # What `kubectl top` says on a cluster whose metrics API is missing.
    missing = {"match": ["top", "pods"], "exit": 1, "stderr": "error: Metrics API not available\n"}
    cluster.script(context=STAGING.context, objects=objects, answers=[missing])
    report = verify(kubectl)
    by_name = rows(report)
    for name in DEPLOYMENTS:
        memory = by_name[f"memory: {name}"]
        assert (memory.status, memory.value, memory.how) == (NOT_MEASURED, None, METRICS_UNAVAILABLE)
    for name in HPAS:
        cpu = by_name[f"cpu: {name}"]
        assert cpu.status == NOT_MEASURED and METRICS_UNAVAILABLE in cpu.how
    assert report.ok  # nothing measured is nothing failed
    assert report.memory == []


def test_image_digests_are_checked_against_what_the_deploy_pushed(cluster, kubectl):
    stale = digest_of("an older sutra-api")
    pods = [pod(name, "x7k2p", digest=stale if name == "sutra-api" else None) for name in DEPLOYMENTS]
    # An old pod still terminating after the rollout runs the old image: it does not count.
    pods.append(pod("sutra-client", "old01", digest=stale, deleting=True))
    scripted_cluster(cluster, pods)
    by_name = rows(verify(kubectl, pushed_digests=PUSHED))
    api = by_name["image digest: sutra-api"]
    assert (api.status, api.value) == (FAIL, stale[:19])
    assert api.target == f"= pushed {PUSHED['sutra-api'][:19]}"
    assert by_name["image digest: sutra-client"].status == PASS
    # Outside a deploy nothing was pushed to compare with: what runs is shown.
    by_name = rows(verify(kubectl))
    assert by_name["image digest: sutra-api"].status == INFO
    assert by_name["image digest: sutra-api"].value == stale[:19]


def test_what_cannot_be_read_is_not_measured_and_says_why(cluster, kubectl):
    forbidden = (
        'Error from server (Forbidden): nodes is forbidden: User "ci-deployer" cannot list '
        'resource "nodes" in API group "" at the cluster scope\n'
    )
    cluster.script(
        context=STAGING.context,
        answers=[{"match": ["get", "nodes"], "exit": 1, "stderr": forbidden}],
    )  # and an empty namespace: the stand-in's default answer
    report = verify(kubectl, smoke=None)
    by_name = rows(report)
    assert by_name["cluster efficiency"].status == NOT_MEASURED
    assert by_name["cluster efficiency"].how == f"kubectl get nodes failed: {forbidden.strip()}"
    assert by_name["no OOMKilled pods"].how == f"no pods in namespace {NAMESPACE}"
    assert by_name["pod startup: sutra-api"].how == "no pod found"
    assert by_name["health checks passing"].how == "the smoke test was not run"
    assert report.ok  # what an integration deploy sees from the stand-in: nothing fails


def test_verify_environment_checks_the_context_before_reading_anything(cluster, kubectl):
    cluster.script(context="kind-laptop")
    with pytest.raises(WrongContext):
        verify_environment(kubectl, STAGING, STACK, smoke_timeout=0.2)
    assert cluster.calls() == [["config", "current-context"]]


def test_verify_environment_smokes_through_port_forwards_then_reads(cluster, kubectl):
    scripted_cluster(cluster, healthy_pods())  # no relay: nothing answers behind the forwards
    report = verify_environment(kubectl, STAGING, STACK, smoke_timeout=0.2)
    health = rows(report)["health checks passing"]
    assert health.status == FAIL and "smoke through kubectl port-forward" in health.how
    calls = cluster.calls()
    assert calls[0] == ["config", "current-context"]
    forwards = [c[1] for c in calls if c[0] == "port-forward"]
    assert sorted(forwards) == sorted(f"svc/{name}" for name in DEPLOYMENTS)
    assert not any(c[0] in ("apply", "rollout", "set", "delete") for c in calls)  # it only reads


def test_inv_verify_reads_its_targets_from_sutra_verify(cluster, kubectl):
    scripted_cluster(cluster, healthy_pods())  # every pod Ready 12 s after it was scheduled
    sutra = {**DEFAULTS["sutra"], "smoke_timeout": 0.2}
    sutra["verify"] = {**DEFAULTS["sutra"]["verify"], "startup_seconds": 10}
    by_name = rows(verify_cluster_environment(kubectl, STAGING, STACK, sutra))
    startup = by_name["pod startup: sutra-api"]
    assert (startup.status, startup.target, startup.value) == (FAIL, "< 10 s", 12.0)


def test_a_dry_verify_reads_nothing(capsys):
    commands = Commands(dry=True)
    report = verify_environment(Kubectl(commands, "kubectl"), STAGING, STACK, smoke_timeout=1)
    assert report.metrics == [] and commands.printed == []
    assert capsys.readouterr().out == ""


# --- the deploy's last step ----------------------------------------------------------------


def test_the_deploy_prints_the_verify_table_then_fails_without_rolling_back(cluster, kubectl, capsys):
    oom = pod(
        "sutra-hybrid",
        "q9w3z",
        restarts=1,
        last_state={"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
    )
    scripted_cluster(cluster, [*healthy_pods(), oom])
    with pytest.raises(VerifyFailed):
        verify_deployed(kubectl, STAGING, STACK, RENDERED, PUSHED, smoke_passed(), SETTINGS)
    printed = capsys.readouterr().out
    assert "no OOMKilled pods" in printed and "image digest: sutra-api" in printed
    assert not any(c[0] in ("apply", "rollout", "set") for c in cluster.calls())  # nothing undone


def test_a_dry_deploy_skips_verify_and_prints_nothing(capsys):
    commands = Commands(dry=True)
    assert verify_deployed(Kubectl(commands, "kubectl"), STAGING, STACK, RENDERED, {}, None) is None
    assert commands.printed == [] and capsys.readouterr().out == ""
