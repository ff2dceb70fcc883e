#!/usr/bin/env bash
# Installs what the test command needs, idempotently: Debian packages for the
# interop tests (mosquitto clients, openssl), the Rust components for the lint steps, and
# the Python virtual environment of the compatibility suite (.venv at the repo
# root, from compat/requirements.txt). A second run that finds everything in
# place changes nothing and takes about a second.
#
# Environment:
#   SPOKE_PYTHON   interpreter used to create .venv (default: python3.11, else python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[setup] %s\n' "$*"; }

# --- Debian packages ---------------------------------------------------------
# A package is installed only when the command it provides is missing.
apt_wanted=()
command -v mosquitto_pub >/dev/null 2>&1 || apt_wanted+=(mosquitto-clients)
command -v mosquitto_sub >/dev/null 2>&1 || apt_wanted+=(mosquitto-clients)
# The X.509 tests make self-signed device certificates with the openssl command.
command -v openssl >/dev/null 2>&1 || apt_wanted+=(openssl)
# The broker is the peer the benchmarks (bench/run.sh) compare the hub with.
command -v mosquitto >/dev/null 2>&1 || [[ -x /usr/sbin/mosquitto ]] || apt_wanted+=(mosquitto)
command -v jq >/dev/null 2>&1 || apt_wanted+=(jq)

PYTHON="${SPOKE_PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    # Debian's own interpreter ships venv/ensurepip in a separate package.
    apt_wanted+=(python3-venv)
fi

if ((${#apt_wanted[@]})); then
    # De-duplicate.
    mapfile -t apt_wanted < <(printf '%s\n' "${apt_wanted[@]}" | sort -u)
    log "installing Debian packages: ${apt_wanted[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_install() { apt-get install -y --no-install-recommends "${apt_wanted[@]}"; }
    # Refresh the package lists only when they are missing or stale.
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || ! apt_install; then
        log "apt-get update"
        apt-get update
        apt_install
    fi
else
    log "Debian packages: present"
fi

# --- Rust components ---------------------------------------------------------
if command -v rustup >/dev/null 2>&1; then
    installed="$(rustup component list --installed)"
    for component in rustfmt clippy; do
        if ! grep -q "^${component}" <<<"$installed"; then
            log "rustup component add ${component}"
            rustup component add "$component"
        fi
    done
    log "Rust components: rustfmt, clippy present"
else
    log "rustup not found; assuming cargo fmt and cargo clippy are available"
fi

# --- Python virtual environment ----------------------------------------------
VENV="$ROOT/.venv"
REQ="$ROOT/compat/requirements.txt"
STAMP="$VENV/.requirements.sha256"
want_hash="$(sha256sum "$REQ" | cut -d' ' -f1)"

if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    # Missing, or left by an interpreter this machine no longer has.
    log "creating $VENV with $PYTHON ($("$PYTHON" --version 2>&1))"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_hash" ]] \
    && "$VENV/bin/python" -c 'import azure.iot.device, azure.iot.hub, paho.mqtt.client, pytest, pytest_timeout' >/dev/null 2>&1; then
    log "Python packages: up to date"
else
    log "installing Python packages from compat/requirements.txt"
    "$VENV/bin/python" -m pip install --quiet -r "$REQ"
    "$VENV/bin/python" -c 'import azure.iot.device, azure.iot.hub, paho.mqtt.client, pytest, pytest_timeout'
    echo "$want_hash" >"$STAMP"
    log "Python packages: installed"
fi
