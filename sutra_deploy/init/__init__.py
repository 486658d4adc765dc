"""`inv init`: describe a checkout as a stack file (:mod:`.describe` reads it, :mod:`.code`
reads its Python, :mod:`.stack_file` writes the TOML)."""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import NotACheckout, SutraError
from ..core.source import REFERENCE_STACK_FILE
from ..core.stack import load_stack
from ..tools.files import replace_file, write_new
from .describe import Described, Finding, describe
from .stack_file import check_loads, render

log = logging.getLogger("sutra")

__all__ = ["Described", "Finding", "InitResult", "NotACheckout", "init_stack"]


@dataclass(frozen=True)
class InitResult:
    text: str  # the stack file
    findings: tuple[Finding, ...]
    written: Path | None
    diff: str  # against the file it replaced (with --force), else ""


def init_stack(root: Path, *, write: Path | None, force: bool, dry: bool) -> InitResult:
    """Describe ``root``; print or (``write``) write the stack file. An existing file is
    replaced only with ``force``, and the diff is shown; a dry run writes nothing."""
    reference = load_stack(REFERENCE_STACK_FILE)  # the plan's budgets and base images
    target = (write or Path.cwd() / "stack.toml").absolute()
    if write is not None and (write.exists() or write.is_symlink()) and not force:
        raise SutraError(f"{write} exists; not overwritten (add --force to replace it, which shows the diff)")
    if write is not None and write.is_dir():
        raise SutraError(f"--write {write} is a directory; name the stack file to write")
    if write is not None and not (write.parent.is_dir() and os.access(write.parent, os.W_OK)):
        raise SutraError(f"--write {write}: {write.parent} is no folder this user can write to")
    described = describe(root, reference)
    text = render(described, reference, root, target)
    check_loads(text, target)
    for finding in described.findings:
        log.info("[init] %s", finding)
    diff = ""
    if write is not None and write.exists():
        old = write.read_text(encoding="utf-8", errors="replace")
        diff = "".join(
            difflib.unified_diff(old.splitlines(True), text.splitlines(True), str(write), f"{write} (init)")
        )
    if write is None or dry:
        if write is not None:
            log.info("[init] dry run: %s not written", write)
        return InitResult(text, tuple(described.findings), None, diff)
    try:
        if write.exists():
            replace_file(write, text.encode(), root=write.parent)
        else:
            write_new(write, text.encode())
    except OSError as error:  # a full disk, a file that appeared meanwhile, a read-only mount
        raise SutraError(f"--write {write}: not written: {error.strerror or error}") from None
    log.info(
        "[init] wrote %s (%d services); use it with INVOKE_SUTRA_STACK_FILE=%s",
        write,
        len(described.services),
        write,
    )
    return InitResult(text, tuple(described.findings), write, diff)
