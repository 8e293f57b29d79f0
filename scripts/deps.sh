#!/usr/bin/env bash
# Installs the Debian packages notigate needs, if any is missing. Usage: scripts/deps.sh [build|test]
#   build: compilers and libraries, redis-server and curl (enough to build and run the system)
#   test:  the same plus what the tests use (Check, libcurl, openssl; the bench test's wrk, ab, h2load and python3;
#          the e2e tests' chromium, nodejs and npm)
set -euo pipefail
what=${1:-build}
pkgs=(build-essential cmake pkg-config libh2o-evloop-dev libwslay-dev libssl-dev libnng-dev libmsgpack-dev
      libhiredis-dev libjansson-dev check libcurl4-openssl-dev redis-server curl ca-certificates)
[ "$what" = test ] && pkgs+=(openssl procps wrk apache2-utils nghttp2-client python3)
[ "$what" = test ] && pkgs+=(clang-14 libclang-rt-14-dev llvm-14) # scripts/fuzz.sh: clang, libFuzzer, llvm-symbolizer
# the e2e tests (tests/e2e): Debian's Chromium, and Node.js with npm unless a node is already there (it may be a newer
# one, e.g. in /usr/local; the tests need Node.js 18 or later, which Debian 12's nodejs is)
[ "$what" = test ] && pkgs+=(chromium)
[ "$what" = test ] && ! command -v node >/dev/null && pkgs+=(nodejs npm)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo ">> installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
