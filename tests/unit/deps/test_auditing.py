"""The audit (findings and the changes that fix them), its report, and the gate."""

import json

import pytest

from sutra_deploy.core.errors import SourceRootError
from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.core.source import REFERENCE_ROOT
from sutra_deploy.deps.auditing import finding_kinds
from sutra_deploy.deps.model import FINDING_KINDS, DepsPolicy

from .monorepos import (
    HYBRID_NUMPY,
    POLICY,
    SCENARIO,
    apply,
    audit,
    findings,
    inv,
    kinds,
    one_line,
    package_dir,
    pyproject,
    read,
    source_rel,
    tree,
)

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
    assert numpy.detail.endswith(f"adds {HYBRID_NUMPY}")  # the spec hybrid declared
    assert [c.path for c in report.changes] == [
        source_rel("sutra-api/pyproject.toml"),
        source_rel("sutra-api/setup.py"),
    ]


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
        source_rel("sutra-api/pyproject.toml"),
        source_rel("sutra-api/setup.py"),
    ]
    setup_py = source_rel("sutra-api/setup.py")
    assert out["changes"][1]["diff"].startswith(f"--- a/{setup_py}\n")


# --- what gets added ------------------------------------------------------------------


def test_plan_additions_only_where_the_code_needs_them(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": """\
                [project]
                name = "sutra-api"
                dependencies = [
                    "fastapi>=0.104.0",
                    "uvicorn>=0.24.0",
                ]
            """,
            "sutra-api/sutra_api/__init__.py": "",
            "sutra-api/sutra_api/main.py": """\
                import fastapi
                from pydantic_settings import BaseSettings

                async def query(text):
                    import httpx
            """,
            "sutra-control/setup.py": """\
                from setuptools import setup
                setup(name="sutra-control", install_requires=[])
            """,
            "sutra-control/sutra_control/__init__.py": "import json\n",
            "sutra-hybrid/setup.py": """\
                import setuptools
                setuptools.setup(name="sutra-hybrid", install_requires=["numpy>=1.26"])
            """,
            "sutra-hybrid/sutra_hybrid/__init__.py": "import numpy\nimport grpc\n",
        },
    )
    grpc = POLICY.import_names["grpc"]  # the distribution `import grpc` needs
    report = audit(root)
    assert findings(report) == {
        ("sutra-api", "undeclared", "pydantic-settings"),
        ("sutra-api", "undeclared", "httpx"),
        ("sutra-hybrid", "undeclared", grpc),
    }
    apply(root)
    # Each addition with the spec the settings give it, where the code needs it and only there.
    specs = POLICY.known_specs
    api = read(root, "sutra-api/pyproject.toml")
    assert f'    "{specs["pydantic-settings"]}",\n    "{specs["httpx"]}",\n]' in api
    assert grpc not in api
    assert grpc not in read(root, "sutra-control/setup.py")
    hybrid = read(root, "sutra-hybrid/setup.py")
    assert f'install_requires=["numpy>=1.26", "{specs[grpc]}"]' in hybrid
    assert audit(root).findings == ()


def test_an_addition_takes_the_spec_the_settings_give(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": pyproject("sutra-api"),
            "sutra-api/sutra_api/__init__.py": "import acme\n",
        },
    )

    def added(known_specs: list[str]) -> str:
        policy = DepsPolicy.from_settings({**DEFAULTS["sutra"]["deps"], "known_specs": known_specs})
        return next(f.detail for f in audit(root, policy=policy).findings).rpartition("; adds ")[2]

    assert added([]) == "acme"  # nothing pins it: the bare name
    assert added(["ACME>=2"]) == "ACME>=2"
    assert added(["acme>=3; python_version >= '3.11'"]) == "acme>=3; python_version >= '3.11'"


def test_runtime_only_declarations_are_not_unused(tmp_path):
    """A server started by name is declared and never imported."""
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": pyproject("sutra-api", "fastapi", "Hypercorn>=0.16"),
            "sutra-api/sutra_api/__init__.py": "import fastapi\n",
        },
    )

    def unused(runtime_only: list[str]) -> set[tuple[str, str, str]]:
        policy = DepsPolicy.from_settings({**DEFAULTS["sutra"]["deps"], "runtime_only": runtime_only})
        return findings(audit(root, policy=policy))

    assert unused([]) == {("sutra-api", "unused", "Hypercorn")}
    assert unused(["hypercorn"]) == set()
    assert unused(["HyperCorn"]) == set()  # names compare canonically


# --- coupling that needs code changed -------------------------------------------------


def test_importing_another_service_is_coupling_apply_cannot_fix(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": """\
                [project]
                name = "sutra-api"
                dependencies = ["fastapi", "sutra-hybrid"]
            """,
            "sutra-api/sutra_api/__init__.py": "import fastapi\nfrom sutra_hybrid import rank\n",
            "sutra-control/pyproject.toml": pyproject("sutra-control"),
            "sutra-control/sutra_control/__init__.py": "import sutra_hybrid.embedding\n",
            "sutra-hybrid/pyproject.toml": pyproject("sutra-hybrid"),
            "sutra-hybrid/sutra_hybrid/__init__.py": "",
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
            "sutra-api/pyproject.toml": pyproject("sutra-api", "sutra-hybrid", "requests"),
            "sutra-api/sutra_api/__init__.py": "import sutra_hybrid\n",
            "sutra-hybrid/pyproject.toml": pyproject("sutra-hybrid"),
            "sutra-hybrid/sutra_hybrid/__init__.py": "",
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
    assert read(root, "sutra-api/pyproject.toml") == pyproject("sutra-api", "sutra-hybrid")


# --- both files -----------------------------------------------------------------------


def test_both_files_that_disagree_are_reported_and_brought_into_agreement(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": """\
                [project]
                name = "sutra-api"
                dependencies = [
                    "fastapi>=0.110",
                    "pydantic>=2.5",
                ]
            """,
            "sutra-api/setup.py": """\
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
            "sutra-api/sutra_api/__init__.py": "import fastapi, pydantic, httpx\n",
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
    assert '    "pydantic>=2.5",\n    "httpx",\n]' in read(root, "sutra-api/pyproject.toml")
    setup_py = read(root, "sutra-api/setup.py")
    # pyproject's spec, the line's comment kept; `Pydantic >= 2.5` is the same requirement.
    assert '        "fastapi>=0.110",  # older pin\n        "Pydantic >= 2.5",\n' in setup_py
    assert audit(root).findings == ()


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
            "sutra-api/pyproject.toml": pyproject("sutra-api", "requests"),
            "sutra-api/sutra_api/__init__.py": "",
        },
    )
    gate = inv("--root", str(unused), "--fail-on", "service-coupling,undeclared")
    assert gate.returncode == 0, gate.stderr
    assert "warning: 1 unused finding(s), not failing the check" in gate.stderr
    assert inv("--root", str(unused)).returncode == 1


