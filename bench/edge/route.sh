#!/usr/bin/env bash
# Spoke Edge hub routing and store-and-forward, side by side with mosquitto, in one run.
#
#   bash bench/edge/route.sh
#
# Starts spoke-hub (fresh data dir, 127.0.0.84), spoke-edge for the edge device `edge1`
# (edge hub on 127.0.0.85:8883, process runtime, two placeholder modules `pub` and `sub` whose
# identities the load tool uses) and mosquitto (TLS, persistence off, 127.0.0.86:8883). Then:
#   (a) relay, throughput: one publisher, one subscriber, QoS 1 over TLS, WINDOW messages
#       unacknowledged: on the edge hub, module pub's output `relay` routed by
#       FROM /messages/modules/pub/outputs/relay INTO BrokeredEndpoint("/modules/sub/inputs/in")
#       to module sub; on mosquitto, topic bench/relay. Delivered msgs/s, publish->delivery
#       p50/p99;
#   (b) relay, latency: the same with one message in flight (LATENCY_WINDOW);
#   (c) store-and-forward: the hub stopped, module pub sends to output `up`, routed to
#       $upstream, over one connection with SAF_WINDOW messages unacknowledged; every PUBACK
#       follows a durable write, so acked msgs/s is the store rate. Then the hub starts again,
#       and the time from the upstream link's reconnection to an empty queue gives the forward
#       rate.
# Writes bench/edge/results/route-<timestamp>.md (and .json files) and prints the table.
# Loopback only; every wait is bounded; everything started is stopped on exit.
#
# Knobs (defaults): PAYLOAD=200 WINDOW=16 LATENCY_WINDOW=1 WARMUP=5 DURATION=20
# SAF_WINDOW=256 SAF_DURATION=10 SKIP_BUILD=0, EDGE_BIN (default
# target/release-edge/spoke-edge, the size-optimized build devices get; target/release/spoke-edge
# is the speed-optimized one).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_NAME=route-bench
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
PAYLOAD=${PAYLOAD:-200}
WINDOW=${WINDOW:-16}
LATENCY_WINDOW=${LATENCY_WINDOW:-1}
WARMUP=${WARMUP:-5}
DURATION=${DURATION:-20}
SAF_WINDOW=${SAF_WINDOW:-256}
SAF_DURATION=${SAF_DURATION:-10}
SKIP_BUILD=${SKIP_BUILD:-0}
HUB_IP=127.0.0.84
EDGE_IP=127.0.0.85
MOSQ_IP=127.0.0.86
DEVICE=edge1
METRICS=http://$EDGE_IP:9600/metrics
USERNAME='{host}/{id}/?api-version=2021-04-12'

MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[[ -x $MOSQUITTO ]] || die "mosquitto not installed (run scripts/setup.sh)"
for tool in openssl jq curl; do
    command -v "$tool" >/dev/null || die "$tool not installed"
done
(( EUID == 0 )) || die "run as root (the hub listens on ports 8883 and 443)"
require_free "$HUB_IP" 8883 443
require_free "$EDGE_IP" 8883 443 9600
require_free "$MOSQ_IP" 8883

cd "$ROOT"
if [[ $SKIP_BUILD != 1 ]]; then
    log "building release binaries"
    cargo build --release -p spoke-hub -p spoke-cli -p spoke-loadgen
    cargo build --profile release-edge -p spoke-edge
fi
REL=$ROOT/target/release
for bin in spoke-hub spoke spoke-loadgen; do
    [[ -x $REL/$bin ]] || die "$REL/$bin missing (build it or unset SKIP_BUILD)"
done
EDGE_BIN=${EDGE_BIN:-$ROOT/target/release-edge/spoke-edge}
[[ -x $EDGE_BIN ]] || die "$EDGE_BIN missing"
SPOKE=$REL/spoke
LOADGEN=$REL/spoke-loadgen

