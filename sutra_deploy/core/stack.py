"""The typed model of the stack, loaded once from the stack file and passed down."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from ..core.errors import BadReference
from .errors import SourceRootError, StackFileError, UnknownService
from .journey import Journey, JourneyParser
from .references import parse_reference, parse_repository, parse_tag
from .source import REFERENCE_STACK_FILE
from .units import MB

HealthProtocol = Literal["http", "tcp"]

# Service names are Kubernetes object names (DNS-1123 labels) and compose service names, and
# reach file names, labels and command lines: nothing else, so no '/', '..' or shell syntax.
SERVICE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Base image keys name files in a temporary folder (`<key>.tar`): a plain identifier.
BASE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
BUILD_ARG = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a Dockerfile ARG
SUITE = re.compile(r"[a-z0-9][a-z0-9.-]*")  # a Debian suite or codename, an argument to mmdebstrap
VOLUME_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PEER = re.compile(r"\{([a-z0-9][a-z0-9-]*)\}")  # {service} in an environment value
HTTP_PATH = re.compile(r"/[A-Za-z0-9._~%/-]*")  # a health check's path: no query, quotes or spaces
LARGEST_MB = 1_000_000  # a terabyte: a bigger image budget is a typo


@dataclass(frozen=True)
class SizeBudget:
    old_bytes: int
    target_bytes: int
    limit_bytes: int


@dataclass(frozen=True)
class HealthCheck:
    protocol: HealthProtocol
    path: str | None = None


@dataclass(frozen=True)
class Ports:
    container: int
    host: int


@dataclass(frozen=True)
class Service:
    name: str
    image: str
    context: str
    dockerfiles: Mapping[str, str]  # version -> Dockerfile path, relative to the source root
    build_order: int
    port: Ports
    health: HealthCheck
    budget: SizeBudget
    reads: tuple[str, ...] = ()  # the environment variables its code reads (`inv init` finds them)
    # What it is given to run: NAME -> value, where {service} is that service's address
    # (host:port where the stack runs: the compose file, the manifests).
    environment: tuple[tuple[str, str], ...] = ()  # (NAME, value), as the stack file orders them
    data: str | None = None  # the folder it keeps its data in: a named volume locally
    volume: str | None = None  # that volume's name (default NAME-data); renaming one loses its data

    def peers(self) -> tuple[str, ...]:
        """The services its environment names, in the order it names them."""
        return tuple(dict.fromkeys(m for _, v in self.environment for m in PEER.findall(v)))

    def environment_for(self, address: Callable[[str], str]) -> dict[str, str]:
        """Its environment with each {service} replaced by ``address(service)``."""
        return {k: PEER.sub(lambda m: address(m.group(1)), v) for k, v in self.environment}

    def reference(
        self, registry: str | None = None, *, tag: str | None = None, digest: str | None = None
    ) -> str:
        """The one way this service's image is named: ``[registry/]image``, then ``@digest``
        (which wins) or ``:tag``; neither gives the bare repository.

        Local builds (:meth:`ref`), rendered manifests, pushed digests and the overlays'
        ``images:`` entries (checked by tests/manifests) all name images through this.
        """
        repository = f"{registry}/{self.image}" if registry else self.image
        if digest:
            return f"{repository}@{digest}"
        return f"{repository}:{tag}" if tag else repository

    def ref(self, version: str) -> str:
        """The locally built image of ``version``: ``image:version``."""
        return self.reference(tag=version)

    def dockerfile(self, version: str) -> str:
        return self.dockerfiles[version]

    def check_inside(self, root: Path, version: str) -> None:
        """The build context and Dockerfile resolve (symlinks followed) inside the source root.

        The stack file cannot name a path outside it (no '..', nothing absolute); this catches a
        symlink in the checkout that leads out, before anything is sent to a builder.
        """
        base = root.resolve()
        for what, relative in (("context", self.context), ("dockerfile", self.dockerfile(version))):
            try:
                resolved = (base / relative).resolve()
            except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop
                raise SourceRootError(f"{self.name}: {what} {relative} cannot be resolved: {error}") from None
            if not resolved.is_relative_to(base):
                raise SourceRootError(
                    f"{self.name}: {what} {relative} resolves to {resolved}, outside the source root {base}"
                )


@dataclass(frozen=True)
class BaseImage:
    key: str
    official: str
    local: str
    build_arg: str
    variant: str = "minbase"
    suite: str = "bookworm"
    packages: tuple[str, ...] = ()
    distill_from: str | None = None
    keep: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    customize: tuple[str, ...] = ()  # mmdebstrap --customize-hook commands; "$1" is the root
    # A distilled base only: paths left out (shell-style patterns, `**` for any depth), and
    # folders whose Python sources are replaced by their byte-code (loaded sourceless).
    exclude: tuple[str, ...] = ()
    sourceless: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stack:
    name: str
    path: Path
    versions: tuple[str, ...]
    default_version: str
    public_api: str
    services: tuple[Service, ...]  # in build order
    base_images: tuple[BaseImage, ...]
    journey: Journey | None = None  # the end-to-end check; None: the stack file declares none
    source_root: Path | None = None  # `stack.root`, resolved against the stack file's folder

    @property
    def is_reference(self) -> bool:
        """This repository's own stack.toml: its compose file and manifests are written for it."""
        return self.path.resolve() == REFERENCE_STACK_FILE.resolve()

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise UnknownService(name, self.service_names)

    def select(self, names: Iterable[str] | None) -> tuple[Service, ...]:
        """The named services in build order; all of them when no name is given."""
        wanted = {self.service(n).name for n in (names or ())}
        return tuple(s for s in self.services if not wanted or s.name in wanted)

    def base_image(self, key: str) -> BaseImage:
        for base in self.base_images:
            if base.key == key:
                return base
        known = ", ".join(b.key for b in self.base_images)
        raise StackFileError(f"no base image {key!r}; {self.path.name} defines {known}")

    def check_version(self, version: str) -> str:
        if version not in self.versions:
            raise StackFileError(
                f"unknown version {version!r}; {self.path.name} defines {', '.join(self.versions)}"
            )
        return version