def test_fail_on_defaults_to_every_kind_but_optional_undeclared():
    assert finding_kinds([]) == frozenset(FINDING_KINDS) - {"optional-undeclared"}
    assert finding_kinds(["unused"]) == {"unused"}
    assert finding_kinds(["optional-undeclared"]) == {"optional-undeclared"}


def test_unknown_fail_on_kind():
    result = inv("--fail-on", "coupling")
    assert result.returncode == 2
    assert one_line(result).startswith("error: unknown finding kind 'coupling' in --fail-on; known kinds:")


def test_named_service_without_a_python_package(tmp_path):
    result = inv("--service", "storage-server")
    assert result.returncode == 0, result.stderr
    storage = package_dir("storage-server")
    assert f"storage-server has no Python package ({storage} has no setup.py" in result.stderr
    report = audit(tree(tmp_path, SCENARIO), "sutra-client")
    assert report.findings == () and report.checked == ()
    assert report.table() == "no Python service package to check"
    client = package_dir("sutra-client")
    assert report.without_package == (
        f"sutra-client has no Python package ({client} has no setup.py or pyproject.toml)",
    )


# --- a root that is not a Sutra checkout ----------------------------------------------

NOT_A_CHECKOUT = {
    "empty": {},
    "unrelated files": {
        "README.md": "# notes\n",
        "src/tool.py": "import requests\n",
        # A Python package, but no service's: packages/ alone does not make a checkout.
        "packages/tool/pyproject.toml": '[project]\nname = "tool"\ndependencies = ["requests"]\n',
        "packages/tool/tool.py": "import requests\n",
        # A service's folder without its metadata.
        "sutra-api/sutra_api/__init__.py": "import fastapi\n",
    },
}


@pytest.mark.parametrize("files", NOT_A_CHECKOUT.values(), ids=NOT_A_CHECKOUT.keys())
def test_a_root_without_any_service_package_is_exit_2(tmp_path, files):
    root = tree(tmp_path, files).resolve()
    message = f"no Python service package under {root}; is it a Sutra checkout?"
    with pytest.raises(SourceRootError, match="no Python service package under"):
        audit(root)
    for args in ([], ["--fail-on", "service-coupling,undeclared"], ["--json"], ["--apply"]):
        result = inv("--root", str(root), *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.strip() == f"error: {message}"
        assert result.stdout == ""


def test_a_root_with_some_service_packages_is_checked_as_before(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-control/pyproject.toml": pyproject("sutra-control"),
            "sutra-control/sutra_control/__init__.py": "import json\n",
        },
    )
    result = inv("--root", str(root))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "dependencies match the imports"
    # A service asked for by name that has no package here: a log line, as before.
    named = inv("--root", str(root), "--service", "sutra-api")
    assert named.returncode == 0, named.stderr
    assert named.stdout.strip() == "no Python service package to check"
    assert f"sutra-api has no Python package ({package_dir('sutra-api')} has no" in named.stderr


# --- optional imports and extras ------------------------------------------------------

OPTIONAL_IMPORTS = """\
import importlib.util

import fastapi

try:
    import orjson as json
except ImportError:
    import json

if importlib.util.find_spec("uvloop"):
    import uvloop
"""


