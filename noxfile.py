"""Test sessions. `nox` runs lint, tests, manifests, dependency-audit and integration; `nox -l` lists them."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import nox

PYTHON = "3.11"
PROJECT_DIR = Path(__file__).parent
DEV_REQUIREMENTS = "requirements-dev.txt"
LINTED = ["sutra_deploy", "tests", "scripts", "tasks.py", "noxfile.py", "reference/packages"]

nox.options.sessions = ["lint", "tests", "manifests", "dependency-audit", "integration"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


def require_tools(session: nox.Session, *tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            session.error(f"{tool} is required: run scripts/bootstrap.sh (or install {tool})")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff on the Python, hadolint on every Dockerfile."""
    session.install("-r", DEV_REQUIREMENTS)
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)
    dockerfiles = sorted(str(p) for p in (PROJECT_DIR / "reference").rglob("Dockerfile*"))
    session.run("hadolint", "--config", ".hadolint.yaml", *dockerfiles)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit tests and the reference services' own tests (no Docker needed)."""
    session.install("-r", DEV_REQUIREMENTS)
    session.run("pytest", "tests/unit", "tests/reference", *session.posargs)


@nox.session(python=PYTHON)
def manifests(session: nox.Session) -> None:
    """Render every overlay with kubectl kustomize; validate schemas (strict) and policy."""
    session.install("-r", DEV_REQUIREMENTS)
    session.run("pytest", "tests/manifests", *session.posargs)


@nox.session(name="dependency-audit", python=PYTHON)
def dependency_audit(session: nox.Session) -> None:
    """No service package declares another service or misses what its code imports (plan phase 1)."""
    session.install("-r", "requirements.txt")
    # Unused declarations only warn: whether one can go is a judgement (plugins, optional extras).
    session.run(
        "python", "-m", "invoke", "fix-deps", "--fail-on", "service-coupling,undeclared", *session.posargs
    )


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """Real images, a real compose stack on free ports and a real registry; always torn down."""
    require_tools(session, "docker", "mmdebstrap", "docker-registry", "chromium")
    session.install("-r", DEV_REQUIREMENTS)
    project = f"sutra-it-{uuid.uuid4().hex[:8]}"
    env = {"INVOKE_SUTRA_PROJECT": project}
    try:
        session.run("pytest", "tests/integration", *session.posargs, env=env)
    finally:
        # The tests tear the stack down themselves; this also covers a run cut short.
        session.run("python", "-m", "invoke", "local-down", "--volumes", env=env, success_codes=[0, 1, 2])
