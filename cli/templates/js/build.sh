#!/usr/bin/env bash
# Build {{name}}.wasm (a WebAssembly component) for labhost with
# componentize-js, using the JS SDK and toolchain of the labhost checkout
# (run its scripts/build-guests.sh once first: it installs them).
set -euo pipefail
cd "$(dirname "$0")"
labhost_root="${LABHOST_ROOT:-{{labhost}}}"
js="$labhost_root/guests/js"
if [ ! -d "$js/node_modules/@bytecodealliance/componentize-js" ] || [ ! -d "$js/build/wit" ]; then
    echo "error: the JS toolchain is not installed: run $labhost_root/scripts/build-guests.sh" >&2
    exit 1
fi
cp "$js/lab.js" lab.js
node "$js/node_modules/@bytecodealliance/componentize-js/src/cli.js" plugin.js \
    -w "$js/build/wit" -n plugin -d http fetch-event -o {{name}}.wasm
echo "built $(pwd)/{{name}}.wasm"
