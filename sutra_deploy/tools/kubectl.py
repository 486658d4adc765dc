"""Every kubectl command line, through :class:`~sutra_deploy.tools.commands.Commands`.

Only `kubectl kustomize` (local rendering) runs in a dry run; everything that reads or
changes a cluster is printed instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..core.errors import ClusterUnreachable, SutraError, WrongContext, failure_reason
from .commands import Background, Commands

log = logging.getLogger("sutra")


# Seconds a read of the cluster may take before kubectl gives up: an address that drops
# packets would otherwise hang for minutes.
REQUEST_TIMEOUT = 10


# What kubectl says when the API server is not there (any more): down, restarting, cut off.
SERVER_GONE = (
    "connection refused",
    "was refused",
    "connection reset",
    "unexpected eof",
    ": eof",  # a request cut when the server went away
    "i/o timeout",
    "no route to host",
    "server sent goaway",
    "tls handshake timeout",
    "unable to connect to the server",
)


# Words of an answer the API server gave: a webhook it could not call is the server refusing
# (the same words, "connection refused", inside), and running again would not converge.
SERVER_ANSWERED = ("error from server", "internal error occurred", "failed calling webhook")


def server_gone(reason: str) -> bool:
    """Whether kubectl's words say the API server stopped answering, rather than refused."""
    lowered = reason.lower()
    if any(marker in lowered for marker in SERVER_ANSWERED):
        return False
    return any(marker in lowered for marker in SERVER_GONE)


