#!/usr/bin/env bash
# The gateway against nginx, one after another in one run, in front of the same upstream:
#   1. wrk straight to the upstream
#   2. through nginx (proxy_pass to an upstream block with keepalive)
#   3. through the gate on a bypassed path
#   4. through the gate on a gated path, with a valid pass (a wrk Lua script sends the cookie)
# then the booking API: hold + confirm + cancel cycles/s over HTTP with 64 connections,
# against the same cycle on the durable book in process.
#
#   gate/bench/vs_nginx.sh [-d 10s] [-c 64] [-t 2]
#
# The upstream is examples/tiny_upstream (hyper, every core, a 13-byte answer), not the
# Python upstream of the tests: that one answers a few thousand requests a second on one core,
# and all four runs would measure it instead of the proxies. Needs wrk, nginx and curl
# (Debian packages wrk, nginx, curl). Prints req/s, p50 and p99 of each run and the ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=10s connections=64 threads=2
while getopts "d:c:t:" opt; do
    case "${opt}" in
    d) duration="${OPTARG}" ;;
    c) connections="${OPTARG}" ;;
    t) threads="${OPTARG}" ;;
    *) echo "usage: $0 [-d 10s] [-c 64] [-t 2]" >&2; exit 2 ;;
    esac
done
for program in wrk nginx curl; do
    command -v "${program}" >/dev/null || { echo "${program} is not installed (Debian package ${program})" >&2; exit 1; }
done

cargo build --release -q -p surgegate-gate --bin surgegate-gate --example tiny_upstream --example api_cycles
bin=target/release
work="$(mktemp -d)"
# Every process the script starts runs in the background of this shell (never in a `$(…)`
# subshell, whose `$!` the trap would not see), and the trap stops each by its pid on any exit:
# the end, an error under `set -e`, Ctrl-C or SIGTERM.
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "${pid}" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "${pid}" 2>/dev/null || true; done
    rm -rf "${work}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts "$@" in the background with stdout to FILE and stderr to FILE.err.
launch() {
    local out="$1"
    shift
    "$@" >"${out}" 2>"${out}.err" &
    pids+=("$!")
}
# Waits for the `listening on` line in FILE; echoes ADDR (fails if it never comes).
address_of() {
    local out="$1"
    for _ in $(seq 1 200); do
        if grep -q "listening on" "${out}" 2>/dev/null; then
            sed -n 's#^listening on https\?://##p' "${out}" | head -1
            return 0
        fi
        sleep 0.05
    done
    echo "${out%.out} did not start:" >&2
    cat "${out}.err" >&2
    return 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

launch "${work}/upstream.out" "${bin}/examples/tiny_upstream" 127.0.0.1:0
upstream="$(address_of "${work}/upstream.out")"

nginx_port="$(free_port)"
mkdir -p "${work}/nginx/logs"
cat >"${work}/nginx/nginx.conf" <<NGINX
worker_processes auto;
daemon off;
pid ${work}/nginx/nginx.pid;
error_log ${work}/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    upstream app { server ${upstream}; keepalive 128; }
    server {
        listen 127.0.0.1:${nginx_port};
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
NGINX
launch "${work}/nginx.out" nginx -p "${work}/nginx" -c "${work}/nginx/nginx.conf"
nginx_up=no
for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:${nginx_port}/" >/dev/null; then nginx_up=yes; break; fi
    sleep 0.05
done
[ "${nginx_up}" = yes ] || { echo "nginx did not start:" >&2; cat "${work}/nginx/error.log" "${work}/nginx.out.err" >&2; exit 1; }

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"${work}/gate.secret"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"${work}/admin.token"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"${work}/service.token"
cat >"${work}/gate.toml" <<TOML
listen = "127.0.0.1:0"
upstream = "http://${upstream}"
gated = ["/gated"]
secret_file = "gate.secret"
admin_token_file = "admin.token"
service_token_file = "service.token"

[room]
rate_per_second = 100000
burst = 100000
max_active = 1000000
pass_ttl_secs = 3600

[book]
data_dir = "data"

[log]
level = "warn"
TOML
launch "${work}/gate.out" "${bin}/surgegate-gate" --config "${work}/gate.toml"
gate="$(address_of "${work}/gate.out")"

# A pass for the gated runs: the first request is admitted at once and sets the cookie.
pass="$(curl -s -o /dev/null -D - "http://${gate}/gated" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(sg_pass=[^;]*\).*/\1/p')"
[ -n "${pass}" ] || { echo "no pass from the gate" >&2; exit 1; }
cat >"${work}/pass.lua" <<LUA
wrk.headers["Cookie"] = "${pass}"
LUA
status="$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: ${pass}" "http://${gate}/gated")"
[ "${status}" = 200 ] || { echo "the pass was not accepted (${status})" >&2; exit 1; }

# One wrk run: "NAME REQ_PER_S P50_MS P99_MS".
to_ms() { awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); v/=1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v*=1000 } printf "%.3f", v }'; }
run() {
    local name="$1" url="$2" script="${3:-}"
    local args=(-t "${threads}" -c "${connections}" -d "${duration}" --latency)
    [ -n "${script}" ] && args+=(-s "${script}")
    local out
    out="$(wrk "${args[@]}" "${url}")"
    if grep -q "Non-2xx" <<<"${out}"; then echo "${name}: wrk saw non-2xx answers:" >&2; echo "${out}" >&2; exit 1; fi
    local rps p50 p99
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"${out}")"
    p50="$(awk '$1=="50%" {print $2}' <<<"${out}" | to_ms)"
    p99="$(awk '$1=="99%" {print $2}' <<<"${out}" | to_ms)"
    echo "${name} ${rps} ${p50} ${p99}"
}

results="${work}/results"
{
    run direct "http://${upstream}/"
    run nginx "http://127.0.0.1:${nginx_port}/"
    run gate_bypass "http://${gate}/open"
    run gate_gated "http://${gate}/gated" "${work}/pass.lua"
} | tee "${results}"

echo
printf '%-12s %12s %10s %10s\n' run req/s p50_ms p99_ms
awk '{ printf "%-12s %12.0f %10.3f %10.3f\n", $1, $2, $3, $4 }' "${results}"
echo
awk '
    { rps[$1]=$2; p99[$1]=$4 }
    END {
        printf "gate gated / nginx:  throughput %.2fx, p99 %.2fx\n", rps["gate_gated"]/rps["nginx"], p99["gate_gated"]/p99["nginx"]
        printf "gate bypass / nginx: throughput %.2fx, p99 %.2fx\n", rps["gate_bypass"]/rps["nginx"], p99["gate_bypass"]/p99["nginx"]
        printf "nginx / direct:      throughput %.2fx\n", rps["nginx"]/rps["direct"]
        printf "gate gated / direct: throughput %.2fx\n", rps["gate_gated"]/rps["direct"]
    }' "${results}"

echo
# api_cycles takes whole seconds: wrk's 30s, 2m or 1h as seconds.
case "${duration}" in
*h) seconds=$(( ${duration%h} * 3600 )) ;;
*m) seconds=$(( ${duration%m} * 60 )) ;;
*s) seconds="${duration%s}" ;;
*) seconds="${duration}" ;;
esac
"${bin}/examples/api_cycles" --addr "${gate}" --token-file "${work}/service.token" --clients 64 --seconds "${seconds}"
"${bin}/examples/api_cycles" --in-process "${work}/inproc" --clients 64 --seconds "${seconds}"
