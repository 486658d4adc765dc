"""The `docker save` reader, on small archives built here in both layouts an engine writes.

The builders below are also what the sizes and explain tests feed their fake engine."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pytest

from sutra_deploy.core.errors import ArchiveError
from sutra_deploy.images.archive import SavedArchive, read_archive, regular_file_bytes

Member = tuple[str, bytes | str]  # (name, content) or, with a str, (name, symlink target)


@dataclass
class Image:
    tags: list[str]
    layers: list[bytes]  # layer tarballs, base first
    history: list[dict] = field(default_factory=list)

    def config(self) -> bytes:
        diff_ids = [f"sha256:{_hex(layer)}" for layer in self.layers]
        return json.dumps(
            {"history": self.history, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        ).encode()


def layer_tar(files: dict[str, bytes], *, whiteouts: Iterable[str] = (), dirs: Iterable[str] = ()) -> bytes:
    """A layer tarball: regular files, whiteout markers (".wh.NAME") and directories."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in dirs:
            directory = tarfile.TarInfo(name)
            directory.type = tarfile.DIRTYPE
            tar.addfile(directory)
        for name, content in files.items():
            _add(tar, name, content)
        for name in whiteouts:
            _add(tar, name, b"")
    return buffer.getvalue()


def tar_of(members: Sequence[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in members:
            if isinstance(content, str):
                link = tarfile.TarInfo(name)
                link.type = tarfile.SYMTYPE
                link.linkname = content
                tar.addfile(link)
            else:
                _add(tar, name, content)
    return buffer.getvalue()


def legacy_archive(images: Sequence[Image]) -> bytes:
    """Docker's own layout, as engines before 25 write it: `<id>/layer.tar` per layer, where the id
    follows the chain of layers below it, so a shared base is saved once; the same layer on
    another chain is a symlink to its first copy. Members in name order, as `docker save` writes."""
    members: dict[str, bytes | str] = {}
    first_copy: dict[str, str] = {}
    manifest = []
    for image in images:
        chain, paths = "", []
        for layer in image.layers:
            chain = _hex(f"{chain}/{_hex(layer)}".encode())
            path = f"{chain}/layer.tar"
            if path not in members:
                original = first_copy.setdefault(_hex(layer), path)
                members[path] = layer if original == path else f"../{original}"
                members[f"{chain}/VERSION"] = b"1.0"
                members[f"{chain}/json"] = b'{"id": "' + chain.encode() + b'"}'
            paths.append(path)
        config = image.config()
        members[f"{_hex(config)}.json"] = config
        manifest.append({"Config": f"{_hex(config)}.json", "RepoTags": image.tags, "Layers": paths})
    members["manifest.json"] = json.dumps(manifest).encode()
    members["repositories"] = b"{}"
    return tar_of(sorted(members.items()))


def oci_archive(images: Sequence[Image], *, compress: bool = False) -> bytes:
    """The OCI layout (engines from 25; the containerd store gzips layers): content-addressed
    blobs for configs, manifests and layers, index.json, and Docker's manifest.json beside them."""
    blobs: dict[str, bytes] = {}

    def blob(content: bytes) -> str:
        blobs[f"blobs/sha256/{_hex(content)}"] = content
        return _hex(content)

    manifest, index = [], []
    for image in images:
        layers = [gzip.compress(layer, mtime=0) if compress else layer for layer in image.layers]
        layer_digests = [blob(layer) for layer in layers]
        config_digest = blob(image.config())
        oci_manifest = json.dumps(
            {
                "schemaVersion": 2,
                "config": {"digest": f"sha256:{config_digest}"},
                "layers": [{"digest": f"sha256:{d}"} for d in layer_digests],
            }
        ).encode()
        index.append({"digest": f"sha256:{blob(oci_manifest)}"})
        manifest.append(
            {
                "Config": f"blobs/sha256/{config_digest}",
                "RepoTags": image.tags,
                "Layers": [f"blobs/sha256/{d}" for d in layer_digests],
            }
        )
    members: dict[str, bytes | str] = dict(blobs)
    members["index.json"] = json.dumps({"schemaVersion": 2, "manifests": index}).encode()
    members["manifest.json"] = json.dumps(manifest).encode()
    members["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    return tar_of(sorted(members.items()))


def one_way(data: bytes) -> io.RawIOBase:
    """A stream that cannot seek and answers reads in odd-sized pieces, like `docker save`'s
    stdout or the engine API's chunks."""

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.source = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            chunk = self.source.read(min(len(buffer), 1000))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    return Pipe()


def _add(tar: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    tar.addfile(info, io.BytesIO(content))


def _hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


BASE = layer_tar({"usr/bin/python3": b"p" * 5000, "etc/os-release": b"o" * 100}, dirs=["usr", "usr/bin"])
API = layer_tar({"opt/site/fastapi.py": b"f" * 700})
HYBRID = layer_tar({"opt/site/numpy.so": b"n" * 9000})
API_IMAGE = Image(["sutra-api:v2"], [BASE, API], [{"created_by": "base"}, {"created_by": "COPY site"}])
HYBRID_IMAGE = Image(["sutra-hybrid:v2"], [BASE, HYBRID], [{"created_by": "base"}, {"created_by": "RUN pip"}])
LAYOUTS = {
    "docker": legacy_archive,
    "oci": oci_archive,
    "oci-gzip": lambda images: oci_archive(images, compress=True),
}


def read(data: bytes, reader=regular_file_bytes) -> SavedArchive:
    return read_archive(one_way(data), reader)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_image_gets_its_tags_config_and_layers_in_order(layout):
    saved = read(LAYOUTS[layout]([API_IMAGE, HYBRID_IMAGE]))
    api, hybrid = saved.images
    assert api.tags == ("sutra-api:v2",) and hybrid.tags == ("sutra-hybrid:v2",)
    assert [h["created_by"] for h in api.config["history"]] == ["base", "COPY site"]
    assert [saved.layers[path] for path in api.layers] == [5100, 700]  # files only, not directories
    assert [saved.layers[path] for path in hybrid.layers] == [5100, 9000]
    assert api.layers[0] == hybrid.layers[0]  # the shared base is one layer of the archive


@pytest.mark.parametrize("layout", LAYOUTS)
def test_shared_layers_are_read_once_and_counted_once(layout):
    calls = []

    def reader(layer: tarfile.TarFile) -> int:
        calls.append(1)
        return regular_file_bytes(layer)

    saved = read(LAYOUTS[layout]([API_IMAGE, HYBRID_IMAGE]), reader)
    assert len(calls) == 3
    assert sum(saved.layers[path] for path in saved.distinct_layers()) == 5100 + 700 + 9000


def test_a_layer_saved_under_another_id_is_followed_to_its_first_copy():
    # The same content on another chain: Docker's layout links it instead of storing it twice.
    again = Image(["twice:v1"], [BASE, API, BASE])
    saved = read(legacy_archive([again]))
    image = saved.image("twice:v1")
    assert image.layers[0] == image.layers[2]
    assert [saved.layers[path] for path in image.layers] == [5100, 700, 5100]


@pytest.mark.parametrize(
    ("link", "target"), [("aaa/layer.tar", "zzz/layer.tar"), ("zzz/layer.tar", "aaa/layer.tar")]
)
def test_a_link_is_followed_whether_it_comes_before_or_after_its_target(link, target):
    config = json.dumps({"history": []}).encode()
    manifest = [{"Config": "c.json", "RepoTags": ["x:1"], "Layers": [target, link]}]
    members: list[Member] = [
        (link, f"../{target}"),
        (target, API),
        ("c.json", config),
        ("manifest.json", json.dumps(manifest).encode()),
    ]
    saved = read(tar_of(sorted(members)))
    assert saved.image("x:1").layers == (target, target)
    assert saved.distinct_layers() == (target,)


def test_image_is_found_by_tag_or_as_the_only_one():
    saved = read(legacy_archive([API_IMAGE, HYBRID_IMAGE]))
    assert saved.image("sutra-hybrid:v2").tags == ("sutra-hybrid:v2",)
    with pytest.raises(ArchiveError, match=r"no image other:v1 .*sutra-api:v2, sutra-hybrid:v2"):
        saved.image("other:v1")
    only = read(legacy_archive([API_IMAGE]))
    assert only.image("sha256:0123").tags == ("sutra-api:v2",)  # saved by id: the one image


def test_json_blobs_are_documents_not_layers():
    saved = read(oci_archive([API_IMAGE]))
    assert set(saved.layers) == set(saved.image("sutra-api:v2").layers)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("c.json", b"{}")], "no manifest.json"),
        (
            [("c.json", b"{}"), ("manifest.json", b'[{"Config": "c.json", "Layers": ["gone/layer.tar"]}]')],
            "layer gone/layer.tar of c.json is missing",
        ),
        (
            [("manifest.json", b'[{"Config": "c.json", "RepoTags": ["x:1"], "Layers": []}]')],
            "lacks the config of x:1",
        ),
        ([("manifest.json", b'{"Layers": 1}')], "unexpected manifest.json"),
        ([("manifest.json", b"not json")], "manifest.json in the saved images is not JSON"),
    ],
)
def test_what_the_manifest_needs_and_the_archive_lacks_is_one_clear_error(members, message):
    with pytest.raises(ArchiveError, match=message) as caught:
        read(tar_of(members))
    assert caught.value.exit_code == 2


def test_a_stream_that_is_not_a_tar_is_one_clear_error():
    with pytest.raises(ArchiveError, match="cannot read the saved images"):
        read(b"Error response from daemon: reference does not exist\n" * 20)


def test_a_blob_that_is_neither_json_nor_tar_is_ignored_unless_listed():
    data = oci_archive([API_IMAGE])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members: list[Member] = [(m.name, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    saved = read(tar_of([("blobs/sha256/0000", b"\x00\x01 opaque"), *members]))
    assert "blobs/sha256/0000" not in saved.layers
    assert len(saved.distinct_layers()) == 2


def test_an_archive_cut_short_inside_a_layer_is_one_clear_error():
    data = legacy_archive([API_IMAGE])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        first_layer = next(m for m in tar if m.name.endswith("/layer.tar"))
    with pytest.raises(ArchiveError, match="cannot read the saved images"):
        read(data[: first_layer.offset_data + 700])
