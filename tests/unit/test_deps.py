"""fix-deps on small monorepos made in tmp_path: the library for the details, `inv` for the edge."""

import ast
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sutra_deploy import deps
from sutra_deploy.edge import DEFAULTS
from sutra_deploy.source import PROJECT_DIR, REFERENCE_ROOT
from sutra_deploy.stack import load_stack

STACK = load_stack(PROJECT_DIR / "stack.toml")
POLICY = deps.DepsPolicy.from_settings(DEFAULTS["sutra"]["deps"])

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

HYBRID_PYPROJECT = """\
[project]
name = "sutra-hybrid"
version = "1.0.0"
dependencies = ["numpy>=1.26", "fastapi>=0.104.0", "uvicorn>=0.24"]
"""

HYBRID_MAIN = """\
import fastapi
import numpy
"""

SCENARIO = {
    "packages/sutra-api/setup.py": API_SETUP_PY,
    "packages/sutra-api/pyproject.toml": API_PYPROJECT,
    "packages/sutra-api/sutra_api/__init__.py": "",
    "packages/sutra-api/sutra_api/main.py": API_MAIN,
    "packages/sutra-api/sutra_api/search.py": API_SEARCH,
    "packages/sutra-hybrid/pyproject.toml": HYBRID_PYPROJECT,
    "packages/sutra-hybrid/sutra_hybrid/__init__.py": HYBRID_MAIN,
}


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def pyproject(name: str, *requirements: str) -> str:
    listed = ", ".join(f'"{r}"' for r in requirements)
    return f'[project]\nname = "{name}"\ndependencies = [{listed}]\n'


def audit(root: Path, *names: str) -> deps.DepsReport:
    return deps.audit(STACK, root, list(names), POLICY)


def findings(report: deps.DepsReport) -> set[tuple[str, str, str]]:
    return {(f.service, f.kind, f.dependency) for f in report.findings}


def apply(root: Path, *names: str) -> deps.DepsReport:
    report = audit(root, *names)
    deps.apply_changes(root, report.changes)
    return report


def inv(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "fix-deps", *args],
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


# --- the plan's scenario --------------------------------------------------------------


def test_scenario_finds_the_coupling_and_what_removing_it_takes_away(tmp_path):
    root = tree(tmp_path, SCENARIO)
    report = audit(root)
    assert findings(report) == {
        ("sutra-api", "service-coupling", "sutra-hybrid"),
        ("sutra-api", "undeclared", "numpy"),
    }
    numpy = next(f for f in report.findings if f.dependency == "numpy")
    assert numpy.detail.startswith(
        "numpy is imported in sutra_api/search.py:5 and was only installed through sutra-hybrid, "
        "which is being removed"
    )
    assert numpy.detail.endswith("adds numpy>=1.26")  # the spec hybrid declared
    assert [c.path for c in report.changes] == [
        "packages/sutra-api/pyproject.toml",
        "packages/sutra-api/setup.py",
    ]


