"""Version pins compared: which clauses of an old pin (``numpy<2.0``) a package's declared
range (``numpy>=1.24``) does not already imply, and whether the two can hold together.

Each clause is read as an interval of versions (``~=1.4.5`` is ``>=1.4.5, <1.5``,
``==1.4.*`` is ``>=1.4, <1.5``); ``!=`` excludes one point; ``===`` is compared as text.
Pre-releases are left out of the comparison, as pip leaves them out by default."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import Specifier, SpecifierSet
from packaging.version import InvalidVersion, Version


@dataclass(frozen=True)
class Bound:
    version: Version
    inclusive: bool


_Interval = tuple[Bound | None, Bound | None]


def _next_release(release: tuple[int, ...], epoch: int) -> Version:
    """The first version after every ``release.*``: 1.4 -> 1.5."""
    bumped = (*release[:-1], release[-1] + 1)
    return Version(("" if not epoch else f"{epoch}!") + ".".join(map(str, bumped)))


def _interval(clause: Specifier) -> _Interval | None:
    """The versions a clause allows, as bounds; None for `!=` and `===`, which are no interval."""
    operator, raw = clause.operator, clause.version
    if operator in ("!=", "==="):
        return None
    if raw.endswith(".*"):
        base = Version(raw[:-2])
        return Bound(base, True), Bound(_next_release(base.release, base.epoch), False)
    version = Version(raw)
    if operator == "==":
        return Bound(version, True), Bound(version, True)
    if operator == "~=":
        return Bound(version, True), Bound(_next_release(version.release[:-1], version.epoch), False)
    if operator in (">=", ">"):
        return Bound(version, operator == ">="), None
    return None, Bound(version, operator == "<=")


def _higher_lower(a: Bound | None, b: Bound | None) -> Bound | None:
    if a is None or b is None:
        return a or b
    if a.version != b.version:
        return a if a.version > b.version else b
    return a if not a.inclusive else b


def _lower_upper(a: Bound | None, b: Bound | None) -> Bound | None:
    if a is None or b is None:
        return a or b
    if a.version != b.version:
        return a if a.version < b.version else b
    return a if not a.inclusive else b


def bounds(specifiers: Iterable[Specifier]) -> _Interval:
    """The tightest interval all clauses allow together."""
    low: Bound | None = None
    high: Bound | None = None
    for clause in specifiers:
        interval = _interval(clause)
        if interval is not None:
            low = _higher_lower(low, interval[0])
            high = _lower_upper(high, interval[1])
    return low, high


def _inside(version: Version, low: Bound | None, high: Bound | None) -> bool:
    if low and (version < low.version or (version == low.version and not low.inclusive)):
        return False
    return not (high and (version > high.version or (version == high.version and not high.inclusive)))


def implies(declared: SpecifierSet, clause: Specifier) -> bool:
    """Every version ``declared`` allows also satisfies ``clause``."""
    if any(str(c) == str(clause) for c in declared):
        return True
    try:
        low, high = bounds(declared)
        if clause.operator == "!=":
            if clause.version.endswith(".*"):
                return False
            return not _inside(Version(clause.version), low, high)
        interval = _interval(clause)
    except InvalidVersion:
        return False
    if interval is None:
        return False
    want_low, want_high = interval
    if want_low is not None and not (
        low is not None
        and (
            low.version > want_low.version
            or (low.version == want_low.version and (want_low.inclusive or not low.inclusive))
        )
    ):
        return False
    return not (
        want_high is not None
        and not (
            high is not None
            and (
                high.version < want_high.version
                or (high.version == want_high.version and (want_high.inclusive or not high.inclusive))
            )
        )
    )


def compatible(a: SpecifierSet, b: SpecifierSet) -> bool:
    """Some release satisfies both (as far as intervals and `!=` points tell)."""
    clauses = [*a, *b]
    try:
        low, high = bounds(clauses)
    except InvalidVersion:
        return True
    if low is None or high is None:
        return True
    if low.version > high.version:
        return False
    if low.version == high.version:
        if not (low.inclusive and high.inclusive):
            return False
        excluded = [c for c in clauses if c.operator == "!=" and not c.version.endswith(".*")]
        return all(Version(c.version) != low.version for c in excluded)
    return True


def tighter_clauses(declared: SpecifierSet, old: SpecifierSet) -> SpecifierSet:
    """The clauses of ``old`` that ``declared`` does not imply: what the old pin adds."""
    return SpecifierSet(",".join(str(c) for c in old if not implies(declared, c)))


# --- requirements files ------------------------------------------------------------


@dataclass(frozen=True)
class RequirementLine:
    requirement: Requirement | None  # None for an include
    line: int
    include: str | None = None  # `-r FILE` or `-c FILE`: the file
    constraint: bool = False


def requirement_lines(text: str) -> list[RequirementLine]:
    """The requirements and includes of a requirements file (or a here-document written as
    one): comments, continuations, options and local paths skipped."""
    found: list[RequirementLine] = []
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append((start, pending + line))
        pending = ""
    if pending:
        logical.append((start, pending))
    for number, raw in logical:
        line = raw.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        include = _include(words)
        if include is not None:
            found.append(RequirementLine(None, number, include[0], include[1]))
            continue
        if words[0].startswith("-"):
            continue
        requirement = parse_pin(" ".join(w for w in words if not w.startswith("--")))
        if requirement is not None:
            found.append(RequirementLine(requirement, number))
    return found


def _include(words: list[str]) -> tuple[str, bool] | None:
    """`-r FILE`, `-rFILE`, `--requirement=FILE`, and the same for `-c`: (FILE, constraint)."""
    head = words[0]
    for option, constraint in (("-r", False), ("--requirement", False), ("-c", True), ("--constraint", True)):
        if head == option:
            target = words[1] if len(words) > 1 else ""
        elif head.startswith(option + "="):
            target = head[len(option) + 1 :]
        elif len(option) == 2 and head.startswith(option):
            target = head[2:]
        else:
            continue
        return (target, constraint) if target else None
    return None


def parse_pin(text: str) -> Requirement | None:
    """A requirement as pip reads one, or None for a local path, a URL or anything else."""
    text = text.strip()
    if not text or text.startswith((".", "/", "~")) or "://" in text.split(";")[0].split("@")[0]:
        return None
    if text.endswith((".whl", ".tar.gz", ".zip")):
        return None
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return None
    return requirement if not requirement.url else None
