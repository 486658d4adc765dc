"""Writing the audit's changes: each declaring file edited as a syntax tree that keeps its
formatting and comments (tomlkit for TOML, libcst for Python), never by pattern, and
replaced whole so that none is left half-written.

The editors' libraries load only when a file is edited: every `inv` command imports this
package, and libcst alone takes a third of a second to import."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from ..core.errors import DependencyFileError
from ..tools import files
from .model import PYPROJECT, Change, Declaration, ListEdit

log = logging.getLogger("sutra")


def edited_text(declaration: Declaration, edit: ListEdit) -> str:
    """The declaring file's text with the edit made."""
    if declaration.file == PYPROJECT:
        return _edit_pyproject(declaration.text, edit)
    from .setup_py_edit import edit_setup_py

    return edit_setup_py(declaration, edit)


def _edit_pyproject(text: str, edit: ListEdit) -> str:
    import tomlkit

    doc = tomlkit.parse(text)
    project = doc["project"]
    assert isinstance(project, dict)
    if "dependencies" not in project:
        array = tomlkit.array()
        array.extend(edit.append)
        project["dependencies"] = array.multiline(True)
        return tomlkit.dumps(doc)
    array = project["dependencies"]
    for index, raw in edit.replace.items():
        array[index] = raw  # tomlkit keeps the item's trailing comment
    for raw in edit.append:
        array.append(raw)  # in the array's style: one per line if it is multi-line
    for index in sorted(edit.drop, reverse=True):
        del array[index]  # with its trailing comment
    return tomlkit.dumps(doc)


def apply_changes(root: Path, changes: Iterable[Change], *, dry: bool = False) -> list[Path]:
    """Write each change, refusing all of them if any file changed since it was read; each
    file is replaced whole (see :func:`replace_file`), so none is left half-written."""
    changes = list(changes)
    by_target: dict[Path, Change] = {}
    for change in changes:  # every file checked before the first is written
        if not _unchanged(root / change.path, change):
            raise DependencyFileError(f"{change.path} changed while fix-deps ran; run it again")
        target = files.checkout_target(root / change.path, root)
        first = by_target.setdefault(target, change)
        if first is not change and first.after != change.after:
            # Two packages share one file through a link: each edit was made from the same
            # text, so writing both would undo the first.
            raise DependencyFileError(
                f"{first.path} and {change.path} are one file (a link) that needs different "
                "edits; fix one service at a time (--service)"
            )
    written = []
    for change in by_target.values():
        path = root / change.path
        if dry:
            log.info("dry run: would rewrite %s", change.path)
            continue
        try:
            replace_file(path, change.after.encode(change.encoding), root=root)
        except OSError as error:  # a read-only folder, a full disk
            done = (
                f"; already rewritten: {', '.join(str(p.relative_to(root)) for p in written)}"
                if written
                else ""
            )
            raise DependencyFileError(f"{change.path}: cannot write it ({error.strerror}){done}") from None
        log.info("rewrote %s", change.path)
        written.append(path)
    return written


def _unchanged(path: Path, change: Change) -> bool:
    try:
        return path.read_bytes().decode(change.encoding) == change.before
    except UnicodeDecodeError:
        return False


def replace_file(path: Path, data: bytes, *, root: Path) -> None:
    """See :func:`..tools.files.replace_file`: the edited file whole or not at all, through a
    link only to a file inside the checkout."""
    files.replace_file(path, data, root=root, suffix=".fix-deps")
