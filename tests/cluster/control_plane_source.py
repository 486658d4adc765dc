"""The test cluster's control plane, built from Debian's own source: kube-apiserver,
kube-controller-manager and kube-scheduler from bookworm's `kubernetes` source package (the
whole 1.20.2 tree with `vendor/`), compiled with Debian's Go; etcd is Debian's `etcd-server`.

Debian ships no kube-apiserver binary in any suite, PyPI and crates.io bundle none, and kind,
k3s and kwok need images or Go modules that cannot be fetched here: building the real source is
the way to a real API server on these machines.

One change to the source, `carry_ga_versions`: the manifests use autoscaling/v2 and policy/v1,
which 1.20 serves only as v2beta2 and v1beta1, with the same fields. The v2beta2 and v1beta1
types are carried under the GA versions (API types, internal conversion and defaulting, the
group's install with the storage version unchanged, the REST storage, the enabled versions and
the aggregator's priorities), so the server serves them, OpenAPI and server-side apply included.
Fields newer than 1.20 are not carried: the test overlay removes them (k8s/README).

Run as a script it builds (or finds cached) the binaries and prints their folder:

    python -m tests.cluster.control_plane_source      # ~11 min on 2 cores, then cached

The binaries go under ``$SUTRA_K8S_CACHE`` (default ``~/.cache/sutra-deploy/k8s``), in a folder
named by the recipe's hash (this file, the source version, the Go version): rebuilt only when
missing or when the recipe changes. The Go build cache (about 1 GB) stays beside them.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

SOURCE_PACKAGE = "kubernetes"
SOURCE_VERSION = "1.20.5+really1.20.2-1.1+deb12u1"
SUITE = "bookworm"
GO_PACKAGE = "golang-1.19-go"
GO_ROOT = Path("/usr/lib/go-1.19")
APT_PACKAGES = (GO_PACKAGE, "etcd-server", "make", "dpkg-dev", "rsync")
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
GIT_VERSION = "v1.20.2"
MIRROR_FILE = Path("/etc/apt/sources.list.d/debian.sources")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

# (group, the version 1.20 serves, the GA version the manifests use)
CARRIED = (("autoscaling", "v2beta2", "v2"), ("policy", "v1beta1", "v1"))


def cache_root() -> Path:
    return Path(os.environ.get("SUTRA_K8S_CACHE") or Path.home() / ".cache" / "sutra-deploy" / "k8s")


def recipe_hash() -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(f"{SOURCE_VERSION} {GO_PACKAGE}".encode())
    return digest.hexdigest()[:16]


def binaries_folder() -> Path:
    return cache_root() / f"control-plane-{recipe_hash()}"


def built() -> Path | None:
    """The folder holding the three binaries for this recipe, if they were built."""
    folder = binaries_folder()
    if all(os.access(folder / name, os.X_OK) for name in BINARIES):
        return folder
    return None


def log(message: str) -> None:
    print(f"control plane: {message}", file=sys.stderr, flush=True)


def run(argv: list[str], **kwargs) -> None:
    log("$ " + " ".join(argv))
    subprocess.run(argv, check=True, **kwargs)


def install_packages() -> None:
    missing = [
        name
        for name in APT_PACKAGES
        if subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True).stdout
        != "install ok installed"
    ]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"control plane: please install {' '.join(missing)} (apt-get install) and run again")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)


def mirror() -> str:
    """The machine's own Debian mirror (deb822 or one-line sources), for the source package."""
    text = MIRROR_FILE.read_text() if MIRROR_FILE.exists() else ""
    if not text and Path("/etc/apt/sources.list").exists():
        text = Path("/etc/apt/sources.list").read_text()
    for match in re.finditer(r"(?m)^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s*)?)(\S+)", text):
        if "security" not in match.group(1):
            return match.group(1)
    return DEFAULT_MIRROR