def test_scenario_through_inv_check_apply_and_check_again(tmp_path):
    root = tree(tmp_path, SCENARIO)
    setup_py = root / "packages/sutra-api/setup.py"
    pyproject = root / "packages/sutra-api/pyproject.toml"

    check = inv("--root", str(root))
    assert check.returncode == 1, check.stderr
    assert one_line(check) == (
        "error: 2 dependency problems in sutra-api; run `inv fix-deps --apply` to fix them"
    )
    words = " ".join(check.stdout.split())  # the table wraps long details
    assert "sutra-api service-coupling sutra-hybrid" in words
    assert "was only installed through sutra-hybrid, which is being removed" in words
    assert "--- a/packages/sutra-api/setup.py\n+++ b/packages/sutra-api/setup.py" in check.stdout
    assert '-        "sutra-hybrid>=1.0.0",  # REMOVE' in check.stdout
    assert '+        "numpy>=1.26",' in check.stdout
    assert '+    "numpy>=1.26",' in check.stdout
    assert setup_py.read_text() == API_SETUP_PY  # a check writes nothing

    applied = inv("--root", str(root), "--apply")
    assert applied.returncode == 0, applied.stderr
    # Exactly the coupled line goes (with its comment) and numpy comes; every other byte stays.
    assert setup_py.read_text() == API_SETUP_PY.replace(
        '        "sutra-hybrid>=1.0.0",  # REMOVE - it\'s a separate service!\n', ""
    ).replace('        "pydantic>=2.0.0",\n', '        "pydantic>=2.0.0",\n        "numpy>=1.26",\n')
    assert pyproject.read_text() == API_PYPROJECT.replace(
        '    "sutra-hybrid>=1.0.0",  # the in-process coupling the plan removes\n', ""
    ).replace('    "pydantic>=2.0.0",\n', '    "pydantic>=2.0.0",\n    "numpy>=1.26",\n')
    assert '        # "sutra-core>=1.0.0",  # not part of this tree\n' in setup_py.read_text()
    assert "# Keep this list in step with setup.py.\n" in pyproject.read_text()

    again = inv("--root", str(root))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "dependencies match the imports"
    assert "---" not in again.stdout

    again_applied = inv("--root", str(root), "--apply", "--json")
    assert again_applied.returncode == 0
    assert json.loads(again_applied.stdout) == {"findings": [], "changes": []}


def test_json_lists_findings_and_diffs(tmp_path):
    root = tree(tmp_path, SCENARIO)
    result = inv("--root", str(root), "--json")
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert {(f["service"], f["kind"], f["dependency"]) for f in out["findings"]} == {
        ("sutra-api", "service-coupling", "sutra-hybrid"),
        ("sutra-api", "undeclared", "numpy"),
    }
    assert set(out["findings"][0]) == {"service", "kind", "dependency", "detail"}
    assert [c["path"] for c in out["changes"]] == [
        "packages/sutra-api/pyproject.toml",
        "packages/sutra-api/setup.py",
    ]
    assert out["changes"][1]["diff"].startswith("--- a/packages/sutra-api/setup.py\n")


def test_dry_apply_writes_nothing(tmp_path):
    root = tree(tmp_path, SCENARIO)
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "--dry", "fix-deps", "--root", str(root), "--apply"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "would rewrite packages/sutra-api/setup.py" in result.stderr
    assert (root / "packages/sutra-api/setup.py").read_text() == API_SETUP_PY


# --- the plan's additions -------------------------------------------------------------


def test_plan_additions_only_where_the_code_needs_them(tmp_path):
    root = tree(
        tmp_path,
        {
            "packages/sutra-api/pyproject.toml": """\
                [project]
                name = "sutra-api"
                dependencies = [
                    "fastapi>=0.104.0",
                    "uvicorn>=0.24.0",
                ]
            """,
            "packages/sutra-api/sutra_api/__init__.py": "",
            "packages/sutra-api/sutra_api/main.py": """\
                import fastapi
                from pydantic_settings import BaseSettings

                async def query(text):
                    import httpx
            """,
            "packages/sutra-control/setup.py": """\
                from setuptools import setup
                setup(name="sutra-control", install_requires=[])
            """,
            "packages/sutra-control/sutra_control/__init__.py": "import json\n",
            "packages/sutra-hybrid/setup.py": """\
                import setuptools
                setuptools.setup(name="sutra-hybrid", install_requires=["numpy>=1.26"])
            """,
            "packages/sutra-hybrid/sutra_hybrid/__init__.py": "import numpy\nimport grpc\n",
        },
    )
    report = audit(root)
    assert findings(report) == {
        ("sutra-api", "undeclared", "pydantic-settings"),
        ("sutra-api", "undeclared", "httpx"),
        ("sutra-hybrid", "undeclared", "grpcio"),
    }
    apply(root)
    api = (root / "packages/sutra-api/pyproject.toml").read_text()
    assert '    "pydantic-settings>=2.0.0",\n    "httpx>=0.25.0",\n]' in api
    assert "grpcio" not in api
    assert "grpcio" not in (root / "packages/sutra-control/setup.py").read_text()
    hybrid = (root / "packages/sutra-hybrid/setup.py").read_text()
    assert 'install_requires=["numpy>=1.26", "grpcio>=1.60.0"]' in hybrid
    assert audit(root).findings == ()


