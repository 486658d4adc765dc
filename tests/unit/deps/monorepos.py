"""Small monorepos made in tmp_path, the plan's scenario among them, and the two ways the
tests run fix-deps on them: the library for the details, `inv` for the edge.

Files are named by service: `sutra-api/setup.py` is written into the folder stack.toml gives
sutra-api's package, so the tests follow the stack file rather than repeat its paths."""

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.deps.auditing import DepsReport
from sutra_deploy.deps.auditing import audit as run_audit
from sutra_deploy.deps.edit import apply_changes
from sutra_deploy.deps.model import DepsPolicy
from sutra_deploy.deps.monorepo import package_folder

STACK = load_stack(PROJECT_DIR / "stack.toml")
POLICY = DepsPolicy.from_settings(DEFAULTS["sutra"]["deps"])  # what `inv fix-deps` uses

API_SETUP_PY = """\
from setuptools import find_packages, setup

# Runtime dependencies of the API image.
setup(
    name="sutra-api",
    version="1.0.0",
    packages=find_packages(),
    install_requires=[
        "fastapi>=0.104.0",  # Keep
        # "sutra-core>=1.0.0",  # not part of this tree
        "sutra-hybrid>=1.0.0",  # REMOVE - it's a separate service!
        "uvicorn[standard]>=0.24.0",  # Keep
        "pydantic>=2.0.0",
    ],
)
"""

API_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "sutra-api"
version = "1.0.0"
# Keep this list in step with setup.py.
dependencies = [
    "fastapi>=0.104.0",  # the web framework
    "sutra-hybrid>=1.0.0",  # the in-process coupling the plan removes
    "uvicorn[standard]>=0.24.0",
    "pydantic>=2.0.0",
]

[tool.setuptools]
packages = ["sutra_api"]
"""

API_MAIN = """\
from fastapi import FastAPI
from pydantic import BaseModel

from sutra_api import search

app = FastAPI()
"""

# numpy only where the ranking runs, inside a function: still an import the image needs.
API_SEARCH = """\
import os


def rank(scores):
    import numpy as np

    return np.argsort(scores)
"""

HYBRID_NUMPY = "numpy>=1.26"

HYBRID_PYPROJECT = f"""\
[project]
name = "sutra-hybrid"
version = "1.0.0"
dependencies = ["{HYBRID_NUMPY}", "fastapi>=0.104.0", "uvicorn>=0.24"]
"""

HYBRID_MAIN = """\
import fastapi
import numpy
"""

# The plan's starting point: sutra-api declares sutra-hybrid, in both of its files.
SCENARIO = {
    "sutra-api/setup.py": API_SETUP_PY,
    "sutra-api/pyproject.toml": API_PYPROJECT,
    "sutra-api/sutra_api/__init__.py": "",
    "sutra-api/sutra_api/main.py": API_MAIN,
    "sutra-api/sutra_api/search.py": API_SEARCH,
    "sutra-hybrid/pyproject.toml": HYBRID_PYPROJECT,
    "sutra-hybrid/sutra_hybrid/__init__.py": HYBRID_MAIN,
}


def package_dir(service: str) -> str:
    """Where stack.toml keeps a service's package, relative to the source root."""
    return package_folder(Path(), STACK.service(service), STACK).as_posix()


def source_rel(path: str) -> str:
    """`sutra-api/setup.py` -> that file's path relative to the source root."""
    first, _, rest = path.partition("/")
    return f"{package_dir(first)}/{rest}" if first in STACK.service_names else path


def tree(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        path = root / source_rel(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def read(root: Path, path: str) -> str:
    return (root / source_rel(path)).read_text()


def pyproject(name: str, *requirements: str) -> str:
    listed = ", ".join(f'"{r}"' for r in requirements)
    return f'[project]\nname = "{name}"\ndependencies = [{listed}]\n'


def audit(root: Path, *names: str, policy: DepsPolicy = POLICY) -> DepsReport:
    return run_audit(STACK, root, list(names), policy)


def findings(report: DepsReport) -> set[tuple[str, str, str]]:
    return {(f.service, f.kind, f.dependency) for f in report.findings}


def kinds(report: DepsReport) -> dict[str, str]:
    """dependency -> the kind of its finding, for one service's report."""
    return {f.dependency: f.kind for f in report.findings}


def apply(root: Path, *names: str, policy: DepsPolicy = POLICY) -> DepsReport:
    report = audit(root, *names, policy=policy)
    apply_changes(root, report.changes)
    return report


def inv(*args: str, core: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *core, "fix-deps", *args],
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]
