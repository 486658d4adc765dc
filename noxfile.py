"""Test sessions. `nox` runs lint, tests and integration; `nox -l` lists them."""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

PYTHON = "3.11"
PROJECT_DIR = Path(__file__).parent
DEV_REQUIREMENTS = "requirements-dev.txt"
LINTED = ["sutra_deploy", "tests", "scripts", "tasks.py", "noxfile.py", "reference/packages"]

nox.options.sessions = ["lint", "tests", "integration"]
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
def integration(session: nox.Session) -> None:
    """Build the real images (local base images if none can be pulled) and test against them."""
    require_tools(session, "docker", "mmdebstrap")
    session.install("-r", DEV_REQUIREMENTS)
    session.run("pytest", "tests/integration", *session.posargs)
