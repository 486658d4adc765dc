"""Nothing of the build machine reaches a final image.

The machine's trust store may hold a TLS-inspecting proxy's CA. The build stages need it to
reach PyPI; a final image that trusted it could have its TLS intercepted in production. So the
builds here use the machine's store plus a throwaway CA (the canary), and every layer of
every final image, read from `docker save` (distroless images have no shell, and a file
deleted by a later layer still ships), is searched for it. A positive control finds the
canary in the Python build base, so the search is known to work on a host with no proxy.

`nox -s integration` builds everything with such a store (SUTRA_CANARY_CA names its CA), so
this file only checks those images. Run alone, it builds a copy of the stack under image
names of its own (bases included) with a canary of its own, and removes them at the end.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import Stack, load_stack
from sutra_deploy.images.archive import read_archive
from sutra_deploy.images.base_images import BUILD_HOST_CA_BUNDLE, DEFAULT_CA_BUNDLE, DISTRO_CA_BUNDLE

from .conftest import STACK, docker, inv, own_stack_file

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.DOTALL)
# Files that carry a machine's settings: mmdebstrap copies the first two from the host; the
# others are where apt and pip keep a proxy, an index URL or a certificate of the machine.
_HOST_SETTINGS = re.compile(
    r"^(etc/resolv\.conf|etc/hostname|etc/pip\.conf|etc/xdg/pip/.*|root/\.pip/.*|root/\.config/pip/.*"
    r"|root/\.cache/.+|etc/apt/apt\.conf\.d/.*proxy.*)$",
    re.IGNORECASE,
)


def certificates(data: bytes) -> set[bytes]:
    """The DER of every PEM certificate in ``data``, however its lines are wrapped."""
    found = set()
    for body in _PEM.findall(data):
        try:
            found.add(base64.b64decode(b"".join(body.split()), validate=True))
        except ValueError:
            continue
    return found


@dataclass(frozen=True)
class Canary:
    pem: bytes
    der: bytes
    marker: bytes  # its subject's common name, as it appears inside the DER

    def in_file(self, data: bytes) -> bool:
        return self.der in data or self.marker in data or self.der in certificates(data)


def make_canary(folder: Path) -> Path:
    cert = folder / "canary-ca.crt"
    subject = f"/CN=sutra build-host canary {uuid.uuid4().hex[:12]}"
    # The key goes nowhere: nothing is ever signed with this CA.
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null")
    ca = ("-subj", subject, "-addext", "basicConstraints=critical,CA:TRUE", "-days", "30")
    subprocess.run(
        ["openssl", "req", "-x509", *key, *ca, "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert


def read_canary(cert: Path) -> Canary:
    pem = cert.read_bytes()
    [der] = certificates(pem)
    subject = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-subject", "-nameopt", "multiline"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    common_name = re.search(r"commonName\s*=\s*(.+)", subject)
    assert common_name, subject
    return Canary(pem, der, common_name.group(1).strip().encode())


@dataclass(frozen=True)
class Layer:
    canary_in: tuple[str, ...]  # files holding the canary
    host_settings: tuple[str, ...]  # files of _HOST_SETTINGS with content
    trust_stores: Mapping[str, bytes]  # the two bundles a base may carry, by path


def scan_layer(canary: Canary, layer: tarfile.TarFile) -> Layer:
    canary_in, host_settings, stores = [], [], {}
    wanted_stores = {DISTRO_CA_BUNDLE.lstrip("/"), BUILD_HOST_CA_BUNDLE.lstrip("/")}
    for member in layer:
        name = member.name.removeprefix("./")
        if not member.isreg():
            continue
        handle = layer.extractfile(member)
        assert handle is not None
        data = handle.read()
        if canary.in_file(data):
            canary_in.append(name)
        if data.strip() and _HOST_SETTINGS.match(name):
            host_settings.append(name)
        if name in wanted_stores:
            stores[name] = data
    return Layer(tuple(canary_in), tuple(host_settings), stores)


@dataclass(frozen=True)
class Image:
    ref: str
    env: dict[str, str]
    labels: dict[str, str]
    layers: tuple[Layer, ...]

    @property
    def canary_in(self) -> list[str]:
        return [name for layer in self.layers for name in layer.canary_in]

    @property
    def host_settings(self) -> list[str]:
        return [name for layer in self.layers for name in layer.host_settings]

    def trust_store(self, path: str) -> bytes | None:
        """The file as the image has it: the last layer that wrote it wins."""
        found = None
        for layer in self.layers:
            found = layer.trust_stores.get(path.lstrip("/"), found)
        return found


def scan_images(refs: list[str], canary: Canary) -> dict[str, Image]:
    """Every layer of every image, read once from one `docker save` stream."""
    with subprocess.Popen(["docker", "save", *refs], stdout=subprocess.PIPE) as save:
        assert save.stdout is not None
        archive = read_archive(save.stdout, functools.partial(scan_layer, canary))
    assert save.returncode == 0, f"docker save {' '.join(refs)} failed"
    images = {}
    for ref in refs:
        saved = archive.image(ref)
        config = saved.config.get("config") or {}
        env = dict(item.split("=", 1) for item in config.get("Env") or [])
        layers = tuple(archive.layers[path] for path in saved.layers)
        images[ref] = Image(ref, env, dict(config.get("Labels") or {}), layers)
    return images


# --- the images under test ---------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    canary: Canary
    bundle: Path  # the build machine's store the builds used: the host's plus the canary
    stack: Stack
    env: dict[str, str]  # for `inv`, so that it works on these images

    @property
    def final_refs(self) -> list[str]:
        return [service.ref("v2") for service in self.stack.services]

    def base(self, key: str) -> str:
        return self.stack.base_image(key).local


@pytest.fixture(scope="module")
def subject(request, tmp_path_factory) -> Iterator[Subject]:
    canary_file = os.environ.get("SUTRA_CANARY_CA")
    if canary_file:
        # `nox -s integration`: the session's builds all used its canary bundle.
        bundle = Path(os.environ["INVOKE_SUTRA_CA_BUNDLE"])
        stack = load_stack(os.environ.get("INVOKE_SUTRA_STACK_FILE") or STACK.path)
        request.getfixturevalue("built_v2")
        yield Subject(read_canary(Path(canary_file)), bundle, stack, {})
        return
    folder = tmp_path_factory.mktemp("leaks")
    canary = read_canary(make_canary(folder))
    bundle = folder / "ca-bundle.crt"
    host = DEFAULT_CA_BUNDLE.read_bytes() if DEFAULT_CA_BUNDLE.is_file() else b""
    bundle.write_bytes(host + canary.pem)
    prefix = f"sutra-leaktest-{uuid.uuid4().hex[:8]}-"
    stack_file = own_stack_file(folder, prefix, bases=True)
    env = {
        "INVOKE_SUTRA_STACK_FILE": str(stack_file),
        "INVOKE_SUTRA_CA_BUNDLE": str(bundle),
        "INVOKE_SUTRA_BASES": "local",  # the local bases, even where the official ones pull
    }
    started = time.time()
    try:
        built = inv("build", **env)
        assert built.returncode == 0, built.stderr[-3000:]
        yield Subject(canary, bundle, load_stack(stack_file), env)
    finally:
        remove_what_this_run_made(prefix, started)


def remove_what_this_run_made(prefix: str, started: float) -> None:
    listed = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
    ours = [ref for ref in listed if ref.startswith(prefix)]
    bases = {
        docker("image", "inspect", "-f", "{{.Id}}", ref, check=False).stdout.strip()
        for ref in ours
        if ref.startswith(f"{prefix}base-")
    }
    finals = [ref for ref in ours if not ref.startswith(f"{prefix}base-")]
    if finals:
        docker("image", "rm", *finals, check=False)
    # The legacy builder keeps each build stage as an untagged image on one of this run's bases.
    for image in docker(
        "image", "ls", "-q", "--no-trunc", "--filter", "dangling=true", check=False
    ).stdout.split():
        if descends_from(image, bases):
            docker("image", "rm", image, check=False)
    if ours:
        docker("image", "rm", "--force", *[ref for ref in ours if ref not in finals], check=False)


def descends_from(image: str, ancestors: set[str]) -> bool:
    seen = set()
    while image and image not in seen:
        if image in ancestors:
            return True
        seen.add(image)
        image = docker("image", "inspect", "-f", "{{.Parent}}", image, check=False).stdout.strip()
    return False


@pytest.fixture(scope="module")
def images(subject) -> dict[str, Image]:
    # The Python build base may come from the engine when the official one pulls: make it.
    made = inv("base-images", "--only", "python", **subject.env)
    assert made.returncode == 0, made.stderr[-3000:]
    bases = [subject.base("python"), subject.base("python-runtime")]
    return scan_images([*bases, *subject.final_refs], subject.canary)


def extra_certificates(subject: Subject, images: dict[str, Image]) -> set[bytes]:
    """What the build machine's store trusts beyond Debian's set: the canary, and a real
    proxy's CA on a machine that has one."""
    debian = images[subject.base("python")].trust_store(DISTRO_CA_BUNDLE) or b""
    return certificates(subject.bundle.read_bytes()) - certificates(debian)


