"""A synthetic Sutra checkout as the plan finds it, made in a test's folder: sutra-api with a
pyproject.toml and a pre-plan Dockerfile (a builder stage with apt and an inline requirements
here-document, a user-site install, an alpine runtime with apk and curl, curl in its
HEALTHCHECK, `CMD ["uvicorn", …]`, a port that disagrees with stack.toml), a storage client
package under packages/ (setup.py) that the API depends on, a templates/ folder, and
sutra-control built from its own folder (setup.py, a console script, a static/ folder).

Its dependencies are small and on PyPI (fastapi, uvicorn), so the integration test builds it.
Paths follow stack.toml: `sutra-api/…` is written into the folder stack.toml gives sutra-api's
package. Shared by the unit tests and tests/integration/test_dockerfiles.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import Stack, load_stack
from sutra_deploy.deps import DepsPolicy
from sutra_deploy.deps.monorepo import package_folder
from sutra_deploy.images.dockerfiles import Generated, plan_dockerfiles
from sutra_deploy.images.dockerfiles.model import DockerfileSettings
from sutra_deploy.images.dockerfiles.parse import parse_dockerfile

STACK = load_stack(PROJECT_DIR / "stack.toml")
HADOLINT = Path(sys.executable).parent / "hadolint"


def package_dir(service: str) -> str:
    return package_folder(Path(), STACK.service(service), STACK).as_posix()


API = package_dir("sutra-api")
CONTROL = package_dir("sutra-control")
API_PORT = STACK.service("sutra-api").port.container
CONTROL_PORT = STACK.service("sutra-control").port.container
CLIENT = "packages/sutra-storage-client"

API_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "sutra-api"
version = "1.0.0"
description = "Sutra public API (a synthetic checkout)"
requires-python = ">=3.11"
dependencies = [
    "fastapi>=0.100",
    "uvicorn>=0.23",
    "sutra-storage-client>=0.1",
]

[project.optional-dependencies]
metrics = ["prometheus-client>=0.17"]

[tool.setuptools]
packages = ["sutra_api"]
"""

# What the old image ran: its requirements written inline, pinned tighter than the metadata
# in one place (fastapi<1.0) and with a heavy library the API never declared (torch).
API_DOCKERFILE = """\
# syntax=docker/dockerfile:1.4
# sutra-api, as the deployment plan found it.
FROM python:3.11-slim AS builder
RUN apt-get update \\
    # compilers for the wheels that have none
    && apt-get install -y gcc g++ curl
WORKDIR /build
RUN cat > requirements.txt <<EOF
fastapi>=0.100,<1.0
uvicorn[standard]>=0.23
torch==2.1.0
EOF
RUN pip install --user --no-cache-dir -r requirements.txt
COPY packages/sutra-storage-client /tmp/client
RUN pip install --user /tmp/client

FROM python:3.11-alpine
RUN apk add --no-cache curl
WORKDIR /app
COPY --from=builder /root/.local /root/.local
COPY packages/sutra-api/sutra_api ./sutra_api
COPY packages/sutra-api/templates ./templates
ENV PATH=/root/.local/bin:$PATH \\
    PYTHONUNBUFFERED=1 \\
    SUTRA_GREETING="hello from the checkout"
ENV PIP_NO_CACHE_DIR=1
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s CMD curl -f http://localhost:8080/health || exit 1
CMD ["uvicorn", "sutra_api.main:app", "--host", "0.0.0.0", "--port", "8080"]
ENV SSL_CERT_FILE=/etc/ssl/certs/corp-proxy.pem HTTPS_PROXY=http://proxy.corp:3128
"""

# The templates are found relative to the working directory, as the old image ran it.
API_MAIN = """\
import os
from pathlib import Path

from fastapi import FastAPI

import sutra_storage_client

app = FastAPI()


@app.get("/health")
def health():
    return {
        "status": "ok",
        "storage": sutra_storage_client.describe(),
        "greeting": os.environ.get("SUTRA_GREETING", ""),
        "template": Path("templates/index.html").read_text().strip(),
        "uid": os.getuid(),
    }
"""

CLIENT_SETUP_PY = """\
from setuptools import setup

setup(
    name="sutra-storage-client",
    version="0.1.0",
    description="Talks to the storage server",
    packages=["sutra_storage_client"],
    install_requires=[],
)
"""

CLIENT_INIT = """\
def describe():
    return "storage client 0.1.0"
"""

