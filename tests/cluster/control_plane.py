"""A real Kubernetes control plane for the tests: etcd, kube-apiserver, kube-controller-manager
and kube-scheduler (built by `control_plane_source`), started on free loopback ports in a
folder of its own, with its own kubeconfig, and always torn down.

    with ControlPlane.start(folder) as cluster:
        cluster.kubectl("get", "--raw", "/readyz")

What it is not: there is no kubelet (a real one rewrites the host's kernel settings), so nodes
and the pods bound to them are the node agent's (`node_agent.py`). The apiserver makes its own
self-signed serving pair; the kubeconfig trusts exactly that certificate, so every call is TLS
with verification. Callers authenticate with tokens from a token file: an administrator
(system:masters) for setting up, and whatever the tests add. Each process gets SIGTERM when the
test process dies, even by SIGKILL (PR_SET_PDEATHSIG), so a killed run leaves no server behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..processes import start_owned
from .control_plane_source import ensure_built

SERVICE_CIDR = "10.96.0.0/16"
START_DEADLINE = 60.0  # seconds: readyz normally answers in 4-5 s
ADMIN = "sutra-test-admin"
CONTEXTS = ("sutra-test", "sutra-staging", "sutra-production")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ControlPlane:
    folder: Path
    server: str = ""
    admin_token: str = ""
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    argv: dict[str, list[str]] = field(default_factory=dict)  # how each was started
    agent: Any = None  # the node agent tending this cluster's nodes, once one is

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "kubeconfig"

    @property
    def ca(self) -> Path:
        return self.folder / "certs" / "apiserver.crt"

    @classmethod
    @contextlib.contextmanager
    def start(cls, folder: Path) -> Iterator[ControlPlane]:
        plane = cls(folder)
        try:
            plane._start()
            yield plane
        finally:
            plane.stop()

    # --- starting ------------------------------------------------------------------------

    def _start(self) -> None:
        started = time.monotonic()
        binaries = ensure_built()
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "certs").mkdir(exist_ok=True)
        self.admin_token = secrets.token_hex(16)
        tokens = self.folder / "tokens.csv"
        tokens.write_text(f'{self.admin_token},{ADMIN},{ADMIN},"system:masters"\n')
        tokens.chmod(0o600)
        key = self.folder / "service-account.key"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True, timeout=60
        )
        pub = self.folder / "service-account.pub"
        subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        etcd_port, peer_port, secure_port = free_port(), free_port(), free_port()
        self._spawn(
            "etcd",
            [
                "etcd",
                "--name=sutra-test",
                f"--data-dir={self.folder / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=sutra-test=http://127.0.0.1:{peer_port}",
                "--log-level=warn",
            ],
        )
        self._wait(f"http://127.0.0.1:{etcd_port}/health", "etcd", verify=False, auth=False)
        self.server = f"https://127.0.0.1:{secure_port}"
        self._spawn(
            "kube-apiserver",
            [
                str(binaries / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={secure_port}",
                "--insecure-port=0",
                f"--cert-dir={self.folder / 'certs'}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={pub}",
                f"--service-account-signing-key-file={key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # No kubelets, so nothing would keep the kubernetes Service's endpoints true.
                "--endpoint-reconciler-type=none",
                "--disable-admission-plugins=ServiceAccount",
                "--v=1",
            ],
        )
        self._wait_for_certificate()
        self._write_kubeconfig()
        self._wait(f"{self.server}/readyz", "kube-apiserver")
        common = [f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--port=0", "--secure-port=0"]
        self._spawn(
            "kube-controller-manager",
            [
                str(binaries / "kube-controller-manager"),
                *common,
                # No kubelets report node health, so the node lifecycle controller would evict all.
                "--controllers=*,-nodelifecycle",
                "--use-service-account-credentials=false",
                f"--service-account-private-key-file={key}",
                f"--root-ca-file={self.ca}",
                "--v=1",
            ],
        )
        self._spawn("kube-scheduler", [str(binaries / "kube-scheduler"), *common, "--v=1"])
        self.kubectl("create", "namespace", "default", check=False)
        print(f"test cluster: ready at {self.server} in {time.monotonic() - started:.1f} s", file=sys.stderr)

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.folder / f"{name}.log").open("ab")
        process = start_owned(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.processes.append((name, process))
        self.argv[name] = argv

    # --- faults --------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        """SIGKILL one of the control plane's processes (the API server, mid-apply): no
        chance to finish a request or to say goodbye."""
        for index, (each, process) in enumerate(self.processes):
            if each == name:
                process.kill()
                process.wait(timeout=30)
                del self.processes[index]
                return
        raise RuntimeError(f"{name} is not running")

    def restart(self, name: str) -> None:
        """Start a killed process again, as it was started (same port, data and certificates),
        and wait until the API server answers as ready again."""
        self._spawn(name, self.argv[name])
        self._wait(f"{self.server}/readyz", "kube-apiserver")

    def _check_running(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                tail = (self.folder / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n" + "\n".join(tail))

    def _wait_for_certificate(self) -> None:
        deadline = time.monotonic() + START_DEADLINE
        while not self.ca.exists() or self.ca.stat().st_size == 0:
            self._check_running()
            if time.monotonic() > deadline:
                raise RuntimeError("kube-apiserver wrote no serving certificate")
            time.sleep(0.1)

    def _wait(self, url: str, name: str, *, verify: bool = True, auth: bool = True) -> None:
        deadline = time.monotonic() + START_DEADLINE
        headers = {"Authorization": f"Bearer {self.admin_token}"} if auth else {}
        last = ""
        while time.monotonic() < deadline:
            self._check_running()
            try:
                answer = requests.get(
                    url, headers=headers, verify=str(self.ca) if verify else False, timeout=2
                )
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code} {answer.text[:200]}"
            except requests.RequestException as error:
                last = str(error)
            time.sleep(0.2)
        raise RuntimeError(f"{name} not ready within {START_DEADLINE:.0f} s: {last}")

    def _write_kubeconfig(self) -> None:
        self.write_kubeconfig(self.kubeconfig, ADMIN, self.admin_token)

    def write_kubeconfig(self, path: Path, user: str, token: str, namespace: str | None = None) -> Path:
        """A kubeconfig for ``user``: the context `sutra-test`, and the contexts the stack's
        environments name by default (`sutra-staging`, `sutra-production`), all this cluster."""
        context_namespace = f"\n    namespace: {namespace}" if namespace else ""
        contexts = "".join(
            f"""- name: {name}
  context:
    cluster: sutra-test
    user: {user}{context_namespace}
