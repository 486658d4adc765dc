"""Release names: which commit an image was built from, in a tag that can be returned to.

A version (`v1`, `v2`) names a generation of Dockerfiles; a release names one build of it.
The release is `--tag` when given; otherwise it comes from the git repository that holds the
source root: a `v*` tag on the commit, else the short commit SHA, with `-dirty` when the
working tree has uncommitted changes. A dirty release names no commit, so it is the only kind
that may be overwritten in a registry.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import NoRelease, SutraError, ToolMissing
from ..core.references import parse_tag
from ..tools.commands import Commands

log = logging.getLogger("sutra")

DIRTY_SUFFIX = "-dirty"


@dataclass(frozen=True)
class Release:
    name: str
    commit: str | None  # the full SHA it was built from, when git says so
    source: str  # "--tag", "git tag", "git commit"

    @property
    def dirty(self) -> bool:
        return self.name.endswith(DIRTY_SUFFIX)


def floating_tags(patterns: Sequence[str], version: str, *, latest: bool = True) -> list[str]:
    """The tags that move to each new release (`sutra.floating_tags`: "{version}", "latest")."""
    if not isinstance(patterns, (list, tuple)):  # a text would be taken apart, letter by letter
        raise SutraError(
            f"sutra.floating_tags must be a list of tags, e.g. ['{{version}}', 'latest'], got {patterns!r}"
        )
    tags = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise SutraError(f"sutra.floating_tags must be a list of tags, got {pattern!r}")
        tag = pattern.replace("{version}", version)
        parse_tag(tag, "sutra.floating_tags")
        if (latest or tag != "latest") and tag not in tags:
            tags.append(tag)
    return tags


def check_release_name(name: str, versions: Sequence[str]) -> str:
    """A release is a Docker tag, and never one of the stack's version names."""
    parse_tag(name, "--tag")
    if name == "latest":
        raise SutraError("--tag 'latest' moves with every release; name the release itself, e.g. v1.4.0")
    if name in versions:
        raise SutraError(
            f"--tag {name!r} is a version of the stack ({', '.join(versions)}); "
            "a release needs a name of its own, e.g. the git commit or v1.4.0"
        )
    return name


def git_release(commands: Commands, root: Path) -> Release | None:
    """The release the git repository holding ``root`` is at; None outside git.

    Two or three git calls, as few as the answer needs: every `inv build` asks, even one that
    finds nothing to rebuild."""
    git = ["git", "-C", str(root)]
    try:
        # Outside a work tree, or before the first commit, git fails (or says "false").
        head = commands.run([*git, "rev-parse", "--is-inside-work-tree", "HEAD", "--short=12", "HEAD"],
                            check=False, timeout=30)  # fmt: skip
    except ToolMissing:
        return None
    lines = head.stdout.split()
    if not head.ok or len(lines) != 3 or lines[0] != "true":
        return None
    commit, short = lines[1], lines[2]
    status = commands.run([*git, "status", "--porcelain", "--untracked-files=no"], timeout=30)
    if status.stdout.strip():
        return Release(short + DIRTY_SUFFIX, commit, "git commit")
    tags = commands.run([*git, "tag", "--points-at", "HEAD", "--list", "v*", "--sort=-v:refname"], timeout=30)
    version_tags = [t for t in tags.stdout.split() if t]
    if version_tags:
        return Release(version_tags[0], commit, "git tag")
    return Release(short, commit, "git commit")


def resolve_release(
    commands: Commands, root: Path, versions: Sequence[str], *, tag: str | None, required: bool
) -> Release | None:
    """`--tag`, else git's; with neither, None, or :class:`NoRelease` when ``required``.

    A `--tag` release still names the commit it is built from when git has a clean tree there
    (CI passes the git tag it runs for); a dirty tree's commit does not describe the build.
    """
    if tag is not None:
        name = check_release_name(tag, versions)
        at = git_release(commands, root)
        return Release(name, at.commit if at is not None and not at.dirty else None, "--tag")
    found = git_release(commands, root)
    if found is not None:
        if found.name in versions:  # a git tag named like a version: refuse the ambiguity
            raise SutraError(
                f"git tag {found.name!r} is also a version of the stack; name the release with --tag"
            )
        return found
    if required:
        raise NoRelease(
            f"no release name: {root} is not in a git repository with a commit; "
            "name the release with --tag (e.g. --tag 2026-11-26.1)"
        )
    return None
