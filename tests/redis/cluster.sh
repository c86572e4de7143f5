#!/usr/bin/env bash
# Starts or stops the Redis servers the tests use, on loopback, all with appendonly yes and
# appendfsync always:
#   cluster.sh start DIR PORT   one standalone server on PORT, and a cluster of 3 primaries and
#                               3 replicas on PORT+1 .. PORT+6 (cluster bus: those + 10000)
#   cluster.sh restart DIR PORT starts the cluster node on PORT again (after it was killed): it
#                               rejoins the cluster from its nodes.conf, as a replica if it
#                               lost its slots meanwhile
#   cluster.sh stop DIR         stops every server started under DIR
# A developer runs it the same way the tests do, e.g. `tests/redis/cluster.sh start /tmp/sg 7000`.
set -euo pipefail

cmd="${1:?usage: cluster.sh start DIR PORT | stop DIR}"
dir="${2:?usage: cluster.sh start DIR PORT | stop DIR}"

start_server() { # port, extra args...
    local port="$1"
    shift
    mkdir -p "${dir}/${port}"
    redis-server --port "${port}" --bind 127.0.0.1 --dir "${dir}/${port}" \
        --appendonly yes --appendfsync always --save '' --daemonize yes \
        --pidfile "${dir}/${port}/redis.pid" --logfile "${dir}/${port}/redis.log" "$@"
}

wait_ping() { # port
    for _ in $(seq 1 100); do
        if redis-cli -p "$1" ping 2>/dev/null | grep -q PONG; then return 0; fi
        sleep 0.05
    done
    echo "redis on port $1 did not start; its log:" >&2
    cat "${dir}/$1/redis.log" >&2 || true
    return 1
}

case "${cmd}" in
start)
    port="${3:?usage: cluster.sh start DIR PORT}"
    start_server "${port}"
    nodes=()
    for i in 1 2 3 4 5 6; do
        p=$((port + i))
        start_server "${p}" --cluster-enabled yes --cluster-config-file nodes.conf \
            --cluster-node-timeout 2000 --cluster-replica-validity-factor 0
        nodes+=("127.0.0.1:${p}")
    done
    for p in "${port}" $(seq $((port + 1)) $((port + 6))); do wait_ping "${p}"; done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"${dir}/create.log"
    for _ in $(seq 1 200); do
        ok=1
        for i in 1 2 3 4 5 6; do
            p=$((port + i))
            redis-cli -p "${p}" cluster info | grep -q 'cluster_state:ok' || ok=0
            # Every primary with its replica attached, every replica's link up.
            info="$(redis-cli -p "${p}" info replication)"
            case "${info}" in
            *role:master*) grep -q 'connected_slaves:1' <<<"${info}" || ok=0 ;;
            *) grep -q 'master_link_status:up' <<<"${info}" || ok=0 ;;
            esac
        done
        if [ "${ok}" = 1 ]; then exit 0; fi
        sleep 0.05
    done
    echo "the cluster did not reach cluster_state:ok" >&2
    exit 1
    ;;
restart)
    port="${3:?usage: cluster.sh restart DIR PORT}"
    start_server "${port}" --cluster-enabled yes --cluster-config-file nodes.conf \
        --cluster-node-timeout 2000 --cluster-replica-validity-factor 0
    wait_ping "${port}"
    ;;
stop)
    for pidfile in "${dir}"/*/redis.pid; do
        [ -f "${pidfile}" ] || continue
        kill "$(cat "${pidfile}")" 2>/dev/null || true
    done
    ;;
*)
    echo "usage: cluster.sh start DIR PORT | restart DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