def load_stack(path: str | Path) -> Stack:
    path = Path(path)
    try:
        # utf-8-sig: a byte-order mark (Windows editors write one) is no TOML but no mistake.
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise StackFileError(f"stack file {path} not found") from None
    except IsADirectoryError:
        raise StackFileError(f"stack file {path} is a directory, not a file") from None
    except OSError as error:
        raise StackFileError(f"stack file {path} cannot be read: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise StackFileError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None
    except tomllib.TOMLDecodeError as error:
        raise StackFileError(f"{path}: not valid TOML: {error}") from None
    return _StackReader(path).stack(raw)


def parse_stack(text: str, path: Path) -> Stack:
    """A stack file's text as if it were read from ``path`` (nothing is read or written)."""
    try:
        raw = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as error:
        raise StackFileError(f"{path}: not valid TOML: {error}") from None
    return _StackReader(path).stack(raw)


class _StackReader:
    """Walks the parsed TOML, checking each key and naming it in every error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> StackFileError:
        return StackFileError(f"{self.path}: {where}: {problem}")

    def table(self, raw: Any, where: str, required: set[str], optional: set[str]) -> dict:
        if not isinstance(raw, dict):
            raise self.fail(where, f"expected a table, got {type(raw).__name__}")
        unknown = sorted(set(raw) - required - optional)
        if unknown:
            known = ", ".join(sorted(required | optional))
            raise self.fail(f"{where}.{unknown[0]}", f"unknown key (known keys: {known})")
        missing = sorted(required - set(raw))
        if missing:
            raise self.fail(where, f"missing key {missing[0]!r}")
        return raw

    def string(self, raw: Any, where: str) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise self.fail(where, f"expected a non-empty string, got {raw!r}")
        return raw

    def strings(self, raw: Any, where: str) -> tuple[str, ...]:
        if not isinstance(raw, list):
            raise self.fail(where, f"expected a list of strings, got {raw!r}")
        return tuple(self.string(item, f"{where}[{i}]") for i, item in enumerate(raw))

    def matching(self, raw: Any, where: str, pattern: re.Pattern[str], what: str) -> str:
        value = self.string(raw, where)
        if not pattern.fullmatch(value):
            raise self.fail(where, f"{what}, got {value!r}")
        return value

    def reference(self, parse: Any, raw: Any, where: str) -> str:
        """A value checked by one of :mod:`.references`' parsers; its problem, naming the key."""
        value = self.string(raw, where)
        try:
            parse(value, where)
        except BadReference as error:
            raise self.fail(where, f"{error.problem}, got {value!r}") from None
        return value

    def relative_path(self, raw: Any, where: str) -> str:
        """A path under the source root: relative, without '..' (a symlink that leads out is
        caught when the root is known: :meth:`Service.check_inside`)."""
        value = self.string(raw, where)
        parts = PurePosixPath(value).parts
        if value.startswith(("/", "~")) or ".." in parts or "\\" in value or "\0" in value:
            raise self.fail(
                where, f"expected a path inside the source root (relative, no '..'), got {value!r}"
            )
        return value

    def integer(self, raw: Any, where: str, low: int, high: int) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
            raise self.fail(where, f"expected a whole number from {low} to {high}, got {raw!r}")
        return raw

    def megabytes(self, raw: Any, where: str) -> int:
        number = isinstance(raw, (int, float)) and not isinstance(raw, bool)
        if not number or not math.isfinite(raw) or raw <= 0:  # nan and inf too
            raise self.fail(where, f"expected a size in MB greater than 0, got {raw!r}")
        if raw > LARGEST_MB:
            raise self.fail(where, f"expected a size in MB of at most {LARGEST_MB}, got {raw!r}")
        return round(raw * MB)

    def stack(self, raw: dict) -> Stack:
        top = self.table(raw, "top level", {"stack", "services"}, {"base_images", "journey"})
        meta = self.table(
            top["stack"], "stack", {"name", "versions", "default_version", "public_api"}, {"root"}
        )
        versions = self.strings(meta["versions"], "stack.versions")
        for i, version in enumerate(versions):  # each is an image tag: sutra-api:v2
            self.reference(parse_tag, version, f"stack.versions[{i}]")
        if not versions or len(set(versions)) != len(versions):
            raise self.fail("stack.versions", f"expected distinct versions, got {list(versions)!r}")
        default_version = self.string(meta["default_version"], "stack.default_version")
        if default_version not in versions:
            raise self.fail("stack.default_version", f"{default_version!r} is not in versions")
        services_raw = top["services"]
        if not isinstance(services_raw, dict) or not services_raw:
            raise self.fail("services", "expected at least one [services.NAME] table")
        services = [self.service(n, s, versions) for n, s in services_raw.items()]
        services.sort(key=lambda s: (s.build_order, s.name))
        public_api = self.string(meta["public_api"], "stack.public_api")
        if public_api not in services_raw:
            raise self.fail("stack.public_api", f"no service {public_api!r}")
        for service in services:
            for peer in service.peers():
                if peer not in services_raw:
                    raise self.fail(f"services.{service.name}.environment", f"names no service {{{peer}}}")
            unread = [n for n, _ in service.environment if service.reads and n not in service.reads]
            if unread:
                raise self.fail(
                    f"services.{service.name}.environment.{unread[0]}",
                    f"not among the variables {service.name} reads (services.{service.name}.reads)",
                )
        self.check_unique(services, "build_order", lambda s: s.build_order)
        self.check_unique(services, "image", lambda s: s.image)
        self.check_unique(services, "port.host", lambda s: s.port.host)
        bases_raw = top.get("base_images", {})
        if not isinstance(bases_raw, dict):
            raise self.fail("base_images", "expected a table of [base_images.NAME] tables")
        bases = tuple(self.base_image(k, v) for k, v in bases_raw.items())
        for base in bases:
            if base.distill_from and base.distill_from not in bases_raw:
                raise self.fail(
                    f"base_images.{base.key}.distill_from",
                    f"no base image {base.distill_from!r}",
                )
        journey = None
        if "journey" in top:
            journey = JourneyParser(self, tuple(services_raw)).journey(top["journey"])
        return Stack(
            name=self.string(meta["name"], "stack.name"),
            path=self.path,
            versions=versions,
            default_version=default_version,
            public_api=public_api,
            services=tuple(services),
            base_images=bases,
            journey=journey,
            source_root=self.root(meta.get("root")),
        )

    def root(self, raw: Any) -> Path | None:
        """`stack.root`: the checkout this file describes, relative to the file (`inv init`)."""
        if raw is None:
            return None
        value = self.string(raw, "stack.root")
        if PurePosixPath(value).is_absolute() or "\0" in value:
            raise self.fail("stack.root", f"expected a path relative to the stack file, got {value!r}")
        return (self.path.parent / value).resolve()

    def check_unique(self, services: list[Service], key: str, value) -> None:
        seen: dict[object, str] = {}
        for service in services:
            other = seen.setdefault(value(service), service.name)
            if other != service.name:
                raise self.fail(f"services.{service.name}.{key}", f"same as {other}'s")

    def service(self, name: str, raw: Any, versions: tuple[str, ...]) -> Service:
        if not SERVICE_NAME.fullmatch(name):
            raise self.fail(
                f"services.{name!r}",
                "a service name is lower-case letters, digits and '-', at most 63 (a Kubernetes name)",
            )
        where = f"services.{name}"
        fields = {"image", "context", "dockerfile", "build_order", "port", "health", "size_mb"}
        raw = self.table(raw, where, fields, {"reads", "environment", "data", "volume"})
        port = self.table(raw["port"], f"{where}.port", {"container", "host"}, set())
        health = self.table(raw["health"], f"{where}.health", {"protocol"}, {"path"})
        sizes = self.table(raw["size_mb"], f"{where}.size_mb", {"old", "target", "limit"}, set())
        budget = SizeBudget(
            old_bytes=self.megabytes(sizes["old"], f"{where}.size_mb.old"),
            target_bytes=self.megabytes(sizes["target"], f"{where}.size_mb.target"),
            limit_bytes=self.megabytes(sizes["limit"], f"{where}.size_mb.limit"),
        )
        if budget.target_bytes > budget.limit_bytes:
            raise self.fail(f"{where}.size_mb.target", "is larger than the limit")
        return Service(
            name=name,
            image=self.reference(parse_repository, raw["image"], f"{where}.image"),
            context=self.relative_path(raw["context"], f"{where}.context"),
            dockerfiles=self.dockerfiles(raw["dockerfile"], f"{where}.dockerfile", versions),
            build_order=self.integer(raw["build_order"], f"{where}.build_order", 1, 1000),
            port=Ports(
                container=self.integer(port["container"], f"{where}.port.container", 1, 65535),
                host=self.integer(port["host"], f"{where}.port.host", 1, 65535),
            ),
            health=self.health(health, f"{where}.health"),
            budget=budget,
            reads=self.strings(raw.get("reads", []), f"{where}.reads"),
            environment=tuple(self.environment(raw.get("environment", {}), f"{where}.environment").items()),
            data=None if raw.get("data") is None else self.container_path(raw["data"], f"{where}.data"),
            volume=None
            if raw.get("volume") is None
            else self.matching(
                raw["volume"], f"{where}.volume", VOLUME_NAME, "expected a volume name ([a-z0-9][a-z0-9_.-]*)"
            ),
        )

    def environment(self, raw: Any, where: str) -> dict[str, str]:
        if not isinstance(raw, dict):
            raise self.fail(where, f'expected a table of NAME = "value", got {raw!r}')
        out = {}
        for name, value in raw.items():
            if not ENV_NAME.fullmatch(name):
                raise self.fail(f"{where}.{name}", "an environment variable name is letters, digits and '_'")
            if not isinstance(value, str):
                raise self.fail(f"{where}.{name}", f"expected a string, got {value!r}")
            out[name] = value
        return out

    def container_path(self, raw: Any, where: str) -> str:
        value = self.string(raw, where)
        if not value.startswith("/") or "\0" in value:
            raise self.fail(where, f"expected an absolute path in the container, got {value!r}")
        return value

    def dockerfiles(self, raw: Any, where: str, versions: tuple[str, ...]) -> dict[str, str]:
        if isinstance(raw, str):
            return {version: self.relative_path(raw, where) for version in versions}
        table = self.table(raw, where, set(versions), set())
        return {version: self.relative_path(table[version], f"{where}.{version}") for version in versions}

    def health(self, raw: dict, where: str) -> HealthCheck:
        protocol = raw["protocol"]
        if protocol == "tcp":
            if "path" in raw:
                raise self.fail(f"{where}.path", "a tcp check has no path")
            return HealthCheck("tcp")
        if protocol == "http":
            path = self.string(raw.get("path"), f"{where}.path")
            if not path.startswith("/"):
                raise self.fail(f"{where}.path", f"must start with '/', got {path!r}")
            self.matching(
                path, f"{where}.path", HTTP_PATH, "expected a URL path of letters, digits and ._~%/-"
            )
            return HealthCheck("http", path)
        raise self.fail(f"{where}.protocol", f"expected 'http' or 'tcp', got {protocol!r}")

    def base_image(self, key: str, raw: Any) -> BaseImage:
        if not BASE_KEY.fullmatch(key):
            raise self.fail(f"base_images.{key!r}", "a base image key is letters, digits, '_' and '-'")
        where = f"base_images.{key}"
        optional = {
            "variant",
            "suite",
            "packages",
            "distill_from",
            "keep",
            "drop",
            "customize",
            "exclude",
            "sourceless",
        }
        raw = self.table(raw, where, {"official", "local", "build_arg"}, optional)
        variant = raw.get("variant", "minbase")
        if variant not in ("minbase", "essential", "apt"):
            raise self.fail(f"{where}.variant", f"expected minbase, essential or apt, got {variant!r}")
        distill_from = raw.get("distill_from")
        return BaseImage(
            key=key,
            official=self.reference(parse_reference, raw["official"], f"{where}.official"),
            local=self.reference(parse_reference, raw["local"], f"{where}.local"),
            build_arg=self.matching(
                raw["build_arg"], f"{where}.build_arg", BUILD_ARG, "expected a Dockerfile ARG name"
            ),
            variant=variant,
            suite=self.matching(
                raw.get("suite", "bookworm"), f"{where}.suite", SUITE, "expected a Debian suite"
            ),
            packages=self.strings(raw.get("packages", []), f"{where}.packages"),
            distill_from=None if distill_from is None else self.string(distill_from, f"{where}.distill_from"),
            keep=self.strings(raw.get("keep", []), f"{where}.keep"),
            drop=self.strings(raw.get("drop", []), f"{where}.drop"),
            customize=self.strings(raw.get("customize", []), f"{where}.customize"),
            exclude=self.strings(raw.get("exclude", []), f"{where}.exclude"),
            sourceless=self.strings(raw.get("sourceless", []), f"{where}.sourceless"),
        )