# --- reading declarations -------------------------------------------------------------


def test_setup_py_only(tmp_path):
    root = tree(
        tmp_path,
        {
            "packages/sutra-api/setup.py": """\
                from setuptools import setup

                setup(
                    name="sutra-api",
                    install_requires=['fastapi', 'uvicorn', 'requests>=2'],
                )
            """,
            "packages/sutra-api/sutra_api/__init__.py": "import fastapi\nimport yaml\n",
        },
    )
    report = audit(root)
    # uvicorn is started by name, never imported: a runtime-only dependency, not unused.
    assert findings(report) == {
        ("sutra-api", "unused", "requests"),
        ("sutra-api", "undeclared", "PyYAML"),
    }
    apply(root)
    # The list's own quotes, on its one line.
    assert (
        "install_requires=['fastapi', 'uvicorn', 'PyYAML'],"
        in (root / "packages/sutra-api/setup.py").read_text()
    )


def test_pyproject_only(tmp_path):
    root = tree(
        tmp_path,
        {
            "packages/sutra-hybrid/pyproject.toml": """\
                [project]
                name = "sutra-hybrid"
                dependencies = ["numpy>=1.26", "scipy"]  # both for ranking
            """,
            "packages/sutra-hybrid/src/sutra_hybrid/__init__.py": "import numpy\nimport sutra_hybrid.x\n",
        },
    )
    assert findings(audit(root)) == {("sutra-hybrid", "unused", "scipy")}
    apply(root)
    text = (root / "packages/sutra-hybrid/pyproject.toml").read_text()
    assert 'dependencies = ["numpy>=1.26"]  # both for ranking\n' in text


def test_pyproject_without_dependencies_key_gets_one(tmp_path):
    root = tree(
        tmp_path,
        {
            "packages/sutra-control/pyproject.toml": '[project]\nname = "sutra-control"\n\n[tool.x]\na = 1\n',
            "packages/sutra-control/sutra_control/__init__.py": "import httpx\n",
        },
    )
    apply(root)
    text = (root / "packages/sutra-control/pyproject.toml").read_text()
    assert text.startswith('[project]\nname = "sutra-control"\ndependencies = [\n    "httpx>=0.25.0",\n]\n')
    assert text.endswith("[tool.x]\na = 1\n")


def test_setup_call_without_install_requires_gets_one_in_its_layout(tmp_path):
    root = tree(
        tmp_path,
        {
            "packages/sutra-api/setup.py": """\
                from setuptools import setup

                if __name__ == "__main__":
                    setup(
                        name="sutra-api",
                        version="1",  # bumped by release
                    )
            """,
            "packages/sutra-api/sutra_api/__init__.py": "import httpx\nimport fastapi\n",
        },
    )
    apply(root)
    assert (root / "packages/sutra-api/setup.py").read_text() == textwrap.dedent(
        """\
        from setuptools import setup

        if __name__ == "__main__":
            setup(
                name="sutra-api",
                version="1",  # bumped by release
                install_requires=[
                    "httpx>=0.25.0",
                    "fastapi",
                ],
            )
        """
    )


