"""What a kubelet does with one pod, done on the Docker engine for the node agent: pull the
image (by digest or tag, from the registry the pod names), create the pod's containers with its
command, args, env, limits, user, read-only root and volumes, run its probes, restart what
exits (with a kubelet's back-off), and say all of it as the pod status a kubelet reports.

Each pod's containers join its namespace's Docker network (so a pod has an IP of its own that
the endpoints controller publishes) and share the first container's network namespace, as a
pod's containers do. Every Docker object carries the label `sutra.dev/test-cluster`, so the
cluster's teardown (and `inv cleanup` after a killed run) finds them all.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import docker
import docker.errors
import requests

from sutra_deploy.k8s.quantities import memory_bytes, millicores
from sutra_deploy.local.leftovers import owner_labels

LABEL = "sutra.dev/test-cluster"


def cluster_labels(cluster_id: str, **more: str) -> dict[str, str]:
    """What marks a test cluster's containers, networks and volumes: its id, and this process
    as their owner, so that `inv cleanup` takes them if the test run is killed before its
    teardown (local/leftovers.py)."""
    return {LABEL: cluster_id, **owner_labels("test cluster", group=f"sutra-test-{cluster_id}"), **more}


BACKOFF_START, BACKOFF_CAP = 10.0, 300.0  # seconds: a kubelet's crash-loop back-off


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339(docker_time: str) -> str | None:
    """Docker's `2026-12-02T13:35:18.123456789Z` as the API's seconds; None for the zero time."""
    if not docker_time or docker_time.startswith("0001-"):
        return None
    return docker_time.split(".")[0].rstrip("Z") + "Z"


@dataclass
class Probe:
    """A probe's schedule and its consecutive results, as a kubelet keeps them."""

    spec: Mapping[str, Any]
    next_at: float = 0.0
    successes: int = 0
    failures: int = 0

    @property
    def period(self) -> float:
        return float(self.spec.get("periodSeconds", 10))

    @property
    def timeout(self) -> float:
        return float(self.spec.get("timeoutSeconds", 1))

    def due(self, at: float) -> bool:
        return at >= self.next_at

    def record(self, ok: bool, at: float) -> None:
        self.next_at = at + self.period
        if ok:
            self.successes, self.failures = self.successes + 1, 0
        else:
            self.successes, self.failures = 0, self.failures + 1

    @property
    def passing(self) -> bool:
        return self.successes >= int(self.spec.get("successThreshold", 1))

    @property
    def failed(self) -> bool:
        return self.failures >= int(self.spec.get("failureThreshold", 3))


@dataclass
class ContainerState:
    spec: Mapping[str, Any]
    container: Any = None  # docker Container
    image_id: str = ""
    restarts: int = 0
    started: bool = False  # the startup probe passed (or there is none)
    ready: bool = False
    waiting: tuple[str, str] | None = ("ContainerCreating", "")
    last_terminated: dict | None = None
    restart_at: float | None = None  # when a crashed container starts again
    probes: dict[str, Probe] = field(default_factory=dict)


