import io
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from sutra_deploy.core.errors import SutraError
from sutra_deploy.core.source import PROJECT_DIR
from sutra_deploy.core.stack import load_stack
from sutra_deploy.images.base_images import (
    BUILD_HOST_CA_BUNDLE,
    DISTRO_CA_BUNDLE,
    SOURCE_DATE_EPOCH,
    BaseImageMaker,
    _matches,
    canonical_path,
    dependency_closure,
    distill,
    import_changes,
    mmdebstrap_argv,
    parse_dpkg_status,
    spec_hash,
)

STACK = load_stack(PROJECT_DIR / "stack.toml")

STATUS = """\
Package: python3.11-minimal
Status: install ok installed
Pre-Depends: libc6 (>= 2.35)
Depends: libpython3.11-minimal (= 3.11.2-6), libexpat1 (>= 2.1~beta3), zlib1g (>= 1:1.2.0)

Package: libpython3.11-minimal
Status: install ok installed
Depends: libc6 (>= 2.14), libssl3 (>= 3.0.0)

Package: libc6
Status: install ok installed
Depends: libgcc-s1

Package: libgcc-s1
Status: install ok installed
Depends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)

Package: gcc-12-base
Status: install ok installed

Package: libssl3
Status: install ok installed
Depends: libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0

Package: debconf
Status: install ok installed
Pre-Depends: perl-base (>= 5.20.1-3~)
Provides: debconf-2.0

Package: perl-base
Status: install ok installed

Package: libexpat1
Status: install ok installed
Depends: libc6 (>= 2.25)

Package: zlib1g
Status: install ok installed
Depends: libc6 (>= 2.14)

Package: removed-thing
Status: deinstall ok config-files
"""


def test_parse_status_reads_relations_and_skips_removed_packages():
    packages = parse_dpkg_status(STATUS)
    assert "removed-thing" not in packages
    assert packages["python3.11-minimal"].depends[0] == ("libc6",)
    assert ("debconf", "debconf-2.0") in packages["libssl3"].depends
    assert packages["debconf"].provides == ("debconf-2.0",)


def test_closure_follows_dependencies_and_stops_at_dropped_packages():
    packages = parse_dpkg_status(STATUS)
    closure = dependency_closure(packages, ["python3.11-minimal"], drop=["debconf"])
    assert closure == {
        "python3.11-minimal",
        "libpython3.11-minimal",
        "libc6",
        "libgcc-s1",
        "gcc-12-base",
        "libssl3",
        "libexpat1",
        "zlib1g",
    }
    with_debconf = dependency_closure(packages, ["python3.11-minimal"], drop=[])
    assert {"debconf", "perl-base"} <= with_debconf


def test_closure_refuses_a_package_that_is_not_installed():
    with pytest.raises(SutraError, match="nonexistent not installed"):
        dependency_closure(parse_dpkg_status(STATUS), ["nonexistent"], drop=[])


@pytest.mark.parametrize(
    ("listed", "actual"),
    [
        ("/bin/dash", "usr/bin/dash"),
        ("/lib64/ld-linux-x86-64.so.2", "usr/lib64/ld-linux-x86-64.so.2"),
        ("/usr/bin/python3.11", "usr/bin/python3.11"),
        ("/etc/os-release", "etc/os-release"),
    ],
)
def test_canonical_path_follows_merged_usr(listed, actual):
    assert canonical_path(listed) == actual


def test_mmdebstrap_argv_for_python_base():
    python = STACK.base_image("python")
    argv = mmdebstrap_argv(python, Path("/tmp/out.tar"), Path("/etc/ssl/certs/ca-certificates.crt"))
    assert argv[:2] == ["mmdebstrap", "--variant=minbase"]
    assert (
        "--include=python3.11-minimal,libpython3.11-stdlib,python3-minimal,python3.11-venv,python3-pip,"
        "ca-certificates,binutils" in argv
    )
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in argv
    assert "--dpkgopt=path-include=/usr/share/doc/*/copyright" in argv
    assert '--customize-hook=rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' in argv
    assert argv[-2:] == ["bookworm", "/tmp/out.tar"]


