# Helpers shared by the benchmark scripts (sourced, not run). The sourcing script sets
# BENCH_NAME, the prefix of its log lines.

log() { printf '[%s] %s\n' "${BENCH_NAME:-bench}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# stop_pid PID: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
    [[ -n $1 ]] || return 0
    kill -TERM "$1" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
}

# wait_port IP PORT: until a TCP connect succeeds (at most 30 s).
wait_port() {
    for _ in $(seq 300); do
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "nothing listening on $1:$2 after 30 s"
}

# require_free IP PORT...: dies when something already listens on one of the ports.
require_free() {
    local ip=$1 port
    shift
    for port in "$@"; do
        if (exec 3<>"/dev/tcp/$ip/$port") 2>/dev/null; then
            die "$ip:$port is already in use"
        fi
    done
}

# children_of PID: the live children of PID (from /proc/*/stat, without forking per process).
children_of() {
    local stat line state ppid pid
    for stat in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$stat" || continue
        # Fields 3 (state) and 4 (ppid) follow the ")" that ends the command name.
        read -r state ppid _ <<<"${line##*) }"
        if [[ $ppid == "$1" && $state != Z ]]; then
            pid=${stat#/proc/}
            echo "${pid%/stat}"
        fi
    done
}

# stop_edge PID: stops spoke-edge, then its module processes, which lead their own process
# groups and outlive spoke-edge by design (noted before the daemon stops).
stop_edge() {
    [[ -n $1 ]] || return 0
    local pgids pgid
    mapfile -t pgids < <(children_of "$1")
    stop_pid "$1"
    for pgid in "${pgids[@]}"; do
        kill -TERM -- "-$pgid" "$pgid" 2>/dev/null || true
    done
    (( ${#pgids[@]} == 0 )) || sleep 0.5
    for pgid in "${pgids[@]}"; do
        kill -KILL -- "-$pgid" "$pgid" 2>/dev/null || true
    done
}

# write_edge_config FILE IP HUB_CA DATA_DIR CONNECTION_STRING: a spoke-edge configuration
# with the process runtime and the edge hub on IP, which is also its hostname.
write_edge_config() {
    cat >"$1" <<EOF
hostname = "$2"
bind = "$2"
trust_bundle_cert = "file://$3"
data_dir = "$4"
[provisioning]
source = "manual"
connection_string = "$5"
[runtime]
kind = "process"
EOF
}

# mosquitto_config DIR IP: an ECDSA P-256 CA (DIR/ca.pem) and server certificate for IP, and
# DIR/mosquitto.conf for a TLS listener on IP:8883.
# persistence false: mosquitto keeps nothing on disk (it acknowledges from memory; Spoke
# acknowledges after a durable write). max_inflight_messages and max_queued_messages bound what
# mosquitto sends each subscriber: its defaults, written out.
mosquitto_config() {
    local m=$1 ip=$2
    mkdir -p "$m"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout "$m/ca.key" -out "$m/ca.pem" -subj "/CN=spoke-bench mosquitto CA" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$m/server.key" -out "$m/server.csr" -subj "/CN=$ip" 2>/dev/null
    printf 'subjectAltName=IP:%s,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
        "$ip" >"$m/server.ext"
    openssl x509 -req -in "$m/server.csr" -CA "$m/ca.pem" -CAkey "$m/ca.key" -CAcreateserial \
        -days 2 -extfile "$m/server.ext" -out "$m/server.pem" 2>/dev/null
    cat >"$m/mosquitto.conf" <<EOF
per_listener_settings false
listener 8883 $ip
cafile $m/ca.pem
certfile $m/server.pem
keyfile $m/server.key
allow_anonymous true
persistence false
max_connections -1
max_inflight_messages 20
max_queued_messages 1000
set_tcp_nodelay true
user root
log_dest stderr
log_type error
log_type warning
EOF
}
