"""The Docker Engine API through the docker SDK, as small typed models.

One :class:`Engine` per run owns the SDK client. It is created on first use, because
``docker.from_env()`` raises at once when the daemon is down and most tasks never need the
engine (``inv --list``, ``k8s-render``). The SDK's exceptions become the project's typed
errors here and nowhere else.

Under ``--dry``, a call that would change something prints the equivalent ``docker`` command
line and does nothing, so a dry run reads the same whether a step is a CLI call or an SDK one.

Two things stay on the docker CLI, through :mod:`commands`:
- ``docker build`` and ``docker buildx build``: the SDK can only drive the legacy builder, and
  BuildKit is the CLI's buildx plugin (``--progress=plain`` lines; see images/build.py).
- ``docker save`` of several images into one archive: the SDK saves one image at a time, and
  counting shared layers once needs them in one archive.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ..core.errors import CommandFailed, DockerUnavailable, EngineError, PushFailed
from ..core.references import domain_and_path, image_parts
from . import files
from .commands import Commands

# Where the docker CLI looks for plugins (docker/cli's defaultSystemPluginDirs), after the
# user's config folder and the folders its config.json adds (cliPluginsExtraDirs).
_SYSTEM_PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)


def _buildx_files() -> list[list]:
    """What decides whether and which buildx the CLI runs: the docker binary, the user's
    config.json, and each place a docker-buildx plugin may be, with their sizes and times."""
    config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    places = [shutil.which("docker") or "docker", str(config / "config.json")]
    places += [str(Path(d) / "docker-buildx") for d in (str(config / "cli-plugins"), *_SYSTEM_PLUGIN_DIRS)]
    found = []
    for place in places:
        try:
            stat = os.stat(place)
        except OSError:
            found.append([place])
            continue
        found.append([place, stat.st_size, stat.st_mtime_ns])
    return found


log = logging.getLogger("sutra")

# Seconds an Engine API call may take; a push or save streams and gets its own.
API_TIMEOUT = 60
STREAM_TIMEOUT = 600
SAVE_CHUNK_BYTES = 1 << 20
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"


@dataclass(frozen=True)
class ImageInfo:
    ref: str
    id: str
    size_bytes: int
    layers: tuple[str, ...]  # diff IDs, base layer first
    labels: Mapping[str, str]
    repo_digests: tuple[str, ...] = ()  # "registry/name@sha256:…" for each registry it was pushed to
    env: tuple[str, ...] = ()  # "NAME=value", as the image's config sets them
    user: str = ""

    @classmethod
    def from_attrs(cls, ref: str, attrs: Mapping[str, Any]) -> ImageInfo:
        config = attrs.get("Config") or {}
        return cls(
            ref=ref,
            id=attrs["Id"],
            size_bytes=int(attrs.get("Size") or 0),
            layers=tuple((attrs.get("RootFS") or {}).get("Layers") or ()),
            labels=dict(config.get("Labels") or {}),
            repo_digests=tuple(attrs.get("RepoDigests") or ()),
            env=tuple(config.get("Env") or ()),
            user=config.get("User") or "",
        )


@dataclass(frozen=True)
class HealthCheck:
    """One run of a container's HEALTHCHECK, as the engine logs it (the last few are kept)."""

    started: datetime
    ended: datetime
    exit_code: int


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    image: str  # the reference it was created from (Config.Image)
    state: str  # running, exited, restarting, created, …
    health: str  # healthy, unhealthy, starting, or "" without a check
    exit_code: int
    oom_killed: bool
    restart_count: int
    id: str = ""
    created: datetime | None = None
    health_log: tuple[HealthCheck, ...] = ()
    service: str = ""  # the compose service it runs, from its label
    published: tuple[int, ...] = ()  # host ports
    memory_limit: int = 0  # bytes; 0 is none
    memory_swap_limit: int = 0  # memory + swap; equal to memory_limit means no swap
    nano_cpus: int = 0  # CPUs x 1e9; 0 is none

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> ContainerInfo:
        state = attrs.get("State") or {}
        host = attrs.get("HostConfig") or {}
        health = state.get("Health") or {}
        return cls(
            name=(attrs.get("Name") or "").lstrip("/"),
            image=(attrs.get("Config") or {}).get("Image") or "",
            state=state.get("Status") or "",
            health=health.get("Status") or "",
            exit_code=int(state.get("ExitCode") or 0),
            oom_killed=bool(state.get("OOMKilled")),
            restart_count=int(attrs.get("RestartCount") or 0),
            id=attrs.get("Id") or "",
            created=engine_time(attrs.get("Created")),
            health_log=tuple(
                HealthCheck(
                    engine_time(run.get("Start")), engine_time(run.get("End")), int(run.get("ExitCode", -1))
                )
                for run in health.get("Log") or ()
                if run.get("Start") and run.get("End")
            ),
            service=((attrs.get("Config") or {}).get("Labels") or {}).get(COMPOSE_SERVICE_LABEL, ""),
            published=tuple(
                sorted(
                    {
                        int(binding["HostPort"])
                        for bindings in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).values()
                        for binding in bindings or ()
                        if binding.get("HostPort")
                    }
                )
            ),
            memory_limit=int(host.get("Memory") or 0),
            memory_swap_limit=int(host.get("MemorySwap") or 0),
            nano_cpus=int(host.get("NanoCpus") or 0),
        )

    @property
    def healthy(self) -> bool:
        """Running, and healthy if it has a check at all."""
        return self.state == "running" and self.health in ("healthy", "")

    def seconds_to_first_healthy_check(self) -> float | None:
        """From creation to the end of the first passing health check still in the log."""
        passed = [check.ended for check in self.health_log if check.exit_code == 0]
        if self.created is None or not passed:
            return None
        return (min(passed) - self.created).total_seconds()


