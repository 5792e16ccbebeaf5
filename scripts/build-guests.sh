#!/usr/bin/env bash
# Build the guest plugins into guests/dist/<language>/ (idempotent).
# Rust: wasm32-wasip2 via rustup; if the target cannot be added, the Debian
# rustc-web fallback described in TOOLCHAINS.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
dist="$root/guests/dist/rust"
mkdir -p "$dist"
plugins=(datagen trainer evaluator probe evil)

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

# ---- Python guests: componentize-py ----------------------------------------
# Each directory guests/python/<dir>/ in py_plugins holds an app module
# `app.py`; with the SDK package `lab` (guests/python/sdk) it becomes
# guests/dist/python/<last component of dir>.wasm (the probe, and the demo
# plugins in guests/python/plugins/).
# componentize-py runs from a venv in guests/python/.venv (git-ignored),
# created and filled only when missing. It generates the WIT bindings
# (`wit_world`) itself during the build, so no bindings are committed.
# A build takes ~9 s, so it is skipped while a stamp of the inputs (WIT, SDK,
# app, componentize-py version) matches the one of the last build.
py_plugins=(probe plugins/datagen plugins/evaluator)
py_cpy_version=0.25.1
py_venv="$root/guests/python/.venv"
py_cpy="$py_venv/bin/componentize-py"
py_dist="$root/guests/dist/python"
if ! "$py_cpy" --version 2>/dev/null | grep -qx "componentize-py $py_cpy_version"; then
    if ! python3 -m venv "$py_venv" 2>/dev/null; then
        echo "build-guests: python3 -m venv failed; installing python3-venv" >&2
        sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
        $sudo_ apt-get update -qq
        $sudo_ apt-get install -y -qq python3 python3-venv
        python3 -m venv "$py_venv"
    fi
    "$py_venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$py_cpy_version"
fi
mkdir -p "$py_dist"
py_built=()
for src in "${py_plugins[@]}"; do
    p="${src##*/}"
    stamp="$py_dist/.$p.stamp"
    want="$( { echo "componentize-py $py_cpy_version"
               find wit guests/python/sdk "guests/python/$src" -type f \
                    -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum; } \
             | sha256sum | cut -d' ' -f1)"
    if [ -f "$py_dist/$p.wasm" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        continue
    fi
    # VIRTUAL_ENV: componentize-py then searches the venv's site-packages, not
    # the machine's. (It leaves __pycache__ dirs in the sources: git-ignored.)
    VIRTUAL_ENV="$py_venv" "$py_cpy" -d wit -w plugin componentize \
        -p guests/python/sdk -p "guests/python/$src" app -o "$py_dist/$p.wasm.tmp" >/dev/null
    mv "$py_dist/$p.wasm.tmp" "$py_dist/$p.wasm"
    echo "$want" > "$stamp"
    py_built+=("$p")
done
echo "build-guests: python plugins in guests/dist/python: ${py_plugins[*]##*/} (rebuilt: ${py_built[*]:-none})" >&2

# ---- C guests: clang-19 + wasi-libc, preview1 reactor adapter --------------
# Each directory guests/c/<dir>/ in c_plugins (the probe, and the example
# plugins in guests/c/plugins/) holds one plugin's C sources and becomes
# guests/dist/c/<last component of dir>.wasm: with the SDK (guests/c/lab.h,
# lab.c) and bindings generated from wit/ it is compiled for wasm32-wasi
# (preview1, reactor) and made a component with the WASI preview1 reactor
# adapter of wasmtime 48. Both component-model steps are done by the
# small Rust tool guests/c/tool (`lab-c-tool`: wit-bindgen-c and wit-component
# as libraries; its own workspace and target dir). Bindings and objects go to
# guests/c/build/ (git-ignored). Debian packages are installed only if missing.
c_plugins=(probe plugins/datagen)
c_dist="$root/guests/dist/c"
c_build="$root/guests/c/build"
c_tool="$root/guests/c/tool/target/release/lab-c-tool"
if ! command -v clang-19 >/dev/null || ! command -v wasm-ld-19 >/dev/null \
    || [ ! -f /usr/lib/wasm32-wasi/libc.a ] \
    || [ ! -f /usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a ]; then
    echo "build-guests: installing clang-19, lld-19, wasi-libc, libclang-rt-19-dev-wasm32" >&2
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq
    $sudo_ apt-get install -y -qq clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32
fi
cargo build --quiet --locked --release --manifest-path guests/c/tool/Cargo.toml \
    --target-dir "$root/guests/c/tool/target"
mkdir -p "$c_dist" "$c_build/gen"
"$c_tool" bindgen wit plugin "$c_build/gen"
for src in "${c_plugins[@]}"; do
    p="${src##*/}"
    clang-19 --target=wasm32-wasi -O2 -mexec-model=reactor -std=c11 -D_GNU_SOURCE \
        -Wall -Wextra -Wno-unused-parameter -Werror=implicit-function-declaration \
        -I guests/c -I "$c_build/gen" -Wl,--strip-all -o "$c_build/$p.core.wasm" \
        guests/c/"$src"/*.c guests/c/lab.c "$c_build/gen/plugin.c" \
        "$c_build/gen/plugin_component_type.o"
    "$c_tool" componentize "$c_build/$p.core.wasm" "$c_dist/$p.wasm.tmp"
    mv "$c_dist/$p.wasm.tmp" "$c_dist/$p.wasm"
done
echo "build-guests: c plugins in guests/dist/c: ${c_plugins[*]##*/}" >&2