def test_both_files_that_disagree_are_reported_and_brought_into_agreement(tmp_path):
    root = tree(
        tmp_path,
        {
            "packages/sutra-api/pyproject.toml": """\
                [project]
                name = "sutra-api"
                dependencies = [
                    "fastapi>=0.110",
                    "pydantic>=2.5",
                ]
            """,
            "packages/sutra-api/setup.py": """\
                from setuptools import setup
                setup(
                    name="sutra-api",
                    install_requires=[
                        "fastapi>=0.100",  # older pin
                        "Pydantic >= 2.5",
                        "httpx",
                    ],
                )
            """,
            "packages/sutra-api/sutra_api/__init__.py": "import fastapi, pydantic, httpx\n",
        },
    )
    report = audit(root)
    assert findings(report) == {
        ("sutra-api", "disagreement", "fastapi"),
        ("sutra-api", "disagreement", "httpx"),
    }
    details = {f.dependency: f.detail for f in report.findings}
    assert "pyproject.toml wins" in details["fastapi"]
    assert details["httpx"] == "setup.py declares httpx, pyproject.toml does not"
    apply(root)
    assert '    "pydantic>=2.5",\n    "httpx",\n]' in (root / "packages/sutra-api/pyproject.toml").read_text()
    setup_py = (root / "packages/sutra-api/setup.py").read_text()
    # pyproject's spec, the line's comment kept; `Pydantic >= 2.5` is the same requirement.
    assert '        "fastapi>=0.110",  # older pin\n        "Pydantic >= 2.5",\n' in setup_py
    assert audit(root).findings == ()


def test_module_level_list_named_by_install_requires(tmp_path):
    root = tree(
        tmp_path,
        {
            "packages/sutra-api/setup.py": """\
                from setuptools import setup

                REQUIREMENTS = [
                    "fastapi",
                    "sutra-hybrid",  # coupling
                ]

                setup(name="sutra-api", install_requires=REQUIREMENTS)
            """,
            "packages/sutra-api/sutra_api/__init__.py": "import fastapi\n",
            "packages/sutra-hybrid/setup.py": "from setuptools import setup\nsetup(name='sutra-hybrid')\n",
            "packages/sutra-hybrid/sutra_hybrid/__init__.py": "",
        },
    )
    assert findings(audit(root, "sutra-api")) == {("sutra-api", "service-coupling", "sutra-hybrid")}
    apply(root, "sutra-api")
    assert 'REQUIREMENTS = [\n    "fastapi",\n]\n' in (root / "packages/sutra-api/setup.py").read_text()


DYNAMIC = [
    (
        "def read_requirements():\n    return open('requirements.txt').read().split()\n\n"
        "setup(name='sutra-api', install_requires=read_requirements())\n",
        "install_requires is not a literal list (a call to read_requirements())",
    ),
    (
        "setup(name='sutra-api', install_requires=[r for r in open('r.txt')])\n",
        "install_requires is not a literal list (a comprehension)",
    ),
    (
        "BASE = ['fastapi']\nBASE += ['httpx']\nsetup(name='sutra-api', install_requires=BASE)\n",
        "install_requires is not a literal list (`BASE += ['httpx']` changes it at line 3)",
    ),
    (
        "VERSION = '2'\nsetup(name='sutra-api', install_requires=['fastapi', 'httpx>=' + VERSION])\n",
        "setup.py:3: install_requires holds `'httpx>=' + VERSION`, not a string literal",
    ),
    (
        "kwargs = dict(install_requires=['fastapi'])\nsetup(name='sutra-api', **kwargs)\n",
        "setup() takes **kwargs, which may hold install_requires",
    ),
]


@pytest.mark.parametrize(("body", "message"), DYNAMIC)
def test_setup_py_that_cannot_be_read_statically(tmp_path, body, message):
    root = tree(tmp_path, {"packages/sutra-api/setup.py": "from setuptools import setup\n" + body})
    with pytest.raises(deps.DependencyFileError) as raised:
        audit(root)
    assert message in str(raised.value)
    assert str(raised.value).startswith("packages/sutra-api/setup.py")
    assert str(raised.value).endswith("fix-deps cannot read it statically")