def engine_time(text: str | None) -> datetime | None:
    """The engine's RFC 3339 times carry nanoseconds; Python reads up to microseconds."""
    if not text or text.startswith("0001-"):
        return None
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text)
    if not match:
        return None
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(f"{match.group(1)}.{fraction}{zone}")


@dataclass(frozen=True)
class ProjectObject:
    """A container, network or volume of a compose project (or carrying another label the
    caller asked for), as the engine lists it."""

    kind: str  # "container", "network" or "volume"
    name: str
    id: str
    labels: Mapping[str, str]

    @property
    def project(self) -> str:
        return self.labels.get(COMPOSE_PROJECT_LABEL, "")


class Engine:
    def __init__(self, commands: Commands, *, client_factory: Callable[[], Any] | None = None) -> None:
        self.commands = commands
        self._client_factory = client_factory
        self._client: Any = None
        self._buildx: str | None = None  # "" once asked and there is none
        self._host_info: Mapping[str, Any] | None = None
        self._images: dict[str, ImageInfo | None] = {}  # image(), by reference; see there
        self._images_lock = threading.Lock()
        self._forgotten = 0  # how many times _forget ran: an answer asked across one is not kept

    @property
    def dry(self) -> bool:
        return self.commands.dry

    @property
    def client(self) -> Any:
        """The SDK client, made on first use (``DOCKER_HOST`` and friends are honoured)."""
        if self._client is None:
            with translated_errors():
                if self._client_factory is not None:
                    self._client = self._client_factory()
                else:
                    import docker

                    self._client = docker.from_env(timeout=API_TIMEOUT)
        return self._client

    # --- reading ---------------------------------------------------------------------------

    def ensure_available(self) -> str:
        """The engine's version, or one clear error when there is no engine to talk to."""
        with translated_errors():
            return str(self.client.version().get("Version", "unknown"))

    def image(self, ref: str) -> ImageInfo | None:
        """The image ``ref`` names, or None. Asked once per reference in a run: a build asks
        for each image and base several times (bases, preflight, the no-op skip, the summary).
        What this engine changes (build, tag, pull, import, remove, push) is asked again, and
        the tool changes images in no other way. Build threads ask side by side: an answer
        that a change may have overtaken while it was asked is used once, not kept."""
        key = image_key(ref)
        with self._images_lock:
            known, found = key in self._images, self._images.get(key)
            generation = self._forgotten
        if not known:
            from docker.errors import ImageNotFound

            with translated_errors():
                try:
                    found = ImageInfo.from_attrs(ref, self.client.api.inspect_image(ref))
                except ImageNotFound:
                    found = None
            with self._images_lock:
                if self._forgotten == generation:
                    self._images[key] = found
        return found if found is None or found.ref == ref else dataclasses.replace(found, ref=ref)

    @contextlib.contextmanager
    def _changing(self, *refs: str) -> Iterator[None]:
        """Around a change to ``refs`` (none given: to any image): image() forgets what it
        found for them, before (the change may fail halfway) and after (a build thread may
        have asked meanwhile)."""
        self._forget(refs)
        try:
            yield
        finally:
            self._forget(refs)

    def _forget(self, refs: Sequence[str]) -> None:
        with self._images_lock:
            self._forgotten += 1
            if not refs:
                self._images.clear()
            for ref in refs:
                self._images.pop(image_key(ref), None)

    def local_tags(self, repository: str) -> list[str]:
        """The tags the engine has for ``repository`` (``sutra-api`` -> ``v2``, ``abc1234``…)."""
        with translated_errors():
            listed = self.client.api.images(name=repository)
        parts = [image_parts(ref) for image in listed for ref in image.get("RepoTags") or ()]
        tags = {p.tag for p in parts if p.name == repository and p.tag}
        return sorted(tags)

    def container(self, name: str) -> ContainerInfo | None:
        from docker.errors import NotFound

        with translated_errors():
            try:
                return ContainerInfo.from_attrs(self.client.api.inspect_container(name))
            except NotFound:
                return None

    def host_cpus(self) -> int:
        """How many CPUs the engine can give a container."""
        return int(self._info().get("NCPU") or os.cpu_count() or 1)

    def host_memory(self) -> int:
        """How many bytes of memory the engine's machine has."""
        return int(self._info().get("MemTotal") or 0) or os.sysconf("SC_PHYS_PAGES") * os.sysconf(
            "SC_PAGE_SIZE"
        )

    def _info(self) -> Mapping[str, Any]:
        """`docker info`, asked once per engine: the machine does not change during a run."""
        if self._host_info is None:
            with translated_errors():
                self._host_info = self.client.info() or {}
        return self._host_info

    def restart(self, container: str, *, timeout: int = 10) -> None:
        if self.commands.skip_when_dry(["docker", "restart", container], mutates=True):
            return
        with translated_errors():
            self.client.api.restart(container, timeout=timeout)

    def project_containers(self, project: str) -> list[ContainerInfo]:
        """Every container of a compose project (its label), running or not, inspected.

        One list call and an inspect each, over the engine's socket: cheap enough to poll
        several times a second, unlike starting `docker compose ps` each time.
        """
        with translated_errors():
            listed = self.client.api.containers(
                all=True, filters={"label": f"{COMPOSE_PROJECT_LABEL}={project}"}
            )
            found = []
            for summary in listed:
                with contextlib.suppress(docker_not_found()):  # removed between the list and the inspect
                    found.append(ContainerInfo.from_attrs(self.client.api.inspect_container(summary["Id"])))
            return found

    def compose_objects(self) -> list[ProjectObject]:
        """Every container, network and volume a compose project labels, with its labels."""
        return self.labelled_objects(COMPOSE_PROJECT_LABEL)

    def labelled_objects(self, key: str) -> list[ProjectObject]:
        """Every container, network and volume carrying the label ``key``, with its labels."""
        label = {"label": key}
        with translated_errors():
            found = [
                ProjectObject("container", c["Names"][0].lstrip("/"), c["Id"], c.get("Labels") or {})
                for c in self.client.api.containers(all=True, filters=label)
            ]
            found += [
                ProjectObject("network", n["Name"], n["Id"], n.get("Labels") or {})
                for n in self.client.api.networks(filters=label)
            ]
            volumes = self.client.api.volumes(filters=label).get("Volumes") or []
            found += [ProjectObject("volume", v["Name"], v["Name"], v.get("Labels") or {}) for v in volumes]
        return found

    def image_tags(self) -> list[str]:
        """Every repository:tag the engine holds."""
        with translated_errors():
            return sorted(tag for image in self.client.api.images() for tag in image.get("RepoTags") or ())

    def remove(self, thing: ProjectObject) -> None:
        """Remove a container (forced: running or not), a network or a volume."""
        argv = {"container": ["docker", "rm", "--force"], "network": ["docker", "network", "rm"]}
        if self.commands.skip_when_dry(
            [*argv.get(thing.kind, ["docker", "volume", "rm"]), thing.name], mutates=True
        ):
            return
        from docker.errors import NotFound

        with translated_errors(), contextlib.suppress(NotFound):  # gone meanwhile: as asked
            if thing.kind == "container":
                self.client.api.remove_container(thing.id, force=True, v=False)
            elif thing.kind == "network":
                self.client.api.remove_network(thing.id)
            else:
                self.client.api.remove_volume(thing.name)

    def logs(self, container: str, *, tail: int) -> str:
        with translated_errors():
            return self.client.api.logs(container, tail=tail).decode(errors="replace")

    @contextlib.contextmanager
    def save(self, refs: Iterable[str]) -> Iterator[IO[bytes]]:
        """The images as one ``docker save`` archive, streamed; shared layers appear once."""
        refs = list(refs)
        if len(refs) != 1:  # the SDK saves one image at a time (see the module's docstring)
            with self.commands.open_stdout(["docker", "save", *refs]) as stream:
                yield stream
            return
        with translated_errors():
            chunks = self.client.api.get_image(refs[0], chunk_size=SAVE_CHUNK_BYTES)
            stream = ChunkReader(chunks)
            try:
                yield stream
            finally:
                stream.close()

    # --- changing (printed, not done, under --dry) ---------------------------------------

    def pull(self, ref: str) -> bool:
        """Try to pull ``ref``; False when no registry can be reached."""
        if self.commands.skip_when_dry(["docker", "pull", ref], mutates=True):
            return False
        from docker.errors import APIError

        repository, tag = split_tag(ref)
        with self._changing(ref), translated_errors():
            try:
                self.client.api.pull(repository, tag=tag or "latest")
            except APIError as error:
                log.debug("pull %s: %s", ref, error.explanation or error)
                return False
        return True

    def tag(self, source: str, target: str) -> None:
        if self.commands.skip_when_dry(["docker", "tag", source, target], mutates=True):
            return
        repository, tag = split_tag(target)
        with self._changing(target), translated_errors():
            self.client.api.tag(source, repository, tag=tag or "latest", force=True)

    def remove_image(self, ref: str) -> None:
        """Untag ``ref``; the image's layers go only when nothing else uses them."""
        if self.commands.skip_when_dry(["docker", "image", "rm", ref], mutates=True):
            return
        from docker.errors import ImageNotFound

        # Any image: the last tag of a repository takes the image's digests there along.
        with self._changing(), translated_errors(), contextlib.suppress(ImageNotFound):
            self.client.api.remove_image(ref)

    def push(self, ref: str, *, on_progress: Callable[[str], None] | None = None) -> str | None:
        """Push ``ref``; the manifest digest the registry stored (None when dry)."""
        if self.commands.skip_when_dry(["docker", "push", ref], mutates=True):
            return None
        repository, tag = split_tag(ref)
        digest = None
        # Any image: the pushed one gains a digest, under every name it has.
        with self._changing(), translated_errors():
            # Errors arrive in the stream (``errorDetail``), not as exceptions; the last
            # message with ``aux`` carries the digest.
            for message in self.client.api.push(repository, tag=tag, stream=True, decode=True):
                if "errorDetail" in message or "error" in message:
                    detail = (message.get("errorDetail") or {}).get("message") or message.get("error")
                    raise PushFailed(f"pushing {ref} failed: {detail}")
                aux = message.get("aux") or {}
                if aux.get("Digest"):
                    digest = aux["Digest"]
                if on_progress and message.get("status"):
                    on_progress(" ".join(str(message[k]) for k in ("id", "status") if message.get(k)))
        if digest is None:
            raise PushFailed(f"pushing {ref} failed: the engine reported no digest")
        return digest

    # --- on the docker CLI, through commands ---------------------------------------------

    def buildx_version(self) -> str | None:
        """The CLI's buildx plugin version (`docker buildx version`), or None without one. Read
        only, so a dry run asks too: it must say which builder the real run takes. Starting
        the CLI and its plugin costs a tenth of a second, as much as a no-op build's other
        work, so the answer is kept in the cache folder for as long as the files the CLI
        finds plugins by stay as they are."""
        if self._buildx is None:
            key = json.dumps(_buildx_files())
            remembered = files.cache_folder("buildx-version.json")
            try:
                known = json.loads(remembered.read_text())
            except (OSError, ValueError):
                known = {}
            known = known if isinstance(known, dict) else {}
            if known.get("files") == key and isinstance(known.get("version"), str):
                self._buildx = known["version"]
            else:
                result = self.commands.run(["docker", "buildx", "version"], check=False)
                words = result.stdout.split() if result.ok else []
                self._buildx = words[1] if len(words) > 1 else ""
                with contextlib.suppress(OSError):
                    files.write_if_changed(remembered, json.dumps({"files": key, "version": self._buildx}))
        return self._buildx or None

    def build(
        self,
        *,
        tag: str | None,
        context: Path,
        dockerfile: Path,
        build_args: Mapping[str, str],
        labels: Mapping[str, str],
        no_cache: bool,
        on_line: Callable[[str], None],
        also_tag: Sequence[str] = (),
        builder: str = "legacy",
        target: str | None = None,
    ) -> None:
        """``builder`` "buildkit": `docker buildx build` (plain progress, the image loaded into
        the engine); "legacy": `docker build` with BuildKit off. ``target``: build up to that
        stage (untagged when ``tag`` is None: the builder's cache keeps it)."""
        if builder == "buildkit":
            argv = ["docker", "buildx", "build", "--progress=plain", "--load"]
            env: dict[str, str] = {}
        else:
            # --force-rm: a failed step's container goes too, not only a successful one's.
            argv = ["docker", "build", "--force-rm"]
            env = {"DOCKER_BUILDKIT": "0"}  # the "Step N/M" lines progress reporting reads
        tags = [tag, *also_tag] if tag else list(also_tag)
        for name in tags:  # also_tag: the release, the same image under the name it ships as
            argv += ["--tag", name]
        argv += ["--file", str(dockerfile)]
        if target:
            argv += ["--target", target]
        for name, value in sorted(build_args.items()):
            argv += ["--build-arg", f"{name}={value}"]
        for name, value in sorted(labels.items()):
            argv += ["--label", f"{name}={value}"]
        if no_cache:
            argv.append("--no-cache")
        argv.append(str(context))
        # An untagged build (a stage for the cache) changes no image anyone names.
        with self._changing(*tags) if tags else contextlib.nullcontext():
            self.commands.run(argv, mutates=True, on_line=on_line, env=env)

    def import_rootfs(self, tarball: Path, ref: str, changes: Sequence[str]) -> None:
        argv = ["docker", "import"]
        for change in changes:
            argv += ["--change", change]
        with self._changing(ref):
            self.commands.run([*argv, str(tarball), ref], mutates=True)


