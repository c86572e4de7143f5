#!/usr/bin/env bash
# Soak: the example portal under wrk for a long run of mixed traffic (returning visitors asking
# for the landing page, refreshing their place and opening gated pages; new visitors joining the
# line and leaving it), then its resident memory after the first minute and at the end, and the
# count of 5xx answers. The check-in and claim timeouts are 15 s, so that the line and the pass
# table reach their steady size well inside the first minute: the comparison is then about
# leaks, not about tables still filling.
#   bash examples/portal/soak.sh [DURATION_SECONDS]      (default 600)
# PORTAL_BIN=path runs that binary instead of building the release one. Needs wrk.
set -euo pipefail

duration="${1:-600}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "${here}/../.." && pwd)"
command -v wrk >/dev/null || { echo "wrk is not installed (Debian package wrk)" >&2; exit 1; }
bin="${PORTAL_BIN:-}"
if [ -z "${bin}" ]; then
    (cd "${root}" && cargo build --release --example portal)
    bin="${root}/target/release/examples/portal"
fi
work="$(mktemp -d)"
pid=""
cleanup() {
    if [ -n "${pid}" ]; then kill -INT "${pid}" 2>/dev/null || true; wait "${pid}" 2>/dev/null || true; fi
    rm -rf "${work}"
}
trap cleanup EXIT

metrics_token="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PORTAL_ADMIN_TOKEN="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    PORTAL_METRICS_TOKEN="${metrics_token}" \
    "${bin}" --addr 127.0.0.1:0 --rate 500 --burst 500 --max-active 200000 \
    --checkin-timeout-secs 15 --claim-timeout-secs 15 \
    --new-visitors-per-minute 0 --data "${work}/data" >"${work}/out" 2>"${work}/err" &
pid=$!
for _ in $(seq 1 200); do
    grep -q "listening on" "${work}/out" 2>/dev/null && break
    sleep 0.1
done
addr="$(sed -n 's/^listening on //p' "${work}/out" | head -1)"
[ -n "${addr}" ] || { echo "the portal did not start:" >&2; cat "${work}/err" >&2; exit 1; }
rss() { awk '/VmRSS/ {print $2}' "/proc/${pid}/status"; }
# The line's and the passes' counts, from /metrics (the state a bounded table holds).
room() {
    curl -s --max-time 5 -H "Authorization: Bearer ${metrics_token}" "${addr}/metrics" |
        awk '/^surgegate_(waiting|active) / { printf "%s %s ", substr($1, 11), $2 }'
}

# Returning visitors (one a wrk thread) on 56 connections, new visitors on 8.
wrk -t8 -c56 -d"${duration}s" --timeout 10s -s "${here}/soak.lua" "${addr}" -- returning \
    >"${work}/wrk" &
wrk_pid=$!
wrk -t1 -c8 -d"${duration}s" --timeout 10s -s "${here}/soak.lua" "${addr}" -- new \
    >"${work}/wrk_new" &
new_pid=$!
first=$(( duration < 60 ? duration / 2 : 60 ))
# RSS every SOAK_SAMPLE_SECONDS (default 60): a leak grows without end, a bounded table that is
# still filling levels off.
sample="${SOAK_SAMPLE_SECONDS:-60}"
elapsed=0
rss_first=""
while kill -0 "${wrk_pid}" 2>/dev/null && ((elapsed < duration)); do
    step=$(( sample < duration - elapsed ? sample : duration - elapsed ))
    if [ -z "${rss_first}" ] && ((elapsed < first && elapsed + step > first)); then
        step=$(( first - elapsed ))
    fi
    sleep "${step}"
    elapsed=$(( elapsed + step ))
    now_rss="$(rss)"
    ((elapsed == first)) && rss_first="${now_rss}"
    echo "RSS at ${elapsed} s: ${now_rss} KiB; $(room)"
done
wait "${wrk_pid}"
wait "${new_pid}"
rss_end="$(rss)"
echo "returning visitors:"
cat "${work}/wrk"
echo "new visitors:"
cat "${work}/wrk_new"
echo "RSS after ${first} s: ${rss_first} KiB; at the end (${duration} s): ${rss_end} KiB;" \
    "change: $(( (rss_end - rss_first) * 100 / rss_first ))%"