def test_dynamic_setup_py_is_one_line_and_exit_2(tmp_path):
    root = tree(tmp_path, {"packages/sutra-api/setup.py": "from setuptools import setup\n" + DYNAMIC[0][0]})
    result = inv("--root", str(root))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: packages/sutra-api/setup.py: install_requires is not a literal list "
        "(a call to read_requirements()); fix-deps cannot read it statically"
    )


# --- reading imports ------------------------------------------------------------------


def test_every_import_counts_wherever_it_is(tmp_path):
    root = tree(
        tmp_path,
        {
            "packages/sutra-api/pyproject.toml": pyproject("sutra-api"),
            "packages/sutra-api/sutra_api/__init__.py": "",
            "packages/sutra-api/sutra_api/main.py": """\
                from __future__ import annotations

                import importlib
                import sys
                from typing import TYPE_CHECKING

                from . import helpers
                from .helpers import thing
                from sutra_api import helpers as h2

                if TYPE_CHECKING:
                    from starlette.requests import Request

                try:
                    import orjson as json
                except ImportError:
                    import json

                if sys.version_info < (3, 12):
                    import tomli

                class Model:
                    from PIL import Image

                def load():
                    with open("x"):
                        import google.protobuf.message
                    return importlib.import_module("yaml")
            """,
            "packages/sutra-api/sutra_api/helpers.py": "thing = 1\n",
            # Tests, builds and environments are not what the image runs.
            "packages/sutra-api/tests/test_main.py": "import pytest\n",
            "packages/sutra-api/sutra_api/test_helpers.py": "import hypothesis\n",
            "packages/sutra-api/build/lib/x.py": "import wheel\n",
            "packages/sutra-api/.venv/lib/y.py": "import pip\n",
            # A folder of scripts imports its siblings by plain name.
            "packages/sutra-api/scripts/run.py": "import common\nimport click\n",
            "packages/sutra-api/scripts/common.py": "",
        },
    )
    report = audit(root)
    assert {f.dependency for f in report.findings} == {
        "starlette",
        "orjson",
        "tomli",
        "Pillow",
        "protobuf",
        "PyYAML",
        "click",
    }
    assert {f.kind for f in report.findings} == {"undeclared"}
    where = {f.dependency: f.detail for f in report.findings}
    assert where["protobuf"].startswith("google.protobuf.message is imported in sutra_api/main.py:27")


def test_import_names_extend_through_settings(tmp_path):
    root = tree(
        tmp_path,
        {
            "packages/sutra-api/pyproject.toml": pyproject("sutra-api", "acme-sdk"),
            "packages/sutra-api/sutra_api/__init__.py": "import acme\n",
        },
    )
    assert findings(audit(root)) == {
        ("sutra-api", "unused", "acme-sdk"),
        ("sutra-api", "undeclared", "acme"),
    }
    settings = {**DEFAULTS["sutra"]["deps"], "import_names": {"acme": "acme-sdk"}}
    assert deps.audit(STACK, root, [], deps.DepsPolicy.from_settings(settings)).findings == ()


def test_importing_another_service_is_coupling_apply_cannot_fix(tmp_path):
    root = tree(
        tmp_path,
        {
            "packages/sutra-api/pyproject.toml": """\
                [project]
                name = "sutra-api"
                dependencies = ["fastapi", "sutra-hybrid"]
            """,
            "packages/sutra-api/sutra_api/__init__.py": "import fastapi\nfrom sutra_hybrid import rank\n",
            "packages/sutra-control/pyproject.toml": pyproject("sutra-control"),
            "packages/sutra-control/sutra_control/__init__.py": "import sutra_hybrid.embedding\n",
            "packages/sutra-hybrid/pyproject.toml": pyproject("sutra-hybrid"),
            "packages/sutra-hybrid/sutra_hybrid/__init__.py": "",
        },
    )
    report = audit(root)
    assert findings(report) == {
        ("sutra-api", "service-coupling", "sutra-hybrid"),
        ("sutra-control", "service-coupling", "sutra-hybrid"),
    }
    assert not any(f.fixable for f in report.findings)
    assert report.changes == ()  # the declaration stays until the code stops importing it
    result = inv("--root", str(root), "--apply")
    assert result.returncode == 1
    assert one_line(result) == (
        "error: 2 dependency problems in sutra-api, sutra-control; "
        "they need a code change, not a metadata one (see the table)"
    )


