"""Reading a `docker save` archive in one pass, as the stream it comes in, without unpacking it.

Two layouts are read:

- Docker's own (engines before 25): ``manifest.json``, each image's config as ``<id>.json`` and
  each layer as ``<id>/layer.tar``. A layer already saved under another id is a symlink to the
  first copy, so shared layers are stored once.
- OCI (engines from 25, and the containerd image store): configs, manifests and layers are all
  content-addressed blobs under ``blobs/<algorithm>/<hex>``, layers possibly gzip-compressed;
  Docker still writes ``manifest.json`` beside them, pointing at the blobs.

Members arrive in name order, so ``manifest.json`` comes after the layers it lists and a blob's
name does not say what it is. Every layer is therefore read as it passes, by a function the
caller gives, and the manifest says at the end which layers each image is made of.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, Generic, Literal, TypeVar

from ..core.errors import ArchiveError

T = TypeVar("T")

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class SavedImage:
    tags: tuple[str, ...]
    config: Mapping[str, Any]  # the image config: history, rootfs, …
    layers: tuple[str, ...]  # the layers' paths in the archive, base first, links followed


@dataclass(frozen=True)
class SavedArchive(Generic[T]):
    images: tuple[SavedImage, ...]
    layers: Mapping[str, T]  # what the caller's reader made of each layer, by path

    def distinct_layers(self) -> tuple[str, ...]:
        """Every layer the images use, each once, in order of first use: what a registry
        stores and what a fresh node pulls."""
        return tuple(dict.fromkeys(path for image in self.images for path in image.layers))

    def image(self, ref: str) -> SavedImage:
        """The image tagged ``ref``, else the archive's only image."""
        for image in self.images:
            if ref in image.tags:
                return image
        if len(self.images) == 1:
            return self.images[0]
        found = ", ".join(tag for image in self.images for tag in image.tags) or "untagged images"
        raise ArchiveError(f"no image {ref} in the saved archive (it holds {found})")


def read_archive(stream: IO[bytes], read_layer: Callable[[tarfile.TarFile], T]) -> SavedArchive[T]:
    """Read a `docker save` stream once; ``read_layer`` gets each layer as an open tar stream
    and returns what the caller wants to know about it."""
    documents: dict[str, Any] = {}
    layers: dict[str, T] = {}
    links: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                name = posixpath.normpath(member.name)
                if member.issym():
                    links[name] = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
                elif member.islnk():
                    links[name] = posixpath.normpath(member.linkname)
                elif member.isreg() and (kind := _kind(name)) is not None:
                    handle = archive.extractfile(member)
                    assert handle is not None
                    if kind == "blob":
                        kind = "json" if handle.peek(64).lstrip().startswith(b"{") else "layer"
                    if kind == "json":
                        documents[name] = _json(handle, name)
                    else:
                        _read_layer(handle, name, read_layer, layers)
    except tarfile.TarError as error:
        raise ArchiveError(f"cannot read the saved images: {error}") from None
    return SavedArchive(_images(documents, layers, links), layers)


def regular_file_bytes(layer: tarfile.TarFile) -> int:
    """Bytes of the regular files in one layer: what the engine's image size counts."""
    return sum(member.size for member in layer if member.isreg())


def _kind(name: str) -> Literal["json", "layer", "blob"] | None:
    if "/" not in name and name.endswith(".json"):  # manifest.json, index.json, <id>.json
        return "json"
    if name.endswith("/layer.tar"):
        return "layer"
    if name.startswith("blobs/"):
        return "blob"  # a config, a manifest or a layer: the first byte tells
    return None  # <id>/json, <id>/VERSION, repositories, oci-layout


def _json(handle: IO[bytes], name: str) -> Any:
    try:
        return json.load(handle)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArchiveError(f"{name} in the saved images is not JSON: {error}") from None


def _read_layer(
    handle: IO[bytes], name: str, read_layer: Callable[[tarfile.TarFile], T], layers: dict[str, T]
) -> None:
    opened = False
    try:
        # "*": the containerd image store saves layers as they are in the registry, gzipped.
        with tarfile.open(fileobj=handle, mode="r|*") as layer:
            opened = True
            layers[name] = read_layer(layer)
    except (tarfile.ReadError, tarfile.CompressionError):
        if opened:
            raise  # a layer that breaks off: the archive itself is cut short
        # else a blob that is not a tar, so nothing a manifest lists as a layer


def _images(documents: dict[str, Any], layers: dict[str, T], links: dict[str, str]) -> tuple[SavedImage, ...]:
    def follow(path: str) -> str:
        seen = set()
        while path in links and path not in seen:
            seen.add(path)
            path = links[path]
        return path

    if MANIFEST not in documents:
        raise ArchiveError(f"the saved images have no {MANIFEST}: not a `docker save` archive")
    images = []
    try:
        for entry in documents[MANIFEST]:
            tags = tuple(entry.get("RepoTags") or ())
            what = ", ".join(tags) or entry["Config"]
            config = documents.get(follow(posixpath.normpath(entry["Config"])))
            if not isinstance(config, dict):
                raise ArchiveError(f"the saved archive lacks the config of {what} ({entry['Config']})")
            paths = tuple(follow(posixpath.normpath(path)) for path in entry["Layers"])
            unread = [path for path in paths if path not in layers]
            if unread:
                raise ArchiveError(
                    f"layer {unread[0]} of {what} is missing from the saved archive or is not "
                    "a tar (compressed in a way Python cannot read?)"
                )
            images.append(SavedImage(tags, config, paths))
    except (AttributeError, KeyError, TypeError) as error:
        raise ArchiveError(f"unexpected {MANIFEST} in the saved images ({error!r})") from None
    return tuple(images)
