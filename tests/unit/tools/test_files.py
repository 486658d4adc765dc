"""Writing the user's files: the edit lands where a link inside the checkout leads, never
outside it, never half-written; a new file is never written through anything already there."""

import os
import stat

import pytest

from sutra_deploy.core.errors import UnsafeWrite
from sutra_deploy.tools.files import checkout_target, replace_file, write_new


def test_an_edit_through_a_link_writes_the_linked_file_and_keeps_the_link(tmp_path):
    shared = tmp_path / "shared" / "pyproject.toml"
    shared.parent.mkdir()
    shared.write_text("old\n")
    shared.chmod(0o640)
    link = tmp_path / "pkg" / "pyproject.toml"
    link.parent.mkdir()
    link.symlink_to(os.path.relpath(shared, link.parent))

    written = replace_file(link, b"new\n", root=tmp_path)

    assert written == shared.resolve()
    assert link.is_symlink()
    assert shared.read_bytes() == b"new\n"
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640, "the file keeps its own mode"
    assert sorted(p.name for p in shared.parent.iterdir()) == ["pyproject.toml"], "no staging file left"


def test_an_edit_through_a_link_out_of_the_checkout_is_refused(tmp_path):
    outside = tmp_path / "elsewhere.toml"
    outside.write_text("someone else's\n")
    root = tmp_path / "checkout"
    root.mkdir()
    (root / "pyproject.toml").symlink_to(outside)

    with pytest.raises(UnsafeWrite, match="outside"):
        replace_file(root / "pyproject.toml", b"edited\n", root=root)
    assert outside.read_text() == "someone else's\n"


def test_an_edit_through_a_link_to_nothing_is_refused(tmp_path):
    (tmp_path / "Dockerfile").symlink_to(tmp_path / "missing")

    with pytest.raises(UnsafeWrite, match="does not exist"):
        checkout_target(tmp_path / "Dockerfile", tmp_path)
    assert not (tmp_path / "missing").exists()


def test_a_new_checkout_file_is_made_with_the_usual_mode(tmp_path):
    path = tmp_path / "new.txt"
    replace_file(path, b"hello\n", root=tmp_path)
    assert path.read_bytes() == b"hello\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 & ~current_umask()


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text("FROM old\n")
    with pytest.raises(TypeError):
        replace_file(path, "not bytes", root=tmp_path)  # type: ignore[arg-type]
    assert path.read_text() == "FROM old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["Dockerfile"]


@pytest.mark.parametrize("already", ["file", "link", "dangling-link"])
def test_write_new_never_writes_through_what_is_already_there(tmp_path, already):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    path = tmp_path / "verify.json"
    if already == "file":
        path.write_text("earlier\n")
    elif already == "link":
        path.symlink_to(victim)
    else:
        path.symlink_to(tmp_path / "would-be-made")

    with pytest.raises(FileExistsError):
        write_new(path, b"{}\n")
    assert victim.read_text() == "keep me\n"
    assert not (tmp_path / "would-be-made").exists()
    if already == "file":
        assert path.read_text() == "earlier\n"


def test_write_new_makes_the_file(tmp_path):
    write_new(tmp_path / "index.html", b"<p>hi</p>\n")
    assert (tmp_path / "index.html").read_bytes() == b"<p>hi</p>\n"


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