def test_apply_fixes_what_it_can_and_fails_on_what_needs_code(tmp_path):
    root = tree(
        tmp_path,
        {
            "packages/sutra-api/pyproject.toml": pyproject("sutra-api", "sutra-hybrid", "requests"),
            "packages/sutra-api/sutra_api/__init__.py": "import sutra_hybrid\n",
            "packages/sutra-hybrid/pyproject.toml": pyproject("sutra-hybrid"),
            "packages/sutra-hybrid/sutra_hybrid/__init__.py": "",
        },
    )
    check = inv("--root", str(root))
    assert one_line(check) == (
        "error: 2 dependency problems in sutra-api; `inv fix-deps --apply` fixes 1; "
        "the rest need a code change (see the table)"
    )
    applied = inv("--root", str(root), "--apply")
    assert applied.returncode == 1
    assert one_line(applied) == (
        "error: 1 dependency problem in sutra-api; left after --apply: they need a code change, "
        "not a metadata one (see the table)"
    )
    assert (root / "packages/sutra-api/pyproject.toml").read_text() == pyproject("sutra-api", "sutra-hybrid")


# --- the audit as a gate --------------------------------------------------------------


def test_reference_stack_passes():
    assert audit(REFERENCE_ROOT).findings == ()
    result = inv("--root", str(REFERENCE_ROOT), "--fail-on", "service-coupling,undeclared")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "dependencies match the imports"


def test_nox_gate_fails_on_the_scenario_but_only_warns_about_unused(tmp_path):
    root = tree(tmp_path / "coupled", SCENARIO)
    assert inv("--root", str(root), "--fail-on", "service-coupling,undeclared").returncode == 1
    unused = tree(
        tmp_path / "unused",
        {
            "packages/sutra-api/pyproject.toml": pyproject("sutra-api", "requests"),
            "packages/sutra-api/sutra_api/__init__.py": "",
        },
    )
    gate = inv("--root", str(unused), "--fail-on", "service-coupling,undeclared")
    assert gate.returncode == 0, gate.stderr
    assert "warning: 1 unused finding(s), not failing the check" in gate.stderr
    assert inv("--root", str(unused)).returncode == 1


def test_unknown_fail_on_kind():
    result = inv("--fail-on", "coupling")
    assert result.returncode == 2
    assert one_line(result).startswith("error: unknown finding kind 'coupling' in --fail-on; known kinds:")


def test_named_service_without_a_python_package(tmp_path):
    result = inv("--service", "storage-server")
    assert result.returncode == 0, result.stderr
    assert "storage-server has no Python package (packages/sutra-storage has no setup.py" in result.stderr
    report = audit(tree(tmp_path, SCENARIO), "sutra-client")
    assert report.findings == () and report.checked == ()
    assert report.text() == "no Python service package to check"
    assert report.without_package == (
        "sutra-client has no Python package (packages/sutra-client has no setup.py or pyproject.toml)",
    )