def test_a_guarded_import_declared_nowhere_is_its_own_kind_and_only_warns(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": pyproject("sutra-api", "fastapi>=0.110"),
            "sutra-api/sutra_api/__init__.py": OPTIONAL_IMPORTS,
        },
    )
    report = audit(root)
    assert kinds(report) == {"orjson": "optional-undeclared", "uvloop": "optional-undeclared"}
    assert not any(f.fixable for f in report.findings)
    assert report.changes == ()  # never moved into the required dependencies
    orjson = next(f for f in report.findings if f.dependency == "orjson")
    assert orjson.detail.startswith("orjson is imported in sutra_api/__init__.py:6, guarded:")

    for args in ([], ["--fail-on", "service-coupling,undeclared"], ["--apply"]):
        result = inv("--root", str(root), *args)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stderr.strip() == "warning: 2 optional-undeclared finding(s), not failing the check"
    assert read(root, "sutra-api/pyproject.toml") == pyproject("sutra-api", "fastapi>=0.110")

    as_json = inv("--root", str(root), "--json")
    assert as_json.returncode == 0
    out = json.loads(as_json.stdout)
    assert set(out) == {"findings", "changes"} and out["changes"] == []
    assert [(f["kind"], f["dependency"]) for f in out["findings"]] == [
        ("optional-undeclared", "orjson"),
        ("optional-undeclared", "uvloop"),
    ]
    assert all(set(f) == {"service", "kind", "dependency", "detail"} for f in out["findings"])

    strict = inv("--root", str(root), "--fail-on", "optional-undeclared")
    assert strict.returncode == 1
    assert one_line(strict) == (
        "error: 2 dependency problems in sutra-api; they need a change by hand (see the table)"
    )


def test_a_requirement_in_an_optional_extra_is_declared_and_left_as_written(tmp_path):
    files = {
        "sutra-api/pyproject.toml": """\
            [project]
            name = "sutra-api"
            dependencies = [
                "fastapi>=0.110",
                "requests",
            ]

            [project.optional-dependencies]
            speed = ["uvloop>=0.19; sys_platform != 'win32'", "orjson~=3.9"]
        """,
        "sutra-api/setup.py": """\
            from setuptools import setup

            EXTRAS = {"yaml": ["PyYAML>=6.0"], "dev": ["pytest"]}

            setup(
                name="sutra-api",
                install_requires=["fastapi>=0.110", "requests"],
                extras_require=EXTRAS,
            )
        """,
        # uvloop and orjson guarded, yaml not: all declared, in an extra of one file or the other.
        "sutra-api/sutra_api/__init__.py": OPTIONAL_IMPORTS + "import yaml\nimport httpx\n",
    }
    root = tree(tmp_path, files)
    report = audit(root)
    assert findings(report) == {
        ("sutra-api", "unused", "requests"),
        ("sutra-api", "undeclared", "httpx"),
    }
    apply(root)
    pyproject_text = read(root, "sutra-api/pyproject.toml")
    # Only what was wrong changed: the extras, their specifiers and markers are as written.
    assert 'speed = ["uvloop>=0.19; sys_platform != \'win32\'", "orjson~=3.9"]\n' in pyproject_text
    assert f'dependencies = [\n    "fastapi>=0.110",\n    "{POLICY.known_specs["httpx"]}",\n]' in (
        pyproject_text
    )
    setup_py = read(root, "sutra-api/setup.py")
    assert 'EXTRAS = {"yaml": ["PyYAML>=6.0"], "dev": ["pytest"]}' in setup_py
    assert f'install_requires=["fastapi>=0.110", "{POLICY.known_specs["httpx"]}"],' in setup_py
    assert audit(root).findings == ()


def test_an_extra_that_is_not_a_table_of_lists_is_one_error(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": '[project]\nname = "sutra-api"\noptional-dependencies = ["x"]\n',
            "sutra-api/sutra_api/__init__.py": "",
        },
    )
    result = inv("--root", str(root))
    assert result.returncode == 2
    assert one_line(result) == (
        f"error: {source_rel('sutra-api/pyproject.toml')}: [project.optional-dependencies] "
        "is not a table of lists of strings"
    )


# --- what servers load at run time ----------------------------------------------------

RUNTIME_ONLY = [
    "uvicorn[standard]>=0.24",
    "websockets>=12",
    "httptools",
    "uvloop>=0.19; sys_platform != 'win32'",
    "watchfiles",
    "python-dotenv>=1.0",
    "python-multipart>=0.0.9",
    "email-validator>=2",
]


def test_what_uvicorn_and_fastapi_load_at_run_time_is_not_unused(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": pyproject("sutra-api", "fastapi>=0.110", *RUNTIME_ONLY, "requests"),
            "sutra-api/sutra_api/__init__.py": "import fastapi\n",
        },
    )
    assert findings(audit(root)) == {("sutra-api", "unused", "requests")}
    apply(root)
    # --apply removes what is unused and keeps every runtime-only requirement as written.
    assert read(root, "sutra-api/pyproject.toml") == pyproject("sutra-api", "fastapi>=0.110", *RUNTIME_ONLY)
