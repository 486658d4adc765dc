"""Package data: what the pre-plan Dockerfile copied beside the code (templates/, static/),
copied where the code finds it (the package folder's layout under /opt/app) or, when the old
image kept it elsewhere, where it kept it; never metadata, tests, a monorepo package the
service does not depend on, or anything outside the build context."""

from __future__ import annotations

from pathlib import Path

from ...deps.imports import SKIPPED_DIRS
from .model import APP, ImagePlanning, within

_METADATA_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in", ".dockerignore", "poetry.lock")
_METADATA_PREFIXES = ("Dockerfile", "requirements", "constraints", "README", "LICENSE", "Pipfile")


def package_data(
    plan: ImagePlanning, local_folders: set[Path]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """What the old Dockerfile copied next to the code (templates/, static/), kept where
    the code finds it: the package folder's layout under /opt/app."""
    if plan.preplan is None:
        return [], []
    pkg = plan.facts.pkg.folder.resolve()
    code = {c.source.resolve() for c in plan.facts.code}
    packages_dir = (plan.inputs.root / "packages").resolve()
    app: dict[str, str] = {}
    other: dict[str, str] = {}

    def add(source: Path, dest: str, table: dict[str, str]) -> None:
        if not within(source, plan.context):
            plan.notes.append(f"{_rel(source, plan.inputs.root)} is outside the build context: left out")
            return
        if dest not in app and dest not in other:
            table[dest] = plan.in_context(source)

    for copy in plan.preplan.copies:
        source = copy.source.resolve()
        if source == pkg or within(pkg, source):
            for child in sorted(pkg.iterdir()):
                if child.is_dir() and _data_folder(child) and not any(within(c, child) for c in code):
                    add(child, f"{APP}/{child.name}", app)
            continue
        if within(source, pkg):
            if any(within(source, c) for c in code) or _metadata(source):
                continue
            rel = source.relative_to(pkg).as_posix()
            if rel.split("/")[0] in SKIPPED_DIRS:
                continue
            if copy.dest == rel or copy.dest.endswith("/" + rel):
                add(source, f"{APP}/{rel}", app)
            else:
                add(source, copy.dest, other)
            continue
        if _metadata(source) or source in local_folders or any(within(source, f) for f in local_folders):
            continue
        if within(source, packages_dir) and source != packages_dir:
            owner = source.relative_to(packages_dir).parts[0]
            plan.notes.append(
                f"{copy.where} copies packages/{owner}, which {plan.facts.pkg.distribution} does not "
                "depend on: left out"
            )
            continue
        if source == plan.context or within(plan.context, source):
            continue  # the whole context: the code and data above are what the service needs
        workdir = copy.workdir.rstrip("/") + "/"
        if (copy.dest + "/").startswith(workdir) and copy.dest != copy.workdir:
            add(source, f"{APP}/{copy.dest[len(workdir) :]}", app)
        else:
            add(source, copy.dest, other)
    for dest, source in app.items():
        plan.notes.append(f"package data {source} copied to {dest}")
    for dest, source in other.items():
        plan.notes.append(f"package data {source} copied to {dest}")
    return sorted((s, d) for d, s in app.items()), sorted((s, d) for d, s in other.items())


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _metadata(path: Path) -> bool:
    name = path.name
    return name in _METADATA_FILES or name.startswith(_METADATA_PREFIXES) or name.endswith(".md")


def _data_folder(folder: Path) -> bool:
    name = folder.name
    return not (
        name.startswith(".")
        or name in SKIPPED_DIRS
        or name.endswith(".egg-info")
        or name in ("docs", "doc", "src")
    )
