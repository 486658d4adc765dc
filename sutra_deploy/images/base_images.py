"""Base images made on this machine from Debian's packages, for when no registry answers.

Each local base is an mmdebstrap root filesystem imported with ``docker import``. A
"distilled" base keeps only the files of a few packages and their dependencies, taken from
another base's root filesystem: a distroless runtime, the local stand-in for
``gcr.io/distroless/python3-debian12``.

Builds are reproducible: mmdebstrap honours SOURCE_DATE_EPOCH, and the distilled tarball is
written in sorted order with fixed owners and times, so the same package versions give the
same layer digest. Each image carries a label with the hash of its spec; an image whose label
matches is left alone.

Nothing of the build machine reaches a runtime image. The build bases carry its trust store
(which may hold a TLS-inspecting proxy's CA) beside Debian's set, for pip; the distilled
runtime carries Debian's set only, plus a bundle the user names for it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tarfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from tabulate import tabulate

from ..core.errors import SutraError
from ..core.stack import BaseImage, Stack
from ..core.units import mb
from ..tools.engine import Engine
from ..tools.files import owned_temporary_folder

log = logging.getLogger("sutra")

SPEC_LABEL = "org.sutra.base-spec"
# The build stages' trust store comes from the machine's own, so that builds reach package
# indexes through the same TLS-inspecting proxies the machine does (air-gapped mirrors, here).
DEFAULT_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# It lies beside Debian's set, never over it: a proxy's CA must not reach a runtime image,
# and the runtime is cut from the same root filesystem as the Python build base.
BUILD_HOST_CA_BUNDLE = "/etc/ssl/certs/build-host-ca.crt"
# Debian's own set, written by the ca-certificates package: all a runtime base trusts, plus
# the runtime bundle a site names for its internal CA.
DISTRO_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# mmdebstrap copies these two from the machine it runs on (debootstrap does); Docker gives
# every container its own, so a base keeps neither.
HOST_COPIED_FILES = ("/etc/resolv.conf", "/etc/hostname")
# A fixed time stamp keeps rebuilt tarballs identical (2026-01-01T00:00:00Z).
SOURCE_DATE_EPOCH = 1767225600
NONROOT_UID = 65532  # distroless's "nonroot"
# Part of every spec hash: bump it when this module changes what it puts in an image.
RECIPE_VERSION = 2

# Files an image never needs: documentation, manuals and translations. Licences stay.
DPKG_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
    "/usr/share/linda/*",
    "/usr/lib/x86_64-linux-gnu/gconv/*",
)
DPKG_INCLUDES = ("/usr/share/doc/*/copyright",)
MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/merged-usr"
# Top-level links of a merged-/usr system; dpkg's file lists still name the old paths.
MERGED_USR_LINKS = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}


def spec_hash(
    base: BaseImage,
    ca_bundle: Path | None,
    *,
    source: BaseImage | None = None,
    runtime_ca_bundle: Path | None = None,
) -> str:
    """What makes the image what it is; a bundle counts by its content, not its path.

    A build base depends on the machine's trust store (``ca_bundle``). A distilled base
    (``source`` is what it is cut from) never carries that store, so only its source's
    recipe and the bundle named for the runtime count.
    """
    digest = hashlib.sha256(f"recipe {RECIPE_VERSION}".encode())
    digest.update(json.dumps(asdict(base), sort_keys=True).encode())
    if base.distill_from:
        if source is None or source.key != base.distill_from:
            raise ValueError(f"{base.key} is distilled from {base.distill_from}: pass that base as source")
        digest.update(json.dumps(asdict(source), sort_keys=True).encode())
        digest.update(json.dumps(mmdebstrap_argv(source, Path("out.tar"), None)).encode())
        bundle = runtime_ca_bundle
    else:
        placeholder = Path("ca.crt") if ca_bundle is not None else None
        digest.update(json.dumps(mmdebstrap_argv(base, Path("out.tar"), placeholder)).encode())
        bundle = ca_bundle
    if bundle is not None and bundle.exists():
        digest.update(bundle.read_bytes())
    return digest.hexdigest()[:16]


def mmdebstrap_argv(base: BaseImage, output: Path, ca_bundle: Path | None) -> list[str]:
    argv = [
        "mmdebstrap",
        f"--variant={base.variant}",
        "--format=tar",
        f"--hook-dir={MERGED_USR_HOOKS}",
        '--aptopt=Acquire::Languages "none"',
    ]
    if base.packages:
        argv.append("--include=" + ",".join(base.packages))
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in DPKG_EXCLUDES]
    argv += [f"--dpkgopt=path-include={pattern}" for pattern in DPKG_INCLUDES]
    if ca_bundle is not None:
        # `upload` names the file inside, so a bundle called ca-certificates.crt outside
        # cannot land on Debian's set; it keeps no mode, hence the chmod.
        argv.append(f'--customize-hook=mkdir -p "$1{PurePosixPath(BUILD_HOST_CA_BUNDLE).parent}"')
        argv.append(f"--customize-hook=upload {ca_bundle} {BUILD_HOST_CA_BUNDLE}")
        argv.append(f'--customize-hook=chmod 0644 "$1{BUILD_HOST_CA_BUNDLE}"')
    argv += [f"--customize-hook={hook}" for hook in base.customize]
    # apt's downloaded lists and logs are rebuilt by the next `apt-get update` anyway.
    argv.append('--customize-hook=rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*')
    argv.append("--customize-hook=rm -f " + " ".join(f'"$1"{path}' for path in HOST_COPIED_FILES))
    argv += [base.suite, str(output)]
    return argv


def import_changes(base: BaseImage, spec: str, *, build_host_ca: bool) -> list[str]:
    """``docker import`` changes: a build base points TLS clients and pip at the machine's
    trust store (when it has one); a distilled runtime at Debian's set, with no PIP_CERT."""
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
    ]
    if base.distill_from:
        # The runtime has libssl but not openssl's /usr/lib/ssl, so no default CA path.
        changes.append(f"ENV SSL_CERT_FILE={DISTRO_CA_BUNDLE}")
    elif build_host_ca:
        changes += [f"ENV SSL_CERT_FILE={BUILD_HOST_CA_BUNDLE}", f"ENV PIP_CERT={BUILD_HOST_CA_BUNDLE}"]
    changes += [
        f"LABEL {SPEC_LABEL}={spec}",
        f"LABEL org.opencontainers.image.description=local-equivalent-of-{base.official}",
    ]
    if base.distill_from:
        changes.append(f"USER {NONROOT_UID}:{NONROOT_UID}")
    return changes


