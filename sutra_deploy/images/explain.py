"""Why an image is as big as it is, read from `docker save` without running a container
(so it works on images with no shell): bytes per layer with the instruction that made it,
bytes per installed Python distribution with the requirement chain that brought it in, and
the bytes later layers overwrote or deleted."""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.parser import HeaderParser

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from tabulate import tabulate

from ..core.errors import ImageMissing
from ..core.units import mb
from ..tools.engine import Engine
from .archive import read_archive

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
DIST_INFO_FILES = ("METADATA", "RECORD")


@dataclass
class LayerContent:
    files: dict[str, int] = field(default_factory=dict)  # path -> bytes
    deleted: set[str] = field(default_factory=set)  # whiteouts: paths removed from below
    opaque: set[str] = field(default_factory=set)  # directories whose lower contents are hidden
    texts: dict[str, str] = field(default_factory=dict)  # dist-info METADATA and RECORD

    @property
    def bytes(self) -> int:
        return sum(self.files.values())


@dataclass(frozen=True)
class Layer:
    created_by: str
    bytes: int


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    bytes: int
    chain: tuple[str, ...]  # the package first, then what required it, up to the service


@dataclass(frozen=True)
class Explanation:
    image: str
    size_bytes: int
    layers: tuple[Layer, ...]
    packages: tuple[Package, ...]
    wasted_bytes: int

    def as_json(self) -> dict:
        return {
            "image": self.image,
            "size_bytes": self.size_bytes,
            "layers": [{"created_by": layer.created_by, "bytes": layer.bytes} for layer in self.layers],
            "packages": [
                {"name": p.name, "version": p.version, "bytes": p.bytes, "chain": list(p.chain)}
                for p in self.packages
            ],
            "wasted_bytes": self.wasted_bytes,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_json(), indent=2)

    def table(self, top: int = 15) -> str:
        layers = tabulate(
            [[mb(layer.bytes), _short(layer.created_by)] for layer in self.layers],
            headers=["Bytes", "Created by"],
            colalign=("right", "left"),
        )
        packages = tabulate(
            [[p.name, p.version, mb(p.bytes), " ← ".join(p.chain)] for p in self.packages[:top]],
            headers=["Package", "Version", "Bytes", "Brought in by"],
            colalign=("left", "left", "right", "left"),
        )
        in_packages = sum(p.bytes for p in self.packages)
        more = len(self.packages) - top
        return (
            f"{self.image}: {mb(self.size_bytes)} in {len(self.layers)} layers\n\n{layers}\n\n"
            f"Python distributions: {mb(in_packages)} in {len(self.packages)}"
            + (f" (largest {top} shown)" if more > 0 else "")
            + f"\n\n{packages}\n\nWasted (overwritten or deleted by later layers): {mb(self.wasted_bytes)}"
        )


