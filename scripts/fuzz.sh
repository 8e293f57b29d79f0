#!/usr/bin/env bash
# Fuzzes every libFuzzer target of tests/fuzz (one per parser of untrusted input) for a while, after replaying each
# target's committed corpus, and prints one line per target: executions, time, executions per second, crashes found,
# and the size of the corpus the fuzzer held at its end (inputs).
#
#   scripts/fuzz.sh [seconds-per-target]        (default 60)
#
#   FUZZ_JOBS=N        fuzzing processes per target, run at once (default: the number of CPUs)
#   FUZZ_RUNS=N        each process stops after N executions instead (then the seconds, if given, are a time limit)
#   FUZZ_TARGETS="a b" only these targets (default: all)
#   FUZZ_BUILD_DIR     the clang build (default build-fuzz/, configured with NOTIGATE_FUZZ=ON)
#   FUZZ_OUT           where the run keeps what it finds (default $FUZZ_BUILD_DIR/fuzz-out): per target, corpus/ (new
#                      inputs), crash-*/leak-*/timeout-*/oom-* (inputs that failed) and the fuzzers' logs
#
# Exits 1 if a target crashed (its inputs are listed: add each to tests/fuzz/corpus/<target>/, which the "fuzz" ctest
# label replays, and fix the bug). Needs clang and libclang-rt (scripts/deps.sh test installs them).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
runs=${FUZZ_RUNS:-}
[ -n "$runs" ] && seconds=${1:-0} # 0: no time limit
jobs=${FUZZ_JOBS:-$(nproc)}
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
out=${FUZZ_OUT:-$build/fuzz-out}
targets=(${FUZZ_TARGETS:-fuzz_proto_request fuzz_proto_reply fuzz_publish_body fuzz_http_route fuzz_auth_token fuzz_stream_entry
          fuzz_ws_frame fuzz_ws_native fuzz_socketio fuzz_orders})

cc=$(command -v clang-14 || command -v clang || true)
[ -n "$cc" ] || { echo "fuzz.sh: clang not found (scripts/deps.sh test installs it)" >&2; exit 2; }
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNOTIGATE_FUZZ=ON \
      -DNOTIGATE_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target notigate_fuzzers >/dev/null

symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
export ASAN_OPTIONS=detect_leaks=1${symbolizer:+:external_symbolizer_path=$symbolizer}
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# the committed corpora first: every input that ever crashed a target is there, and must not any more
(cd "$build" && ctest --output-on-failure -L fuzz)

if [ -n "$runs" ]; then
    echo "fuzzing ${#targets[@]} target(s), ${jobs} process(es) each, $runs executions per process"
else
    echo "fuzzing ${#targets[@]} target(s), ${seconds} s each, ${jobs} process(es) each"
fi
failed=0 crashed=0
for t in "${targets[@]}"; do
    dir=$out/$t
    mkdir -p "$dir/corpus"
    rm -f "$dir"/fuzz-*.log
    touch "$dir/.started" # what this run finds is newer
    # -jobs/-workers: that many processes at once, sharing the corpus directory; each stops after -max_total_time
    dict=$root/tests/fuzz/dict/$t.dict # tokens of the target's format, if it has some
    [ -f "$dict" ] || dict=
    start=$(date +%s.%N)
    (cd "$dir" && "$build/tests/fuzz/$t" -jobs="$jobs" -workers="$jobs" -max_total_time="$seconds" ${runs:+-runs=$runs} \
        ${dict:+-dict=$dict} -timeout=10 -print_final_stats=1 -artifact_prefix="$dir/" corpus "$root/tests/fuzz/corpus/$t" \
        >/dev/null 2>&1) || true
    elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    execs=0 corpus=0
    for log in "$dir"/fuzz-*.log; do
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        [ -n "$n" ] || n=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#') # a crashed job may not print its stats
        execs=$((execs + ${n:-0}))
        # the inputs the job kept at its end (libFuzzer's "corp: N/size"): the largest over the jobs
        c=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | tr -dc '0-9')
        [ "${c:-0}" -gt "$corpus" ] && corpus=$c
    done
    crashes=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) \
              -newer "$dir/.started" | wc -l)
    printf '%-20s %11d executions in %6.0f s  %7.0f exec/s  %d crash(es)  corpus %d\n' "$t" "$execs" "$elapsed" \
        "$(awk -v n="$execs" -v t="$elapsed" 'BEGIN { print n / t }')" "$crashes" "$corpus"
    if [ "$crashes" -ne 0 ]; then
        failed=1
        crashed=$((crashed + 1))
        find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) \
             -newer "$dir/.started" -printf '    %p\n'
        grep -h -m1 -A30 -E '^==[0-9]+==ERROR|runtime error:|invariant broken' "$dir"/fuzz-*.log | head -60 | sed 's/^/    /'
    fi
done
echo "fuzz: $((${#targets[@]} - crashed)) passed, $crashed failed"
exit $failed