def test_the_machine_trust_store_goes_beside_debians_never_over_it():
    python = STACK.base_image("python")
    argv = mmdebstrap_argv(python, Path("/tmp/out.tar"), Path("/etc/ssl/certs/ca-certificates.crt"))
    hooks = [a.removeprefix("--customize-hook=") for a in argv if a.startswith("--customize-hook=")]
    assert BUILD_HOST_CA_BUNDLE == "/etc/ssl/certs/build-host-ca.crt" != DISTRO_CA_BUNDLE
    assert f"upload /etc/ssl/certs/ca-certificates.crt {BUILD_HOST_CA_BUNDLE}" in hooks
    assert f'chmod 0644 "$1{BUILD_HOST_CA_BUNDLE}"' in hooks
    # Nothing may write into Debian's store or copy a folder of certificates in.
    assert [h.split()[-1] for h in hooks if h.startswith("upload ")] == [BUILD_HOST_CA_BUNDLE]
    assert not [h for h in hooks if h.startswith(("copy-in", "tar-in"))]
    assert not [h for h in hooks if f"$1{DISTRO_CA_BUNDLE}" in h or f'"$1"{DISTRO_CA_BUNDLE}' in h]
    without = mmdebstrap_argv(python, Path("/tmp/out.tar"), None)
    assert not [a for a in without if "build-host-ca" in a or a.startswith("--customize-hook=upload")]


@pytest.mark.parametrize("key", ["debian", "python", "rust"])
def test_no_base_keeps_the_files_mmdebstrap_copies_from_the_machine(key):
    argv = mmdebstrap_argv(STACK.base_image(key), Path("/tmp/out.tar"), None)
    assert '--customize-hook=rm -f "$1"/etc/resolv.conf "$1"/etc/hostname' in argv
    # After every hook of the stack's own, so none of them brings the files back.
    assert argv.index('--customize-hook=rm -f "$1"/etc/resolv.conf "$1"/etc/hostname') == len(argv) - 3


def test_build_bases_point_pip_and_tls_at_the_machine_store_the_runtime_at_debians():
    python = import_changes(STACK.base_image("python"), "abc", build_host_ca=True)
    assert f"ENV SSL_CERT_FILE={BUILD_HOST_CA_BUNDLE}" in python
    assert f"ENV PIP_CERT={BUILD_HOST_CA_BUNDLE}" in python
    assert "LABEL org.sutra.base-spec=abc" in python
    plain = import_changes(STACK.base_image("python"), "abc", build_host_ca=False)
    assert not [c for c in plain if "SSL_CERT_FILE" in c or "PIP_CERT" in c]
    for build_host_ca in (True, False):
        runtime = import_changes(STACK.base_image("python-runtime"), "abc", build_host_ca=build_host_ca)
        assert f"ENV SSL_CERT_FILE={DISTRO_CA_BUNDLE}" in runtime
        assert not [c for c in runtime if "PIP_CERT" in c or "build-host-ca" in c]
        assert "USER 65532:65532" in runtime


def test_spec_hash_changes_with_the_spec_and_the_trust_store(tmp_path):
    python = STACK.base_image("python")
    debian = STACK.base_image("debian")
    ca = tmp_path / "ca.crt"
    ca.write_text("one")
    first = spec_hash(python, ca)
    assert spec_hash(python, ca) == first
    assert spec_hash(debian, ca) != first
    assert spec_hash(python, None) != first
    ca.write_text("two")
    assert spec_hash(python, ca) != first
    # The bundle counts by its content: the same store elsewhere is the same spec.
    moved = tmp_path / "elsewhere.crt"
    moved.write_text("two")
    assert spec_hash(python, moved) == spec_hash(python, ca)


def test_the_runtime_spec_follows_its_source_and_its_own_bundle_not_the_machine_store(tmp_path):
    runtime, python = STACK.base_image("python-runtime"), STACK.base_image("python")
    proxy, site = tmp_path / "proxy.crt", tmp_path / "site.crt"
    proxy.write_text("proxy")
    site.write_text("site")
    plain = spec_hash(runtime, None, source=python)
    assert spec_hash(runtime, proxy, source=python) == plain
    assert spec_hash(runtime, None, source=python, runtime_ca_bundle=site) != plain
    more = replace(python, packages=(*python.packages, "libsqlite3-0"))
    assert spec_hash(runtime, None, source=more) != plain
    with pytest.raises(ValueError, match="python-runtime is distilled from python"):
        spec_hash(runtime, None)