def read_runtime_ca_bundle(path: Path) -> bytes:
    """The certificates a site adds to its runtime images' trust store (sutra.runtime_ca_bundle)."""
    try:
        content = path.read_bytes()
    except OSError as error:
        raise SutraError(f"sutra.runtime_ca_bundle: cannot read {path}: {error.strerror}") from None
    if b"-----BEGIN CERTIFICATE-----" not in content:
        raise SutraError(f"sutra.runtime_ca_bundle: {path} holds no PEM certificate")
    return content


class Action(StrEnum):
    """What `inv base-images` did to a base (the text its table and --json show)."""

    BUILT = "built"
    UP_TO_DATE = "up to date"
    WOULD_BUILD = "would build"  # under --dry


@dataclass(frozen=True)
class BaseImageResult:
    key: str
    ref: str
    action: Action
    seconds: float
    size_bytes: int | None
    layer: str | None


class BaseImageMaker:
    def __init__(
        self,
        stack: Stack,
        engine: Engine,
        *,
        ca_bundle: Path | None = DEFAULT_CA_BUNDLE,
        runtime_ca_bundle: Path | None = None,
        workdir: Path | None = None,
        jobs: int | None = None,  # None: one per core (mmdebstrap's downloads and unpacking)
        progress: Callable[[str], None] = log.info,
    ) -> None:
        self.stack = stack
        self.engine = engine
        # The default store may be absent (a host that is not Debian): builds then trust
        # Debian's set. A runtime bundle is named on purpose, so a wrong one is an error.
        self.ca_bundle = ca_bundle if ca_bundle is not None and ca_bundle.exists() else None
        self.runtime_ca = read_runtime_ca_bundle(runtime_ca_bundle) if runtime_ca_bundle else b""
        self.runtime_ca_bundle = runtime_ca_bundle if self.runtime_ca else None
        self.workdir = workdir
        self.jobs = jobs or os.cpu_count() or 1
        self.progress = progress

    def spec(self, base: BaseImage) -> str:
        source = self.stack.base_image(base.distill_from) if base.distill_from else None
        return spec_hash(base, self.ca_bundle, source=source, runtime_ca_bundle=self.runtime_ca_bundle)

    def is_current(self, base: BaseImage) -> bool:
        info = self.engine.image(base.local)
        return info is not None and info.labels.get(SPEC_LABEL) == self.spec(base)

    def ensure(self, keys: Iterable[str] | None = None, *, force: bool = False) -> list[BaseImageResult]:
        """Make the named local bases (all by default) unless they are already current."""
        wanted = [self.stack.base_image(k) for k in keys] if keys else list(self.stack.base_images)
        stale = [b for b in wanted if force or not self.is_current(b)]
        results = [
            BaseImageResult(b.key, b.local, Action.UP_TO_DATE, 0.0, *self._size_and_layer(b.local))
            for b in wanted
            if b not in stale
        ]
        if not stale:
            return results
        self.engine.commands.resolve("mmdebstrap")
        # A distilled base is cut from its source's root filesystem, so that one is made too.
        root_keys = {b.distill_from or b.key for b in stale}
        roots = [b for b in self.stack.base_images if b.key in root_keys]
        with owned_temporary_folder("base", under=self.workdir) as tmp:
            tarballs = {b.key: Path(tmp) / f"{b.key}.tar" for b in self.stack.base_images}

            def make_root(base: BaseImage) -> BaseImageResult | None:
                started = time.monotonic()
                self.progress(f"[base] {base.local}: mmdebstrap {base.variant} {base.suite}")
                self.engine.commands.run(
                    mmdebstrap_argv(base, tarballs[base.key], self.ca_bundle),
                    mutates=True,
                    env={"SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)},
                )
                return self._import(base, tarballs[base.key], started) if base in stale else None

            with ThreadPoolExecutor(max_workers=max(1, self.jobs)) as pool:
                results += [r for r in pool.map(make_root, roots) if r is not None]
            for base in (b for b in stale if b.distill_from):
                started = time.monotonic()
                self.progress(f"[base] {base.local}: distil {', '.join(base.keep)} from {base.distill_from}")
                if not self.engine.dry:
                    distill(
                        tarballs[base.distill_from],
                        tarballs[base.key],
                        base.keep,
                        base.drop,
                        extra_ca=self.runtime_ca,
                        exclude=base.exclude,
                        sourceless=base.sourceless,
                    )
                results.append(self._import(base, tarballs[base.key], started))
        order = {b.key: i for i, b in enumerate(self.stack.base_images)}
        return sorted(results, key=lambda r: order[r.key])

    def _import(self, base: BaseImage, tarball: Path, started: float) -> BaseImageResult:
        changes = import_changes(base, self.spec(base), build_host_ca=self.ca_bundle is not None)
        self.engine.import_rootfs(tarball, base.local, changes)
        if self.engine.dry:
            return BaseImageResult(base.key, base.local, Action.WOULD_BUILD, 0.0, None, None)
        seconds = time.monotonic() - started
        self.progress(f"[base] {base.local}: imported in {seconds:.0f}s")
        return BaseImageResult(base.key, base.local, Action.BUILT, seconds, *self._size_and_layer(base.local))

    def _size_and_layer(self, ref: str) -> tuple[int | None, str | None]:
        info = self.engine.image(ref)
        if info is None:
            return None, None
        return info.size_bytes, info.layers[0] if info.layers else None


# --- distilling a distroless root filesystem -------------------------------------------


@dataclass(frozen=True)
class DpkgPackage:
    name: str
    depends: tuple[tuple[str, ...], ...]  # each inner tuple: alternatives, first choice first
    provides: tuple[str, ...]


def parse_dpkg_status(text: str) -> dict[str, DpkgPackage]:
    """Installed packages from a dpkg status file, with their (pre-)dependencies."""
    packages: dict[str, DpkgPackage] = {}
    for stanza in re.split(r"\n\s*\n", text.strip()):
        fields: dict[str, str] = {}
        current = None
        for line in stanza.splitlines():
            if line.startswith((" ", "\t")) and current:
                fields[current] += " " + line.strip()
            elif ":" in line:
                current, _, value = line.partition(":")
                fields[current] = value.strip()
        if "install ok installed" not in fields.get("Status", ""):
            continue
        relations = ", ".join(v for k in ("Pre-Depends", "Depends") if (v := fields.get(k)))
        packages[fields["Package"]] = DpkgPackage(
            name=fields["Package"],
            depends=tuple(
                tuple(_package_name(alt) for alt in group.split("|"))
                for group in relations.split(",")
                if group.strip()
            ),
            provides=tuple(_package_name(p) for p in fields.get("Provides", "").split(",") if p.strip()),
        )
    return packages


def _package_name(relation: str) -> str:
    # "libc6 (>= 2.34)" -> "libc6"; "python3:any" -> "python3"
    return relation.strip().split(" ")[0].split(":")[0]


def dependency_closure(
    packages: dict[str, DpkgPackage], keep: Sequence[str], drop: Sequence[str]
) -> set[str]:
    """``keep`` and everything they depend on, stopping at ``drop``."""
    providers: dict[str, str] = {}
    for package in packages.values():
        for virtual in package.provides:
            providers.setdefault(virtual, package.name)
    missing = [name for name in keep if name not in packages]
    if missing:
        raise SutraError(f"cannot distil: {', '.join(missing)} not installed in the source image")
    closure: set[str] = set()
    pending = list(keep)
    while pending:
        name = pending.pop()
        if name in closure or name in drop:
            continue
        closure.add(name)
        for alternatives in packages[name].depends:
            chosen = next(
                (
                    real
                    for alt in alternatives
                    if (real := alt if alt in packages else providers.get(alt)) is not None
                ),
                None,
            )
            if chosen is not None:
                pending.append(chosen)
    return closure


def canonical_path(path: str) -> str:
    """dpkg's name for a file ("/bin/dash") as it lies in a merged-/usr tree ("usr/bin/dash")."""
    parts = path.strip("/").split("/", 1)
    if parts[0] in MERGED_USR_LINKS:
        parts[0] = MERGED_USR_LINKS[parts[0]]
    return "/".join(parts)


def distill(
    source: Path,
    output: Path,
    keep: Sequence[str],
    drop: Sequence[str],
    *,
    extra_ca: bytes = b"",
    exclude: Sequence[str] = (),
    sourceless: Sequence[str] = (),
) -> int:
    """Write a tarball with only the files of ``keep`` (and dependencies); return its file count.

    The trust store is the source's Debian set, with ``extra_ca`` (a site's runtime bundle)
    appended; the build machine's store beside it is never taken. Paths matching ``exclude``
    stay out. Under each ``sourceless`` folder a module whose byte-code Debian compiled is
    shipped as that byte-code alone, in the module's place (`os.pyc` for `os.py`), which Python
    imports without the source: the runtime loads the same code, and the image carries it once.
    """
    trust_store = DISTRO_CA_BUNDLE.lstrip("/")
    with tarfile.open(source) as src:
        members = {m.name.removeprefix("./").rstrip("/"): m for m in src.getmembers()}

        def read(name: str) -> str:
            handle = src.extractfile(members[name])
            assert handle is not None
            return handle.read().decode()

        if trust_store not in members or not members[trust_store].isreg():
            raise SutraError(
                f"cannot distil: the source image has no {DISTRO_CA_BUNDLE}; install ca-certificates in it"
            )
        packages = parse_dpkg_status(read("var/lib/dpkg/status"))
        closure = dependency_closure(packages, keep, drop)
        # The loader's cache and the trust store are made by maintainer scripts, not listed by
        # any package.
        wanted = set(MERGED_USR_LINKS) | {"tmp", "etc/ld.so.cache", trust_store}
        for name in closure:
            listing = next(
                (
                    f"var/lib/dpkg/info/{name}{arch}.list"
                    for arch in ("", ":amd64")
                    if f"var/lib/dpkg/info/{name}{arch}.list" in members
                ),
                None,
            )
            if listing is not None:
                wanted.update(canonical_path(p) for p in read(listing).splitlines() if p.strip("/."))
        # Byte-code compiled by maintainer scripts belongs to no package's file list.
        for name in members:
            if "/__pycache__/" in name:
                source_file = re.sub(r"__pycache__/([^/.]+)\..*\.pyc$", r"\1.py", name)
                if source_file in wanted:
                    wanted.add(name)
        for name in list(wanted):
            wanted.update(str(parent) for parent in PurePosixPath(name).parents if str(parent) != ".")
        wanted.difference_update(path.lstrip("/") for path in (BUILD_HOST_CA_BUNDLE, *HOST_COPIED_FILES))
        wanted = {n for n in wanted if not any(_matches(n, pattern) for pattern in exclude)}
        renamed = _sourceless(wanted, members, sourceless)
        selected = sorted(n for n in wanted if n in members)
        with tarfile.open(output, "w", format=tarfile.PAX_FORMAT) as out:
            for name in selected:
                member = members[name]
                copy = tarfile.TarInfo(renamed.get(name, name))
                copy.mode, copy.type, copy.linkname = member.mode, member.type, member.linkname
                copy.size = member.size if member.isreg() else 0
                copy.uid = copy.gid = 0
                copy.uname = copy.gname = "root"
                copy.mtime = SOURCE_DATE_EPOCH
                if member.islnk():
                    copy.linkname = member.linkname.removeprefix("./")
                content = src.extractfile(member) if member.isreg() else None
                if name == trust_store and extra_ca:
                    assert content is not None
                    debian_set = content.read()
                    joined = debian_set + (b"" if debian_set.endswith(b"\n") else b"\n") + extra_ca
                    copy.size, content = len(joined), io.BytesIO(joined)
                out.addfile(copy, content)
            for name, content in _account_files().items():
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(content), 0o644, SOURCE_DATE_EPOCH
                out.addfile(info, io.BytesIO(content))
    return len(selected)


def _matches(name: str, pattern: str) -> bool:
    """``name`` is ``pattern`` or under it; `*` within a segment, `**` across segments."""
    regex = re.escape(pattern.strip("/")).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
    return re.fullmatch(f"{regex}(/.*)?", name) is not None


def _sourceless(
    wanted: set[str], members: Mapping[str, tarfile.TarInfo], folders: Sequence[str]
) -> dict[str, str]:
    """Under ``folders``: drop each `x.py` whose `__pycache__/x.cpython-3NN.pyc` is kept, and
    ship that byte-code as `x.pyc` (returned: tar name -> name in the image)."""
    renamed = {}
    for name in sorted(wanted):
        if not any(_matches(name, folder) for folder in folders):
            continue
        found = re.fullmatch(r"(.*)/__pycache__/([^/.]+)\.cpython-\d+\.pyc", name)
        if not found or name not in members:
            continue
        source = f"{found.group(1)}/{found.group(2)}.py"
        if source in wanted and source in members and members[source].isreg():
            wanted.discard(source)
            renamed[name] = f"{found.group(1)}/{found.group(2)}.pyc"
    # A __pycache__ folder whose byte-code all moved out goes too.
    emptied = {n.rpartition("/")[0] for n in renamed}
    for folder in emptied:
        if not any(n.startswith(folder + "/") and n not in renamed for n in wanted):
            wanted.discard(folder)
    return renamed


def _account_files() -> dict[str, bytes]:
    """The users a distroless image knows: root and nonroot, as in Google's distroless."""
    uid = NONROOT_UID
    passwd = (
        f"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{uid}:{uid}:nonroot:/home/nonroot:/sbin/nologin\n"
    )
    return {"etc/passwd": passwd.encode(), "etc/group": f"root:x:0:\nnonroot:x:{uid}:\n".encode()}


@dataclass(frozen=True)
class BaseImagesReport:
    """What `inv base-images` did to each local base: for people a table, for machines JSON."""

    results: tuple[BaseImageResult, ...]

    def table(self) -> str:
        rows = [
            [
                r.ref,
                r.action,
                f"{r.seconds:.0f}",
                mb(r.size_bytes) if r.size_bytes else "-",
                (r.layer or "-")[:19],
            ]
            for r in self.results
        ]
        return tabulate(
            rows,
            headers=["Image", "Action", "Seconds", "Size", "Layer digest"],
            colalign=("left", "left", "right", "right", "left"),
        )

    def to_json(self) -> str:
        return json.dumps({"base_images": [asdict(r) for r in self.results]}, indent=2)


def make_base_images(
    stack: Stack,
    engine: Engine,
    *,
    only: Sequence[str],
    force: bool,
    ca_bundle: Path | None,
    jobs: int | None,
    runtime_ca_bundle: Path | None = None,
) -> BaseImagesReport:
    """`inv base-images`: make the named local bases (all by default) and say what happened."""
    for key in only:  # a wrong name is named before the daemon is asked anything
        stack.base_image(key)
    engine.ensure_available()
    maker = BaseImageMaker(stack, engine, ca_bundle=ca_bundle, runtime_ca_bundle=runtime_ca_bundle, jobs=jobs)
    return BaseImagesReport(tuple(maker.ensure(list(only) or None, force=force)))
