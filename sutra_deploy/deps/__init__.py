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
    from .model import DepsPolicy

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
    """`inv fix-deps`: the audit, shown before anything is changed (what the fix changes is in
    it); then finish() applies the fix if asked and gates on what is left."""

    stack: Stack
    root: Path
    names: tuple[str, ...]
    policy: DepsPolicy
    fail_on: frozenset[str]
    apply: bool
    dry: bool
    report: DepsReport

    def table(self) -> str:
        return self.report.table()

    def to_json(self) -> str:
        return self.report.to_json()

    def finish(self) -> None:
        """Apply the changes when asked; exit 1 on findings of the failing kinds left (after a
        real --apply, what editing metadata could not fix), only warn about the others."""
        from .auditing import audit, gate
        from .edit import apply_changes

        if self.apply and self.report.changes:
            apply_changes(self.root, self.report.changes, dry=self.dry)
            if not self.dry:
                left = audit(self.stack, self.root, self.names, self.policy, quiet=True)
                gate(left, self.fail_on, applied=True)
                return
        gate(self.report, self.fail_on)


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
    """`inv fix-deps`: audit the named services (all when none); the run shows and finishes."""
    from .auditing import audit, finding_kinds
    from .model import DepsPolicy

    kinds = frozenset(finding_kinds(fail_on))
    policy = DepsPolicy.from_settings(settings)
    report = audit(stack, root, names, policy)
    return DepsRun(stack, root, tuple(names), policy, kinds, apply, dry, report)


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