def docker_not_found() -> type[Exception]:
    from docker.errors import NotFound

    return NotFound


def image_key(ref: str) -> str:
    """One text for every way of naming the same reference: `sutra-api`, `sutra-api:latest`
    and `docker.io/library/sutra-api:latest` are one image to the engine."""
    parts = image_parts(ref)
    if "@" in ref and parts.digest is None:  # a malformed digest: that text, never the tag's image
        return ref
    domain, path = domain_and_path(parts.name)
    if domain in (None, "docker.io", "index.docker.io"):
        domain, path = "docker.io", path if "/" in path else f"library/{path}"
    tag = parts.tag or ("" if parts.digest else "latest")
    return f"{domain}/{path}:{tag}@{parts.digest or ''}"


def split_tag(ref: str) -> tuple[str, str | None]:
    """``host:5000/name:tag`` -> (``host:5000/name``, ``tag``); a digest stays in the name."""
    if "@" in ref:
        return ref, None
    parts = image_parts(ref)
    return (parts.name, parts.tag) if parts.tag is not None else (ref, None)


class ChunkReader(io.RawIOBase):
    """A binary stream over an iterator of byte chunks (the SDK's ``get_image`` stream)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """The SDK's exceptions as the project's: the daemon away, or a refused request."""
    import docker.errors
    import requests

    try:
        yield
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
        raise DockerUnavailable(daemon_detail(str(error))) from None
    except docker.errors.APIError as error:
        raise EngineError(
            f"the Docker engine refused: {_first_line(error.explanation or str(error))}"
        ) from None
    except docker.errors.DockerException as error:  # from_env: no socket, bad DOCKER_HOST, …
        raise DockerUnavailable(daemon_detail(str(error))) from None


def daemon_detail(message: str) -> str:
    """Why the daemon did not answer, in a few words, and where it was looked for."""
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    lowered = message.lower()
    for marker, words in (
        ("filenotfounderror", "no socket"),
        ("connection refused", "connection refused"),
        ("permission denied", "permission denied"),
        ("timed out", "no answer in time"),
        ("timeout", "no answer in time"),
    ):
        if marker in lowered:
            return f"{words} at {where}"
    return f"{_first_line(message)[:160] or 'no answer'} at {where}"


def _first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


__all__ = [
    "CommandFailed",
    "ContainerInfo",
    "Engine",
    "EngineError",
    "ImageInfo",
    "ProjectObject",
    "PushFailed",
    "split_tag",
]
