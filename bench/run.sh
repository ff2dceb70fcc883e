#!/usr/bin/env bash
# Spoke Hub vs mosquitto, same load tool, same run, same machine.
#
#   bash bench/run.sh
#
# Builds the release binaries, starts spoke-hub (fresh data dir, 127.0.0.41) and mosquitto
# (Debian's package, TLS on 127.0.0.42, a CA and server certificate made here with openssl),
# then runs bench/loadgen against both:
#   - ingest: INGEST_CONNS connections publishing QoS 1 messages of PAYLOAD bytes, WINDOW
#     unacknowledged each, WARMUP s then DURATION s measured: acked msgs/s, p50/p99 latency;
#   - idle:   IDLE_CONNS idle TLS connections: how many came up, the server's VmRSS growth per
#     connection.
# Writes bench/results/<timestamp>.md and prints its table. Only loopback addresses are used,
# every phase is bounded by durations and timeouts, and both servers are stopped on exit.
#
# Environment knobs (defaults): INGEST_CONNS=1000 IDLE_CONNS=10000 PAYLOAD=200 WINDOW=16
# WARMUP=5 DURATION=20 SKIP_BUILD=0 (1: use the binaries already in target/release).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
INGEST_CONNS=${INGEST_CONNS:-1000}
IDLE_CONNS=${IDLE_CONNS:-10000}
PAYLOAD=${PAYLOAD:-200}
WINDOW=${WINDOW:-16}
WARMUP=${WARMUP:-5}
DURATION=${DURATION:-20}
SKIP_BUILD=${SKIP_BUILD:-0}
HUB_IP=127.0.0.41
MOSQ_IP=127.0.0.42
# Client source addresses, used in turn: each gives its own ephemeral port range.
SOURCES=127.0.0.141,127.0.0.142,127.0.0.143,127.0.0.144
SEED=spoke-bench
HUB_USERNAME='{host}/{id}/?api-version=2021-04-12'

BENCH_NAME=bench
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# Open files: 10,000 connections on each side of loopback plus slack.
ulimit -n 65535 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(( $(ulimit -n) >= IDLE_CONNS + 1024 )) ||
    die "ulimit -n is $(ulimit -n); need $((IDLE_CONNS + 1024)) for IDLE_CONNS=$IDLE_CONNS"
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[[ -x $MOSQUITTO ]] || die "mosquitto not installed (run scripts/setup.sh)"
for tool in openssl jq; do
    command -v "$tool" >/dev/null || die "$tool not installed (apt-get install $tool)"
done

cd "$ROOT"
if [[ $SKIP_BUILD != 1 ]]; then
    log "building release binaries"
    cargo build --release -p spoke-hub -p spoke-loadgen
fi
HUB_BIN=$ROOT/target/release/spoke-hub
LOADGEN=$ROOT/target/release/spoke-loadgen

