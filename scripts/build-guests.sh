#!/usr/bin/env bash
# Build the guest plugins into guests/dist/<language>/ (idempotent).
# Rust: wasm32-wasip2 via rustup; if the target cannot be added, the Debian
# rustc-web fallback described in TOOLCHAINS.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
dist="$root/guests/dist/rust"
mkdir -p "$dist"
plugins=(datagen trainer evaluator probe)

if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2; then
    cargo build --quiet --release --target wasm32-wasip2 --manifest-path guests/rust/Cargo.toml
    out="guests/rust/target/wasm32-wasip2/release"
else
    echo "build-guests: rustup cannot add wasm32-wasip2; using Debian's rustc-web with build-std" >&2
    if ! command -v /usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld >/dev/null; then
        sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
        $sudo_ apt-get update -qq
        $sudo_ apt-get install -y -qq rustc-web cargo-web rust-web-src rust-web-llvm lld-22
    fi
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld \
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo build --quiet --release \
        --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort --manifest-path guests/rust/Cargo.toml
    out="guests/rust/target/wasm32-unknown-unknown/release"
fi
for p in "${plugins[@]}"; do
    cp "$out/$p.wasm" "$dist/$p.wasm"
done
echo "build-guests: rust plugins in guests/dist/rust: ${plugins[*]}" >&2
