#!/usr/bin/env bash
# Fuzzes each target for SECONDS, merges what it found into the kept corpus (fuzz/corpus/<target>/,
# minimised: only inputs that add coverage stay), prints each target's executions and adds them to
# fuzz/executions.tsv (the cumulative count per target).
#
#   fuzz/run.sh SECONDS [TARGET...]     (no TARGET: every target in fuzz/Cargo.toml)
#
# Environment:
#   FUZZ_JOBS      parallel fuzzing processes per target (default 1; each one uses a core)
#   FUZZ_KEEP=0    fuzz without touching the kept corpus or the executions file (what CI does)
#
# Stops at the first target that finds a failure (the input is left in fuzz/artifacts/<target>/,
# the log in target/fuzz-logs/<target>.log) and keeps the corpus and the counts as they were.
set -euo pipefail
cd "$(dirname "$0")"

usage() { echo "usage: fuzz/run.sh SECONDS [TARGET...]" >&2; exit 2; }
[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -ge 1 && $1 -le 86400 ]] || usage
seconds=$1
shift
jobs="${FUZZ_JOBS:-1}"
[[ $jobs =~ ^[0-9]+$ && $jobs -ge 1 && $jobs -le 64 ]] || { echo "FUZZ_JOBS must be 1..64" >&2; exit 2; }
keep="${FUZZ_KEEP:-1}"

all=$(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' Cargo.toml | grep -v '^surgegate-fuzz$' || true)
targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets <<<"$all"
fi
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$all" || { echo "no fuzz target named $t (have: $(echo $all))" >&2; exit 2; }
done

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    cargo=(cargo +nightly)
else
    # The instrumentation flags are unstable; stable accepts them with RUSTC_BOOTSTRAP.
    export RUSTC_BOOTSTRAP=1
    cargo=(cargo)
fi

# Every target is built in one cargo call, without cargo-fuzz installed: release, debug
# assertions and overflow checks on, libFuzzer's coverage instrumentation, AddressSanitizer (the
# book walks raw pointers). `cargo fuzz run T` still works; it builds with its own flags.
host="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="--cfg fuzzing -Cdebug-assertions -Coverflow-checks -Zsanitizer=address \
-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0:detect_leaks=1}"
build_args=(build --release --target "$host")
for t in "${targets[@]}"; do build_args+=(--bin "$t"); done
"${cargo[@]}" "${build_args[@]}"
bins="$(pwd)/target/$host/release"
fuzz_run() { local t=$1; shift; "$bins/$t" -artifact_prefix="$(pwd)/artifacts/$t/" "$@"; }

scratch="$(pwd)/../target/fuzz-scratch"
logs="$(pwd)/../target/fuzz-logs"
mkdir -p "$logs"
tsv="executions.tsv"
[[ -f $tsv ]] || printf 'target\texecutions\tseconds\truns\n' > "$tsv"

for t in "${targets[@]}"; do
    kept="corpus/$t"
    found="$scratch/$t/found"
    rm -rf "$scratch/$t"
    mkdir -p "$kept" "$found" "$scratch/$t/merged"
    log="$logs/$t.log"
    # New inputs go to the first directory (scratch); the kept corpus is only read.
    parallel=()
    ((jobs == 1)) || parallel=(-jobs="$jobs" -workers="$jobs")
    mkdir -p "artifacts/$t"
    if ! fuzz_run "$t" "$found" "$kept" -max_total_time="$seconds" -timeout=10 \
        "${parallel[@]}" -print_final_stats=1 > "$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz target $t found a failure (input saved under fuzz/artifacts/$t, log $log)" >&2
        exit 1
    fi
    # With -jobs, each worker writes its own log (fuzz-N.log, in this directory).
    if ((jobs > 1)); then
        cat fuzz-[0-9]*.log >> "$log" 2>/dev/null || true
        rm -f fuzz-[0-9]*.log
    fi
    runs=$(awk '/^stat::number_of_executed_units:/ { n += $2 } END { print n + 0 }' "$log")
    echo "$t: $runs executions in $seconds s"
    if [[ $keep != 1 ]]; then
        continue
    fi
    # Keep the inputs of the old corpus and the new ones that add coverage, each set minimised.
    fuzz_run "$t" "$scratch/$t/merged" "$kept" "$found" -merge=1 \
        > "$logs/$t.merge.log" 2>&1 || { tail -n 30 "$logs/$t.merge.log"; exit 1; }
    rm -rf "$kept"
    mv "$scratch/$t/merged" "$kept"
    echo "$t: kept corpus $(find "$kept" -type f | wc -l) inputs, $(cat "$kept"/* | wc -c) bytes"
    awk -F'\t' -v t="$t" -v n="$runs" -v s="$seconds" 'BEGIN { OFS = "\t"; done = 0 }
        NR > 1 && $1 == t { $2 += n; $3 += s; $4 += 1; done = 1 }
        { print }
        END { if (!done) print t, n, s, 1 }' "$tsv" > "$tsv.new"
    mv "$tsv.new" "$tsv"
done
if [[ $keep == 1 ]]; then
    echo
    cat "$tsv"
fi
