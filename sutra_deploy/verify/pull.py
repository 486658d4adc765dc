"""What a fresh node pulls for each service: pushed under verify's own tag, then fetched from
the registry over its HTTP API (manifest, then every layer blob) and unpacked, timed.

Where the registry comes from: ``--registry R`` when given; otherwise a throwaway Debian
``docker-registry`` on a free loopback port when that is installed; otherwise nothing is
measured. Verify pushes only tags of its own (``verify-<random>``), never over an existing
tag, and removes the local tags it created; it never removes or retags the user's images.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import secrets
import shutil
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import RegistryError, SutraError
from ..core.references import image_parts
from ..core.stack import Service
from ..core.units import MB
from ..tools.commands import Commands
from ..tools.engine import Engine
from ..tools.files import owned_temporary_folder
from ..tools.ports import free_port
from ..tools.registry import RegistryClient, split_repository
from ..tools.waiting import wait_until

log = logging.getLogger("sutra")

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Pulled:
    service: str
    reference: str
    bytes: int  # what crossed the network: the manifest's layers, compressed
    unpacked_bytes: int
    seconds: float


@contextlib.contextmanager
def throwaway_registry(commands: Commands, *, timeout: float = 30) -> Iterator[str | None]:
    """A distribution registry on a free loopback port for the length of the block, or None."""
    try:
        commands.resolve("docker-registry")
    except SutraError:
        yield None
        return
    with owned_temporary_folder("verify-registry") as folder:
        port = free_port()
        config = Path(folder) / "config.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {folder}/data\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
            "log:\n  level: error\n"
        )
        address = f"127.0.0.1:{port}"
        with commands.background(["docker-registry", "serve", str(config)], mutates=False) as process:
            client = RegistryClient(address)

            def answering() -> bool:
                if process is not None and not process.alive:
                    raise SutraError(f"the throwaway registry stopped: {process.output().strip()[-300:]}")
                return client.ping()

            wait_until(answering, timeout=timeout, interval=0.1, what="the throwaway registry")
            yield address


def verify_tag() -> str:
    return f"verify-{secrets.token_hex(4)}"


def push_for_pull(
    engine: Engine, services: Sequence[Service], *, registry: str, version: str, tag: str
) -> list[tuple[Service, str]]:
    """Tag and push each service's image under verify's own tag; untag locally afterwards."""
    pushed = []
    for service in services:
        target = service.reference(registry, tag=tag)
        host, repository = split_repository(image_parts(target).name)
        if RegistryClient(host).manifest(repository, tag) is not None:  # never over an existing tag
            raise SutraError(f"{target} already exists in the registry; verify pushes only tags of its own")
        engine.tag(service.ref(version), target)
        try:
            engine.push(target)
        finally:
            engine.remove_image(target)  # only the tag verify made: the image stays under its own
        pushed.append((service, target))
    return pushed


def pull_and_unpack(reference: str, workdir: Path) -> tuple[int, int]:
    """Fetch a pushed image's manifest and blobs as a node would, and unpack each layer."""
    parts = image_parts(reference)
    name, tag = parts.name, parts.tag or ""
    host, repository = split_repository(name)
    client = RegistryClient(host)
    manifest = client.manifest(repository, tag)
    if manifest is None:
        raise SutraError(f"{reference}: the registry has no such manifest")
    fetched = unpacked = 0
    target = workdir / repository.replace("/", "_")
    target.mkdir(parents=True, exist_ok=True)
    for index, layer in enumerate(manifest.layers):
        blob = target / f"layer-{index}"
        with blob.open("wb") as out:
            for chunk in client.blob(repository, layer["digest"]):
                out.write(chunk)
                fetched += len(chunk)
        with blob.open("rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
        opener = gzip.open if compressed else open
        rootfs = target / "rootfs"
        with opener(blob, "rb") as stream, tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                unpacked += member.size
                with contextlib.suppress(OSError, tarfile.TarError):  # device nodes, whiteouts
                    archive.extract(member, rootfs, filter="data")
        blob.unlink()
    shutil.rmtree(target, ignore_errors=True)
    return fetched, unpacked


def measure_pulls(pushed: Sequence[tuple[Service, str]]) -> list[Pulled]:
    results = []
    with owned_temporary_folder("verify-pull") as folder:
        for service, reference in pushed:
            started = time.monotonic()
            try:
                fetched, unpacked = pull_and_unpack(reference, Path(folder))
            except RegistryError as error:
                raise RegistryError(f"pulling {reference} as a node would: {error}") from None
            results.append(Pulled(service.name, reference, fetched, unpacked, time.monotonic() - started))
            log.info("[verify] pulled %s: %.1f MB in %.1fs", service.name, fetched / MB, results[-1].seconds)
    return results
