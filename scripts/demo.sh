#!/usr/bin/env bash
# The demo: a hub on embedded storage (./demo-data/hub), an edge device registered in it, and
# spoke-edge on this machine running the sample modules (simulated-temperature-sensor and
# filter) from a deployment applied through the hub; `spoke monitor-events` prints what the
# filter forwards upstream. Ctrl-C stops everything. Needs root (port 8883 on 127.0.0.1 for
# the hub and 127.0.0.2 for the edge hub, port 443 for the hub).
#
# The modules run as processes and connect to the edge hub in spoke-edge (127.0.0.2), which
# routes the sensor's readings to the filter and the filter's alerts to the hub.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
cargo build --release -p spoke-hub -p spoke-cli -p simulated-temperature-sensor -p filter
# spoke-edge as shipped to devices: the size-optimized profile (Cargo.toml).
cargo build --profile release-edge -p spoke-edge
BIN="$ROOT/target/release"
DATA="$ROOT/demo-data"
HOST=127.0.0.1
EDGE_HOST=127.0.0.2
mkdir -p "$DATA"
"$BIN/spoke-hub" --data-dir "$DATA/hub" --hostname "$HOST" --bind "$HOST" &
PIDS=("$!")
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 100); do
    if [[ -s "$DATA/hub/service.connstr" ]] && (exec 3<>"/dev/tcp/$HOST/443") 2>/dev/null; then break; fi
    sleep 0.1
done
export SPOKE_HUB_CONNECTION_STRING="$(cat "$DATA/hub/service.connstr")" SPOKE_CA_FILE="$DATA/hub/ca.pem"
"$BIN/spoke" device show demo-edge >/dev/null 2>&1 || "$BIN/spoke" device create demo-edge --edge >/dev/null
cat >"$DATA/edge.toml" <<TOML
hostname = "$EDGE_HOST"
bind = "$EDGE_HOST"
trust_bundle_cert = "file://$DATA/hub/ca.pem"
data_dir = "$DATA/edge"

[provisioning]
source = "manual"
connection_string = "$("$BIN/spoke" device connection-string demo-edge)"

[runtime]
kind = "process"
TOML
"$ROOT/target/release-edge/spoke-edge" --config "$DATA/edge.toml" &
PIDS+=("$!")
sed -e "s|@SENSOR@|$BIN/simulated-temperature-sensor|" -e "s|@FILTER@|$BIN/filter|" \
    scripts/demo-deployment.json >"$DATA/deployment.json"
"$BIN/spoke" deployment apply demo-edge --manifest "$DATA/deployment.json"
echo "hub on $HOST (data in $DATA); edge device 'demo-edge' runs the sample modules. Try, in another shell:"
echo "  export SPOKE_HUB_CONNECTION_STRING='$SPOKE_HUB_CONNECTION_STRING' SPOKE_CA_FILE='$SPOKE_CA_FILE'"
echo "  $BIN/spoke edge list --config $DATA/edge.toml"
echo "  $BIN/spoke twin show demo-edge --module '\$edgeAgent'"
echo "  $BIN/spoke twin update demo-edge --module SimulatedTemperatureSensor --desired '{\"SendInterval\": 1}'"
echo "  curl -s http://$EDGE_HOST:9600/metrics   # the edge hub's metrics"
"$BIN/spoke" monitor-events --device-id demo-edge