def _short(text: str, width: int = 100) -> str:
    text = " ".join(text.replace("/bin/sh -c #(nop) ", "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def explain(docker: Engine, ref: str, service_name: str) -> Explanation:
    info = docker.image(ref)
    if info is None:
        raise ImageMissing(ref, "build it with `inv build`")
    with docker.save([ref]) as stream:
        saved = read_archive(stream, layer_content)
    image = saved.image(ref)
    history = [h for h in image.config.get("history", []) if not h.get("empty_layer")]
    ordered = [saved.layers[path] for path in image.layers]
    layers = tuple(
        Layer(_origin(history[i]) if i < len(history) else "(no history)", content.bytes)
        for i, content in enumerate(ordered)
    )
    final, wasted = merge_layers(ordered)
    texts: dict[str, str] = {}
    for content in ordered:  # later layers win, like the files themselves
        texts.update({p: t for p, t in content.texts.items() if p in final})
    return Explanation(ref, info.size_bytes, layers, python_packages(final, texts, service_name), wasted)


def _origin(entry: dict) -> str:
    # An imported base has no instruction, only a comment ("Imported from -").
    return entry.get("created_by") or entry.get("comment") or "(no history)"


def layer_content(layer: tarfile.TarFile) -> LayerContent:
    """One layer's files, whiteouts and Python distribution metadata."""
    content = LayerContent()
    for member in layer:
        path = member.name.removeprefix("./").rstrip("/")
        directory, name = posixpath.split(path)
        if name == OPAQUE:
            content.opaque.add(directory)
        elif name.startswith(WHITEOUT):
            content.deleted.add(posixpath.join(directory, name[len(WHITEOUT) :]))
        elif member.isreg():
            content.files[path] = member.size
            if directory.endswith(".dist-info") and name in DIST_INFO_FILES:
                data = layer.extractfile(member)
                assert data is not None
                content.texts[path] = data.read().decode("utf-8", errors="replace")
    return content


def merge_layers(layers: Iterable[LayerContent]) -> tuple[dict[str, int], int]:
    """The final filesystem's files, and the bytes lower layers lost to later ones."""
    final: dict[str, int] = {}
    wasted = 0
    for layer in layers:
        hidden = [p for p in final if _under_any(p, layer.opaque) or _under_any(p, layer.deleted, exact=True)]
        for path in hidden:
            wasted += final.pop(path)
        for path, size in layer.files.items():
            if path in final:
                wasted += final[path]
            final[path] = size
    return final, wasted


def _under_any(path: str, roots: set[str], exact: bool = False) -> bool:
    return any((exact and path == root) or path.startswith(root + "/") for root in roots)


def python_packages(final: dict[str, int], texts: dict[str, str], service_name: str) -> tuple[Package, ...]:
    """Each installed distribution's bytes (its RECORD's files that are in the image) and the
    shortest chain of requirements from a top-level distribution to it."""
    found: dict[str, tuple[str, str, int, list[str]]] = {}
    cached = _pycache_index(final)
    for path, text in texts.items():
        if not path.endswith("/METADATA"):
            continue
        dist_info = posixpath.dirname(path)
        site = posixpath.dirname(dist_info)
        headers = HeaderParser().parsestr(text)
        name = headers.get("Name", posixpath.basename(dist_info).split("-")[0])
        record = texts.get(f"{dist_info}/RECORD", "")
        files = {
            posixpath.normpath(posixpath.join(site, line.split(",")[0]))
            for line in record.splitlines()
            if line
        }
        files |= {p for p in final if p.startswith(dist_info + "/")}
        # Byte-code compiled after pip (compileall) is in no RECORD: each source's `.pyc`,
        # in its place when the image ships byte-code alone, else under __pycache__.
        sources = [p for p in files if p.endswith(".py")]
        files |= {p + "c" for p in sources}
        files |= {c for p in sources for c in cached.get(p[:-3], ())}
        size = sum(final.get(p, 0) for p in files)
        requires = [r for r in headers.get_all("Requires-Dist") or [] if _applies(r)]
        found[canonicalize_name(name)] = (name, headers.get("Version", "?"), size, requires)
    required_by: dict[str, list[str]] = {key: [] for key in found}
    for key, (_, _, _, requires) in found.items():
        for requirement in requires:
            dependency = canonicalize_name(Requirement(requirement).name)
            if dependency in required_by:
                required_by[dependency].append(key)
    packages = [
        Package(name, version, size, (*(found[k][0] for k in _chain(key, required_by)), service_name))
        for key, (name, version, size, _) in found.items()
    ]
    return tuple(sorted(packages, key=lambda p: (-p.bytes, p.name.lower())))


def _pycache_index(final: dict[str, int]) -> dict[str, list[str]]:
    """`dir/name` -> its `dir/__pycache__/name.<tag>.pyc` files in the image."""
    index: dict[str, list[str]] = {}
    for path in final:
        folder, _, file = path.rpartition("/__pycache__/")
        if folder and file.endswith(".pyc"):
            index.setdefault(f"{folder}/{file.split('.', 1)[0]}", []).append(path)
    return index


def _applies(requirement: str) -> bool:
    """Requirements of the base install: not those behind an extra."""
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        return False
    return parsed.marker is None or parsed.marker.evaluate({"extra": ""})


def _chain(start: str, required_by: dict[str, list[str]]) -> list[str]:
    """Breadth first up the 'required by' edges to a distribution nothing requires."""
    queue: deque[list[str]] = deque([[start]])
    seen = {start}
    while queue:
        path = queue.popleft()
        parents = [p for p in required_by[path[-1]] if p not in seen]
        if not required_by[path[-1]]:
            return path
        for parent in sorted(parents):
            seen.add(parent)
            queue.append([*path, parent])
    return [start]