WORK=$(mktemp -d /tmp/spoke-route-bench.XXXXXX)
HUB_PID=
EDGE_PID=
MOSQ_PID=
cleanup() {
    stop_edge "$EDGE_PID"
    stop_pid "$HUB_PID"
    stop_pid "$MOSQ_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

start_hub() {
    log "starting spoke-hub on $HUB_IP"
    "$REL/spoke-hub" --data-dir "$WORK/hub" --hostname "$HUB_IP" --bind "$HUB_IP" \
        >>"$WORK/hub.log" 2>&1 &
    HUB_PID=$!
    wait_port "$HUB_IP" 8883
    wait_port "$HUB_IP" 443
}
start_hub
export SPOKE_HUB_CONNECTION_STRING
SPOKE_HUB_CONNECTION_STRING=$(cat "$WORK/hub/service.connstr")
export SPOKE_CA_FILE=$WORK/hub/ca.pem

"$SPOKE" device create "$DEVICE" --edge >/dev/null
EDGE_DATA=$WORK/edge-data
write_edge_config "$WORK/edge.toml" "$EDGE_IP" "$WORK/hub/ca.pem" "$EDGE_DATA" \
    "$("$SPOKE" device connection-string "$DEVICE")"
# Two placeholder process modules: the edge agent gives them identities, which the load tool
# uses to connect to the edge hub as `pub` and `sub`.
jq -n '{modulesContent: {
  "$edgeAgent": {"properties.desired": {schemaVersion: "1.1",
    runtime: {type: "docker", settings: {}},
    systemModules: {
      edgeAgent: {type: "docker", settings: {image: "mcr.microsoft.com/azureiotedge-agent:1.5"}},
      edgeHub: {type: "docker", status: "running", restartPolicy: "always",
                settings: {image: "mcr.microsoft.com/azureiotedge-hub:1.5"}}},
    modules: ({} | .pub = {version: "1.0", type: "process", status: "running",
                           restartPolicy: "always", settings: {command: ["/bin/sleep", "1000000"]}}
                 | .sub = (.pub | .settings.command = ["/bin/sleep", "1000001"]))}},
  "$edgeHub": {"properties.desired": {schemaVersion: "1.1",
    routes: {
      relay: "FROM /messages/modules/pub/outputs/relay INTO BrokeredEndpoint(\"/modules/sub/inputs/in\")",
      up: "FROM /messages/modules/pub/outputs/up INTO $upstream"},
    storeAndForwardConfiguration: {timeToLiveSecs: 7200}}}}}' >"$WORK/manifest.json"

log "starting spoke-edge (edge hub on $EDGE_IP)"
"$EDGE_BIN" --config "$WORK/edge.toml" >"$WORK/edge.log" 2>&1 &
EDGE_PID=$!
"$SPOKE" deployment apply "$DEVICE" --manifest "$WORK/manifest.json"
wait_port "$EDGE_IP" 8883
# metric NAME: the value of one sample line of the edge hub's metrics (empty when absent).
metric() { curl -s --max-time 5 "$METRICS" | awk -v k="$1" '$1 == k {print $2}'; }
for _ in $(seq 600); do
    [[ $(metric spoke_edgehub_upstream_connected) == 1 ]] && break
    kill -0 "$EDGE_PID" 2>/dev/null || { tail -20 "$WORK/edge.log" >&2; die "spoke-edge exited"; }
    sleep 0.1
done
[[ $(metric spoke_edgehub_upstream_connected) == 1 ]] || die "the upstream link is not up"
module_key() {
    "$SPOKE" device connection-string "$DEVICE" --module "$1" |
        tr ';' '\n' | sed -n 's/^SharedAccessKey=//p'
}
PUB_KEY=$(module_key pub)
SUB_KEY=$(module_key sub)
[[ -n $PUB_KEY && -n $SUB_KEY ]] || die "modules pub and sub have no keys"

log "making mosquitto's CA and server certificate"
M=$WORK/mosquitto
mosquitto_config "$M" "$MOSQ_IP"
"$MOSQUITTO" -c "$M/mosquitto.conf" >>"$WORK/mosquitto.log" 2>&1 &
MOSQ_PID=$!
wait_port "$MOSQ_IP" 8883

edge_args=(--addr "$EDGE_IP:8883" --ca-file "$EDGE_DATA/edge-ca/ca.pem"
           --hub-hostname "$HUB_IP" --client-id "$DEVICE/pub" --username "$USERNAME"
           --sas-key "$PUB_KEY")