def pem(name: str) -> bytes:
    return f"-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----\n".encode()


def test_a_runtime_bundle_must_be_a_readable_pem_file(tmp_path):
    with pytest.raises(SutraError, match=r"sutra\.runtime_ca_bundle: cannot read .*missing\.crt"):
        BaseImageMaker(STACK, None, runtime_ca_bundle=tmp_path / "missing.crt")  # type: ignore[arg-type]
    empty = tmp_path / "empty.crt"
    empty.write_text("not a certificate")
    with pytest.raises(SutraError, match=r"empty\.crt holds no PEM certificate"):
        BaseImageMaker(STACK, None, runtime_ca_bundle=empty)  # type: ignore[arg-type]
    site = tmp_path / "site.crt"
    site.write_bytes(pem("SITE"))
    maker = BaseImageMaker(STACK, None, ca_bundle=None, runtime_ca_bundle=site)  # type: ignore[arg-type]
    assert maker.runtime_ca == pem("SITE")
    runtime = STACK.base_image("python-runtime")
    assert maker.spec(runtime) != BaseImageMaker(STACK, None, ca_bundle=None).spec(runtime)  # type: ignore[arg-type]


def add(tar: tarfile.TarFile, name: str, content: bytes = b"", *, kind=tarfile.REGTYPE, link="", mode=0o644):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    info.size = len(content) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(content) if kind == tarfile.REGTYPE else None)


def make_rootfs(path: Path, *, debian_store: bool = True) -> None:
    status = (
        "Package: app\nStatus: install ok installed\nDepends: libc6\n\n"
        "Package: libc6\nStatus: install ok installed\n\n"
        "Package: bash\nStatus: install ok installed\n"
    )
    with tarfile.open(path, "w") as tar:
        for directory in (
            "./",
            "./usr",
            "./usr/bin",
            "./usr/lib",
            "./usr/lib/app",
            "./usr/lib/app/__pycache__",
            "./etc",
            "./etc/ssl",
            "./etc/ssl/certs",
            "./tmp",
            "./var",
            "./var/lib",
            "./var/lib/dpkg",
            "./var/lib/dpkg/info",
        ):
            add(tar, directory, kind=tarfile.DIRTYPE, mode=0o1777 if directory == "./tmp" else 0o755)
        for link, target in (("./bin", "usr/bin"), ("./lib", "usr/lib")):
            add(tar, link, kind=tarfile.SYMTYPE, link=target)
        add(tar, "./var/lib/dpkg/status", status.encode())
        # Even a package that listed them would not bring the machine's files into a runtime.
        app_files = b"/.\n/usr\n/usr/bin\n/usr/bin/app\n/usr/lib/app/mod.py\n/etc/resolv.conf\n"
        add(tar, "./var/lib/dpkg/info/app.list", app_files + BUILD_HOST_CA_BUNDLE.encode() + b"\n")
        add(tar, "./var/lib/dpkg/info/libc6:amd64.list", b"/lib/libc.so.6\n")
        add(tar, "./var/lib/dpkg/info/bash.list", b"/bin/bash\n")
        add(tar, "./usr/bin/app", b"#!app", mode=0o755)
        add(tar, "./usr/lib/libc.so.6", b"libc")
        add(tar, "./usr/bin/bash", b"bash", mode=0o755)
        add(tar, "./usr/lib/app/mod.py", b"x = 1")
        add(tar, "./usr/lib/app/__pycache__/mod.cpython-311.pyc", b"pyc")
        add(tar, "./usr/lib/app/__pycache__/other.cpython-311.pyc", b"orphan")
        if debian_store:
            add(tar, "./etc/ssl/certs/ca-certificates.crt", pem("DEBIAN"))
        add(tar, "./etc/ssl/certs/build-host-ca.crt", pem("DEBIAN") + pem("PROXY"))
        add(tar, "./etc/resolv.conf", b"nameserver 10.0.0.53\n")
        add(tar, "./etc/hostname", b"buildhost\n")


