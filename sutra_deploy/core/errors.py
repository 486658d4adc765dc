"""Every error meant for the person at the keyboard, and its exit code, in one place: the task
edge (edge.user_errors) turns each into one line and that code.

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


# --- raised in core/ ----------------------------------------------------------


class JourneyMismatch(SutraError):
    """An answer that does not have the shape the journey says (the check's detail)."""


class BadReference(SutraError):
    """A registry, tag, digest or image name that the reference grammar does not allow."""

    def __init__(self, what: str, value: object, kind: str, problem: str) -> None:
        self.what, self.value, self.kind, self.problem = what, value, kind, problem
        if kind == "registry":  # the wording `inv push` has always used
            super().__init__(
                f"{what} {value!r} is not a registry reference; expected HOST[:PORT][/PATH] with a "
                f"lower-case path and no scheme or tag, e.g. localhost:5000/sutra-ai ({problem})"
            )
        else:
            super().__init__(f"{what} {value!r} is not a valid {kind}: {problem}")


# --- raised in tools/ ---------------------------------------------------------


class EngineError(SutraError):
    """The engine refused a request (an API error that is not the daemon being away)."""


class PushFailed(SutraError):
    """The engine could not push an image (the registry refused it, or went away mid-layer)."""

    exit_code = 1


class UnsafeWrite(SutraError):
    """A write refused before anything changed: the path leads somewhere it should not."""


class HttpError(SutraError):
    """No usable answer: refused, timed out, not HTTP, or a status the caller cannot use."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WrongContext(SutraError):
    """kubectl's current context is not the one the environment names (or there is none)."""


class ClusterUnreachable(SutraError):
    """The API server does not answer, or stopped answering in the middle of the work."""


class RegistryError(SutraError):
    """A registry that refused, answered something that is no registry answer, or went away."""


class TimedOut(SutraError):
    """Something the tool waits for (a throwaway registry, a proxy) never came: exit 2, the
    tool could not do its work. A check whose wait runs out says so in its own error
    (StackUnhealthy, SmokeFailed: exit 1)."""


# --- raised in deps/ ----------------------------------------------------------


class DependencyFileError(SutraError):
    """A package's metadata or code cannot be read statically."""


class UndecodableSource(DependencyFileError):
    """A Python file whose bytes are not text in the encoding its coding line (or UTF-8) says."""


class DependencyProblems(SutraError):
    """fix-deps found declarations that do not match the code (the check failed)."""

    exit_code = 1


# --- raised in images/ --------------------------------------------------------


class ArchiveError(SutraError):
    """The stream is not a `docker save` archive, or one that lacks what its manifest lists."""


class UnknownBuilder(SutraError):
    """`--builder` (or `sutra.builder`) names no builder, or one this machine lacks."""


class LockError(SutraError):
    """The lock file cannot be used as it is."""


class DockerfileRefused(SutraError):
    """The checkout says something an optimized image must not carry, or cannot be carried."""

    exit_code = 1


class DockerfileSyntaxError(SutraError):
    """A Dockerfile that Docker itself would refuse to read; the message names file and line."""


class ShellSyntaxError(SutraError):
    """A command line the shell itself would refuse (an unterminated quote or here-document)."""


class PreflightFailed(SutraError):
    """The Dockerfiles to build have problems the builder would stop at: exit 2."""


# --- raised in local/ ---------------------------------------------------------


class PortTaken(SutraError):
    """A host port the local stack needs is held by something else."""


class StackUnhealthy(SutraError):
    """The local stack did not become healthy in time, or a service died (named, with logs)."""

    exit_code = 1


# --- raised in k8s/ -----------------------------------------------------------


class NotConfirmed(SutraError):
    """A production change without `--yes` and without a person to ask (or who said no)."""


class ClusterLacks(SutraError):
    """The cluster does not serve a version, kind or field the manifests use; nothing applied."""


class RolloutFailed(SutraError):
    """A Deployment's rollout did not finish in its time (the check failed)."""

    exit_code = 1


class ApplyRefused(SutraError):
    """The API server refused a group of objects (invalid, forbidden, immutable): exit 2."""


class NoManifests(SutraError):
    """A service of the stack that k8s/base has no workload for."""


# --- raised in init/ ----------------------------------------------------------


class NotACheckout(SutraError):
    """The root has no service package to describe."""


# --- raised in verify/ --------------------------------------------------------


class VerifyFailed(SutraError):
    """A metric that could be measured did not meet the plan: exit 1, naming each."""

    exit_code = 1


class ReportFolderError(SutraError):
    """`--report` names a place the report cannot be written to, found before any work."""


class SmokeFailed(SutraError):
    """A smoke check got no right answer in its time (the check failed)."""

    exit_code = 1


# --- raised in ship/ ----------------------------------------------------------


class DeployFailed(SutraError):
    """The release did not stand (refused, not rolled out, smoke failed) and was rolled back."""

    exit_code = 1


class ReleaseExists(SutraError):
    """A release tag already in the registry with another image: a check that ran and failed."""

    exit_code = 1


class NoRelease(SutraError):
    """A task needs a release name and there is none to be had."""


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
