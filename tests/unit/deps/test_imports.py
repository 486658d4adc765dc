"""What a package's code imports, and which distribution each import needs."""

from sutra_deploy.deps.model import DepsPolicy
from sutra_deploy.edge import DEFAULTS

from .monorepos import POLICY, audit, findings, pyproject, tree


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
    assert {f.kind for f in report.findings} == {"undeclared"}
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