edge_relay=("${edge_args[@]}" --topic "devices/$DEVICE/modules/pub/messages/events/%24.on=relay"
            --sub-client-id "$DEVICE/sub" --sub-username "$USERNAME" --sub-sas-key "$SUB_KEY"
            --sub-filter "devices/$DEVICE/modules/sub/inputs/#" --server-pid "$EDGE_PID")
mosq_relay=(--addr "$MOSQ_IP:8883" --ca-file "$M/ca.pem" --client-id "bench-pub{i}"
            --topic bench/relay --sub-client-id bench-sub --sub-filter bench/relay
            --server-pid "$MOSQ_PID")
# relay NAME WINDOW ARGS...: one bounded relay run.
relay() {
    local name=$1 window=$2
    shift 2
    log "relay $name, window $window: ${WARMUP}s warm-up, ${DURATION}s measured"
    timeout 600 "$LOADGEN" relay "$@" --payload-size "$PAYLOAD" --window "$window" \
        --warmup-secs "$WARMUP" --duration-secs "$DURATION" >"$WORK/relay-$name.json"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
relay edge "$WINDOW" "${edge_relay[@]}"
relay mosquitto "$WINDOW" "${mosq_relay[@]}"
relay edge-latency "$LATENCY_WINDOW" "${edge_relay[@]}"
relay mosquitto-latency "$LATENCY_WINDOW" "${mosq_relay[@]}"
RSS_AFTER_RELAY=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$EDGE_PID/status")

log "store-and-forward: stopping the hub"
stop_pid "$HUB_PID"
HUB_PID=
for _ in $(seq 300); do
    [[ $(metric spoke_edgehub_upstream_connected) == 0 ]] && break
    sleep 0.1
done
[[ $(metric spoke_edgehub_upstream_connected) == 0 ]] || die "the upstream link did not notice"
log "store-and-forward: ${SAF_DURATION}s of sending to \$upstream while offline"
timeout 600 "$LOADGEN" ingest "${edge_args[@]}" \
    --topic "devices/$DEVICE/modules/pub/messages/events/%24.on=up" --connections 1 \
    --payload-size "$PAYLOAD" --window "$SAF_WINDOW" --warmup-secs 2 \
    --duration-secs "$SAF_DURATION" --server-pid "$EDGE_PID" >"$WORK/store.json"
QUEUED=$(metric 'spoke_edgehub_queue_depth{endpoint="$upstream"}')
STORE_BYTES=$(metric spoke_edgehub_store_bytes)
(( QUEUED > 0 )) || die "nothing queued for \$upstream"
log "store-and-forward: $QUEUED queued; starting the hub again"
start_hub
CONNECTED_AT=
DRAINED_AT=
for _ in $(seq 60000); do
    now=$(date +%s.%N)
    if [[ -z $CONNECTED_AT && $(metric spoke_edgehub_upstream_connected) == 1 ]]; then
        CONNECTED_AT=$now
    fi
    if [[ -n $CONNECTED_AT && $(metric 'spoke_edgehub_queue_depth{endpoint="$upstream"}') == 0 ]]; then
        DRAINED_AT=$now
        break
    fi
    sleep 0.01
done
[[ -n $DRAINED_AT ]] || die "the upstream queue did not drain within 10 minutes"
FORWARD_SECS=$(awk -v a="$CONNECTED_AT" -v b="$DRAINED_AT" 'BEGIN {printf "%.2f", b - a}')
FORWARD_RATE=$(awk -v n="$QUEUED" -v s="$FORWARD_SECS" 'BEGIN {printf "%.0f", n / s}')
kill -0 "$EDGE_PID" 2>/dev/null || die "spoke-edge exited during the run"

# --- report -------------------------------------------------------------------------------
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT_DIR=$ROOT/bench/edge/results
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/route-$STAMP.md
j() { jq -r "$2 // \"n/a\"" "$WORK/$1.json"; }
num() { [[ $1 == n/a ]] && echo n/a || printf "%.${2}f" "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "n/a" || b == "n/a" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
row() { # LABEL KEY DECIMALS [RUN_SUFFIX]
    local e m
    e=$(j "relay-edge${4:-}" ".$2")
    m=$(j "relay-mosquitto${4:-}" ".$2")
    echo "| $1 | $(num "$e" "$3") | $(num "$m" "$3") | $(ratio "$e" "$m") |"
}
verdict() { awk "BEGIN{ print ($1) ? \"**met**\" : \"**not met**\" }"; }
E_RATE=$(j relay-edge .msgs_per_sec)
M_RATE=$(j relay-mosquitto .msgs_per_sec)
E_P99=$(j relay-edge .p99_ms)
E_LAT_P99=$(j relay-edge-latency .p99_ms)
STORE_RATE=$(j store .msgs_per_sec)
{
    echo "# Edge hub routing benchmark, $STAMP"
    echo
    echo "Machine: $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r); load average before: $LOAD_BEFORE."
    echo "Spoke at commit $(git -C "$ROOT" rev-parse --short HEAD) plus the work tree; $("$MOSQUITTO" -h 2>/dev/null | head -1)."
    echo "QoS 1, TLS 1.3, payload $PAYLOAD bytes, ${WARMUP}s warm-up then ${DURATION}s measured; one publisher, one subscriber."
    echo
    echo "| Relay, window $WINDOW | Spoke edge hub | mosquitto | Spoke / mosquitto |"
    echo "|---|---:|---:|---:|"
    row "delivered msg/s" msgs_per_sec 0
    row "publish → delivery p50 (ms)" p50_ms 2
    row "publish → delivery p99 (ms)" p99_ms 2
    row "publish → PUBACK p50 (ms)" puback_p50_ms 2
    row "server CPU cores busy" server_cpu_cores 2
    row "delivered per server CPU second" msgs_per_server_cpu_sec 0
    row "missing after the run" missing 0
    row "repeated deliveries" repeated 0
    echo
    echo "| Relay, window $LATENCY_WINDOW | Spoke edge hub | mosquitto | Spoke / mosquitto |"
    echo "|---|---:|---:|---:|"
    row "delivered msg/s" msgs_per_sec 0 -latency
    row "publish → delivery p50 (ms)" p50_ms 3 -latency
    row "publish → delivery p99 (ms)" p99_ms 3 -latency
    echo
    echo "| Store-and-forward (hub stopped, route to \$upstream, window $SAF_WINDOW) | Spoke edge hub |"
    echo "|---|---:|"
    echo "| stored (PUBACKed after a durable write) msg/s | $(num "$STORE_RATE" 0) |"
    echo "| PUBACK p50 / p99 (ms) | $(num "$(j store .p50_ms)" 2) / $(num "$(j store .p99_ms)" 2) |"
    echo "| queued when the hub came back / store size (MB) | $QUEUED / $(awk -v b="$STORE_BYTES" 'BEGIN {printf "%.1f", b / 1048576}') |"
    echo "| forwarded after reconnection: seconds / msg/s | $FORWARD_SECS / $FORWARD_RATE |"
    echo "| spoke-edge VmRSS after the relay runs (MB) | $(awk -v k="$RSS_AFTER_RELAY" 'BEGIN {printf "%.1f", k / 1024}') |"
    echo
    echo "| Target | Verdict |"
    echo "|---|---|"
    echo "| routed throughput ≥ 1.0× mosquitto | $(verdict "$(ratio "$E_RATE" "$M_RATE") >= 1.0") ($(ratio "$E_RATE" "$M_RATE")×) |"
    echo "| p99 ≤ 2 ms (window $WINDOW; window $LATENCY_WINDOW) | $(verdict "$E_P99 <= 2") ($(num "$E_P99" 2) ms); $(verdict "$E_LAT_P99 <= 2") ($(num "$E_LAT_P99" 3) ms) |"
    echo "| store-and-forward ≥ 20,000 msg/s (store; forward) | $(verdict "$STORE_RATE >= 20000") ($(num "$STORE_RATE" 0)); $(verdict "$FORWARD_RATE >= 20000") ($FORWARD_RATE) |"
} >"$OUT"
for f in "$WORK"/relay-*.json "$WORK/store.json"; do
    cp "$f" "$OUT_DIR/route-$STAMP.$(basename "$f")"
done
cat "$OUT"
log "written to $OUT"