CONTROL_SETUP_PY = """\
from setuptools import setup

setup(
    name="sutra-control",
    version="1.0.0",
    description="Sutra control",
    packages=["sutra_control"],
    install_requires=[],
    entry_points={"console_scripts": ["sutra-control = sutra_control.main:main"]},
)
"""

CONTROL_DOCKERFILE = f"""\
FROM python:3.11-slim
RUN apt-get update && apt-get install -y curl
WORKDIR /srv
COPY . .
RUN pip install .
EXPOSE {CONTROL_PORT}
CMD exec python -m sutra_control
"""

CONTROL_MAIN = """\
def main():
    return 0
"""

HYBRID_PYPROJECT = """\
[project]
name = "sutra-hybrid"
version = "1.0.0"
dependencies = ["fastapi>=0.100", "uvicorn>=0.23"]
"""

HYBRID_DOCKERFILE = """\
FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install fastapi uvicorn
CMD ["uvicorn", "sutra_hybrid:app", "--host", "0.0.0.0", "--port", "8000"]
"""

FILES: dict[str, str] = {
    f"{API}/pyproject.toml": API_PYPROJECT,
    f"{API}/Dockerfile": API_DOCKERFILE,
    f"{API}/sutra_api/__init__.py": "",
    f"{API}/sutra_api/main.py": API_MAIN,
    f"{API}/templates/index.html": "<h1>sutra templates</h1>\n",
    f"{API}/tests/test_main.py": "def test_nothing():\n    pass\n",
    f"{CLIENT}/setup.py": CLIENT_SETUP_PY,
    f"{CLIENT}/sutra_storage_client/__init__.py": CLIENT_INIT,
    f"{CONTROL}/setup.py": CONTROL_SETUP_PY,
    f"{CONTROL}/Dockerfile": CONTROL_DOCKERFILE,
    f"{CONTROL}/sutra_control/__init__.py": "",
    f"{CONTROL}/sutra_control/__main__.py": "from .main import main\n\nmain()\n",
    f"{CONTROL}/sutra_control/main.py": CONTROL_MAIN,
    f"{CONTROL}/static/style.css": "body { color: black; }\n",
    f"{package_dir('sutra-hybrid')}/pyproject.toml": HYBRID_PYPROJECT,
    f"{package_dir('sutra-hybrid')}/sutra_hybrid/__init__.py": "import fastapi\n\napp = fastapi.FastAPI()\n",
    f"{package_dir('sutra-hybrid')}/Dockerfile": HYBRID_DOCKERFILE,
    ".dockerignore": "**/__pycache__\n**/tests\n",
}


def make_checkout(root: Path, changes: Mapping[str, str | None] | None = None) -> Path:
    """The synthetic checkout under ``root``; ``changes`` replaces files (None removes one)."""
    files = {**FILES, **(changes or {})}
    for rel, text in files.items():
        if text is None:
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if text.startswith(" ") else text)
    return root


def plan(
    root: Path,
    *names: str,
    force: bool = False,
    extras: tuple[str, ...] = (),
    settings: Mapping[str, object] | None = None,
    stack: Stack = STACK,
) -> dict[str, Generated]:
    """The library's plan for the named services (all when none), by service."""
    results = plan_dockerfiles(
        stack,
        root,
        names=list(names),
        extras=list(extras),
        settings=DockerfileSettings.from_settings(settings),
        policy=DepsPolicy.from_settings(DEFAULTS["sutra"]["deps"]),
        force=force,
    )
    return {r.service: r for r in results}


def final_stage(text: str) -> dict[str, list]:
    """The runtime stage's instructions by keyword, read back with the project's own parser."""
    dockerfile = parse_dockerfile(text)
    found: dict[str, list] = {}
    for instruction in dockerfile.final.instructions:
        found.setdefault(instruction.keyword, []).append(instruction)
    return found


def inv(
    *args: str, core: tuple[str, ...] = (), task: str = "dockerfiles", timeout: float = 120, **env: str
) -> subprocess.CompletedProcess:
    """`inv [core options] TASK ARGS`, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *core, task, *args],
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def hadolint(*paths: Path) -> subprocess.CompletedProcess:
    """The real hadolint with the project's configuration, every finding reported."""
    return subprocess.run(
        [
            str(HADOLINT),
            "--config",
            str(PROJECT_DIR / ".hadolint.yaml"),
            "--failure-threshold",
            "info",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
