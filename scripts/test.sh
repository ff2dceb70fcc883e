#!/usr/bin/env bash
# The project's test command: installs prerequisites, then lint, build, unit and
# integration tests, a short fuzz pass (when cargo-fuzz is installed), and the
# Python compatibility suite that drives spoke-hub with the real Azure IoT SDKs.
#
# Environment:
#   SPOKE_SKIP_FUZZ=1    skip the fuzz step even when cargo-fuzz is available
#   SPOKE_FUZZ_SECONDS   seconds per fuzz target (default 5)
#   PYTEST_ARGS          extra arguments for pytest (e.g. "-k twin -x")
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
[[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
export SPOKE_BIN_DIR="$TARGET_DIR/release"

declare -a SUMMARY=()
START_ALL=$SECONDS
LOGDIR="$(mktemp -d)"
trap 'rm -rf "$LOGDIR"' EXIT

# Test counts over cargo test and pytest: "passed failed skipped".
counts() {
    local cargo_counts compat_counts
    cargo_counts="$(awk '/^test result:/ {
            for (i = 1; i <= NF; i++) {
                if ($(i+1) ~ /^passed/) p += $i
                if ($(i+1) ~ /^failed/) f += $i
                if ($(i+1) ~ /^ignored/) s += $i
            }
        } END { printf "%d %d %d", p, f, s }' "$LOGDIR/cargo-test.log" 2>/dev/null || echo "0 0 0")"
    compat_counts="$("$ROOT/.venv/bin/python" - "$LOGDIR/compat.xml" 2>/dev/null <<'PY' || echo "0 0 0"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
k = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - k, f, k)
PY
)"
    echo "$cargo_counts $compat_counts" | awk '{ printf "%d passed, %d failed, %d skipped", $1 + $4, $2 + $5, $3 + $6 }'
}

summary() {
    echo
    echo "================ test summary ================"
    local line
    for line in "${SUMMARY[@]}"; do echo "  $line"; done
    echo "  time: $((SECONDS - START_ALL)) s"
    echo "=============================================="
    echo "total: $(counts)"
}

# step NAME COMMAND...: runs one step, records PASS/FAIL and its duration; stops on failure.
step() {
    local name="$1"
    shift
    echo
    echo "==> ${name}: $*"
    local start=$SECONDS rc=0
    "$@" || rc=$?
    local took=$((SECONDS - start))
    if ((rc == 0)); then
        SUMMARY+=("PASS  ${name} (${took} s)")
    else
        SUMMARY+=("FAIL  ${name} (${took} s, exit ${rc})")
        summary
        exit "$rc"
    fi
}

skip() {
    echo
    echo "==> $1: skipped ($2)"
    SUMMARY+=("SKIP  $1 ($2)")
}

fuzz_all() {
    local seconds="${SPOKE_FUZZ_SECONDS:-5}" work target
    work="$(mktemp -d)"
    # Build every target once, then run each on a scratch copy of its committed corpus
    # (new inputs go to the scratch directory, never into the repository).
    cargo +nightly fuzz build || return
    for target in $(cargo +nightly fuzz list); do
        mkdir -p "$work/$target"
        if [[ -d "fuzz/corpus/$target" ]]; then cp -r "fuzz/corpus/$target/." "$work/$target/"; fi
        echo "--- fuzz $target (${seconds} s)"
        cargo +nightly fuzz run "$target" "$work/$target" -- -max_total_time="$seconds" || return
    done
    rm -rf "$work"
}

cargo_test() {
    cargo test --workspace 2>&1 | tee "$LOGDIR/cargo-test.log"
}

compat() {
    # shellcheck disable=SC2086 # PYTEST_ARGS is a list of words on purpose
    "$ROOT/.venv/bin/python" -m pytest compat -q --junitxml "$LOGDIR/compat.xml" ${PYTEST_ARGS:-}
}

step "setup" bash scripts/setup.sh
step "cargo fmt" cargo fmt --all --check
step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
step "cargo build --release" cargo build --release
step "cargo test" cargo_test

if [[ "${SPOKE_SKIP_FUZZ:-0}" == "1" ]]; then
    skip "fuzz" "SPOKE_SKIP_FUZZ=1"
elif [[ ! -d fuzz || ! -f fuzz/Cargo.toml ]]; then
    skip "fuzz" "no fuzz/Cargo.toml"
elif ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    skip "fuzz" "cargo-fuzz or the nightly toolchain is not installed"
else
    step "fuzz (${SPOKE_FUZZ_SECONDS:-5} s per target)" fuzz_all
fi

step "compat (pytest, real Azure SDKs)" compat

summary
