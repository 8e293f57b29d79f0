#!/usr/bin/env bash
# notigate's benchmark, in one command: installs what is missing (Debian packages; the peers' npm packages), builds
# notigate (build-bench/), the ceiling program (bench/ceiling.c) and the WebSocket load client (bench/ws_load.c), then
# bench/bench.py runs the HTTP half (a seeded private Redis, wrk, ab, h2load) and the WebSocket half (bench/ws_bench.py:
# idle sessions, fan-out, publish-to-delivery) on loopback (free ports; it starts and stops every process itself), and
# prints one table.
#
#   bench/run.sh            the full benchmark: notigate, the ceiling and the peers, 3 interleaved rounds (~60 min)
#   bench/run.sh --short    CI smoke run: no peers, 1 round, 2 s per HTTP run, small WebSocket units (~2 min)
#   bench/run.sh --perf     perf record -g notigate's processes under wrk load; reports in bench/out/runs/*/perf-*.txt
#   Other options go to bench/bench.py (--parts http|ws, --rounds, --duration, --warmup, --conns 100,1000, --keep;
#   see --help).
#
# Environment:
#   NOTIGATE_REV       benchmark this git revision of notigate (e.g. HEAD: the last commit, without uncommitted changes),
#                      exported with git archive into BENCH_BUILD_DIR/src (default: the working tree as it is)
#   NOTIGATE_BIN_DIR   use the gateway, notifier and history-svc already built there (default: build them)
#   BENCH_BUILD_DIR    where to build (default: build-bench/)
#   BENCH_OUT          work and result directory (default: bench/out/; emptied of earlier runs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build-bench}
out=${BENCH_OUT:-$root/bench/out}

short=0 perf=0 peers=1
for a in "$@"; do
  case "$a" in
  --short) short=1 peers=0 ;;
  --perf) perf=1 peers=0 ;;
  -h | --help) sed -n '2,19p' "$0"; exec /usr/bin/python3 "$root/bench/bench.py" --help ;;
  esac
done

# ---- what the bench needs ------------------------------------------------------------------------------------------
"$root/scripts/deps.sh" build
pkgs=(wrk apache2-utils nghttp2-client python3)
[ $peers = 1 ] && pkgs+=(python3-fastapi uvicorn python3-httpx python3-redis python3-uvloop python3-httptools)
[ $perf = 1 ] && pkgs+=(linux-perf)
[ $peers = 1 ] && ! command -v node >/dev/null && pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo ">> installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ $peers = 1 ]; then
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$node_major" -ge 20 ] || { echo "!! the peers need Node.js 20 or later (found $(node --version))" >&2; exit 1; }
  (cd "$root/bench/peers" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

# ---- build ---------------------------------------------------------------------------------------------------------
if [ -n "${NOTIGATE_BIN_DIR:-}" ]; then
  BENCH_NOTIGATE_REV="binaries in $NOTIGATE_BIN_DIR"
elif [ -n "${NOTIGATE_REV:-}" ]; then
  rev=$(git -C "$root" rev-parse --short "$NOTIGATE_REV")
  rm -rf "$build/src" && mkdir -p "$build/src"
  git -C "$root" archive "$rev" | tar -x -C "$build/src"
  echo ">> building notigate $rev in $build/notigate" >&2
  BUILD_DIR=$build/notigate BUILD_TYPE=RelWithDebInfo "$build/src/scripts/build.sh" -DNOTIGATE_TESTS=OFF >/dev/null
  NOTIGATE_BIN_DIR=$build/notigate BENCH_NOTIGATE_REV="commit $rev"
else
  echo ">> building notigate in $build/notigate" >&2
  BUILD_DIR=$build/notigate BUILD_TYPE=RelWithDebInfo "$root/scripts/build.sh" -DNOTIGATE_TESTS=OFF >/dev/null
  NOTIGATE_BIN_DIR=$build/notigate
  BENCH_NOTIGATE_REV="working tree $(git -C "$root" describe --always --dirty 2>/dev/null || echo '(not a git checkout)')"
fi
export BENCH_NOTIGATE_REV
cmake -S "$root/bench" -B "$build/bench" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build/bench" >/dev/null

# ---- run -----------------------------------------------------------------------------------------------------------
ulimit -n "$(ulimit -Hn)" # 1000 connections per side, 19,000 WebSocket sessions, and the tools' own
exec /usr/bin/python3 "$root/bench/bench.py" --root "$root" --bin-dir "$NOTIGATE_BIN_DIR" --ceiling "$build/bench/ceiling" \
  --out "$out" "$@"
