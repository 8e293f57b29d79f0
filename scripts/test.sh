#!/usr/bin/env bash
# Runs every test: installs missing Debian packages, builds, then ctest with all labels (unit, integration, deploy).
#   NOTIGATE_SKIP_DEPLOY=1   leave out the deploy test (it builds Docker images and needs a Docker engine)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh" test
"$root/scripts/build.sh"
cd "${BUILD_DIR:-$root/build}"
exclude=()
[ "${NOTIGATE_SKIP_DEPLOY:-}" = 1 ] && exclude=(-LE deploy)
ctest --output-on-failure "${exclude[@]}"
