"""What a package's code imports, and which distribution each import needs."""

import dataclasses
import textwrap

import pytest

from sutra_deploy.core.settings import DEFAULTS
from sutra_deploy.deps.model import DepsPolicy

from .monorepos import POLICY, audit, findings, inv, kinds, package_dir, pyproject, read, tree


def test_every_import_counts_wherever_it_is(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": pyproject("sutra-api"),
            "sutra-api/sutra_api/__init__.py": "",
            "sutra-api/sutra_api/main.py": """\
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
            "sutra-api/sutra_api/helpers.py": "thing = 1\n",
            # Tests, builds and environments are not what the image runs.
            "sutra-api/tests/test_main.py": "import pytest\n",
            "sutra-api/sutra_api/test_helpers.py": "import hypothesis\n",
            "sutra-api/build/lib/x.py": "import wheel\n",
            "sutra-api/.venv/lib/y.py": "import pip\n",
            # A folder of scripts imports its siblings by plain name.
            "sutra-api/scripts/run.py": "import common\nimport click\n",
            "sutra-api/scripts/common.py": "",
        },
    )
    # Where the import name is not the distribution's, the settings' table says which it is.
    protobuf = POLICY.import_names["google.protobuf"]
    report = audit(root)
    assert {f.dependency for f in report.findings} == {
        "starlette",
        "orjson",
        "tomli",
        POLICY.import_names["PIL"],
        protobuf,
        POLICY.import_names["yaml"],
        "click",
    }
    # orjson is tried and json taken in its place: optional, the others are needed.
    assert {f.kind for f in report.findings if f.dependency != "orjson"} == {"undeclared"}
    assert kinds(report)["orjson"] == "optional-undeclared"
    where = {f.dependency: f.detail for f in report.findings}
    assert where[protobuf].startswith("google.protobuf.message is imported in sutra_api/main.py:27")


def test_import_names_extend_through_settings(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": pyproject("sutra-api", "acme-sdk"),
            "sutra-api/sutra_api/__init__.py": "import acme\n",
        },
    )
    assert findings(audit(root)) == {
        ("sutra-api", "unused", "acme-sdk"),
        ("sutra-api", "undeclared", "acme"),
    }
    settings = {**DEFAULTS["sutra"]["deps"], "import_names": {"acme": "acme-sdk"}}
    assert audit(root, policy=DepsPolicy.from_settings(settings)).findings == ()


def test_the_longest_dotted_prefix_names_the_distribution(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": pyproject("sutra-api"),
            "sutra-api/sutra_api/__init__.py": "import acme.cloud.storage\nimport acme.tools\n",
        },
    )
    policy = DepsPolicy.from_settings({"import_names": {"acme": "acme-core", "acme.cloud": "acme-cloud"}})
    assert {f.dependency for f in audit(root, policy=policy).findings} == {"acme-core", "acme-cloud"}


# --- optional imports -----------------------------------------------------------------

OPTIONAL = "optional-undeclared"
UNDECLARED = "undeclared"

GUARDS = [
    ("try:\n    import uvloop\nexcept ImportError:\n    uvloop = None\n", {"uvloop": OPTIONAL}),
    ("try:\n    from uvloop import install\nexcept ModuleNotFoundError:\n    pass\n", {"uvloop": OPTIONAL}),
    ("try:\n    import uvloop\nexcept (OSError, ImportError) as e:\n    pass\n", {"uvloop": OPTIONAL}),
    ("try:\n    import uvloop\nexcept* ImportError:\n    pass\n", {"uvloop": OPTIONAL}),
    # At any depth in the guarded block.
    ("try:\n    if True:\n        import uvloop\nexcept ImportError:\n    pass\n", {"uvloop": OPTIONAL}),
    ("import contextlib\nwith contextlib.suppress(ImportError):\n    import uvloop\n", {"uvloop": OPTIONAL}),
    # Catching everything is error handling as often as a guard: still needed.
    ("try:\n    import uvloop\nexcept Exception:\n    pass\n", {"uvloop": UNDECLARED}),
    ("try:\n    import uvloop\nexcept:\n    pass\n", {"uvloop": UNDECLARED}),
    ("try:\n    import uvloop\nexcept ValueError:\n    pass\n", {"uvloop": UNDECLARED}),
    # The fallback in the handler, and what follows the block, are not guarded.
    (
        "try:\n    import orjson as json\nexcept ImportError:\n    import ujson as json\n"
        "else:\n    import httpx\n",
        {"orjson": OPTIONAL, "ujson": UNDECLARED, "httpx": UNDECLARED},
    ),
    (
        "import importlib.util\nif importlib.util.find_spec('uvloop'):\n    import uvloop\n",
        {"uvloop": OPTIONAL},
    ),
    (
        "from importlib.util import find_spec\nif find_spec('uvloop') is not None:\n"
        "    import uvloop.loop\n    import orjson\n",
        {"uvloop": OPTIONAL, "orjson": UNDECLARED},  # find_spec guards the module it names, only
    ),
    (
        "from importlib.util import find_spec\nif not find_spec('uvloop'):\n    pass\nelse:\n"
        "    import uvloop\n",
        {"uvloop": OPTIONAL},
    ),
    (
        "from importlib.util import find_spec\nif find_spec('uvloop') is None:\n    import uvloop\n",
        {"uvloop": UNDECLARED},
    ),
    (
        "from importlib.util import find_spec\nif find_spec('a') and find_spec('b'):\n"
        "    import a\n    import b\n",
        {"a": OPTIONAL, "b": OPTIONAL},
    ),
    (
        "from importlib.util import find_spec\nif find_spec('a') or find_spec('b'):\n    import a\n",
        {"a": UNDECLARED},
    ),
    (
        "import importlib, importlib.util\nif importlib.util.find_spec('acme'):\n"
        "    backend = importlib.import_module('acme.fast')\n",
        {"acme": OPTIONAL},
    ),
    # Guarded in one place and not in another: needed.
    ("try:\n    import uvloop\nexcept ImportError:\n    pass\nimport uvloop\n", {"uvloop": UNDECLARED}),
]


@pytest.mark.parametrize(("code", "expected"), GUARDS)
def test_a_guarded_import_is_optional(tmp_path, code, expected):
    root = tree(
        tmp_path,
        {"sutra-api/pyproject.toml": pyproject("sutra-api"), "sutra-api/sutra_api/__init__.py": code},
    )
    assert kinds(audit(root)) == expected


# --- files that are not read ----------------------------------------------------------


def test_files_over_the_size_limit_are_skipped_with_one_line(tmp_path):
    big = "import numpy\n" + "x = 1\n" * 200  # 1,213 bytes
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": pyproject("sutra-api", "fastapi"),
            "sutra-api/sutra_api/__init__.py": "import fastapi\n",
            "sutra-api/sutra_api/table.py": big,
        },
    )
    size = len(big)
    at_limit = DepsPolicy.from_settings({"max_file_bytes": size})
    assert findings(audit(root, policy=at_limit)) == {("sutra-api", "undeclared", "numpy")}
    over = DepsPolicy.from_settings({"max_file_bytes": size - 1})
    report = audit(root, policy=over)
    assert report.findings == ()
    table = f"{package_dir('sutra-api')}/sutra_api/table.py"
    assert report.unread == (f"{table}: {size:,} bytes, over sutra.deps.max_file_bytes ({size - 1:,})",)

    result = inv("--root", str(root), INVOKE_SUTRA_DEPS_MAX_FILE_BYTES=str(size - 1))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"skipped {report.unread[0]}"]


def test_the_default_limit_skips_a_big_generated_file(tmp_path):
    limit = int(DEFAULTS["sutra"]["deps"]["max_file_bytes"])  # text, as Invoke passes settings
    assert POLICY.max_file_bytes == limit
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": pyproject("sutra-api"),
            "sutra-api/sutra_api/__init__.py": "",
        },
    )
    row = '    "0123456789abcdef0123456789abcdef",\n'
    rows = "TABLE = [\n" + row * (limit // len(row) + 1) + "]\n"
    (root / package_dir("sutra-api") / "sutra_api/data.py").write_text("import numpy\n" + rows)
    report = audit(root)
    assert report.findings == ()
    assert len(report.unread) == 1 and "sutra_api/data.py: " in report.unread[0]


def test_an_unused_declaration_is_kept_when_a_file_was_not_read(tmp_path):
    """The file not read may be the one that imports it."""
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": pyproject("sutra-api", "numpy>=1.26"),
            "sutra-api/sutra_api/__init__.py": "",
            "sutra-api/sutra_api/table.py": "import numpy\n" + "x = 1\n" * 200,
        },
    )
    policy = DepsPolicy.from_settings({"max_file_bytes": 1000})
    report = audit(root, policy=policy)
    assert findings(report) == {("sutra-api", "unused", "numpy")}
    assert not report.findings[0].fixable
    assert "--apply keeps it: not all of" in report.findings[0].detail
    assert report.changes == ()


def test_source_is_read_in_the_encoding_its_coding_line_names(tmp_path):
    root = tree(
        tmp_path,
        {"sutra-api/pyproject.toml": pyproject("sutra-api"), "sutra-api/sutra_api/__init__.py": ""},
    )
    code = '# -*- coding: latin-1 -*-\n"""Données, café."""\nimport numpy\n'
    (root / package_dir("sutra-api") / "sutra_api/latin.py").write_bytes(code.encode("latin-1"))
    report = audit(root)
    assert findings(report) == {("sutra-api", "undeclared", "numpy")}
    assert report.unread == ()
    assert report.findings[0].detail.startswith("numpy is imported in sutra_api/latin.py:3 ")


UNDECODABLE = [
    (b'"""caf\xe9"""\nimport numpy\n', "not decodable as utf-8 (invalid continuation byte at byte 6)"),
    (b"# coding: klingon\nimport numpy\n", "not decodable: unknown encoding: klingon"),
    (b"# coding: rot13\nimport numpy\n", "not decodable: "),
    (b"import numpy\n\x00\x01\x02", "holds null bytes, so it is not Python source"),
]


@pytest.mark.parametrize(("data", "why"), UNDECODABLE)
def test_an_undecodable_file_is_skipped_with_one_line(tmp_path, data, why):
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": pyproject("sutra-api", "fastapi"),
            "sutra-api/sutra_api/__init__.py": "import fastapi\n",
        },
    )
    (root / package_dir("sutra-api") / "sutra_api/blob.py").write_bytes(data)
    report = audit(root)
    assert report.findings == ()
    (line,) = report.unread
    assert line.startswith(f"{package_dir('sutra-api')}/sutra_api/blob.py: {why}")
    result = inv("--root", str(root))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"skipped {line}"]


def test_skips_are_logged_once_when_apply_audits_again(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": pyproject("sutra-api", "fastapi"),
            "sutra-api/sutra_api/__init__.py": "import fastapi\nimport httpx\n",
            "sutra-api/sutra_api/blob.py": "",
        },
    )
    (root / package_dir("sutra-api") / "sutra_api/blob.py").write_bytes(b"\xff\xfe\x00")
    result = inv("--root", str(root), "--apply")
    assert result.returncode == 0, result.stderr
    assert sum(line.startswith("skipped ") for line in result.stderr.splitlines()) == 1
    assert POLICY.known_specs["httpx"] in read(root, "sutra-api/pyproject.toml")


def test_policy_without_a_limit_reads_every_file(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-api/pyproject.toml": pyproject("sutra-api"),
            "sutra-api/sutra_api/__init__.py": textwrap.dedent("import numpy\n") + "x = 1\n" * 200,
        },
    )
    unlimited = dataclasses.replace(POLICY, max_file_bytes=None)
    assert findings(audit(root, policy=unlimited)) == {("sutra-api", "undeclared", "numpy")}
