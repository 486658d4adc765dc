"""Phase 1 of the plan: each service package declares what its code imports, and no other service.

sutra-api was 703 MB because its package declared sutra-hybrid, a separate service, and so
installed hybrid's ML libraries with it. :func:`audit` compares, for each Python service
package of the stack, the dependencies its metadata declares (pyproject.toml's
``[project].dependencies``, setup.py's ``install_requires``, both read statically: running
setup.py could do anything; optional extras count as declared and are never edited) with
the modules its code imports (a guarded import is optional), and proposes one change to
both files. :func:`apply_changes` writes it. Files are edited as syntax trees that keep
their formatting and comments (tomlkit for TOML, libcst for Python), never by pattern.

The parts, each depending only on those above it:

- ``model``: the finding kinds, the settings (:class:`DepsPolicy`), the records passed on
- ``declarations``: what pyproject.toml and setup.py declare
- ``imports``: what a package's code imports, and which distribution provides it
- ``monorepo``: the source tree's packages, each read once
- ``edit``, ``setup_py_edit``: the format-preserving editors and the atomic writes
- ``auditing``: the findings and changes per package, the report, the gate
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .kinds import DEFAULT_FAIL_ON, FINDING_KINDS

if TYPE_CHECKING:
    from ..core.stack import Stack
    from .auditing import DepsReport

# Loaded on first use: every `inv` start imports this package (for the kinds above), and the
# parsers behind the rest (packaging, tomlkit, libcst) take a tenth of a second to import.
_LAZY = {
    "DepsReport": ".auditing",
    "audit": ".auditing",
    "finding_kinds": ".auditing",
    "gate": ".auditing",
    "apply_changes": ".edit",
    "DependencyFileError": ".model",
    "DependencyProblems": ".model",
    "DepsPolicy": ".model",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name], __name__), name)


@dataclass(frozen=True)
class DepsRun:
    """What `inv fix-deps` did: the audit it shows (before any fix: what the fix changes), and
    what is left to gate on."""

    report: DepsReport
    left: DepsReport  # after a real --apply, what editing metadata could not fix
    fail_on: frozenset[str]
    applied: bool

    def table(self) -> str:
        return self.report.table()

    def to_json(self) -> str:
        return self.report.to_json()

    def raise_if_failed(self) -> None:
        """Exit 1 on findings of the failing kinds; only warn about the others."""
        from .auditing import gate

        gate(self.left, self.fail_on, applied=self.applied)


def fix_deps(
    stack: Stack,
    root: Path,
    *,
    names: Sequence[str],
    settings: Mapping[str, Any],
    fail_on: Sequence[str],
    apply: bool,
    dry: bool,
) -> DepsRun:
    """`inv fix-deps`: audit, apply the fix if asked, and audit again what it left."""
    from .auditing import audit, finding_kinds
    from .edit import apply_changes
    from .model import DepsPolicy

    kinds = frozenset(finding_kinds(fail_on))
    policy = DepsPolicy.from_settings(settings)
    report = audit(stack, root, names, policy)
    if apply and report.changes:
        apply_changes(root, report.changes, dry=dry)
        if not dry:
            return DepsRun(report, audit(stack, root, names, policy, quiet=True), kinds, applied=True)
    return DepsRun(report, report, kinds, applied=False)


__all__ = [
    "DEFAULT_FAIL_ON",
    "FINDING_KINDS",
    "DependencyFileError",
    "DependencyProblems",
    "DepsPolicy",
    "DepsReport",
    "DepsRun",
    "apply_changes",
    "audit",
    "finding_kinds",
    "fix_deps",
    "gate",
]
