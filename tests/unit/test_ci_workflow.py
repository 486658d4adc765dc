"""The GitHub Actions workflow cannot run here; its syntax and shape are checked instead."""

import subprocess
import sys
from pathlib import Path

import yaml

from sutra_deploy.core.source import PROJECT_DIR

WORKFLOW = PROJECT_DIR / ".github" / "workflows" / "ci.yml"


def test_workflow_matches_githubs_schema():
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def steps_run(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_jobs_run_the_projects_own_commands_at_the_right_moments():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert triggers["push"] == {"branches": ["main"], "tags": ["v*"]} and "pull_request" in triggers
    jobs = workflow["jobs"]
    assert "nox -s lint tests manifests dependency-audit" in steps_run(jobs["checks"])
    assert "if" not in jobs["checks"]  # every change
    assert jobs["integration"]["if"] == "github.event_name == 'push'"
    assert "nox -s integration" in steps_run(jobs["integration"])
    assert "inv build sizes" in steps_run(jobs["integration"])
    deploy = jobs["deploy-staging"]
    assert deploy["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert set(deploy["needs"]) == {"checks", "integration"}
    # The git tag that triggered the run is the release shipped (pushed as R/<image>:<tag>).
    assert 'inv deploy --env staging --tag "$GITHUB_REF_NAME"' in steps_run(deploy)
    assert "production" not in WORKFLOW.read_text()  # production is never deployed by CI


def test_the_kubeconfig_is_never_readable_by_others():
    deploy = yaml.safe_load(WORKFLOW.read_text())["jobs"]["deploy-staging"]
    [script] = [step["run"] for step in deploy["steps"] if "~/.kube/config" in step.get("run", "")]
    lines = [line.strip() for line in script.splitlines()]
    writes = [i for i, line in enumerate(lines) if "> ~/.kube/config" in line]
    # The file is created under the umask: it must already be 077 when the shell creates it.
    assert writes and "umask 077" in lines[: writes[0]]
    assert "chmod 600 ~/.kube/config" in lines
