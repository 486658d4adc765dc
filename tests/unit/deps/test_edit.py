"""Writing the changes: formatting and comments kept, CRLF kept, all files or none, and the
editors' libraries loaded only when something is edited."""

import json
import subprocess
import sys

import pytest

from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.deps.edit import apply_changes
from sutra_deploy.deps.model import DependencyFileError

from .monorepos import (
    API_PYPROJECT,
    API_SETUP_PY,
    HYBRID_NUMPY,
    POLICY,
    SCENARIO,
    apply,
    audit,
    inv,
    one_line,
    read,
    source_rel,
    tree,
)


def test_scenario_through_inv_check_apply_and_check_again(tmp_path):
    root = tree(tmp_path, SCENARIO)
    setup_py, pyproject = source_rel("sutra-api/setup.py"), source_rel("sutra-api/pyproject.toml")

    check = inv("--root", str(root))
    assert check.returncode == 1, check.stderr
    assert one_line(check) == (
        "error: 2 dependency problems in sutra-api; run `inv fix-deps --apply` to fix them"
    )
    words = " ".join(check.stdout.split())  # the table wraps long details
    assert "sutra-api service-coupling sutra-hybrid" in words
    assert "was only installed through sutra-hybrid, which is being removed" in words
    assert f"--- a/{setup_py}\n+++ b/{setup_py}" in check.stdout
    assert '-        "sutra-hybrid>=1.0.0",  # REMOVE' in check.stdout
    assert f'+        "{HYBRID_NUMPY}",' in check.stdout
    assert f'+    "{HYBRID_NUMPY}",' in check.stdout
    assert (root / setup_py).read_text() == API_SETUP_PY  # a check writes nothing

    applied = inv("--root", str(root), "--apply")
    assert applied.returncode == 0, applied.stderr
    # Exactly the coupled line goes (with its comment) and numpy comes; every other byte stays.
    assert (root / setup_py).read_text() == API_SETUP_PY.replace(
        '        "sutra-hybrid>=1.0.0",  # REMOVE - it\'s a separate service!\n', ""
    ).replace('        "pydantic>=2.0.0",\n', f'        "pydantic>=2.0.0",\n        "{HYBRID_NUMPY}",\n')
    assert (root / pyproject).read_text() == API_PYPROJECT.replace(
        '    "sutra-hybrid>=1.0.0",  # the in-process coupling the plan removes\n', ""
    ).replace('    "pydantic>=2.0.0",\n', f'    "pydantic>=2.0.0",\n    "{HYBRID_NUMPY}",\n')
    assert '        # "sutra-core>=1.0.0",  # not part of this tree\n' in (root / setup_py).read_text()
    assert "# Keep this list in step with setup.py.\n" in (root / pyproject).read_text()

    again = inv("--root", str(root))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "dependencies match the imports"
    assert "---" not in again.stdout

    again_applied = inv("--root", str(root), "--apply", "--json")
    assert again_applied.returncode == 0
    assert json.loads(again_applied.stdout) == {"findings": [], "changes": []}


def test_dry_apply_writes_nothing(tmp_path):
    root = tree(tmp_path, SCENARIO)
    result = inv("--root", str(root), "--apply", core=("--dry",))
    assert result.returncode == 1
    assert f"would rewrite {source_rel('sutra-api/setup.py')}" in result.stderr
    assert read(root, "sutra-api/setup.py") == API_SETUP_PY


def test_a_file_changed_since_the_audit_stops_every_write(tmp_path):
    root = tree(tmp_path, SCENARIO)
    changes = audit(root).changes
    assert len(changes) == 2
    (root / changes[1].path).write_text(changes[1].before + "# edited meanwhile\n")
    with pytest.raises(DependencyFileError, match=f"{changes[1].path} changed while fix-deps ran"):
        apply_changes(root, changes)
    assert (root / changes[0].path).read_text() == changes[0].before  # the first is not written either


def test_writes_leave_no_staging_file_and_keep_the_mode(tmp_path):
    root = tree(tmp_path, SCENARIO)
    setup_py = root / source_rel("sutra-api/setup.py")
    setup_py.chmod(0o640)
    written = apply_changes(root, audit(root).changes)
    assert setup_py in written
    assert setup_py.stat().st_mode & 0o777 == 0o640
    assert not list(root.rglob(".*.fix-deps"))


def test_pyproject_without_dependencies_key_gets_one(tmp_path):
    root = tree(
        tmp_path,
        {
            "sutra-control/pyproject.toml": '[project]\nname = "sutra-control"\n\n[tool.x]\na = 1\n',
            "sutra-control/sutra_control/__init__.py": "import httpx\n",
        },
    )
    apply(root)
    text = read(root, "sutra-control/pyproject.toml")
    httpx = POLICY.known_specs["httpx"]
    assert text.startswith(f'[project]\nname = "sutra-control"\ndependencies = [\n    "{httpx}",\n]\n')
    assert text.endswith("[tool.x]\na = 1\n")


def test_crlf_files_stay_crlf(tmp_path):
    root = tree(tmp_path, SCENARIO)
    for name in ("setup.py", "pyproject.toml"):
        path = root / source_rel(f"sutra-api/{name}")
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    apply(root)
    for name in ("setup.py", "pyproject.toml"):
        data = (root / source_rel(f"sutra-api/{name}")).read_bytes()
        assert HYBRID_NUMPY.encode() in data and data.count(b"\n") == data.count(b"\r\n")


def test_the_editors_load_only_to_edit():
    """Every `inv` command imports the package; libcst alone takes a third of a second."""
    code = (
        "import sys, sutra_deploy.deps; print(sorted(m for m in ('libcst', 'tomlkit') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_symlink_planted_at_the_old_staging_name_is_not_followed(tmp_path):
    """Before, each file was staged at `.NAME.fix-deps`: whoever could write in the folder
    could point that name elsewhere and have fix-deps overwrite what it points to."""
    root = tree(tmp_path / "root", SCENARIO)
    setup_py = root / source_rel("sutra-api/setup.py")
    victim = tmp_path / "victim.txt"
    victim.write_text("not fix-deps' to write\n")
    victim.chmod(0o600)
    planted = setup_py.with_name(".setup.py.fix-deps")
    planted.symlink_to(victim)
    setup_py.chmod(0o640)

    apply(root)
    assert victim.read_text() == "not fix-deps' to write\n"
    assert victim.stat().st_mode & 0o777 == 0o600
    assert planted.is_symlink()  # left as found
    assert not setup_py.is_symlink()
    assert HYBRID_NUMPY in setup_py.read_text()
    assert setup_py.stat().st_mode & 0o777 == 0o640
    staged = {p.name for p in setup_py.parent.iterdir() if p.name.startswith(".")}
    assert staged == {".setup.py.fix-deps"}  # the planted link only: nothing left behind
