#!/usr/bin/env bash
# Spoke Edge footprint and deployment latency, in one run on this machine.
#
#   bash bench/edge/run.sh
#
# Starts spoke-hub (fresh data dir, 127.0.0.81, ports 8883/443) and an edge device `edge1`
# running spoke-edge with the process runtime, then measures:
#   (a) idle: spoke-edge with two process modules deployed (the sample modules
#       simulated-temperature-sensor and filter when they build, else two `sleep`s), after
#       SETTLE s: VmRSS sampled every second and CPU (utime+stime from /proc/PID/stat) over
#       WINDOW s;
#   (b) apply -> running: RUNS times, `spoke deployment apply` of a manifest adding a process
#       module, then of one removing it (bench/edge/apply_latency.py); min/median/max.
# Writes bench/edge/results/<timestamp>.md (and .json) and prints the table. Loopback only;
# every wait is bounded; the hub, spoke-edge and the module processes are stopped on exit.
#
# Environment knobs (defaults): SETTLE=30 WINDOW=30 RUNS=10 MODULES=auto (samples | sleep)
# SKIP_BUILD=0 (1: use the binaries already built), EDGE_BIN (default
# target/release-edge/spoke-edge, the size-optimized profile devices get: another spoke-edge
# build to measure, e.g. target/release/spoke-edge or one with other profile
# settings).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SETTLE=${SETTLE:-30}
WINDOW=${WINDOW:-30}
RUNS=${RUNS:-10}
MODULES=${MODULES:-auto}
SKIP_BUILD=${SKIP_BUILD:-0}
SLEEP_REASON="MODULES=sleep"
HUB_IP=127.0.0.81
EDGE_BIND=127.0.0.82
DEVICE=edge1
TICKS=$(getconf CLK_TCK)

BENCH_NAME=edge-bench
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

for tool in python3 jq readelf; do
    command -v "$tool" >/dev/null || die "$tool not installed"
done
(( EUID == 0 )) || die "run as root (the hub listens on ports 8883 and 443)"

cd "$ROOT"
REL=$ROOT/target/release
have_samples() { [[ -d modules/simulated-temperature-sensor && -d modules/filter ]]; }
if [[ $SKIP_BUILD != 1 ]]; then
    log "building release binaries"
    cargo build --release -p spoke-hub -p spoke-cli
    cargo build --profile release-edge -p spoke-edge
    if [[ $MODULES != sleep ]] && have_samples; then
        log "building the sample modules"
        if ! cargo build --release -p simulated-temperature-sensor -p filter; then
            [[ $MODULES == samples ]] && die "the sample modules do not build"
            log "the sample modules do not build; using sleep processes"
            MODULES=sleep
            SLEEP_REASON="the sample modules did not build"
        fi
    fi
fi
if [[ $MODULES == auto ]]; then
    if [[ -x $REL/simulated-temperature-sensor && -x $REL/filter ]]; then
        MODULES=samples
    else
        MODULES=sleep
        SLEEP_REASON="the sample modules were not available"
    fi
fi
if [[ $MODULES == samples ]]; then
    [[ -x $REL/simulated-temperature-sensor && -x $REL/filter ]] ||
        die "target/release/simulated-temperature-sensor or filter missing"
fi
for bin in spoke-hub spoke; do
    [[ -x $REL/$bin ]] || die "$REL/$bin missing (build it or unset SKIP_BUILD)"
done
EDGE_BIN=${EDGE_BIN:-$ROOT/target/release-edge/spoke-edge}
[[ -x $EDGE_BIN ]] || die "$EDGE_BIN missing"