# --- the checks ----------------------------------------------------------------------------


def test_the_build_stages_trust_the_build_machine_store(subject, images):
    assert subject.canary.pem in subject.bundle.read_bytes()
    python = images[subject.base("python")]
    assert python.env.get("PIP_CERT") == BUILD_HOST_CA_BUNDLE
    assert python.env.get("SSL_CERT_FILE") == BUILD_HOST_CA_BUNDLE
    assert python.trust_store(BUILD_HOST_CA_BUNDLE) == subject.bundle.read_bytes()
    # The search finds the canary where it is, and only there: Debian's set stays Debian's.
    assert python.canary_in == [BUILD_HOST_CA_BUNDLE.lstrip("/")]
    assert subject.canary.der in extra_certificates(subject, images)


def test_no_final_image_carries_the_build_machine_trust_store(subject, images):
    extra = extra_certificates(subject, images)
    for ref in [subject.base("python-runtime"), *subject.final_refs]:
        image = images[ref]
        assert image.canary_in == [], f"{ref} carries the build machine's CA in {image.canary_in}"
        assert image.trust_store(BUILD_HOST_CA_BUNDLE) is None, ref
        store = image.trust_store(DISTRO_CA_BUNDLE)
        if store is not None:
            trusted = certificates(store)
            assert not trusted & extra, f"{ref} trusts {len(trusted & extra)} of the build machine's own CAs"


