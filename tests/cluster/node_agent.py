"""The test cluster's node agent: the tests' stand-in for kubelets, named as such (in the spirit
of kwok and virtual-kubelet). A real kubelet cannot run here: it rewrites the host's kernel
settings (kernel.panic, vm.overcommit_memory) and gives sandboxes an oom_score_adj this VM
refuses.

What it does, as kubelets and a volume provisioner would, through the real API server only:
- registers Nodes named `sutra-test-agent-N` with the capacity it is given, one zone each,
  reports them Ready and clears the not-ready taint admission puts on a new Node (there is no
  node lifecycle controller to do it);
- binds each pending PersistentVolumeClaim to a PersistentVolume it makes for it;
- reports each pod bound to its nodes as running, its containers started and Ready, as a
  kubelet does once the readiness probe passes;
- finishes a pod's deletion (a kubelet deletes the pod object once its containers stopped).

The Deployment and ReplicaSet controllers, the scheduler, revisions and progress deadlines are
the real ones: only what a kubelet would report is this agent's.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .control_plane import ControlPlane

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
POLL = 0.2  # seconds between looks at pods and claims


@dataclass(frozen=True)
class NodeSpec:
    name: str
    zone: str
    cpu: str = "4"
    memory: str = "16Gi"
    pods: str = "110"


def default_nodes(count: int = 3) -> list[NodeSpec]:
    return [NodeSpec(f"sutra-test-agent-{i}", f"zone-{'abc'[i % 3]}") for i in range(count)]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeAgent:
    def __init__(self, cluster: ControlPlane, nodes: list[NodeSpec] | None = None) -> None:
        self.cluster = cluster
        self.nodes = nodes or default_nodes()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def __enter__(self) -> NodeAgent:
        for node in self.nodes:
            self._register(node)
        self._thread = threading.Thread(target=self._loop, name="node-agent", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    # --- nodes ---------------------------------------------------------------------------

    def _register(self, node: NodeSpec) -> None:
        resources = {"cpu": node.cpu, "memory": node.memory, "pods": node.pods, "ephemeral-storage": "100Gi"}
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node.name,
                "labels": {
                    "kubernetes.io/hostname": node.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "topology.kubernetes.io/zone": node.zone,
                    "sutra.dev/test-agent": "true",
                },
            },
            "spec": {},
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "conditions": [self._ready_condition()],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "nodeInfo": {
                    "kubeletVersion": "v1.20.2-sutra-test-agent",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                    "containerRuntimeVersion": "docker://sutra-test-agent",
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                    "kernelVersion": "",
                    "osImage": "",
                    "kubeProxyVersion": "",
                },
            },
        }
        answer = self.cluster.api("POST", "/api/v1/nodes", json=body)
        if answer.status_code not in (201, 409):
            raise RuntimeError(f"node {node.name}: {answer.status_code} {answer.text[:300]}")
        # Admission gave the new Node the not-ready taint; a kubelet's first healthy status
        # makes the node lifecycle controller lift it, and that controller is off here.
        self.cluster.api(
            "PATCH",
            f"/api/v1/nodes/{node.name}",
            json={"spec": {"taints": None}},
            headers={"Content-Type": "application/merge-patch+json"},
        ).raise_for_status()

    @staticmethod
    def _ready_condition() -> dict[str, str]:
        now = _now()
        return {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "sutra test agent is posting ready status",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    # --- the loop ------------------------------------------------------------------------

    def _loop(self) -> None:
        names = {node.name for node in self.nodes}
        while not self._stop.is_set():
            try:
                self._bind_claims()
                for pod in self.cluster.api("GET", "/api/v1/pods").json().get("items", []):
                    if pod["spec"].get("nodeName") in names:
                        self._tend(pod)
            except Exception as error:  # keep tending; the test reads what went wrong
                self.errors.append(repr(error))
            self._stop.wait(POLL)

    def _tend(self, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        if meta.get("deletionTimestamp"):
            self.cluster.api(
                "DELETE", path, json={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}}
            )
            return
        status = pod.get("status") or {}
        if status.get("phase") == "Running":
            return
        now = _now()
        containers = pod["spec"]["containers"]
        status = {
            **status,
            "phase": "Running",
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "startTime": now,
            "conditions": [
                {"type": kind, "status": "True", "lastTransitionTime": now}
                for kind in ("Initialized", "ContainersReady", "Ready", "PodScheduled")
            ],
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": container["image"],
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }
                for container in containers
            ],
        }
        answer = self.cluster.api("PUT", f"{path}/status", json={**pod, "status": status})
        if answer.status_code not in (200, 404, 409):
            self.errors.append(f"{path}/status: {answer.status_code} {answer.text[:200]}")

    def _bind_claims(self) -> None:
        claims = self.cluster.api("GET", "/api/v1/persistentvolumeclaims").json().get("items", [])
        for claim in claims:
            if (claim.get("status") or {}).get("phase") == "Bound" or claim["spec"].get("volumeName"):
                continue
            meta = claim["metadata"]
            name = f"pv-{meta['uid']}"
            volume = {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": name, "labels": {"sutra.dev/test-agent": "true"}},
                "spec": {
                    "capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
                    "accessModes": claim["spec"]["accessModes"],
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": claim["spec"].get("storageClassName") or "",
                    "claimRef": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
                    "hostPath": {"path": f"/var/lib/sutra-test-agent/{name}"},
                },
            }
            answer = self.cluster.api("POST", "/api/v1/persistentvolumes", json=volume)
            if answer.status_code not in (201, 409):
                self.errors.append(f"volume for {meta['name']}: {answer.status_code} {answer.text[:200]}")