class Kubectl:
    def __init__(self, commands: Commands, executable: str = "kubectl") -> None:
        self.commands = commands
        self.executable = executable

    @property
    def dry(self) -> bool:
        return self.commands.dry

    def _run(self, *args: str, server: bool = True, **kwargs):
        # Anything but local rendering talks to a cluster: printed, not run, when dry.
        return self.commands.run([self.executable, *args], mutates=server, **kwargs)

    def kustomize(self, directory: Path) -> str:
        return self._run("kustomize", str(directory), server=False).stdout

    def current_context(self) -> str | None:
        # Reads the kubeconfig only, so a dry run checks the context as the real run does.
        listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        if listed and not any(Path(p).expanduser().is_file() for p in listed):
            raise WrongContext(
                f"KUBECONFIG names {os.environ['KUBECONFIG']}, and no such file exists: point it at "
                "your kubeconfig (or unset it for ~/.kube/config)"
            )
        result = self._run("config", "current-context", server=False, check=False)
        if not result.ok:
            raise WrongContext(f"kubectl has no current context ({failure_reason(result.stderr)})")
        return result.stdout.strip()

    def server(self) -> str:
        """The API server of the current context, from the kubeconfig (no request is made)."""
        jsonpath = "--output=jsonpath={.clusters[0].cluster.server}"
        result = self._run("config", "view", "--minify", jsonpath, server=False, check=False)
        return result.stdout.strip() if result.ok and result.stdout.strip() else "of the current context"

    def apply(self, manifest: str, what: str) -> None:
        log.info("[k8s] apply %s", what)
        self._run("apply", "--filename", "-", input=manifest)

    def diff(self, manifest: str) -> str:
        """`kubectl diff` (server-side dry run: the server merges and defaults, stores nothing);
        the unified diff, empty when nothing would change. Read-only, so it runs under --dry."""
        result = self.commands.run([self.executable, "diff", "--filename", "-"], input=manifest, check=False)
        if result.returncode not in (0, 1):  # 1: differences found; more: kubectl failed
            raise SutraError(f"kubectl diff: {failure_reason(result.stderr)}")
        return result.stdout

    def rollout_status(self, deployment: str, namespace: str, timeout: int) -> None:
        self._run(
            "rollout", "status", f"deployment/{deployment}", "--namespace", namespace, f"--timeout={timeout}s"
        )

    def rollout_undo(self, deployment: str, namespace: str, to_revision: int | None = None) -> None:
        revision = [f"--to-revision={to_revision}"] if to_revision else []
        self._run("rollout", "undo", f"deployment/{deployment}", "--namespace", namespace, *revision)

    def rollout_history(self, deployment: str, namespace: str) -> str:
        """The Deployment's revisions as kubectl lists them (REVISION, CHANGE-CAUSE)."""
        return self._run("rollout", "history", f"deployment/{deployment}", "--namespace", namespace).stdout

    def revision(self, deployment: str, namespace: str) -> int | None:
        """The Deployment's current rollout revision; None if it does not exist (yet)."""
        path = "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
        result = self._run(
            "get", f"deployment/{deployment}", "--namespace", namespace, "--output", path, check=False
        )
        text = result.stdout.strip()
        return int(text) if result.ok and text.isdigit() else None

    def annotations(self, deployment: str, namespace: str) -> dict[str, str]:
        """The Deployment's own annotations; empty if it does not exist (yet), and when dry."""
        result = self._run(
            "get", f"deployment/{deployment}", "--namespace", namespace, "--output", "json", check=False
        )
        if self.dry or not result.ok:
            return {}
        try:
            found = json.loads(result.stdout).get("metadata", {}).get("annotations") or {}
        except (json.JSONDecodeError, AttributeError):
            raise SutraError(f"kubectl get deployment/{deployment} gave no JSON object") from None
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    def set_image(self, deployment: str, container: str, image: str, namespace: str) -> None:
        self._run(
            "set", "image", f"deployment/{deployment}", f"{container}={image}", "--namespace", namespace
        )

    def annotate(self, deployment: str, namespace: str, notes: Mapping[str, str | None]) -> None:
        """Set (or, for None, remove) annotations on a Deployment's own metadata."""
        pairs = [f"{key}-" if value is None else f"{key}={value}" for key, value in notes.items()]
        self._run("annotate", f"deployment/{deployment}", "--namespace", namespace, "--overwrite", *pairs)

    def get(self, kinds: str, namespace: str) -> str:
        return self._run("get", kinds, "--namespace", namespace).stdout

    def top_pods(self, namespace: str) -> str:
        """Each pod's CPU and memory use now, one `NAME CPU MEMORY` line each (metrics-server)."""
        return self._run("top", "pods", "--namespace", namespace, "--no-headers").stdout

    @contextlib.contextmanager
    def port_forward(
        self, service: str, namespace: str, local_port: int, remote_port: int
    ) -> Iterator[Background | None]:
        """Forward 127.0.0.1:local_port to the Service while the block runs; yields the running
        forward, or None when dry (printed, not run)."""
        argv = [
            self.executable,
            "port-forward",
            f"svc/{service}",
            f"{local_port}:{remote_port}",
            "--namespace",
            namespace,
            "--address",
            "127.0.0.1",
        ]
        with self.commands.background(argv) as forward:
            try:
                yield forward
            finally:
                if forward is not None and not forward.alive:
                    log.info(
                        "[k8s] port-forward to svc/%s ended early: %s",
                        service,
                        failure_reason(forward.output()),
                    )

    @contextlib.contextmanager
    def proxy(self, local_port: int) -> Iterator[Background | None]:
        """`kubectl proxy` on 127.0.0.1:local_port while the block runs: the API server, with
        kubectl's credentials, for plain HTTP clients (its service proxy reaches a Service's
        ready endpoints, one per request). Only loopback clients are accepted (kubectl's default)."""
        argv = [self.executable, "proxy", f"--port={local_port}", "--address=127.0.0.1"]
        with self.commands.background(argv) as running:
            try:
                yield running
            finally:
                if running is not None and not running.alive:
                    log.info("[k8s] kubectl proxy ended early: %s", failure_reason(running.output()))

    # --- read-only: what `inv verify` reads from a live cluster (with `top_pods` above) -----
    # Like every call to a cluster these are printed, not run, when dry; a dry read is empty.

    def check_reachable(self) -> None:
        """One quick read (`/version`): a cluster that does not answer is one line, at once."""
        if self.dry:
            return
        result = self._run("get", "--raw", "/version", f"--request-timeout={REQUEST_TIMEOUT}s", check=False)
        if not result.ok:
            raise ClusterUnreachable(
                f"cannot reach the cluster of kubectl's current context: {failure_reason(result.stderr)}"
            )

    def get_raw(self, path: str) -> dict | None:
        """`kubectl get --raw PATH` (discovery, the OpenAPI schema), parsed; None when the
        server does not serve PATH (404), and when dry."""
        result = self._run("get", "--raw", path, f"--request-timeout={REQUEST_TIMEOUT}s", check=False)
        if self.dry:
            return None
        if not result.ok:
            if "(NotFound)" in result.stderr:
                return None
            raise SutraError(f"kubectl get --raw {path}: {failure_reason(result.stderr)}")
        try:
            answer = json.loads(result.stdout)
        except json.JSONDecodeError:
            raise SutraError(f"kubectl get --raw {path} gave no JSON: {result.stdout[:200]!r}") from None
        if not isinstance(answer, dict):
            raise SutraError(f"kubectl get --raw {path} gave {type(answer).__name__}, not an object")
        return answer

    def get_json(self, kind: str, namespace: str | None = None) -> dict:
        """`kubectl get KIND --output json`, parsed: a List whose `items` are the objects.
        ``namespace`` None reads a cluster-scoped kind (nodes)."""
        scope = ("--namespace", namespace) if namespace else ()
        result = self._run("get", kind, *scope, "--output", "json")
        if self.dry:
            return {"apiVersion": "v1", "kind": "List", "items": []}
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError:
            raise SutraError(f"kubectl get {kind} gave no JSON: {result.stdout[:200]!r}") from None
