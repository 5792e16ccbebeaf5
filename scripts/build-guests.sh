#!/usr/bin/env bash
# Build the guest plugins into guests/dist/<language>/ (idempotent).
# Usage: scripts/build-guests.sh [rust] [python] [c] [js]   (default: all)
# Rust: wasm32-wasip2 via rustup; if the target cannot be added, the Debian
# rustc-web fallback described in TOOLCHAINS.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

build_rust() {
dist="$root/guests/dist/rust"
mkdir -p "$dist"
plugins=(datagen trainer evaluator digits_eval llm_judge probe evil describe_print describe_sleep describe_huge describe_bigdefault)

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
# The probe again, built against the frozen lab:api@0.1.0 (its own target
# dir, so the two feature sets do not rebuild each other): the host must
# keep running plugins built against a released version.
if [ -z "${RUSTC_BOOTSTRAP:-}" ] && [ "$out" = "guests/rust/target/wasm32-wasip2/release" ]; then
    cargo build --quiet --release --target wasm32-wasip2 --manifest-path guests/rust/Cargo.toml \
        -p probe --features probe/api-0-1 --target-dir guests/rust/target/api-0-1
    cp guests/rust/target/api-0-1/wasm32-wasip2/release/probe.wasm "$dist/probe_v0_1.wasm"
else
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld \
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo build --quiet --release \
        --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort --manifest-path guests/rust/Cargo.toml \
        -p probe --features probe/api-0-1 --target-dir guests/rust/target/api-0-1
    cp guests/rust/target/api-0-1/wasm32-unknown-unknown/release/probe.wasm "$dist/probe_v0_1.wasm"
fi
# Predictors (served as apps), on their own: they enable the SDK's
# `predictor` feature (own target dir, so neither build undoes the other).
predictors=(digits_app predictor_probe)
if [ -z "${RUSTC_BOOTSTRAP:-}" ] && [ "$out" = "guests/rust/target/wasm32-wasip2/release" ]; then
    cargo build --quiet --release --target wasm32-wasip2 --manifest-path guests/rust/Cargo.toml \
        "${predictors[@]/#/--package=}" --target-dir guests/rust/target/predictor
    pout="guests/rust/target/predictor/wasm32-wasip2/release"
else
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld \
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo build --quiet --release \
        --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort --manifest-path guests/rust/Cargo.toml \
        "${predictors[@]/#/--package=}" --target-dir guests/rust/target/predictor
    pout="guests/rust/target/predictor/wasm32-unknown-unknown/release"
fi
for p in "${predictors[@]}"; do
    cp "$pout/$p.wasm" "$dist/$p.wasm"
done
echo "build-guests: rust plugins in guests/dist/rust: ${plugins[*]} ${predictors[*]}" >&2
}

# ---- Python guests: componentize-py ----------------------------------------
build_python() {
# Each directory guests/python/<dir>/ in py_plugins holds an app module
# `app.py`; with the SDK package `lab` (guests/python/sdk) it becomes
# guests/dist/python/<last component of dir>.wasm (the probe, and the demo
# plugins in guests/python/plugins/).
# componentize-py runs from a venv in guests/python/.venv (git-ignored),
# created and filled only when missing. It generates the WIT bindings
# (`wit_world`) itself during the build, so no bindings are committed.
# A build takes ~9 s, so it is skipped while a stamp of the inputs (WIT, SDK,
# app, componentize-py version) matches the one of the last build.
py_plugins=(probe plugins/datagen plugins/evaluator plugins/llm_datagen plugins/tlab_train)
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
               find wit/ guests/python/sdk "guests/python/$src" -type f \
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
}

# ---- C guests: clang-19 + wasi-libc, preview1 reactor adapter --------------
build_c() {
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
}

# ---- JavaScript guests: componentize-js (SpiderMonkey/StarlingMonkey) ------
build_js() {
# Each directory guests/js/<plugin>/ holds `<plugin>.js`, an ES module that
# imports the SDK guests/js/lab.js and exports `describe`/`run`. The npm
# packages pinned in guests/js/package.json + package-lock.json
# (componentize-js 0.23.0, jco 1.35.0, preview2-shim 0.25.0) are installed by
# `npm ci` into guests/js/node_modules (git-ignored) only when the lock file
# changed. The WIT for the build (guests/js/build/wit, git-ignored) is the JS
# world guests/js/wit/world.wit + wit/lab.wit + jco's WASI 0.2.12 WIT.
# `-d http fetch-event`: no wasi:http import (the host does not link it).
# A build takes ~10-20 s (npm ci ~15 s more), so it is skipped while a stamp
# of the inputs (lock file, WIT, SDK, plugin sources) matches the last build.
js_plugins=(probe evaluator)
js_dir="$root/guests/js"
js_dist="$root/guests/dist/js"
js_build="$js_dir/build"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "build-guests: installing nodejs and npm" >&2
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq
    $sudo_ apt-get install -y -qq nodejs npm
fi
js_lock="$(sha256sum "$js_dir/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$js_dir/node_modules/.labhost-lock" 2>/dev/null)" != "$js_lock" ]; then
    (cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$js_lock" > "$js_dir/node_modules/.labhost-lock"
fi
js_wasi="$js_dir/node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.12"
rm -rf "$js_build/wit"
mkdir -p "$js_build/wit/deps/lab-api" "$js_dist"
cp "$js_dir/wit/world.wit" "$js_build/wit/"
cp wit/*.wit "$js_build/wit/deps/lab-api/"
for pkg in cli clocks filesystem io random sockets; do
    cp -r "$js_wasi/wasi-$pkg" "$js_build/wit/deps/"
done
js_built=()
for p in "${js_plugins[@]}"; do
    stamp="$js_dist/.$p.stamp"
    want="$( { echo "$js_lock"
               find "$js_build/wit" "$js_dir/lab.js" "$js_dir/$p" -type f -print0 \
                    | sort -z | xargs -0 sha256sum | sed "s#  $root/#  #"; } \
             | sha256sum | cut -d' ' -f1)"
    if [ -f "$js_dist/$p.wasm" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        continue
    fi
    # Run from guests/js: componentize-js maps the working directory as the
    # module root, so `import ... from '../lab.js'` resolves at build time.
    (cd "$js_dir" && node node_modules/@bytecodealliance/componentize-js/src/cli.js \
        "$p/$p.js" -w build/wit -n plugin -d http fetch-event -o "$js_dist/$p.wasm.tmp")
    mv "$js_dist/$p.wasm.tmp" "$js_dist/$p.wasm"
    echo "$want" > "$stamp"
    js_built+=("$p")
done
echo "build-guests: js plugins in guests/dist/js: ${js_plugins[*]} (rebuilt: ${js_built[*]:-none})" >&2
}

# Languages to build: all by default, or those named (rust python c js).
langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(rust python c js)
for lang in "${langs[@]}"; do
    case "$lang" in
        rust | python | c | js) "build_$lang" ;;
        *) echo "error: unknown guest language \`$lang\` (expected rust, python, c or js)" >&2; exit 2 ;;
    esac
done
