#!/usr/bin/env bash
# Build {{name}}.wasm (a WebAssembly component) for labhost with componentize-py.
set -euo pipefail
cd "$(dirname "$0")"
labhost_root="${LABHOST_ROOT:-{{labhost}}}"
venv="$labhost_root/guests/python/.venv"
if ! "$venv/bin/componentize-py" --version >/dev/null 2>&1; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "componentize-py==0.25.1"
fi
VIRTUAL_ENV="$venv" "$venv/bin/componentize-py" -d "$labhost_root/wit" -w plugin componentize \
    -p "$labhost_root/guests/python/sdk" -p . app -o {{name}}.wasm >/dev/null
echo "built $(pwd)/{{name}}.wasm"
