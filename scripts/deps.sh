#!/usr/bin/env bash
# Installs the Debian packages notigate needs, if any is missing. Usage: scripts/deps.sh [build|test]
#   build: compilers and libraries, redis-server and curl (enough to build and run the system)
#   test:  the same plus what the tests use (Check, libcurl, openssl)
set -euo pipefail
what=${1:-build}
pkgs=(build-essential cmake pkg-config libh2o-evloop-dev libwslay-dev libssl-dev libnng-dev libmsgpack-dev
      libhiredis-dev libjansson-dev check libcurl4-openssl-dev redis-server curl ca-certificates)
[ "$what" = test ] && pkgs+=(openssl procps)

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
