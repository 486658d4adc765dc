"""The test cluster's node agent: the tests' stand-in for kubelets (and for kube-proxy and a
volume provisioner), named as such, in the spirit of kwok and virtual-kubelet. A real kubelet
cannot run here: it rewrites the host's kernel settings (kernel.panic, vm.overcommit_memory)
and gives sandboxes an oom_score_adj this VM refuses.

Through the real API server only, it:
- registers Nodes named `sutra-test-agent-N` with the capacity it is given, one zone each,
  reports them Ready and clears the not-ready taint admission puts on a new Node (there is no
  node lifecycle controller here to do it);
- binds each pending PersistentVolumeClaim to a PersistentVolume it makes, backed by a Docker
  volume of its own;
- runs each pod the scheduler binds to its nodes on the Docker engine (`pod_runtime`): image
  pulled as the pod names it, probes, restarts with back-off, OOMKilled from the engine, and
  reports it as a kubelet does; finishes deletions after stopping the containers;
- gives each Service a proxy that follows its Endpoints (`service_proxy`).

The Deployment and ReplicaSet controllers, the endpoints controller, the scheduler, revisions
and progress deadlines are the real ones.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack

from . import service_proxy
from .control_plane import ControlPlane
from .kubelet_server import KubeletServer
from .pod_runtime import LABEL, PodRuntime, cluster_labels, now

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
# The test overlays' stand-in for `lifecycle.preStop.sleep.seconds` (see tests/cluster/README.md).
PRE_STOP_SLEEP = "node-agent.sutra.test/pre-stop-sleep-seconds"
POLL = 0.25  # seconds between looks at pods, claims and services
PROXY_IMAGE = load_stack(PROJECT_DIR / "stack.toml").base_image("python-runtime").local


def pre_stop_sleep(pod: Mapping[str, Any] | None) -> float:
    """The seconds of the `preStop.sleep` the test overlay took out, from its annotation."""
    notes = ((pod or {}).get("metadata") or {}).get("annotations") or {}
    try:
        return max(0.0, float(notes.get(PRE_STOP_SLEEP, 0)))
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class NodeSpec:
    name: str
    zone: str
    cpu: str = "4"
    memory: str = "16Gi"
    pods: str = "110"


def default_nodes(count: int = 3) -> list[NodeSpec]:
    return [NodeSpec(f"sutra-test-agent-{i}", f"zone-{'abc'[i % 3]}") for i in range(count)]


class NodeAgent:
    def __init__(self, cluster: ControlPlane, nodes: list[NodeSpec] | None = None) -> None:
        self.cluster = cluster
        self.nodes = nodes or default_nodes()
        self.id = uuid.uuid4().hex[:8]
        self.folder = cluster.folder / "agent"
        self.docker = docker.from_env()
        self.runtimes: dict[str, PodRuntime] = {}
        self.reported: dict[str, str] = {}  # pod uid -> the status last sent, as JSON
        self.stopping: set[str] = set()
        self.proxies: dict[str, tuple[str, Any]] = {}  # ns/name -> (ports key, container)
        self.networks: dict[str, Any] = {}
        self.workers = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="agent")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []
        self.api_outages = 0  # polls that found the API server away

    def __enter__(self) -> NodeAgent:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.kubelet = KubeletServer(self, self.folder / "kubelet")
        self.kubelet.start()
        for node in self.nodes:
            self._register(node)
        self._thread = threading.Thread(target=self._loop, name="node-agent", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        self.workers.shutdown(wait=True, cancel_futures=True)
        self.kubelet.stop()
        self.remove_everything()

    def runtime_named(self, namespace: str, name: str) -> PodRuntime | None:
        return next(
            (r for r in list(self.runtimes.values()) if (r.namespace, r.name) == (namespace, name)), None
        )

    def remove_everything(self) -> None:
        """Every container, network and volume this cluster made, found by its label."""
        selector = {"label": f"{LABEL}={self.id}"}
        for container in self.docker.containers.list(all=True, filters=selector):
            container.remove(force=True)
        for network in self.docker.networks.list(filters=selector):
            network.remove()
        for volume in self.docker.volumes.list(filters=selector):
            volume.remove(force=True)

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
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "sutra test agent is posting ready status",
                        "lastHeartbeatTime": now(),
                        "lastTransitionTime": now(),
                    }
                ],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet.port}},
                "nodeInfo": {
                    "kubeletVersion": "v1.20.2-sutra-test-agent",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                    "containerRuntimeVersion": "docker://sutra-test-agent",
                    **dict.fromkeys(("machineID", "systemUUID", "bootID", "kernelVersion"), ""),
                    **dict.fromkeys(("osImage", "kubeProxyVersion"), ""),
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

    # --- the loop ------------------------------------------------------------------------

    def _loop(self) -> None:
        names = {node.name for node in self.nodes}
        while not self._stop.is_set():
            try:
                self._bind_claims()
                pods = self.cluster.api("GET", "/api/v1/pods").json().get("items", [])
                mine = {p["metadata"]["uid"]: p for p in pods if p["spec"].get("nodeName") in names}
                for uid, pod in mine.items():
                    self._tend(uid, pod)
                for uid in set(self.runtimes) - set(mine) - self.stopping:  # deleted at once
                    self.stopping.add(uid)
                    self.workers.submit(self._stop_pod, uid, None, 0)
                self._sync_services()
            except requests.ConnectionError:  # the API server is away (a fault test): as a
                self.api_outages += 1  # kubelet does, keep what runs and ask again
            except Exception as error:  # keep tending; the tests read what went wrong
                self.errors.append(repr(error))
            self._stop.wait(POLL)

    def _tend(self, uid: str, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            if uid not in self.stopping:
                self.stopping.add(uid)
                grace = meta.get("deletionGracePeriodSeconds", 30)
                self.workers.submit(self._stop_pod, uid, pod, grace)
            return
        runtime = self.runtimes.get(uid)
        if runtime is None:
            runtime = PodRuntime(self.docker, self.id, pod, self.cluster.api)
            self.runtimes[uid] = runtime
            self.workers.submit(self._start_pod, runtime)
        runtime.pod = pod  # the newest resourceVersion, for the status update
        status = runtime.tick(time.monotonic())
        shown = json.dumps(status, sort_keys=True)
        if self.reported.get(uid) == shown:
            return
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status"
        answer = self.cluster.api(
            "PUT", path, json={**pod, "status": {**(pod.get("status") or {}), **status}}
        )
        if answer.ok:
            self.reported[uid] = shown
        elif answer.status_code not in (404, 409):  # gone, or changed since: next time
            self.errors.append(f"{path}: {answer.status_code} {answer.text[:200]}")

    def _start_pod(self, runtime: PodRuntime) -> None:
        try:
            runtime.start(self._network(runtime.namespace), self._volume_for_claim)
        except requests.ConnectionError:  # the API server went away while its claim was read:
            self.api_outages += 1  # forget the pod, and the loop starts it again once it answers
            self.runtimes.pop(runtime.uid, None)
        except Exception as error:
            for state in runtime.containers:
                if state.waiting is not None:
                    state.waiting = ("CreateContainerError", str(error)[:300])
            self.errors.append(f"starting {runtime.namespace}/{runtime.name}: {error!r}")

    def _stop_pod(self, uid: str, pod: Mapping[str, Any] | None, grace: float) -> None:
        runtime = self.runtimes.get(uid)
        if runtime is not None:
            # A kubelet runs the preStop hook first, inside the grace period; the test overlays
            # carry `preStop.sleep` (which 1.20 lacks) as this annotation. The pod is already
            # out of its Service's endpoints, so requests drain to the other pods meanwhile.
            delay = min(grace, pre_stop_sleep(pod))
            if delay > 0:
                self._stop.wait(delay)
            runtime.stop(grace - delay)
        if pod is not None:  # a kubelet deletes the pod object once its containers stopped
            meta = pod["metadata"]
            self.cluster.api(
                "DELETE",
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                json={"gracePeriodSeconds": 0, "preconditions": {"uid": uid}},
            )
        self.runtimes.pop(uid, None)
        self.reported.pop(uid, None)
        self.stopping.discard(uid)

    # --- networks and volumes -------------------------------------------------------------

    def _network(self, namespace: str):
        """The namespace's Docker network: its pods' addresses, and its Services' names."""
        if namespace not in self.networks:
            name = f"sutra-test-{self.id}-{namespace}"
            existing = self.docker.networks.list(names=[name])
            self.networks[namespace] = (
                existing[0]
                if existing
                else self.docker.networks.create(
                    name,
                    driver="bridge",
                    labels=cluster_labels(self.id, **{"sutra.dev/namespace": namespace}),
                )
            )
        return self.networks[namespace].name

    def _volume_for_claim(self, namespace: str, claim: str):
        answer = self.cluster.api("GET", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
        answer.raise_for_status()
        volume = answer.json()["spec"].get("volumeName")
        if not volume:
            raise RuntimeError(f"claim {namespace}/{claim} is not bound yet")
        return self.docker.volumes.create(
            name=f"sutra-test-{self.id}-{volume}",
            labels=cluster_labels(self.id, **{"sutra.dev/volume": volume}),
        )

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
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": claim["spec"].get("storageClassName") or "",
                    "claimRef": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
                    # The data is in the Docker volume `sutra-test-<agent>-<this name>`; the
                    # scheduler and the PV controller need a source, and hostPath names none.
                    "hostPath": {"path": f"/var/lib/sutra-test-agent/{name}"},
                },
            }
            answer = self.cluster.api("POST", "/api/v1/persistentvolumes", json=volume)
            if answer.status_code not in (201, 409):
                self.errors.append(f"volume for {meta['name']}: {answer.status_code} {answer.text[:200]}")

    # --- services --------------------------------------------------------------------------

    def _sync_services(self) -> None:
        services = self.cluster.api("GET", "/api/v1/services").json().get("items", [])
        endpoints = {
            f"{e['metadata']['namespace']}/{e['metadata']['name']}": e
            for e in self.cluster.api("GET", "/api/v1/endpoints").json().get("items", [])
        }
        wanted = set()
        for service in services:
            meta = service["metadata"]
            key = f"{meta['namespace']}/{meta['name']}"
            if meta["namespace"] == "default" or not service["spec"].get("selector"):
                continue
            if service["spec"].get("clusterIP") == "None":  # headless: no proxy, by design
                continue
            wanted.add(key)
            folder = self.folder / "proxies" / key.replace("/", "-")
            folder.mkdir(parents=True, exist_ok=True)
            service_proxy.write_targets(folder, service_proxy.targets_of(service, endpoints.get(key)))
            ports = ",".join(str(p["port"]) for p in service["spec"].get("ports") or [])
            have = self.proxies.get(key)
            if have is None or have[0] != ports:
                if have is not None:
                    have[1].remove(force=True)
                self.proxies[key] = (ports, self._start_proxy(meta["namespace"], meta["name"], ports, folder))
        for key in set(self.proxies) - wanted:
            self.proxies.pop(key)[1].remove(force=True)

    def _start_proxy(self, namespace: str, name: str, ports: str, folder: Path):
        network = self._network(namespace)
        aliases = [
            name,
            f"{name}.{namespace}",
            f"{name}.{namespace}.svc",
            f"{name}.{namespace}.svc.cluster.local",
        ]
        digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:8]
        container = self.docker.containers.create(
            PROXY_IMAGE,
            ["python3", "/proxy/service_proxy.py", "/proxy/data"],
            name=f"sutra-test-{self.id}-svc-{namespace}-{name}-{digest}"[:250],
            labels=cluster_labels(self.id, **{"sutra.dev/service": f"{namespace}/{name}"}),
            environment={"SERVICE_PORTS": ports},
            read_only=True,
            network=network,
            networking_config={network: docker.types.EndpointConfig("1.41", aliases=aliases)},
            mounts=[
                docker.types.Mount("/proxy/data", str(folder), type="bind", read_only=True),
                docker.types.Mount(
                    "/proxy/service_proxy.py", str(Path(service_proxy.__file__)), type="bind", read_only=True
                ),
            ],
            detach=True,
        )
        container.start()
        return container
