"""The deploy runs as the namespace's Role, not as an administrator: an administrator applies
k8s/rbac/staging once, and `inv deploy --env staging` then runs end to end with the
`sutra-deployer` ServiceAccount's token. What that Role does not allow is one line naming the
verb and the resource, exit 2. Runs after test_verify.py (alphabetically), on the staging that
the tests before it left running."""

from __future__ import annotations

import base64
import json

from sutra_deploy.core.source import PROJECT_DIR

from .conftest import inv
from .control_plane import ControlPlane

NAMESPACE = "sutra-ai-staging"


def deployer_token(cluster: ControlPlane) -> str:
    """The ServiceAccount's token, from the Secret the token controller makes for it."""
    found: list[str] = []

    def made() -> bool:
        account = json.loads(
            cluster.kubectl("get", "serviceaccount", "sutra-deployer", "-n", NAMESPACE, "-o", "json").stdout
        )
        for ref in account.get("secrets") or []:
            secret = json.loads(
                cluster.kubectl("get", "secret", ref["name"], "-n", NAMESPACE, "-o", "json").stdout
            )
            if secret.get("data", {}).get("token"):
                found.append(base64.b64decode(secret["data"]["token"]).decode())
                return True
        return False

    cluster.wait_for(made, timeout=30, what="token for sutra-deployer")
    return found[0]


def test_deploy_runs_with_the_namespaces_role_and_a_denied_call_is_named(cluster, cluster_env, tmp_path):
    bootstrap = cluster.kubectl("apply", "-k", str(PROJECT_DIR / "k8s" / "rbac" / "staging"))
    assert "role.rbac.authorization.k8s.io/sutra-deployer" in bootstrap.stdout
    kubeconfig = cluster.write_kubeconfig(
        tmp_path / "deployer", f"system:serviceaccount:{NAMESPACE}:sutra-deployer", deployer_token(cluster)
    )
    who = cluster.kubectl(
        f"--kubeconfig={kubeconfig}", "auth", "can-i", "delete", "deployments", "-n", NAMESPACE, check=False
    )
    assert who.stdout.strip() == "no", "the deploy's Role must not delete"

    env = {**cluster_env("staging"), "KUBECONFIG": str(kubeconfig)}
    cluster.kubectl(f"--kubeconfig={kubeconfig}", "config", "use-context", "sutra-staging")
    result = inv("deploy", "--env", "staging", env=env, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "and found it (POST /query on sutra-api)" in result.stdout

    production = {**env, "KUBECONFIG": str(kubeconfig)}
    cluster.kubectl(f"--kubeconfig={kubeconfig}", "config", "use-context", "sutra-production")
    denied = inv("k8s-apply", "--env", "production", "--yes", env=production)
    assert denied.returncode == 2, denied.stderr[-3000:]
    last = denied.stderr.strip().splitlines()[-1]
    assert last.startswith("error: apply namespace (7 objects) refused: "), last
    # The API server's words: who, which verb, which resource, where.
    assert "sutra-deployer" in last and 'cannot get resource "' in last and '"sutra-ai"' in last, last
    assert "nothing was applied" in last, last
