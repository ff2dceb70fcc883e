#!/usr/bin/env bash
# The demo: a hub on embedded storage (./demo-data), a registered device, and a simulated
# device (the real Azure Python SDK) sending telemetry that `spoke monitor-events` prints.
# Ctrl-C stops everything. Needs root (ports 8883 and 443 on 127.0.0.1).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
cargo build --release -p spoke-hub -p spoke-cli
DATA="$ROOT/demo-data"
HOST=127.0.0.1
target/release/spoke-hub --data-dir "$DATA" --hostname "$HOST" --bind "$HOST" &
HUB=$!
PIDS=("$HUB")
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 100); do
    if [[ -s "$DATA/service.connstr" ]] && (exec 3<>"/dev/tcp/$HOST/443") 2>/dev/null; then break; fi
    sleep 0.1
done
export SPOKE_HUB_CONNECTION_STRING="$(cat "$DATA/service.connstr")" SPOKE_CA_FILE="$DATA/ca.pem"
target/release/spoke device show demo-device >/dev/null 2>&1 || target/release/spoke device create demo-device >/dev/null
target/release/spoke twin update demo-device --tags '{"env":"demo"}' >/dev/null
CS="$(target/release/spoke device connection-string demo-device)"
.venv/bin/python scripts/demo_device.py "$CS" "$DATA/ca.pem" &
PIDS+=("$!")
echo "hub on $HOST (data in $DATA); device 'demo-device' is sending telemetry. Try, in another shell:"
echo "  export SPOKE_HUB_CONNECTION_STRING='$SPOKE_HUB_CONNECTION_STRING' SPOKE_CA_FILE='$SPOKE_CA_FILE'"
echo "  target/release/spoke method invoke demo-device getReading"
echo "  target/release/spoke twin update demo-device --desired '{\"interval\": 2}'"
target/release/spoke monitor-events --device-id demo-device