WORK=$(mktemp -d /tmp/spoke-edge-bench.XXXXXX)
HUB_PID=
EDGE_PID=
cleanup() {
    stop_edge "$EDGE_PID"
    stop_pid "$HUB_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

require_free "$HUB_IP" 8883 443

log "starting spoke-hub on $HUB_IP"
HUB_DIR=$WORK/hub
"$REL/spoke-hub" --data-dir "$HUB_DIR" --hostname "$HUB_IP" --bind "$HUB_IP" \
    >"$WORK/hub.log" 2>&1 &
HUB_PID=$!
wait_port "$HUB_IP" 8883
wait_port "$HUB_IP" 443
export SPOKE_HUB_CONNECTION_STRING
SPOKE_HUB_CONNECTION_STRING=$(cat "$HUB_DIR/service.connstr")
export SPOKE_CA_FILE=$HUB_DIR/ca.pem
SPOKE=$REL/spoke

"$SPOKE" device create "$DEVICE" --edge >/dev/null
DEVICE_CS=$("$SPOKE" device connection-string "$DEVICE")
EDGE_DATA=$WORK/edge-data
write_edge_config "$WORK/edge.toml" "$EDGE_BIND" "$HUB_DIR/ca.pem" "$EDGE_DATA" "$DEVICE_CS"

# The base deployment: two process modules.
if [[ $MODULES == samples ]]; then
    M1=(tempsensor "[\"$REL/simulated-temperature-sensor\"]")
    M2=(filter "[\"$REL/filter\"]")
    MODULES_DESC="the sample modules simulated-temperature-sensor and filter (release builds)"
else
    M1=(m1 '["/bin/sleep","100000"]')
    M2=(m2 '["/bin/sleep","100001"]')
    MODULES_DESC="two \`/bin/sleep\` processes ($SLEEP_REASON)"
fi
module_json() {
    printf '{"version":"1.0","type":"process","status":"running","restartPolicy":"always","settings":{"command":%s}}' "$1"
}
cat >"$WORK/base.json" <<EOF
{"modulesContent":{
 "\$edgeAgent":{"properties.desired":{"schemaVersion":"1.1",
  "runtime":{"type":"docker","settings":{}},
  "systemModules":{
   "edgeAgent":{"type":"docker","settings":{"image":"mcr.microsoft.com/azureiotedge-agent:1.5"}},
   "edgeHub":{"type":"docker","status":"running","restartPolicy":"always","settings":{"image":"mcr.microsoft.com/azureiotedge-hub:1.5"}}},
  "modules":{"${M1[0]}":$(module_json "${M1[1]}"),"${M2[0]}":$(module_json "${M2[1]}")}}},
 "\$edgeHub":{"properties.desired":{"schemaVersion":"1.1","routes":{},
  "storeAndForwardConfiguration":{"timeToLiveSecs":7200}}}}}
EOF
jq -e . "$WORK/base.json" >/dev/null || die "base manifest is not JSON"

log "starting spoke-edge ($MODULES modules)"
"$EDGE_BIN" --config "$WORK/edge.toml" >"$WORK/edge.log" 2>&1 &
EDGE_PID=$!
"$SPOKE" deployment apply "$DEVICE" --manifest "$WORK/base.json"

# wait_running: until both base modules are reported running (at most 60 s).
wait_running() {
    local reported
    for _ in $(seq 120); do
        reported=$("$SPOKE" twin show "$DEVICE" --module '$edgeAgent' 2>/dev/null || true)
        if jq -e --arg a "${M1[0]}" --arg b "${M2[0]}" \
            '.properties.reported.modules[$a].runtimeStatus == "running"
             and .properties.reported.modules[$b].runtimeStatus == "running"' \
            <<<"$reported" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$EDGE_PID" 2>/dev/null || { cat "$WORK/edge.log" >&2; die "spoke-edge exited"; }
        sleep 0.5
    done
    cat "$WORK/edge.log" >&2
    die "the base modules were not reported running within 60 s"
}
wait_running
mapfile -t BASE_CHILDREN < <(children_of "$EDGE_PID")
(( ${#BASE_CHILDREN[@]} == 2 )) || die "expected 2 module processes, found ${#BASE_CHILDREN[@]}"

# --- (a) idle footprint -------------------------------------------------------------------
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
cpu_ticks() {
    local line rest
    line=$(cat "/proc/$1/stat")
    rest=${line##*) }
    # utime and stime are fields 14 and 15; rest starts at field 3.
    awk '{print $12 + $13}' <<<"$rest"
}
# cpu_ns PID: time on CPU of all its threads, in ns (/proc/PID/task/*/schedstat, field 1).
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%d", s}'; }
log "settling for $SETTLE s, then measuring for $WINDOW s"
sleep "$SETTLE"
kill -0 "$EDGE_PID" 2>/dev/null || die "spoke-edge exited"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
CPU0=$(cpu_ticks "$EDGE_PID")
NS0=$(cpu_ns "$EDGE_PID")
T0=$(date +%s.%N)
RSS_SAMPLES=()
for _ in $(seq "$WINDOW"); do
    RSS_SAMPLES+=("$(status_kb "$EDGE_PID" VmRSS)")
    sleep 1
done
CPU1=$(cpu_ticks "$EDGE_PID")
NS1=$(cpu_ns "$EDGE_PID")
T1=$(date +%s.%N)
read -r RSS_MIN RSS_MED RSS_MAX < <(printf '%s\n' "${RSS_SAMPLES[@]}" | sort -n |
    awk '{v[NR]=$1} END {print v[1], v[int((NR+1)/2)], v[NR]}')
HWM=$(status_kb "$EDGE_PID" VmHWM)
RSS_ANON=$(status_kb "$EDGE_PID" RssAnon)
RSS_FILE=$(status_kb "$EDGE_PID" RssFile)
THREADS=$(status_kb "$EDGE_PID" Threads)
CPU_PCT=$(awk -v a="$CPU0" -v b="$CPU1" -v t0="$T0" -v t1="$T1" -v hz="$TICKS" \
    'BEGIN {printf "%.3f", (b - a) / hz / (t1 - t0) * 100}')
CPU_MS=$(awk -v a="$CPU0" -v b="$CPU1" -v hz="$TICKS" 'BEGIN {printf "%d", (b - a) * 1000 / hz}')
SCHED_MS=$(awk -v a="$NS0" -v b="$NS1" 'BEGIN {printf "%.3f", (b - a) / 1e6}')
SCHED_PCT=$(awk -v a="$NS0" -v b="$NS1" -v t0="$T0" -v t1="$T1" \
    'BEGIN {printf "%.4f", (b - a) / 1e9 / (t1 - t0) * 100}')
MODULE_RSS=()
for pid in "${BASE_CHILDREN[@]}"; do
    MODULE_RSS+=("$(tr '\0' ' ' <"/proc/$pid/cmdline" | awk '{print $1}' | xargs basename): $(status_kb "$pid" VmRSS) KB")
done
# Where the RSS is: summed per mapped file (or [heap], [stack], anonymous) and permissions.
smaps_by_mapping() {
    awk '/^[0-9a-f]+-[0-9a-f]+ / {
             name = ($6 == "") ? "(anonymous)" : $6
             sub(/.*\//, "", name)
             key = name " " $2
             next
         }
         /^Rss:/ { rss[key] += $2 }
         END { for (k in rss) if (rss[k] > 0) printf "%d %s\n", rss[k], k }' "/proc/$1/smaps" |
        sort -rn
}
smaps_by_mapping "$EDGE_PID" >"$WORK/smaps_by_mapping" 2>/dev/null || true
# The base modules must have stayed up through the window (a crash loop would not be idle).
RESTARTS=$("$SPOKE" twin show "$DEVICE" --module '$edgeAgent' |
    jq -r --arg a "${M1[0]}" --arg b "${M2[0]}" '.properties.reported.modules as $m |
        "\($a): \($m[$a].restartCount // 0), \($b): \($m[$b].restartCount // 0)"')
log "idle: VmRSS median ${RSS_MED} KB (min $RSS_MIN, max $RSS_MAX), CPU ${CPU_PCT}% of one core (schedstat: $SCHED_MS ms)"

# --- (b) apply -> running -----------------------------------------------------------------
log "apply -> running, $RUNS runs"
python3 "$ROOT/bench/edge/apply_latency.py" --cli "$SPOKE" --device "$DEVICE" \
    --edge-pid "$EDGE_PID" --hub-dir "$HUB_DIR" --hub "$HUB_IP" --base "$WORK/base.json" \
    --work "$WORK" --runs "$RUNS" --out "$WORK/apply.json" >/dev/null ||
    { tail -50 "$WORK/edge.log" >&2; die "apply latency measurement failed"; }
kill -0 "$EDGE_PID" 2>/dev/null || die "spoke-edge exited"
RSS_AFTER=$(status_kb "$EDGE_PID" VmRSS)

# --- report -------------------------------------------------------------------------------
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT_DIR=$ROOT/bench/edge/results
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/$STAMP.md
ms() { jq -r --arg k "$1" '.summary[$k] | "\(.min*10|round/10) / \(.median*10|round/10) / \(.max*10|round/10)"' "$WORK/apply.json"; }
# load_mb FILE: the size of FILE's loadable ELF segments (what it maps into memory), in MB.
load_mb() {
    local size total=0
    for size in $(readelf -lW "$1" | awk '$1 == "LOAD" {print $6}'); do
        total=$((total + size))
    done
    awk -v b="$total" 'BEGIN {printf "%.1f MB", b / 1048576}'
}
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
verdict() { if [[ $1 == 1 ]]; then echo "**met**"; else echo "**not met**"; fi; }
RSS_OK=$(awk -v k="$RSS_MED" 'BEGIN {print (k <= 10 * 1024) ? 1 : 0}')
APPLY_OK=$(jq -r '(.summary.add_proc_start_s.max <= 1000 and .summary.add_reported_s.max <= 1000) | if . then 1 else 0 end' "$WORK/apply.json")
{
    echo "# Spoke Edge benchmark, $STAMP"
    echo
    echo "Machine: $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)."
    echo "Load average before the idle window: $LOAD_BEFORE. Spoke at commit $(git -C "$ROOT" rev-parse --short HEAD) plus the work tree."
    echo "spoke-edge binary: $EDGE_BIN ($(stat -c %s "$EDGE_BIN") bytes; loadable segments $(load_mb "$EDGE_BIN"))."
    echo "Modules deployed: $MODULES_DESC. Settle $SETTLE s, window $WINDOW s, $RUNS apply runs."
    echo
    echo "| Measure | Value |"
    echo "|---|---:|"
    echo "| spoke-edge VmRSS, idle, median of $WINDOW samples (MB) | $(mb "$RSS_MED") |"
    echo "| spoke-edge VmRSS, idle, min / max (MB) | $(mb "$RSS_MIN") / $(mb "$RSS_MAX") |"
    echo "| spoke-edge RssAnon / RssFile (MB) | $(mb "$RSS_ANON") / $(mb "$RSS_FILE") |"
    echo "| spoke-edge VmHWM, peak since start (MB) | $(mb "$HWM") |"
    echo "| spoke-edge VmRSS after the $RUNS apply runs (MB) | $(mb "$RSS_AFTER") |"
    echo "| spoke-edge threads | $THREADS |"
    echo "| spoke-edge CPU over $WINDOW s idle, utime+stime (% of one core) | $CPU_PCT ($CPU_MS ms; resolution $((1000 / TICKS)) ms) |"
    echo "| spoke-edge CPU over $WINDOW s idle, all threads' schedstat (% of one core) | $SCHED_PCT ($SCHED_MS ms) |"
    echo "| module processes' VmRSS | ${MODULE_RSS[*]} |"
    echo "| base modules' restartCount after the idle window | $RESTARTS |"
    echo "| apply → module process started (/proc start time), min / median / max (ms) | $(ms add_proc_start_s) |"
    echo "| apply → module's first instruction (its own clock stamp), min / median / max (ms) | $(ms add_first_instr_s) |"
    echo "| apply → \`runtimeStatus: running\` in \$edgeAgent reported, min / median / max (ms) | $(ms add_reported_s) |"
    echo "| \`spoke deployment apply\` CLI call itself, min / median / max (ms) | $(ms add_cli_s) |"
    echo "| removal: apply → process gone, min / median / max (ms) | $(ms remove_proc_gone_s) |"
    echo "| removal: apply → module gone from reported, min / median / max (ms) | $(ms remove_reported_s) |"
    echo
    echo "| Target | Verdict |"
    echo "|---|---|"
    echo "| spoke-edge idle RSS ≤ 10 MB | $(verdict "$RSS_OK") ($(mb "$RSS_MED") MB) |"
    echo "| apply → running ≤ 1 s (every run, process start and reported) | $(verdict "$APPLY_OK") |"
    echo
    echo "spoke-edge's RSS by mapping at the end of the idle window (/proc/PID/smaps):"
    echo
    echo "| KB | Mapping | Permissions |"
    echo "|---:|---|---|"
    awk '{printf "| %d | %s | %s |\n", $1, $2, $3}' "$WORK/smaps_by_mapping"
} >"$OUT"
cp "$WORK/apply.json" "$OUT_DIR/$STAMP.apply.json"
cat "$OUT"
log "written to $OUT"