def test_final_images_point_nothing_at_the_build_machine_store(subject, images):
    for ref in [subject.base("python-runtime"), *subject.final_refs]:
        image = images[ref]
        assert "PIP_CERT" not in image.env, ref
        if "SSL_CERT_FILE" in image.env:
            # Debian's set, and it is there: a runtime TLS client would otherwise trust nothing.
            assert image.env["SSL_CERT_FILE"] == DISTRO_CA_BUNDLE, ref
            store = image.trust_store(DISTRO_CA_BUNDLE)
            assert store is not None and len(certificates(store)) >= 50, ref


def test_nothing_else_of_the_build_machine_reaches_an_image(subject, images):
    host_values = [
        str(PROJECT_DIR),
        str(subject.bundle),
        str(subject.bundle.parent),
        "build-host-ca",
        "sutra-base-",
    ]
    for ref, image in images.items():
        assert image.host_settings == [], f"{ref} keeps the build machine's {image.host_settings}"
        if ref == subject.base("python"):
            continue  # a build stage: it points pip at the machine's store on purpose
        for key, value in [*image.env.items(), *image.labels.items()]:
            assert not [v for v in host_values if v in value], f"{ref}: {key}={value}"


def test_a_runtime_bundle_named_for_a_site_is_added_to_debians_set(subject, tmp_path):
    """`sutra.runtime_ca_bundle`: the runtime trusts Debian's set plus the site's CA, and still
    not the build machine's. Made under base names of this test's own."""
    site = read_canary(make_canary(tmp_path))
    site_bundle = tmp_path / "site.crt"
    site_bundle.write_bytes(site.pem)
    prefix = f"sutra-leaktest-{uuid.uuid4().hex[:8]}-"
    stack_file = own_stack_file(tmp_path, prefix, bases=True)
    runtime = load_stack(stack_file).base_image("python-runtime").local
    env = {
        "INVOKE_SUTRA_STACK_FILE": str(stack_file),
        "INVOKE_SUTRA_CA_BUNDLE": str(subject.bundle),
        "INVOKE_SUTRA_RUNTIME_CA_BUNDLE": str(site_bundle),
    }
    try:
        made = inv("base-images", "--only", "python-runtime", **env)
        assert made.returncode == 0, made.stderr[-3000:]
        image = scan_images([runtime], subject.canary)[runtime]
        store = image.trust_store(DISTRO_CA_BUNDLE)
        assert store is not None and store.endswith(site.pem)
        assert len(certificates(store)) >= 50  # Debian's set comes first
        assert image.canary_in == [] and "PIP_CERT" not in image.env
        assert image.env["SSL_CERT_FILE"] == DISTRO_CA_BUNDLE
    finally:
        docker("image", "rm", "--force", runtime, check=False)


def test_a_runtime_bundle_that_is_not_there_is_one_line_and_exit_2(tmp_path):
    missing = tmp_path / "nope.crt"
    result = inv(
        "--dry", "base-images", "--only", "python-runtime", INVOKE_SUTRA_RUNTIME_CA_BUNDLE=str(missing)
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: sutra.runtime_ca_bundle: cannot read {missing}: No such file or directory"
    )