# --- editing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('x = ["a", "sutra-hybrid"]\n', 'x = ["a", "numpy"]\n'),
        ('x = ["sutra-hybrid", "a"]\n', 'x = ["a", "numpy"]\n'),
        ("x = ('a', 'sutra-hybrid')\n", "x = ('a', 'numpy')\n"),
        # The removed item's own comment goes; comment lines above and below it stay.
        (
            'x = [\n    "a",  # keep\n    # group\n    "sutra-hybrid",  # drop\n    # end\n]\n',
            'x = [\n    "a",  # keep\n    # group\n    # end\n    "numpy",\n]\n',
        ),
        # No trailing comma: none is added.
        ('x = [\n  "a",\n  "sutra-hybrid"  # drop\n]\n', 'x = [\n  "a",\n  "numpy"\n]\n'),
        ('x = ["a",\n     "sutra-hybrid"]\n', 'x = ["a",\n     "numpy"]\n'),
    ],
)
def test_setup_py_list_edits_keep_the_list_style(tmp_path, before, after):
    root = tree(
        tmp_path,
        {
            "packages/sutra-api/setup.py": "from setuptools import setup\n"
            + before
            + "setup(install_requires=x)\n",
            "packages/sutra-api/sutra_api/__init__.py": "import a\nimport numpy\n",
            "packages/sutra-hybrid/pyproject.toml": pyproject("sutra-hybrid", "numpy"),
        },
    )
    apply(root, "sutra-api")
    assert (root / "packages/sutra-api/setup.py").read_text() == (
        "from setuptools import setup\n" + after + "setup(install_requires=x)\n"
    )


def layouts(items: list[str]):
    quoted = [f'"{item}"' for item in items]
    yield "x = [" + ", ".join(quoted) + "]\n"
    yield "x = [\n" + "".join(f"    {q},  # c{i}\n" for i, q in zip(items, quoted, strict=True)) + "]\n"
    yield "x = [\n" + ",\n".join(f"    {q}" for q in quoted) + "\n]\n"
    yield (
        "x = [\n    # head\n"
        + "".join(f"    {q},\n    # after {i}\n" for i, q in zip(items, quoted, strict=True))
        + "]\n"
    )
    if items:
        yield "x = [" + ",\n     ".join(quoted) + "]\n"
        yield "x = (" + ", ".join(quoted) + ("," if len(items) == 1 else "") + ")\n"


def test_every_layout_edits_to_the_wanted_list_and_keeps_kept_comments(tmp_path):
    setup_py = tmp_path / "packages/sutra-api/setup.py"
    code = tmp_path / "packages/sutra-api/sutra_api/__init__.py"
    code.parent.mkdir(parents=True)
    cases = 0
    for count in range(4):
        items = [f"p{i}" for i in range(count)]
        for kept in itertools.chain.from_iterable(itertools.combinations(items, k) for k in range(count + 1)):
            for added in ([], ["n0"], ["n0", "n1"]):
                for layout in layouts(items):
                    setup_py.write_text(f"from setuptools import setup\n{layout}setup(install_requires=x)\n")
                    code.write_text("".join(f"import {name}\n" for name in [*kept, *added]))
                    apply(tmp_path, "sutra-api")
                    text = setup_py.read_text()
                    assignment = ast.parse(text).body[1]
                    assert isinstance(assignment, ast.Assign)
                    assert list(ast.literal_eval(assignment.value)) == [*kept, *added], (layout, text)
                    for item in items:
                        assert (f"# c{item}" in text) == (f"# c{item}" in layout and item in kept), text
                        assert (f"# after {item}" in text) == (f"# after {item}" in layout), text
                    assert audit(tmp_path, "sutra-api").findings == ()
                    cases += 1
    assert cases == 264  # 0-3 items, every subset kept, 0-2 added, each layout


def test_crlf_files_stay_crlf(tmp_path):
    root = tree(tmp_path, SCENARIO)
    for name in ("setup.py", "pyproject.toml"):
        path = root / "packages/sutra-api" / name
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    apply(root)
    for name in ("setup.py", "pyproject.toml"):
        data = (root / "packages/sutra-api" / name).read_bytes()
        assert b"numpy>=1.26" in data and data.count(b"\n") == data.count(b"\r\n")
