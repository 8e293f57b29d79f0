#!/usr/bin/env bash
# Runs end-to-end test files with node's test runner:  tests/e2e/run.sh [name.test.js ...]   (every *.test.js if none)
#   tests/e2e/run.sh --install   only install the npm packages (ctest's e2e_npm_ci fixture)
# Installs the npm packages first (npm ci, exactly package-lock.json) when node_modules is missing or older than the
# lock file. NOTIGATE_BIN_DIR names the directory of the binaries under test (default: <repo>/build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${NOTIGATE_BIN_DIR:-}" ]; then # relative to where we were called from
  [ -d "$NOTIGATE_BIN_DIR" ] || { echo "e2e: NOTIGATE_BIN_DIR=$NOTIGATE_BIN_DIR is not a directory" >&2; exit 1; }
  NOTIGATE_BIN_DIR=$(cd "$NOTIGATE_BIN_DIR" && pwd)
  export NOTIGATE_BIN_DIR
fi
cd "$here"

command -v node >/dev/null || { echo "e2e: node is missing: scripts/deps.sh test installs it" >&2; exit 1; }
command -v npm >/dev/null || { echo "e2e: npm is missing: scripts/deps.sh test installs it" >&2; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "e2e: node $(node --version) is too old: the tests need Node.js 18 or later" >&2
  exit 1
fi

# one npm ci at a time (ctest -j), and only when needed
(
  flock 9
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo ">> e2e: npm ci" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
  fi
) 9>"${TMPDIR:-/tmp}/notigate-e2e-npm.lock"

[ "${1:-}" = --install ] && exit 0
[ $# -eq 0 ] && set -- *.test.js
exec node --test --test-reporter=spec "$@"
