"""Reading what pyproject.toml and setup.py declare, statically, or saying why it cannot."""

import pytest

from sutra_deploy.core.errors import DependencyFileError
from sutra_deploy.deps.model import DepsPolicy

from .monorepos import POLICY, apply, audit, findings, inv, read, source_rel, tree


def test_setup_py_only(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-api/setup.py": """\
                from setuptools import setup

                setup(
                    name="sutra-api",
                    install_requires=['fastapi', 'uvicorn', 'requests>=2'],
                )
            """,
            "sutra-api/sutra_api/__init__.py": "import fastapi\nimport yaml\n",
        },
    )
    # uvicorn is started by name, never imported; PyYAML is what `import yaml` needs.
    policy = DepsPolicy.from_settings({"runtime_only": ["uvicorn"], "import_names": {"yaml": "PyYAML"}})
    report = audit(root, policy=policy)
    assert findings(report) == {
        ("sutra-api", "unused", "requests"),
        ("sutra-api", "undeclared", "PyYAML"),
    }
    apply(root, policy=policy)
    # The list's own quotes, on its one line.
    assert "install_requires=['fastapi', 'uvicorn', 'PyYAML']," in read(root, "sutra-api/setup.py")


def test_pyproject_only(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-hybrid/pyproject.toml": """\
                [project]
                name = "sutra-hybrid"
                dependencies = ["numpy>=1.26", "scipy"]  # both for ranking
            """,
            "sutra-hybrid/src/sutra_hybrid/__init__.py": "import numpy\nimport sutra_hybrid.x\n",
        },
    )
    assert findings(audit(root)) == {("sutra-hybrid", "unused", "scipy")}
    apply(root)
    text = read(root, "sutra-hybrid/pyproject.toml")
    assert 'dependencies = ["numpy>=1.26"]  # both for ranking\n' in text


def test_module_level_list_named_by_install_requires(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-api/setup.py": """\
                from setuptools import setup

                REQUIREMENTS = [
                    "fastapi",
                    "sutra-hybrid",  # coupling
                ]

                setup(name="sutra-api", install_requires=REQUIREMENTS)
            """,
            "sutra-api/sutra_api/__init__.py": "import fastapi\n",
            "sutra-hybrid/setup.py": "from setuptools import setup\nsetup(name='sutra-hybrid')\n",
            "sutra-hybrid/sutra_hybrid/__init__.py": "",
        },
    )
    assert findings(audit(root, "sutra-api")) == {("sutra-api", "service-coupling", "sutra-hybrid")}
    apply(root, "sutra-api")
    assert 'REQUIREMENTS = [\n    "fastapi",\n]\n' in read(root, "sutra-api/setup.py")


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
    root = tree(tmp_path, {"sutra-api/setup.py": "from setuptools import setup\n" + body})
    with pytest.raises(DependencyFileError) as raised:
        audit(root)
    assert message in str(raised.value)
    assert str(raised.value).startswith(source_rel("sutra-api/setup.py"))
    assert str(raised.value).endswith("fix-deps cannot read it statically")


def test_dynamic_setup_py_is_one_line_and_exit_2(tmp_path):
    root = tree(tmp_path, {"sutra-api/setup.py": "from setuptools import setup\n" + DYNAMIC[0][0]})
    result = inv("--root", str(root))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {source_rel('sutra-api/setup.py')}: install_requires is not a literal list "
        "(a call to read_requirements()); fix-deps cannot read it statically"
    )


def test_invalid_toml_names_the_file(tmp_path):
    root = tree(tmp_path, {"sutra-api/pyproject.toml": "[project\n", "sutra-api/sutra_api/__init__.py": ""})
    with pytest.raises(DependencyFileError) as raised:
        audit(root)
    assert str(raised.value).startswith(f"{source_rel('sutra-api/pyproject.toml')}: not valid TOML: ")


LATIN_1_SETUP_PY = """\
# -*- coding: latin-1 -*-
# Auteur : François, équipe données
from setuptools import setup

setup(
    name="sutra-api",
    description="API publique, déployée à part",
    install_requires=["fastapi", "requests"],
)
"""


def test_setup_py_in_another_encoding_is_read_and_written_in_it(tmp_path):
    root = tree(tmp_path, {"sutra-api/sutra_api/__init__.py": "import fastapi\nimport httpx\n"})
    setup_py = root / source_rel("sutra-api/setup.py")
    setup_py.write_bytes(LATIN_1_SETUP_PY.encode("latin-1"))
    assert findings(audit(root)) == {
        ("sutra-api", "unused", "requests"),
        ("sutra-api", "undeclared", "httpx"),
    }
    result = inv("--root", str(root), "--apply")
    assert result.returncode == 0, result.stderr
    httpx = POLICY.known_specs["httpx"]
    # Still latin-1, as its coding line says; only the list changed.
    assert setup_py.read_bytes() == LATIN_1_SETUP_PY.replace(
        '["fastapi", "requests"]', f'["fastapi", "{httpx}"]'
    ).encode("latin-1")


def test_setup_py_with_a_bom_keeps_it(tmp_path):
    root = tree(tmp_path, {"sutra-api/sutra_api/__init__.py": "import fastapi\n"})
    setup_py = root / source_rel("sutra-api/setup.py")
    text = 'from setuptools import setup\nsetup(name="sutra-api", install_requires=["fastapi", "x"])\n'
    setup_py.write_bytes(text.encode("utf-8-sig"))
    apply(root)
    assert setup_py.read_bytes() == text.replace(', "x"', "").encode("utf-8-sig")


def test_undecodable_setup_py_is_one_line_and_exit_2(tmp_path):
    root = tree(tmp_path, {"sutra-api/sutra_api/__init__.py": ""})
    (root / source_rel("sutra-api/setup.py")).write_bytes(LATIN_1_SETUP_PY.encode("latin-1")[26:])
    result = inv("--root", str(root))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {source_rel('sutra-api/setup.py')}: not decodable as utf-8 "
        "(invalid continuation byte at byte 15)"
    )
