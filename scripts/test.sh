#!/usr/bin/env bash
# Runs every test: installs missing Debian packages, builds, then
#   1. ctest with all labels (unit, integration, e2e, deploy, ...) on the normal build (build/);
#   2. the unit, integration and e2e tests again on a sanitizer build (build-asan/: AddressSanitizer, LeakSanitizer
#      and UndefinedBehaviorSanitizer, NOTIGATE_SANITIZE=ON): any report fails, in the test runners and in the gateway
#      and worker processes the integration and e2e tests start, leaks at their clean exit included (tests/lsan.supp
#      lists the libraries' own leaks that are tolerated, each with its reason);
#   3. a short fuzzing run of every libFuzzer target (scripts/fuzz.sh, build-fuzz/), after replaying their corpora.
#   NOTIGATE_SKIP_DEPLOY=1    leave out the deploy test (it builds Docker images and needs a Docker engine)
#   NOTIGATE_SKIP_SANITIZE=1  leave out step 2
#   NOTIGATE_FUZZ_SECONDS=N   seconds per fuzz target in step 3 (default 15; 0 leaves step 3 out)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh" test
"$root/scripts/build.sh"
(
    cd "${BUILD_DIR:-$root/build}"
    exclude=()
    [ "${NOTIGATE_SKIP_DEPLOY:-}" = 1 ] && exclude=(-LE deploy)
    ctest --output-on-failure "${exclude[@]}"
)

if [ "${NOTIGATE_SKIP_SANITIZE:-}" != 1 ]; then
    asan=${ASAN_BUILD_DIR:-$root/build-asan}
    echo ">> sanitizer build ($asan): unit, integration and e2e tests" >&2
    BUILD_DIR=$asan "$root/scripts/build.sh" -DNOTIGATE_SANITIZE=ON
    # the sanitizers' options are set per test by CMake (NOTIGATE_SANITIZER_ENV in CMakeLists.txt)
    (cd "$asan" && ctest --output-on-failure -L '^(unit|integration|e2e)$')
fi

fuzz_seconds=${NOTIGATE_FUZZ_SECONDS:-15}
if [ "$fuzz_seconds" != 0 ]; then
    echo ">> fuzz smoke run: ${fuzz_seconds} s per target" >&2
    "$root/scripts/fuzz.sh" "$fuzz_seconds"
fi
