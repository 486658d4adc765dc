"""Writing the changes: formatting and comments kept, CRLF kept, all files or none, and the
editors' libraries loaded only when something is edited."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sutra_deploy.core.errors import DependencyFileError
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.deps.edit import apply_changes

from .monorepos import (
    API_PYPROJECT,
    API_SETUP_PY,
    HYBRID_NUMPY,
    POLICY,
    SCENARIO,
    apply,
    audit,
    findings,
    inv,
    one_line,
    package_dir,
    pyproject,
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


# --- links in the checkout (issue 18, data and secrets) ------------------------------------

LINKED_API = {
    "sutra-api/pyproject.toml": (
        '[project]\nname = "sutra-api"\n'
        'dependencies = ["fastapi>=0.104.0", "pydantic>=2.0.0", "sutra-hybrid>=1.0.0"]\n'
    ),
    "shared/api_code/__init__.py": "",
    "shared/api_code/main.py": "import fastapi\nimport pydantic\n",
}


def linked_checkout(root: Path) -> Path:
    """sutra-api's code folder and pyproject.toml are links to files elsewhere in the root."""
    tree(root, LINKED_API)
    package = root / package_dir("sutra-api")
    (package / "sutra_api").symlink_to(root / "shared" / "api_code", target_is_directory=True)
    shared = root / "shared" / "pyproject.toml"
    (package / "pyproject.toml").rename(shared)
    (package / "pyproject.toml").symlink_to(shared)
    return root


def test_a_linked_code_folder_is_read_and_its_imports_are_kept_by_apply(tmp_path):
    root = linked_checkout(tmp_path)
    result = inv("--root", str(root), "--apply")
    assert result.returncode == 0, result.stderr
    shared = (root / "shared" / "pyproject.toml").read_text()
    assert '"fastapi>=0.104.0"' in shared and '"pydantic>=2.0.0"' in shared
    assert "sutra-hybrid" not in shared  # the coupling was fixed, in the file the link names
    link = root / package_dir("sutra-api") / "pyproject.toml"
    assert link.is_symlink() and link.resolve() == root / "shared" / "pyproject.toml"


def test_a_code_folder_linked_out_of_the_root_is_not_read_and_nothing_is_called_removable(tmp_path):
    root = tree(tmp_path / "root", {"sutra-api/pyproject.toml": LINKED_API["sutra-api/pyproject.toml"]})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "main.py").write_text("import fastapi\n")
    (root / package_dir("sutra-api") / "sutra_api").symlink_to(elsewhere, target_is_directory=True)
    report = audit(root, "sutra-api")
    assert report.unread == (
        f"{package_dir('sutra-api')}/sutra_api: a link to {elsewhere}, outside the source root",
    )
    unused = [f for f in report.findings if f.kind == "unused"]
    assert {f.dependency for f in unused} == {"fastapi", "pydantic", "sutra-hybrid"}  # none imported
    assert not any(f.fixable for f in unused)
    apply_changes(root, report.changes)
    assert '"fastapi>=0.104.0"' in read(root, "sutra-api/pyproject.toml")


def test_a_package_without_code_keeps_its_declarations(tmp_path):
    root = tree(tmp_path, {"sutra-api/pyproject.toml": LINKED_API["sutra-api/pyproject.toml"]})
    report = audit(root, "sutra-api")
    assert report.unread == (f"{package_dir('sutra-api')}: no Python code found",)
    assert {f.dependency for f in report.findings if f.kind == "unused" and f.fixable} == set()


def test_a_loop_of_links_ends(tmp_path):
    root = tree(tmp_path, SCENARIO)
    code = root / source_rel("sutra-api/sutra_api")
    (code / "again").symlink_to(code, target_is_directory=True)
    assert findings(audit(root, "sutra-api")) == findings(
        audit(tree(tmp_path / "plain", SCENARIO), "sutra-api")
    )


def test_a_declaration_linked_out_of_the_root_is_refused_before_anything_is_written(tmp_path):
    root = tree(tmp_path / "root", SCENARIO)
    outside = tmp_path / "outside-pyproject.toml"
    pyproject = root / source_rel("sutra-api/pyproject.toml")
    pyproject.rename(outside)
    pyproject.symlink_to(outside)
    setup_before = read(root, "sutra-api/setup.py")
    result = inv("--root", str(root), "--apply")
    assert result.returncode == 2, result.stderr
    assert one_line(result) == (
        f"error: {source_rel('sutra-api/pyproject.toml')} leads to {outside}, outside {root}; not written"
    )
    assert read(root, "sutra-api/setup.py") == setup_before  # nothing written before the refusal
    assert outside.read_text() == API_PYPROJECT


def test_two_packages_sharing_one_file_that_need_different_edits_are_refused(tmp_path):
    root = tree(tmp_path, SCENARIO)
    shared = root / "packages" / "shared-pyproject.toml"
    shared.parent.mkdir(exist_ok=True)
    shared.write_text(pyproject("shared", "fastapi>=0.104.0", "numpy>=1.26", "sutra-hybrid>=1.0.0"))
    for service in ("sutra-api", "sutra-hybrid"):
        link = root / source_rel(f"{service}/pyproject.toml")
        link.unlink()
        link.symlink_to(shared)
    report = audit(root)
    with pytest.raises(DependencyFileError, match=r"are one file \(a link\) that needs different edits"):
        apply_changes(root, report.changes)
    assert "sutra-hybrid>=1.0.0" in shared.read_text()
