#!/usr/bin/env bash
# The plan's deploy-optimized.sh, now a thin wrapper over `inv`: same variables, same phases,
# but images are measured against their budgets, health is polled instead of slept on, and a
# failed rollout or smoke test rolls back on its own.
#
#   REGISTRY  where to push (default docker.io/sutraai)
#   VERSION   v2 (default) or v1
#   TAG       the release to build and ship (default: the checkout's git tag or commit)
#   PUSH      true: tag and push to REGISTRY
#   DEPLOY    k8s: `inv deploy` to K8S_ENV (default staging; production asks first, or YES=true)
#             local: `inv deploy --env local` (build, sizes, compose up, smoke)
# INVOKE_RUN_DRY=true prints every command instead of running it.
set -euo pipefail
cd "$(dirname "$0")/.."

REGISTRY="${REGISTRY:-docker.io/sutraai}"
VERSION="${VERSION:-v2}"
PUSH="${PUSH:-false}"
DEPLOY="${DEPLOY:-}"
K8S_ENV="${K8S_ENV:-staging}"
# shellcheck disable=SC2206  # INV may be a command with arguments (the tests use `python -m invoke`)
INV=(${INV:-.venv/bin/inv})
tag=()
[[ -n "${TAG:-}" ]] && tag=(--tag "${TAG}")

echo "Deploying the optimized Sutra AI stack (${VERSION})" >&2
case "${DEPLOY}" in
  k8s)
    # deploy builds, gates on sizes, pushes to the environment's registry and applies.
    env_key=$(printf '%s' "${K8S_ENV}" | tr '[:lower:]-' '[:upper:]_')
    export "INVOKE_SUTRA_ENVIRONMENTS_${env_key}_REGISTRY=${REGISTRY}"
    yes=()
    [[ "${YES:-false}" == "true" ]] && yes=(--yes)
    exec "${INV[@]}" deploy --env "${K8S_ENV}" --version "${VERSION}" "${tag[@]}" "${yes[@]}"
    ;;
  local)
    "${INV[@]}" deploy --env local --version "${VERSION}" "${tag[@]}"
    ;;
  "")
    "${INV[@]}" build --version "${VERSION}" "${tag[@]}" sizes --version "${VERSION}"
    ;;
  *)
    echo "DEPLOY=${DEPLOY}: expected k8s, local or nothing" >&2
    exit 2
    ;;
esac
if [[ "${PUSH}" == "true" ]]; then
  "${INV[@]}" push --registry "${REGISTRY}" --version "${VERSION}" "${tag[@]}"
fi