def test_distill_keeps_only_the_closure_and_is_reproducible(tmp_path):
    source = tmp_path / "rootfs.tar"
    make_rootfs(source)
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    distill(source, first, keep=["app"], drop=[])
    distill(source, second, keep=["app"], drop=[])
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert {
        "usr/bin/app",
        "usr/lib/libc.so.6",
        "usr/lib/app/mod.py",
        "usr/lib/app/__pycache__/mod.cpython-311.pyc",
        "etc/ssl/certs/ca-certificates.crt",
        "bin",
        "lib",
        "tmp",
        "etc/passwd",
        "etc/group",
    } <= set(members)
    assert "usr/bin/bash" not in members
    assert "usr/lib/app/__pycache__/other.cpython-311.pyc" not in members
    assert "var/lib/dpkg/status" not in members
    assert members["bin"].issym() and members["bin"].linkname == "usr/bin"
    assert members["tmp"].mode == 0o1777
    assert members["usr/bin/app"].mode == 0o755
    assert {m.mtime for m in members.values()} == {SOURCE_DATE_EPOCH}
    assert "nonroot:x:65532:65532" in tar_text(first, "etc/passwd")
    # Debian's trust store, and nothing of the machine that made the source.
    assert tar_text(first, "etc/ssl/certs/ca-certificates.crt") == pem("DEBIAN").decode()
    assert not {"etc/ssl/certs/build-host-ca.crt", "etc/resolv.conf", "etc/hostname"} & set(members)


def test_distill_leaves_out_what_it_is_told_and_ships_byte_code_in_place_of_sources(tmp_path):
    source = tmp_path / "rootfs.tar"
    make_rootfs(source)
    out = tmp_path / "out.tar"
    distill(source, out, keep=["app"], drop=[], exclude=["usr/bin/app"], sourceless=["usr/lib/app"])
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert "usr/bin/app" not in members
    # mod.py goes; its byte-code takes its place, where Python imports it without the source.
    assert tar_text(out, "usr/lib/app/mod.pyc") == "pyc"
    assert not {"usr/lib/app/mod.py", "usr/lib/app/__pycache__/mod.cpython-311.pyc"} & set(members)
    assert "usr/lib/app/__pycache__" not in members  # emptied, so gone
    assert "usr/lib/libc.so.6" in members  # what no pattern names stays


@pytest.mark.parametrize(
    ("name", "pattern", "matches"),
    [
        ("usr/lib/python3.11/test/x.py", "usr/lib/python3.11/test", True),
        ("usr/lib/python3.11/testing.py", "usr/lib/python3.11/test", False),  # a segment, not a prefix
        ("usr/lib/x86_64-linux-gnu/libkrb5.so.3", "usr/lib/x86_64-linux-gnu/libkrb5*", True),
        ("usr/share/doc/a/changelog.gz", "usr/share/doc/*/changelog*", True),
        ("usr/share/doc/a/copyright", "usr/share/doc/*/changelog*", False),
        ("usr/share/doc/a/b/changelog", "usr/share/doc/*/changelog*", False),  # * stays in a segment
        ("usr/share/doc/a/b/changelog", "usr/share/doc/**/changelog*", True),
    ],
)
def test_exclude_patterns_match_whole_segments(name, pattern, matches):
    assert _matches(name, pattern) is matches


def test_distill_appends_the_runtime_bundle_to_debians_store(tmp_path):
    source, output = tmp_path / "rootfs.tar", tmp_path / "out.tar"
    make_rootfs(source)
    distill(source, output, keep=["app"], drop=[], extra_ca=pem("SITE"))
    assert tar_text(output, "etc/ssl/certs/ca-certificates.crt") == (pem("DEBIAN") + pem("SITE")).decode()
    with tarfile.open(output) as tar:
        assert tar.getmember("etc/ssl/certs/ca-certificates.crt").mtime == SOURCE_DATE_EPOCH


def test_distill_refuses_a_source_without_debians_trust_store(tmp_path):
    source = tmp_path / "rootfs.tar"
    make_rootfs(source, debian_store=False)
    with pytest.raises(SutraError, match=r"no /etc/ssl/certs/ca-certificates\.crt; install ca-certificates"):
        distill(source, tmp_path / "out.tar", keep=["app"], drop=[])


def tar_text(path: Path, name: str) -> str:
    with tarfile.open(path) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read().decode()
