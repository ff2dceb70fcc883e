#!/usr/bin/env bash
# Builds the sample modules' images FROM scratch, without any registry:
#   1. cargo build --release -p <module>;
#   2. stage a context dir: rootfs/<module> (the binary, debug info stripped), and every
#      shared library `ldd` names plus the dynamic loader, each at the path `ldd` reports;
#   3. docker build -t spoke/<module>:0.1 -f modules/<module>/Dockerfile <context>.
#
# Usage: modules/build-images.sh [MODULE...]   (default: every module with a Dockerfile)
# Environment: CARGO_TARGET_DIR (default: <repo>/target), TAG (default: 0.1).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
tag=${TAG:-0.1}

if [ "$#" -gt 0 ]; then
    modules=("$@")
else
    modules=()
    for dockerfile in "$repo"/modules/*/Dockerfile; do
        modules+=("$(basename "$(dirname "$dockerfile")")")
    done
fi

packages=()
for module in "${modules[@]}"; do
    [ -f "$repo/modules/$module/Dockerfile" ] || { echo "no modules/$module/Dockerfile" >&2; exit 2; }
    packages+=(-p "$module")
done
(cd "$repo" && cargo build --release "${packages[@]}")

context_root=$(mktemp -d)
trap 'rm -rf "$context_root"' EXIT

for module in "${modules[@]}"; do
    binary=$target_dir/release/$module
    context=$context_root/$module
    mkdir -p "$context/rootfs"
    cp "$binary" "$context/rootfs/$module"
    if command -v strip >/dev/null; then
        strip --strip-debug "$context/rootfs/$module"
    fi
    # `ldd` lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x..)" and, for the
    # loader, "/lib64/ld-linux-x86-64.so.2 (0x..)"; linux-vdso has no file.
    ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
        sort -u | while read -r library; do
            mkdir -p "$context/rootfs$(dirname "$library")"
            cp -L "$library" "$context/rootfs$library"
        done
    echo "== $module: $(cd "$context/rootfs" && find . -type f | sort | tr '\n' ' ')"
    docker build -t "spoke/$module:$tag" -f "$repo/modules/$module/Dockerfile" "$context"
done