class PodRuntime:
    """One pod's containers. `start` runs in the agent's worker threads (pulls take a while);
    `tick` runs in the agent's loop and returns the pod's status."""

    def __init__(self, client: docker.DockerClient, cluster_id: str, pod: Mapping[str, Any], api) -> None:
        self.client = client
        self.cluster_id = cluster_id
        self.pod = pod
        self.api = api  # (method, path, **kw) -> requests.Response, as the administrator
        meta = pod["metadata"]
        self.namespace, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.containers = [ContainerState(spec) for spec in pod["spec"]["containers"]]
        self.ip = ""
        self.start_time = now()
        self.lock = threading.Lock()
        self.failed_to_start: str | None = None
        self.transitions: dict[str, tuple[bool, str]] = {}  # condition -> (value, when it became so)

    # --- names and labels ----------------------------------------------------------------

    def docker_name(self, container: str) -> str:
        return f"sutra-test-{self.cluster_id}-{self.namespace}-{self.name}-{container}"[:250]

    @property
    def labels(self) -> dict[str, str]:
        return cluster_labels(
            self.cluster_id,
            **{"sutra.dev/pod-uid": self.uid, "sutra.dev/pod": f"{self.namespace}/{self.name}"},
        )

    # --- starting ------------------------------------------------------------------------

    def start(self, network: str, volume_for_claim) -> None:
        """Pull, make the volumes, create and start every container (in the worker thread)."""
        mounts_by_volume = self._volumes(volume_for_claim)
        first = None
        for state in self.containers:
            spec = state.spec
            image = self._pull(state)
            if image is None:
                return
            options = self._options(spec, mounts_by_volume)
            if first is None:
                options.update(network=network, hostname=self.name[:63])
            else:
                options["network_mode"] = f"container:{first.id}"
            with self.lock:
                state.container = self.client.containers.create(
                    image.id, name=self.docker_name(spec["name"]), **options
                )
                state.image_id = (image.attrs.get("RepoDigests") or [image.id])[0]
            state.container.start()
            state.container.reload()
            if first is None:
                first = state.container
                self.ip = state.container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
            self._arm_probes(state, time.monotonic())
            with self.lock:
                state.waiting = None

    def _pull(self, state: ContainerState):
        reference = state.spec["image"]
        policy = state.spec.get("imagePullPolicy") or (
            "Always" if reference.endswith(":latest") else "IfNotPresent"
        )
        if policy != "Always":
            try:
                return self.client.images.get(reference)
            except docker.errors.ImageNotFound:
                if policy == "Never":
                    state.waiting = ("ErrImageNeverPull", f"image {reference} is not present")
                    return None
        try:
            return self.client.images.pull(reference)
        except docker.errors.APIError as error:
            with self.lock:
                state.waiting = ("ErrImagePull", f"pulling {reference}: {error.explanation or error}"[:500])
            return None

    def _options(self, spec: Mapping[str, Any], mounts_by_volume: Mapping[str, dict]) -> dict[str, Any]:
        pod_security = self.pod["spec"].get("securityContext") or {}
        security = {**pod_security, **(spec.get("securityContext") or {})}
        limits = (spec.get("resources") or {}).get("limits") or {}
        requests_ = (spec.get("resources") or {}).get("requests") or {}
        options: dict[str, Any] = {
            "labels": {**self.labels, "sutra.dev/container": spec["name"]},
            "environment": self._environment(spec, limits),
            "detach": True,
        }
        if spec.get("command"):
            options["entrypoint"] = list(spec["command"])
        if spec.get("args"):
            options["command"] = list(spec["args"])
        if spec.get("workingDir"):
            options["working_dir"] = spec["workingDir"]
        uid, gid = security.get("runAsUser"), security.get("runAsGroup")
        if uid is not None:
            options["user"] = f"{uid}:{gid}" if gid is not None else str(uid)
        groups = [str(g) for g in pod_security.get("supplementalGroups") or []]
        if pod_security.get("fsGroup") is not None:
            groups.append(str(pod_security["fsGroup"]))
        if groups:
            options["group_add"] = groups
        if security.get("readOnlyRootFilesystem"):
            options["read_only"] = True
        caps = security.get("capabilities") or {}
        if caps.get("drop"):
            options["cap_drop"] = list(caps["drop"])
        if caps.get("add"):
            options["cap_add"] = list(caps["add"])
        if security.get("allowPrivilegeEscalation") is False:
            options["security_opt"] = ["no-new-privileges"]
        if "memory" in limits:
            options["mem_limit"] = memory_bytes(limits["memory"])
            options["memswap_limit"] = options["mem_limit"]  # no swap: over the limit is an OOM kill
        if "cpu" in limits:
            options["nano_cpus"] = millicores(limits["cpu"]) * 10**6
        if "cpu" in requests_:
            options["cpu_shares"] = max(2, millicores(requests_["cpu"]) * 1024 // 1000)
        mounts = []
        for mount in spec.get("volumeMounts") or []:
            source = mounts_by_volume.get(mount["name"])
            if source is None:
                continue
            mounts.append(
                docker.types.Mount(
                    target=mount["mountPath"],
                    source=source["source"],
                    type=source["type"],
                    read_only=bool(mount.get("readOnly")),
                )
            )
        if mounts:
            options["mounts"] = mounts
        return options

    def _environment(self, spec: Mapping[str, Any], limits: Mapping[str, Any]) -> dict[str, str]:
        fields = {
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            "metadata.uid": self.uid,
            "spec.nodeName": self.pod["spec"].get("nodeName", ""),
            "spec.serviceAccountName": self.pod["spec"].get("serviceAccountName", ""),
            "status.podIP": self.ip,
            "status.hostIP": "127.0.0.1",
        }
        env: dict[str, str] = {}
        for item in spec.get("env") or []:
            source = item.get("valueFrom")
            if source is None:
                value = re.sub(
                    r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), item.get("value", "")
                )
            elif "fieldRef" in source:
                value = fields.get(source["fieldRef"]["fieldPath"], "")
            elif "resourceFieldRef" in source:
                resource = source["resourceFieldRef"]["resource"]
                raw = limits.get(resource.split(".", 1)[-1], "0")
                value = str(
                    memory_bytes(raw) if "memory" in resource else max(1, -(-millicores(raw) // 1000))
                )
            else:
                value = self._key_ref(source)
            env[item["name"]] = value
        return env

    def _key_ref(self, source: Mapping[str, Any]) -> str:
        for kind, ref_key, decode in (
            ("secrets", "secretKeyRef", True),
            ("configmaps", "configMapKeyRef", False),
        ):
            ref = source.get(ref_key)
            if ref:
                answer = self.api("GET", f"/api/v1/namespaces/{self.namespace}/{kind}/{ref['name']}")
                data = answer.json().get("data", {}) if answer.ok else {}
                value = data.get(ref["key"], "")
                return base64.b64decode(value).decode() if decode and value else value
        return ""

    def _volumes(self, volume_for_claim) -> dict[str, dict]:
        """Each pod volume as a Docker mount source: an emptyDir is a volume of the pod's own
        (tmpfs for medium Memory), a claim the volume the agent made for its PV."""
        pod_security = self.pod["spec"].get("securityContext") or {}
        fs_group = pod_security.get("fsGroup")
        out: dict[str, dict] = {}
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            if "emptyDir" in volume:
                if (volume["emptyDir"] or {}).get("medium") == "Memory":
                    out[name] = {"type": "tmpfs", "source": None}
                    continue
                made = self.client.volumes.create(
                    name=f"sutra-test-{self.cluster_id}-{self.uid}-{name}", labels=self.labels
                )
                _own(made, fs_group, mode=0o2777 if fs_group is None else 0o2775)
                out[name] = {"type": "volume", "source": made.name}
            elif "persistentVolumeClaim" in volume:
                made = volume_for_claim(self.namespace, volume["persistentVolumeClaim"]["claimName"])
                _own(made, fs_group, mode=0o2775)
                out[name] = {"type": "volume", "source": made.name}
        return out

    # --- probes and restarts ---------------------------------------------------------------

    def _arm_probes(self, state: ContainerState, at: float) -> None:
        state.probes = {}
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            spec = state.spec.get(kind)
            if spec:
                state.probes[kind] = Probe(spec, next_at=at + float(spec.get("initialDelaySeconds", 0)))
        state.started = "startupProbe" not in state.probes
        state.ready = False

    def _probe(self, state: ContainerState, probe: Probe) -> bool:
        spec = probe.spec
        ports = {p.get("name"): p["containerPort"] for p in state.spec.get("ports") or []}
        try:
            if "httpGet" in spec:
                action = spec["httpGet"]
                port = ports.get(action["port"], action["port"])
                scheme = action.get("scheme", "HTTP").lower()
                url = f"{scheme}://{self.ip}:{port}{action.get('path', '/')}"
                answer = requests.get(url, timeout=probe.timeout, verify=False, allow_redirects=False)
                return 200 <= answer.status_code < 400
            if "tcpSocket" in spec:
                port = ports.get(spec["tcpSocket"]["port"], spec["tcpSocket"]["port"])
                with socket.create_connection((self.ip, int(port)), timeout=probe.timeout):
                    return True
            if "exec" in spec:
                result = state.container.exec_run(spec["exec"]["command"])
                return result.exit_code == 0
        except (OSError, requests.RequestException, docker.errors.APIError):
            return False
        return False

    def tick(self, at: float) -> dict[str, Any]:
        """Look at every container, probe what is due, restart what crashed; the pod status."""
        for state in self.containers:
            if state.container is None:
                continue
            try:
                state.container.reload()
            except docker.errors.NotFound:
                continue
            info = state.container.attrs["State"]
            if info["Status"] in ("exited", "dead"):
                self._crashed(state, info, at)
                continue
            for kind, probe in state.probes.items():
                if kind != "startupProbe" and not state.started:
                    continue
                if kind == "startupProbe" and state.started:
                    continue
                if not probe.due(at):
                    continue
                probe.record(self._probe(state, probe), at)
                if kind == "startupProbe":
                    if probe.passing:
                        state.started = True
                    elif probe.failed:
                        self._restart(state, at, "startup probe failed")
                elif kind == "readinessProbe":
                    if probe.passing:
                        state.ready = True
                    elif probe.failed:
                        state.ready = False
                elif kind == "livenessProbe" and probe.failed:
                    self._restart(state, at, "liveness probe failed")
            if "readinessProbe" not in state.probes and state.started:
                state.ready = True
        return self.status()

    def _crashed(self, state: ContainerState, info: Mapping[str, Any], at: float) -> None:
        state.ready = False
        if state.restart_at is None:
            state.last_terminated = {
                "exitCode": info.get("ExitCode", 0),
                "reason": "OOMKilled"
                if info.get("OOMKilled")
                else ("Completed" if info.get("ExitCode") == 0 else "Error"),
                "startedAt": rfc3339(info.get("StartedAt", "")),
                "finishedAt": rfc3339(info.get("FinishedAt", "")),
                "containerID": f"docker://{state.container.id}",
            }
            if self.pod["spec"].get("restartPolicy", "Always") == "Never":
                return
            backoff = min(BACKOFF_CAP, BACKOFF_START * 2 ** min(state.restarts, 10))
            state.restart_at = at + (0 if state.restarts == 0 else backoff)
            state.waiting = ("CrashLoopBackOff", f"back-off {backoff:.0f}s restarting failed container")
        if at >= state.restart_at:
            state.restart_at = None
            state.restarts += 1
            state.waiting = None
            try:
                state.container.start()
            except docker.errors.APIError as error:
                state.waiting = ("RunContainerError", str(error)[:300])
                return
            self._arm_probes(state, at)

    def _restart(self, state: ContainerState, at: float, why: str) -> None:
        state.ready = False
        state.container.restart(timeout=int(self.pod["spec"].get("terminationGracePeriodSeconds", 30)))
        state.restarts += 1
        state.last_terminated = {"exitCode": 137, "reason": "Error", "message": why}
        self._arm_probes(state, at)

    # --- status --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        statuses = []
        for state in self.containers:
            spec = state.spec
            entry: dict[str, Any] = {
                "name": spec["name"],
                "image": spec["image"],
                "imageID": f"docker-pullable://{state.image_id}" if state.image_id else "",
                "ready": state.ready,
                "started": state.started and state.waiting is None,
                "restartCount": state.restarts,
            }
            if state.container is not None:
                entry["containerID"] = f"docker://{state.container.id}"
            if state.waiting is not None:
                reason, message = state.waiting
                entry["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
            elif state.container is not None:
                info = state.container.attrs["State"]
                entry["state"] = {"running": {"startedAt": rfc3339(info.get("StartedAt", "")) or now()}}
            if state.last_terminated:
                entry["lastState"] = {"terminated": state.last_terminated}
            statuses.append(entry)
        all_ready = all(s["ready"] for s in statuses)
        running = any("running" in s.get("state", {}) for s in statuses)

        def condition(kind: str, ok: bool, reason: str = "") -> dict:
            # As a kubelet: the time is when the condition last changed, not when it was looked at.
            if self.transitions.get(kind, (None,))[0] != ok:
                self.transitions[kind] = (ok, now())
            out = {
                "type": kind,
                "status": "True" if ok else "False",
                "lastProbeTime": None,
                "lastTransitionTime": self.transitions[kind][1],
            }
            if not ok and reason:
                out["reason"] = reason
            return out

        # The scheduler's own PodScheduled condition stays as the scheduler wrote it.
        conditions = (self.pod.get("status") or {}).get("conditions") or []
        scheduled = next((c for c in conditions if c.get("type") == "PodScheduled"), None)

        return {
            "phase": "Running" if running or any(s["restartCount"] for s in statuses) else "Pending",
            "hostIP": "127.0.0.1",
            **({"podIP": self.ip, "podIPs": [{"ip": self.ip}]} if self.ip else {}),
            "startTime": self.start_time,
            "conditions": [
                condition("Initialized", True),
                condition("Ready", all_ready, "ContainersNotReady"),
                condition("ContainersReady", all_ready, "ContainersNotReady"),
                scheduled or condition("PodScheduled", True),
            ],
            "containerStatuses": statuses,
        }

    # --- stopping --------------------------------------------------------------------------

    def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds, as a kubelet stops a pod; then the
        containers and the pod's own volumes go."""
        for state in reversed(self.containers):
            if state.container is None:
                continue
            try:
                state.container.stop(timeout=max(0, int(grace)))
                state.container.remove(force=True)
            except docker.errors.NotFound:
                pass
        for volume in self.client.volumes.list(filters={"label": f"sutra.dev/pod-uid={self.uid}"}):
            with contextlib.suppress(docker.errors.APIError):
                volume.remove(force=True)


def _own(volume, group: int | None, *, mode: int) -> None:
    """What a kubelet does to a volume before a pod mounts it: group-owned by the pod's
    fsGroup (setgid, group-writable), or open to all for an emptyDir with no fsGroup. The
    engine here is local, so the volume's folder is on this machine."""
    path = volume.attrs.get("Mountpoint") or ""
    if not path or not os.path.isdir(path):
        return
    if group is not None:
        os.chown(path, -1, int(group))
    os.chmod(path, mode)
