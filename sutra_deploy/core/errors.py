"""Typed errors. The task edge turns each into one line and a non-zero exit code.

Exit codes: 1 means a check ran and failed (an image over budget, a failed build);
2 means the tool could not do its work as asked (bad input, missing tool, daemon down);
3 is a bug: any other exception, turned into one line by the task edge (`edge.user_errors`).
"""

from __future__ import annotations

from collections.abc import Sequence


class SutraError(Exception):
    """Base of every error meant for the person at the keyboard."""

    exit_code = 2


class StackFileError(SutraError):
    """The stack file is missing, is not TOML, or does not match the schema."""


class UnknownService(SutraError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown service {name!r}; known services: {', '.join(known)}")


class ToolMissing(SutraError):
    def __init__(self, tool: str, hint: str) -> None:
        super().__init__(f"{tool} is not installed or not on PATH; {hint}")


class DockerUnavailable(SutraError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            f"cannot reach the Docker daemon ({detail}); start it "
            "(for example `sudo service docker start`) or point DOCKER_HOST at one"
        )


class SourceRootError(SutraError):
    """The source root or a file a service needs inside it is missing."""


class ImageMissing(SutraError):
    def __init__(self, ref: str, hint: str) -> None:
        super().__init__(f"image {ref} not found; {hint}")


class CommandFailed(SutraError):
    """An external command exited non-zero. Callers catch it where they can add meaning."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.output = output
        last = failure_reason(output)
        super().__init__(f"`{' '.join(argv[:3])}…` exited with {returncode}" + (f": {last}" if last else ""))


class BuildFailed(SutraError):
    exit_code = 1

    def __init__(self, ref: str, step: str, reason: str) -> None:
        self.ref = ref
        self.step = step
        self.reason = reason
        super().__init__(f"building {ref} failed at {step}: {reason}")


class BudgetExceeded(SutraError):
    exit_code = 1


def failure_reason(output: str) -> str:
    """The line of a failed command's output that says why: the last error line, if any."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        # The API server's own words name the object, the verb or field, and why; kubectl puts
        # them last, under a first line that says only that something failed.
        for marker in (" is forbidden: ", " is invalid: "):
            if marker in line:
                return line.split('from server for: "STDIN": ', 1)[-1]
    for line in reversed(lines):
        lowered = line.lower()
        # Summaries that only repeat that something failed say nothing about why.
        if "returned a non-zero code" in lowered or lowered.endswith("failed to run"):
            continue
        if lowered.startswith(("error", "e:", "fatal")) or "error:" in lowered:
            return line
    return lines[-1] if lines else ""
