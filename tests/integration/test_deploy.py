"""`inv deploy --env local` end to end on real images and a real compose stack, and the plan's
script around `inv deploy`. Every Kubernetes deploy is tested against the real control plane
(tests/cluster/test_deploy.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from sutra_deploy.core.source import PROJECT_DIR

from ..kubeconfigs import kubeconfig
from .conftest import inv


def test_local_deploy_runs_build_sizes_up_and_smoke(local_stack):
    result = inv("deploy", "--env", "local", **local_stack)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TOTAL" in result.stdout and "end-to-end" in result.stdout


def run_script(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(PROJECT_DIR / "scripts" / "deploy-optimized.sh")],
        env={**os.environ, "INV": f"{sys.executable} -m invoke", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_plans_script_wraps_inv_deploy_and_honours_its_variables(built_v2, tmp_path):
    """Dry: the real kubectl reads a kubeconfig whose context is staging's, and its diff finds
    no cluster there (a line on stderr); nothing is built, pushed or applied."""
    config = kubeconfig(tmp_path / "kubeconfig", "sutra-staging")
    dry = {"INVOKE_RUN_DRY": "true", "KUBECONFIG": str(config)}
    script = {"DEPLOY": "k8s", "REGISTRY": "localhost:5999/team", "VERSION": "v2", "TAG": "r1"}
    result = run_script({**dry, **script})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "docker push localhost:5999/team/sutra-api:r1" in result.stdout  # TAG: the release
    assert "docker push localhost:5999/team/sutra-api:v2" in result.stdout
    assert "rollout status deployment/sutra-api --namespace sutra-ai-staging" in result.stdout
    assert "[deploy] dry run: could not ask the cluster what would change" in result.stderr
    pushed = run_script({**dry, "PUSH": "true", "REGISTRY": "localhost:5999/team"})
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    assert "docker push localhost:5999/team/sutra-client:latest" in pushed.stdout
    assert "kubectl" not in pushed.stdout
    wrong = run_script({"DEPLOY": "cloud"})
    assert wrong.returncode == 2 and "DEPLOY=cloud: expected k8s, local or nothing" in wrong.stderr
