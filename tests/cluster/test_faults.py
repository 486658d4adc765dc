"""Faults on the real control plane: the API server killed with SIGKILL in the middle of a
deploy's apply. The deploy stops with one clear line, the history the cluster keeps records no
release that is not what its Deployment runs, and the same deploy run again converges."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.k8s.zero_downtime import ANNOTATION as ZERO_DOWNTIME_RECORD
from sutra_deploy.ship.history import DIGEST_ANNOTATION, RELEASE_ANNOTATION

from .conftest import OVERLAYS, inv
from .control_plane import ControlPlane

NAMESPACE = "sutra-ai-fault"  # its own: the other tests' environments stay as they are


def own_namespace_overlay(folder) -> str:
    """The staging test overlay, moved whole to a namespace of this test's own."""
    folder.mkdir()
    relative = os.path.relpath(OVERLAYS / "staging", folder)
    (folder / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"namespace: {NAMESPACE}\nresources:\n  - {relative}\n"
    )
    return str(folder)


def recorded_history(cluster: ControlPlane) -> list[dict]:
    """Every Deployment and ReplicaSet of the namespace: what it records (its annotations) and
    the image its pod template runs."""
    listed = cluster.kubectl("get", "deployments,replicasets", "-n", NAMESPACE, "-o", "json").stdout
    rows = []
    for item in json.loads(listed)["items"]:
        [container] = item["spec"]["template"]["spec"]["containers"]
        rows.append(
            {
                "name": f"{item['kind']}/{item['metadata']['name']}",
                "notes": item["metadata"].get("annotations") or {},
                "image": container["image"],
            }
        )
    return rows


def assert_nothing_half_recorded(cluster: ControlPlane) -> None:
    """A release is recorded only beside the image it names."""
    for row in recorded_history(cluster):
        release, digest = row["notes"].get(RELEASE_ANNOTATION), row["notes"].get(DIGEST_ANNOTATION)
        if release is not None:
            assert digest is not None and row["image"].endswith(f"@{digest}"), row


def test_an_api_server_killed_mid_apply_is_one_clear_error_and_the_next_deploy_converges(
    cluster, cluster_env, tmp_path
):
    env = {
        **cluster_env("staging"),
        "INVOKE_SUTRA_ENVIRONMENTS_STAGING_OVERLAY": own_namespace_overlay(tmp_path / "overlay"),
    }
    deploy = subprocess.Popen(
        [sys.executable, "-m", "invoke", "deploy", "--env", "staging"],
        cwd=PROJECT_DIR, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    lines: list[str] = []
    killed = False
    try:
        for line in deploy.stderr:  # the namespace and storage are in; the workloads go now
            lines.append(line)
            if line.startswith("[k8s] apply workloads"):
                cluster.kill("kube-apiserver")
                killed = True
                break
        else:
            raise AssertionError("the deploy never reached the workloads:\n" + "".join(lines[-30:]))
        lines += deploy.stderr.read().splitlines(keepends=True)
        code = deploy.wait(timeout=600)
    finally:
        if deploy.poll() is None:
            deploy.kill()
        if killed:
            cluster.restart("kube-apiserver")
    stderr = "".join(lines)
    assert code == 2, stderr[-3000:]  # the cluster away: as a daemon that is down
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: apply workloads ("), last
    assert cluster.server.removeprefix("https://") in last and "run it again once the server answers" in last
    assert "applied before it: namespace (7 objects), storage (3 objects)" in last
    assert_nothing_half_recorded(cluster)
    # The zero-downtime record is written once every rollout finished: not for this deploy.
    assert not [row["name"] for row in recorded_history(cluster) if ZERO_DOWNTIME_RECORD in row["notes"]]

    again = inv("deploy", "--env", "staging", env=env, timeout=1800)
    assert again.returncode == 0, again.stderr[-3000:]
    [release] = re.findall(r"^\[build\] release (\S+): ", again.stderr, re.MULTILINE)
    deployments = [row for row in recorded_history(cluster) if row["name"].startswith("Deployment/")]
    assert len(deployments) == 5, deployments
    assert all(row["notes"].get(RELEASE_ANNOTATION) == release for row in deployments), deployments
    assert_nothing_half_recorded(cluster)
    answer = cluster.kubectl("get", "deployments", "-n", NAMESPACE, "-o", "json").stdout
    for item in json.loads(answer)["items"]:
        assert item["status"].get("availableReplicas", 0) >= 1, item["metadata"]["name"]
    cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false")
