#!/usr/bin/env bash
# Build {{name}}.wasm (a WebAssembly component) for labhost: clang-19 for
# wasm32-wasi (reactor) + the WASI preview1 adapter, via labhost's C tool.
set -euo pipefail
cd "$(dirname "$0")"
labhost_root="${LABHOST_ROOT:-{{labhost}}}"
tool="$labhost_root/guests/c/tool/target/release/lab-c-tool"
command -v clang-19 >/dev/null || { echo "error: clang-19 missing: apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32" >&2; exit 1; }
[ -x "$tool" ] || cargo build --quiet --locked --release --manifest-path "$labhost_root/guests/c/tool/Cargo.toml" --target-dir "$labhost_root/guests/c/tool/target"
mkdir -p build/gen
"$tool" bindgen "$labhost_root/wit" plugin build/gen
clang-19 --target=wasm32-wasi -O2 -mexec-model=reactor -std=c11 -D_GNU_SOURCE -Wall \
    -I "$labhost_root/guests/c" -I build/gen -Wl,--strip-all -o build/{{name}}.core.wasm \
    *.c "$labhost_root/guests/c/lab.c" build/gen/plugin.c build/gen/plugin_component_type.o
"$tool" componentize build/{{name}}.core.wasm {{name}}.wasm
echo "built $(pwd)/{{name}}.wasm"