"""
            for name in CONTEXTS
        )
        path.write_text(
            f"""apiVersion: v1
kind: Config
clusters:
- name: sutra-test
  cluster:
    server: {self.server}
    certificate-authority: {self.ca}
users:
- name: {user}
  user:
    token: {token}
contexts:
{contexts}current-context: {CONTEXTS[0]}
"""
        )
        path.chmod(0o600)
        return path

    # --- using ---------------------------------------------------------------------------

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess:
        kubectl = Path(sys.executable).parent / "kubectl"
        return subprocess.run(
            [
                str(kubectl),
                *(
                    []
                    if any(a.startswith("--kubeconfig=") for a in args)
                    else [f"--kubeconfig={self.kubeconfig}"]
                ),
                *args,
            ],
            capture_output=True,
            text=True,
            check=check,
            input=input,
            timeout=120,
        )

    def wait_for(self, condition, *, timeout: float, what: str) -> None:
        """Poll ``condition`` every 0.5 s until it holds; fail naming ``what`` at the deadline."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout:.0f} s")
            time.sleep(0.5)

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """One call to the apiserver as the administrator."""
        headers = {"Authorization": f"Bearer {self.admin_token}", **kwargs.pop("headers", {})}
        return requests.request(
            method, self.server + path, headers=headers, verify=str(self.ca), timeout=30, **kwargs
        )

    # --- stopping ------------------------------------------------------------------------

    def stop(self) -> None:
        """SIGTERM to each process, newest first; SIGKILL what has not gone after 10 s."""
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 10
        for _, process in reversed(self.processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


if __name__ == "__main__":  # `python -m tests.cluster.control_plane DIR`: start, wait for Ctrl-C
    with ControlPlane.start(Path(sys.argv[1])) as cluster:
        print(f"KUBECONFIG={cluster.kubeconfig}")
        # Blocked first, so that sigwait receives them rather than their default action
        # (SIGTERM's would end the process before the servers are torn down).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    os._exit(0)
