#!/usr/bin/env bash
# Compares the in-memory hot path (reserve -> confirm -> release, `examples/cycles.rs`) of this
# checkout against a git revision: both are built in release, then run alternately RUNS times,
# and the ratio of median ns per cycle (this / base) is printed for 1 and 2 threads.
#
#   bash benches/hot_path_vs.sh <rev> [runs]      e.g. bash benches/hot_path_vs.sh b08af4a 7
set -euo pipefail
cd "$(dirname "$0")/.."
rev="${1:?usage: hot_path_vs.sh <git revision> [runs]}"
runs="${2:-7}"
# The base checkout lives outside this workspace: inside it, cargo would take the base's
# manifest for a member of this checkout's workspace and refuse to build it.
base="${TMPDIR:-/tmp}/surgegate-hot-path-base"

if [ ! -d "$base" ]; then
    git worktree add --detach "$base" "$rev" >/dev/null
else
    git -C "$base" checkout --quiet --detach "$rev"
fi
(cd "$base" && cargo build --quiet --release --example cycles)
cargo build --quiet --release --example cycles

# "... on N thread(s): ... (M ns per cycle, ..." -> "N M"
ns() { "$1" | sed -nE 's/.* on ([0-9]+) thread\(s\): .*\(([0-9]+) ns per cycle.*/\1 \2/p'; }

results=$(mktemp)
for i in $(seq "$runs"); do
    ns "$base/target/release/examples/cycles" | sed 's/^/base /' >> "$results"
    ns target/release/examples/cycles | sed 's/^/this /' >> "$results"
    echo "run $i/$runs done" >&2
done
python3 - "$results" "$rev" "$runs" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print(f"hot path, `bash benches/hot_path_vs.sh {sys.argv[2]} {sys.argv[3]}` (median ns per cycle over {sys.argv[3]} alternating runs)")
for t in sorted({r[1] for r in rows}):
    med = {w: statistics.median(int(r[2]) for r in rows if r[0] == w and r[1] == t) for w in ("base", "this")}
    print(f"  {t} thread(s): base {med['base']:.0f} ns, this {med['this']:.0f} ns, this/base {med['this'] / med['base']:.3f}")
EOF
rm -f "$results"
