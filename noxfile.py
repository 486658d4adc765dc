"""Test sessions. `nox` runs lint, tests, manifests, dependency-audit and integration; `nox -l` lists them."""

from __future__ import annotations

import os
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


def build_host_canary(session: nox.Session) -> dict[str, str]:
    """A build machine's trust store as behind a TLS-inspecting proxy: its own plus a CA of
    this machine's. Every integration build uses it (no second build just to check it), and
    tests/integration/test_build_host_leaks.py finds the CA in the build stages and in no
    final image. The CA is made once and kept in .nox/: a new one would change the bases'
    spec and remake them (minutes) on every run, and one fake CA proves what any other would.
    """
    folder = PROJECT_DIR / ".nox" / "build-host-canary"
    cert = folder / "canary-ca.crt"
    if not cert.exists():
        folder.mkdir(parents=True, exist_ok=True)
        # The key goes nowhere: nothing is ever signed with this CA.
        subject = f"/CN=sutra build-host canary {uuid.uuid4().hex[:12]}"
        session.run(
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-keyout", "/dev/null", "-out", str(cert), "-days", "3650", "-subj", subject),
            *("-addext", "basicConstraints=critical,CA:TRUE"),
            external=True,
            silent=True,
        )
    host = Path(os.environ.get("INVOKE_SUTRA_CA_BUNDLE") or "/etc/ssl/certs/ca-certificates.crt")
    store = (host.read_bytes() if host.is_file() else b"") + cert.read_bytes()
    bundle = folder / "ca-bundle.crt"
    if not bundle.is_file() or bundle.read_bytes() != store:
        bundle.write_bytes(store)
    return {"INVOKE_SUTRA_CA_BUNDLE": str(bundle), "SUTRA_CANARY_CA": str(cert)}


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """Real images, a real compose stack on free ports and a real registry; always torn down."""
    require_tools(session, "docker", "mmdebstrap", "docker-registry", "chromium", "openssl")
    session.install("-r", DEV_REQUIREMENTS)
    project = f"sutra-it-{uuid.uuid4().hex[:8]}"
    env = {"INVOKE_SUTRA_PROJECT": project, **build_host_canary(session)}
    build_test_cluster(session)
    try:
        session.run("pytest", "tests/integration", "tests/cluster", *session.posargs, env=env)
    finally:
        # The tests tear the stack down themselves; this also covers a run cut short.
        session.run("python", "-m", "invoke", "local-down", "--volumes", env=env, success_codes=[0, 1, 2])


def build_test_cluster(session: nox.Session) -> None:
    """Go, etcd and the control plane's binaries (built from Debian's source, then cached under
    ~/.cache/sutra-deploy/k8s or $SUTRA_K8S_CACHE): the set-up of the sessions that need them."""
    session.run("python", "-m", "tests.cluster.control_plane_source", silent=False)


@nox.session(python=PYTHON)
def cluster(session: nox.Session) -> None:
    """Every Kubernetes flow against a real control plane the session builds and starts itself."""
    require_tools(session, "docker", "openssl")
    session.install("-r", DEV_REQUIREMENTS)
    build_test_cluster(session)
    session.run("pytest", "tests/cluster", *session.posargs)
