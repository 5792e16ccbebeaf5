#!/usr/bin/env bash
# Build {{name}}.wasm (a WebAssembly component) for labhost: clang-19 for
# wasm32-wasi (reactor) with the labhost C SDK in lab-sdk/ (lab.h, lab.c, the
# WIT), made a component with the WASI preview1 adapter by lab-c-tool (from
# $LAB_C_TOOL, $PATH, or built once from lab-sdk/tool with cargo).
set -euo pipefail
cd "$(dirname "$0")"
command -v clang-19 >/dev/null || { echo "error: clang-19 missing: apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32" >&2; exit 1; }
tool="${LAB_C_TOOL:-$(command -v lab-c-tool || true)}"
if [ -z "$tool" ]; then
    tool=lab-sdk/tool/target/release/lab-c-tool
    [ -x "$tool" ] || cargo build --quiet --locked --release --manifest-path lab-sdk/tool/Cargo.toml
fi
mkdir -p build/gen
"$tool" bindgen lab-sdk/wit plugin build/gen
clang-19 --target=wasm32-wasi -O2 -mexec-model=reactor -std=c11 -D_GNU_SOURCE -Wall \
    -I lab-sdk -I build/gen -Wl,--strip-all -o build/{{name}}.core.wasm \
    *.c lab-sdk/lab.c build/gen/plugin.c build/gen/plugin_component_type.o
"$tool" componentize build/{{name}}.core.wasm {{name}}.wasm
echo "built $(pwd)/{{name}}.wasm"