WORK=$(mktemp -d /tmp/spoke-bench.XXXXXX)
HUB_PID=
MOSQ_PID=
cleanup() {
    stop_pid "$HUB_PID"
    stop_pid "$MOSQ_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- Spoke Hub -----------------------------------------------------------------------------
start_hub() {
    log "starting spoke-hub on $HUB_IP"
    "$HUB_BIN" --data-dir "$WORK/hub" --hostname "$HUB_IP" --bind "$HUB_IP" \
        --mqtt-port 8883 --https-port 443 >>"$WORK/hub.log" 2>&1 &
    HUB_PID=$!
    wait_port "$HUB_IP" 8883
    wait_port "$HUB_IP" 443
}
start_hub

# --- mosquitto -----------------------------------------------------------------------------
log "making mosquitto's CA and server certificate"
M=$WORK/mosquitto
mosquitto_config "$M" "$MOSQ_IP"
start_mosquitto() {
    log "starting mosquitto on $MOSQ_IP"
    "$MOSQUITTO" -c "$M/mosquitto.conf" >>"$WORK/mosquitto.log" 2>&1 &
    MOSQ_PID=$!
    wait_port "$MOSQ_IP" 8883
}
start_mosquitto

# --- devices -------------------------------------------------------------------------------
DEVICES=$(( INGEST_CONNS > IDLE_CONNS ? INGEST_CONNS : IDLE_CONNS ))
log "provisioning $DEVICES devices on the hub"
timeout 900 "$LOADGEN" provision --addr "$HUB_IP:443" --ca-file "$WORK/hub/ca.pem" \
    --connection-string-file "$WORK/hub/service.connstr" --count "$DEVICES" \
    --key-seed "$SEED" >"$WORK/provision.json"

# run_loadgen NAME MODE ARGS...: one bounded loadgen run against one server.
hub_args=(--addr "$HUB_IP:8883" --ca-file "$WORK/hub/ca.pem" --username "$HUB_USERNAME"
          --sas-key-seed "$SEED" --source-ip "$SOURCES")
mosq_args=(--addr "$MOSQ_IP:8883" --ca-file "$M/ca.pem" --source-ip "$SOURCES")
ingest_args=(--connections "$INGEST_CONNS" --payload-size "$PAYLOAD" --window "$WINDOW"
             --warmup-secs "$WARMUP" --duration-secs "$DURATION")

ingest() { # NAME PID ARGS...
    local name=$1 pid=$2; shift 2
    log "ingest against $name: $INGEST_CONNS connections, ${WARMUP}s warm-up, ${DURATION}s measured"
    timeout 900 "$LOADGEN" ingest "$@" "${ingest_args[@]}" --server-pid "$pid" \
        >"$WORK/$name-ingest.json"
}
idle() { # NAME PID ARGS...
    local name=$1 pid=$2; shift 2
    log "idle against $name: $IDLE_CONNS connections"
    timeout 900 "$LOADGEN" idle "$@" --connections "$IDLE_CONNS" --server-pid "$pid" \
        >"$WORK/$name-idle.json"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
ingest hub "$HUB_PID" "${hub_args[@]}"
ingest mosquitto "$MOSQ_PID" "${mosq_args[@]}"
# Fresh server processes for the memory measurement, so memory the allocator kept from the
# ingest phase cannot absorb the new connections (the hub keeps its data dir and devices).
stop_pid "$HUB_PID"
stop_pid "$MOSQ_PID"
start_hub
start_mosquitto
idle hub "$HUB_PID" "${hub_args[@]}"
idle mosquitto "$MOSQ_PID" "${mosq_args[@]}"
kill -0 "$HUB_PID" 2>/dev/null || die "spoke-hub exited during the run: $(tail -5 "$WORK/hub.log")"
kill -0 "$MOSQ_PID" 2>/dev/null || die "mosquitto exited during the run"

# --- report --------------------------------------------------------------------------------
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$ROOT/bench/results"
OUT=$ROOT/bench/results/$STAMP.md
j() { jq -r "$2" "$WORK/$1.json"; }
# fmt NUMBER DIGITS: a number rounded, or "n/a".
fmt() { [[ $1 == null || -z $1 ]] && echo n/a || printf "%.${2}f" "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "null" || b == "null" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
verdict() { awk -v ok="$1" 'BEGIN{ print (ok ? "met" : "not met") }'; }

h_rate=$(j hub-ingest .msgs_per_sec);        m_rate=$(j mosquitto-ingest .msgs_per_sec)
h_p50=$(j hub-ingest .p50_ms);               m_p50=$(j mosquitto-ingest .p50_ms)
h_p99=$(j hub-ingest .p99_ms);               m_p99=$(j mosquitto-ingest .p99_ms)
h_cpu=$(j hub-ingest .server_cpu_cores);     m_cpu=$(j mosquitto-ingest .server_cpu_cores)
h_eff=$(j hub-ingest .msgs_per_server_cpu_sec); m_eff=$(j mosquitto-ingest .msgs_per_server_cpu_sec)
h_ccpu=$(j hub-ingest .client_cpu_cores);    m_ccpu=$(j mosquitto-ingest .client_cpu_cores)
h_err=$(j hub-ingest '.connect_errors.total + .run_errors.total')
m_err=$(j mosquitto-ingest '.connect_errors.total + .run_errors.total')
h_conn=$(j hub-ingest .connected);           m_conn=$(j mosquitto-ingest .connected)
h_up=$(j hub-idle .alive_at_measure);        m_up=$(j mosquitto-idle .alive_at_measure)
h_kb=$(j hub-idle .server_kb_per_conn);      m_kb=$(j mosquitto-idle .server_kb_per_conn)
h_rss=$(j hub-idle '.server_rss_after_kb / 1024'); m_rss=$(j mosquitto-idle '.server_rss_after_kb / 1024')
h_ierr=$(j hub-idle '.connect_errors.total + .run_errors.total')
m_ierr=$(j mosquitto-idle '.connect_errors.total + .run_errors.total')

rate_ok=$(awk -v h="$h_rate" -v m="$m_rate" 'BEGIN{print (h >= m && h >= 60000) ? 1 : 0}')
idle_ok=$(awk -v up="$h_up" -v n="$IDLE_CONNS" -v kb="$h_kb" \
    'BEGIN{print (up >= n && kb != "null" && kb <= 20) ? 1 : 0}')

{
    echo "# Spoke Hub vs mosquitto — $STAMP"
    echo
    echo "- Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM"
    echo "- Load average before the run: $LOAD_BEFORE"
    echo "- Spoke: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown) (work tree may differ); $("$MOSQUITTO" -h 2>/dev/null | head -1)"
    echo "- Ingest: $INGEST_CONNS TLS connections, QoS 1, $PAYLOAD-byte payloads, window $WINDOW, ${WARMUP} s warm-up, ${DURATION} s measured; idle: $IDLE_CONNS TLS connections"
    echo "- Load generator: bench/loadgen (2 runtime threads), on the same machine as the servers"
    echo
    echo "| Measure | Spoke Hub | mosquitto | Spoke / mosquitto |"
    echo "|---|---:|---:|---:|"
    echo "| Ingest, acked msg/s | $(fmt "$h_rate" 0) | $(fmt "$m_rate" 0) | $(ratio "$h_rate" "$m_rate") |"
    echo "| Ingest, p50 publish→PUBACK (ms) | $(fmt "$h_p50" 2) | $(fmt "$m_p50" 2) | $(ratio "$h_p50" "$m_p50") |"
    echo "| Ingest, p99 publish→PUBACK (ms) | $(fmt "$h_p99" 2) | $(fmt "$m_p99" 2) | $(ratio "$h_p99" "$m_p99") |"
    echo "| Ingest, server CPU cores busy (measured window) | $(fmt "$h_cpu" 2) | $(fmt "$m_cpu" 2) | $(ratio "$h_cpu" "$m_cpu") |"
    echo "| Ingest, acked msgs per server CPU second | $(fmt "$h_eff" 0) | $(fmt "$m_eff" 0) | $(ratio "$h_eff" "$m_eff") |"
    echo "| Ingest, load generator CPU cores busy | $(fmt "$h_ccpu" 2) | $(fmt "$m_ccpu" 2) | |"
    echo "| Ingest, connections up / errors | $h_conn / $h_err | $m_conn / $m_err | |"
    echo "| Idle, connections up / errors | $h_up / $h_ierr | $m_up / $m_ierr | |"
    echo "| Idle, server KB per connection | $(fmt "$h_kb" 1) | $(fmt "$m_kb" 1) | $(ratio "$h_kb" "$m_kb") |"
    echo "| Idle, server RSS with all connected (MB) | $(fmt "$h_rss" 0) | $(fmt "$m_rss" 0) | $(ratio "$h_rss" "$m_rss") |"
    echo
    echo "Targets: ingest ≥ 1.0× mosquitto and ≥ 60,000 msg/s: **$(verdict "$rate_ok")**;" \
        "$IDLE_CONNS TLS connections at ≤ 20 KB each: **$(verdict "$idle_ok")**."
    echo
    echo "<details><summary>Raw reports</summary>"
    echo
    echo '```'
    for f in provision hub-ingest mosquitto-ingest hub-idle mosquitto-idle; do
        echo "$f: $(cat "$WORK/$f.json")"
    done
    echo '```'
    echo
    echo "</details>"
} >"$OUT"
cat "$OUT"
log "written to $OUT"