def fetch_source(work: Path) -> Path:
    """Debian's source package, unpacked with its patches applied: ``work/src``."""
    tree = work / "src"
    if (tree / "Makefile").exists() and (tree / ".sutra-carried").exists():
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    apt = work / "apt"
    for sub in ("lists/partial", "cache/archives/partial"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    # The machine's apt sources have binary lines only: a private list adds the source line.
    (apt / "sources.list").write_text(f"deb-src [signed-by={KEYRING}] {mirror()} {SUITE} main\n")
    options = [
        f"-oDir::Etc::SourceList={apt / 'sources.list'}",
        "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={apt / 'lists'}",
        f"-oDir::Cache={apt / 'cache'}",
    ]
    run(["apt-get", *options, "-qq", "update"])
    run(["apt-get", *options, "source", "--download-only", f"{SOURCE_PACKAGE}={SOURCE_VERSION}"], cwd=work)
    dsc = next(work.glob(f"{SOURCE_PACKAGE}_*.dsc"))
    run(["dpkg-source", "--no-check", "-x", dsc.name, "src"], cwd=work, stdout=subprocess.DEVNULL)
    carry_ga_versions(tree)
    (tree / ".sutra-carried").write_text(recipe_hash() + "\n")
    return tree


def carry_ga_versions(tree: Path) -> None:
    """Serve each CARRIED beta version's types under its GA version too (see the module's doc)."""
    for group, beta, ga in CARRIED:
        for parent in (tree / "staging/src/k8s.io/api" / group, tree / "pkg/apis" / group):
            _copy_version(parent / beta, parent / ga, beta, ga)
    _edit(
        tree / "pkg/apis/autoscaling/install/install.go",
        (
            '"k8s.io/kubernetes/pkg/apis/autoscaling/v2beta2"\n',
            '"k8s.io/kubernetes/pkg/apis/autoscaling/v2beta2"\n'
            '\t"k8s.io/kubernetes/pkg/apis/autoscaling/v2"\n',
        ),
        (
            "utilruntime.Must(v2beta2.AddToScheme(scheme))\n",
            "utilruntime.Must(v2beta2.AddToScheme(scheme))\n\tutilruntime.Must(v2.AddToScheme(scheme))\n",
        ),
        # v1 stays first: it is the storage version.
        (
            "SetVersionPriority(v1.SchemeGroupVersion, ",
            "SetVersionPriority(v1.SchemeGroupVersion, v2.SchemeGroupVersion, ",
        ),
    )
    _edit(
        tree / "pkg/apis/policy/install/install.go",
        (
            '"k8s.io/kubernetes/pkg/apis/policy/v1beta1"\n',
            '"k8s.io/kubernetes/pkg/apis/policy/v1beta1"\n'
            '\tpolicyv1 "k8s.io/kubernetes/pkg/apis/policy/v1"\n',
        ),
        (
            "utilruntime.Must(v1beta1.AddToScheme(scheme))\n",
            "utilruntime.Must(v1beta1.AddToScheme(scheme))\n"
            "\tutilruntime.Must(policyv1.AddToScheme(scheme))\n",
        ),
        # v1beta1 stays first: it is the storage version.
        (
            "SetVersionPriority(v1beta1.SchemeGroupVersion)",
            "SetVersionPriority(v1beta1.SchemeGroupVersion, policyv1.SchemeGroupVersion)",
        ),
    )
    _edit(
        tree / "pkg/registry/autoscaling/rest/storage_autoscaling.go",
        (
            'autoscalingapiv2beta2 "k8s.io/kubernetes/pkg/apis/autoscaling/v2beta2"\n',
            'autoscalingapiv2beta2 "k8s.io/kubernetes/pkg/apis/autoscaling/v2beta2"\n'
            '\tautoscalingapiv2 "k8s.io/kubernetes/pkg/apis/autoscaling/v2"\n',
        ),
        (
            "\treturn apiGroupInfo, true, nil\n",
            "\tif apiResourceConfigSource.VersionEnabled(autoscalingapiv2.SchemeGroupVersion) {\n"
            "\t\tif storageMap, err := p.v2beta2Storage(apiResourceConfigSource, restOptionsGetter);"
            " err != nil {\n"
            "\t\t\treturn genericapiserver.APIGroupInfo{}, false, err\n"
            "\t\t} else {\n"
            "\t\t\tapiGroupInfo.VersionedResourcesStorageMap[autoscalingapiv2.SchemeGroupVersion.Version]"
            " = storageMap\n"
            "\t\t}\n"
            "\t}\n"
            "\treturn apiGroupInfo, true, nil\n",
        ),
    )
    _edit(
        tree / "pkg/registry/policy/rest/storage_policy.go",
        (
            'policyapiv1beta1 "k8s.io/api/policy/v1beta1"\n',
            'policyapiv1beta1 "k8s.io/api/policy/v1beta1"\n\tpolicyapiv1 "k8s.io/api/policy/v1"\n',
        ),
        (
            "\treturn apiGroupInfo, true, nil\n}\n",
            "\tif apiResourceConfigSource.VersionEnabled(policyapiv1.SchemeGroupVersion) {\n"
            "\t\tpdb, pdbStatus, err := poddisruptionbudgetstore.NewREST(restOptionsGetter)\n"
            "\t\tif err != nil {\n"
            "\t\t\treturn genericapiserver.APIGroupInfo{}, false, err\n"
            "\t\t}\n"
            "\t\tapiGroupInfo.VersionedResourcesStorageMap[policyapiv1.SchemeGroupVersion.Version]"
            " = map[string]rest.Storage{\n"
            '\t\t\t"poddisruptionbudgets": pdb, "poddisruptionbudgets/status": pdbStatus,\n'
            "\t\t}\n"
            "\t}\n"
            "\treturn apiGroupInfo, true, nil\n}\n",
        ),
    )
    _edit(
        tree / "pkg/controlplane/instance.go",
        (
            'autoscalingapiv2beta2 "k8s.io/api/autoscaling/v2beta2"\n',
            'autoscalingapiv2beta2 "k8s.io/api/autoscaling/v2beta2"\n'
            '\tautoscalingapiv2 "k8s.io/api/autoscaling/v2"\n'
            '\tpolicyapiv1 "k8s.io/api/policy/v1"\n',
        ),
        (
            "\t\tautoscalingapiv2beta2.SchemeGroupVersion,\n",
            "\t\tautoscalingapiv2beta2.SchemeGroupVersion,\n\t\tautoscalingapiv2.SchemeGroupVersion,\n"
            "\t\tpolicyapiv1.SchemeGroupVersion,\n",
        ),
    )
    _edit(
        tree / "cmd/kube-apiserver/app/aggregator.go",
        (
            '\t{Group: "autoscaling", Version: "v1"}:',
            '\t{Group: "autoscaling", Version: "v2"}: {group: 17500, version: 20},\n'
            '\t{Group: "policy", Version: "v1"}: {group: 17100, version: 15},\n'
            '\t{Group: "autoscaling", Version: "v1"}:',
        ),
    )


def _copy_version(source: Path, target: Path, beta: str, ga: str) -> None:
    """``source`` copied as ``target``, every mention of the beta version made the GA one.
    Generated deepcopy, conversion and defaulting code is left out (make generates it for the
    new package); so is the beta's lifecycle (a GA version has none) and its tests."""
    target.mkdir()
    for path in sorted(source.iterdir()):
        name = path.name
        if (
            name == "BUILD"
            or name.endswith("_test.go")
            or name.startswith(("zz_generated.deepcopy", "zz_generated.conversion", "zz_generated.defaults"))
            or name.startswith("zz_generated.prerelease-lifecycle")
        ):
            continue
        text = path.read_text()
        text = "\n".join(line for line in text.split("\n") if "+k8s:prerelease-lifecycle-gen" not in line)
        (target / name).write_text(text.replace(beta, ga))


def _edit(path: Path, *replacements: tuple[str, str]) -> None:
    text = path.read_text()
    for old, new in replacements:
        if text.count(old) != 1:
            raise SystemExit(
                f"control plane: {path} no longer has exactly one {old.strip()!r}; update the recipe"
            )
        text = text.replace(old, new)
    path.write_text(text)


def go_arch() -> str:
    return subprocess.run(
        [str(GO_ROOT / "bin" / "go"), "env", "GOARCH"], capture_output=True, text=True, check=True
    ).stdout.strip()


def build(work: Path, tree: Path, out: Path) -> None:
    gopath = work / "gopath"
    link = gopath / "src" / "k8s.io" / "kubernetes"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(tree)
    env = {
        **os.environ,
        "PATH": f"{GO_ROOT / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "GOROOT": str(GO_ROOT),
        "GOPATH": str(gopath),
        "GOCACHE": str(work / "go-cache"),
        "GO111MODULE": "off",
        "GOPROXY": "off",
        "CGO_ENABLED": "0",
        "KUBE_GIT_VERSION": GIT_VERSION,
        "KUBE_GIT_TREE_STATE": "clean",
    }
    what = " ".join(f"cmd/{name}" for name in BINARIES)
    started = time.monotonic()
    run(
        ["make", f"WHAT={what}", "GOLDFLAGS=-s -w", "UPDATE_API_KNOWN_VIOLATIONS=true"],
        cwd=link,
        env=env,
    )
    log(f"built in {time.monotonic() - started:.0f} s")
    staged = out.with_name(out.name + ".partial")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    for name in BINARIES:
        shutil.copy2(tree / "_output" / "local" / "bin" / "linux" / go_arch() / name, staged / name)
    os.replace(staged, out)


def ensure_built() -> Path:
    """The binaries' folder: cached, or built now (installing Go and etcd from Debian first)."""
    found = built()
    if found:
        return found
    install_packages()
    work = cache_root() / "work"
    work.mkdir(parents=True, exist_ok=True)
    tree = fetch_source(work)
    if (tree / ".sutra-carried").read_text().strip() != recipe_hash():
        shutil.rmtree(tree)
        tree = fetch_source(work)
    build(work, tree, binaries_folder())
    return binaries_folder()


if __name__ == "__main__":
    print(ensure_built())
