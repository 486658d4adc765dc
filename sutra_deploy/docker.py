"""Docker engine operations, each one a `docker` command run through the :class:`Runner`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import CommandFailed, DockerUnavailable
from .runner import Runner


@dataclass(frozen=True)
class ImageInfo:
    ref: str
    id: str
    size_bytes: int
    layers: tuple[str, ...]  # diff IDs, base layer first
    labels: Mapping[str, str]


class Docker:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def ensure_available(self) -> str:
        """The engine's version, or one clear error when there is no engine to talk to."""
        try:
            result = self.runner.run(["docker", "version", "--format", "{{.Server.Version}}"], timeout=20)
        except CommandFailed as error:
            raise DockerUnavailable(_first_line(error.output) or "no answer") from None
        return result.stdout.strip()

    def image(self, ref: str) -> ImageInfo | None:
        result = self.runner.run(["docker", "image", "inspect", ref], check=False)
        if not result.ok:
            if "No such image" in result.stderr or "No such object" in result.stderr:
                return None
            raise CommandFailed(result.argv, result.returncode, result.stderr)
        raw = json.loads(result.stdout)[0]
        return ImageInfo(
            ref=ref,
            id=raw["Id"],
            size_bytes=int(raw["Size"]),
            layers=tuple(raw.get("RootFS", {}).get("Layers") or ()),
            labels=(raw.get("Config") or {}).get("Labels") or {},
        )

    def pull(self, ref: str) -> bool:
        """Try to pull ``ref``; False when no registry can be reached."""
        return self.runner.run(["docker", "pull", "--quiet", ref], check=False, timeout=120).ok

    def build(
        self,
        *,
        tag: str,
        context: Path,
        dockerfile: Path,
        build_args: Mapping[str, str],
        labels: Mapping[str, str],
        no_cache: bool,
        on_line: Callable[[str], None],
    ) -> None:
        # --force-rm: a failed step's container goes too, not only a successful one's.
        argv = ["docker", "build", "--force-rm", "--tag", tag, "--file", str(dockerfile)]
        for name, value in sorted(build_args.items()):
            argv += ["--build-arg", f"{name}={value}"]
        for name, value in sorted(labels.items()):
            argv += ["--label", f"{name}={value}"]
        if no_cache:
            argv.append("--no-cache")
        argv.append(str(context))
        # The legacy builder prints "Step N/M" lines that progress reporting reads; BuildKit
        # is not always there (no buildx plugin on these engines).
        self.runner.run(argv, mutates=True, on_line=on_line, env={"DOCKER_BUILDKIT": "0"})

    def import_rootfs(self, tarball: Path, ref: str, changes: Sequence[str]) -> None:
        argv = ["docker", "import"]
        for change in changes:
            argv += ["--change", change]
        self.runner.run([*argv, str(tarball), ref], mutates=True)

    def save(self, refs: Iterable[str]):
        """``docker save`` of the images as one binary stream; shared layers appear once."""
        return self.runner.open_stdout(["docker", "save", *refs])


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
