"""Temporary git repositories as source roots, for the tests that need a commit of their own."""

from __future__ import annotations

import subprocess


def git(root, *args: str) -> str:
    """`git -C ROOT ARGS` with a throwaway identity and none of the user's configuration."""
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    identity |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(
        ["git", "-C", str(root), *args],
        check=True,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(root), **identity},
    ).stdout.strip()
