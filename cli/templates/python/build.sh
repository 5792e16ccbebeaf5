#!/usr/bin/env bash
# Build {{name}}.wasm (a WebAssembly component) for labhost with componentize-py,
# against the installed labhost Python SDK (package `lab`, with the WIT in
# `lab_wit`). Once, in a virtual environment:
#   pip install labhost-lab componentize-py==0.25.1
# (or a wheel: pip install labhost_lab-0.2.0-py3-none-any.whl componentize-py==0.25.1)
# $PYTHON (default python3) is the interpreter that has the SDK installed.
set -euo pipefail
cd "$(dirname "$0")"
python="${PYTHON:-python3}"
if ! wit="$("$python" -m lab_wit 2>/dev/null)"; then
    echo "error: the labhost Python SDK is not installed for $python: pip install labhost-lab componentize-py==0.25.1" >&2
    exit 1
fi
if ! command -v componentize-py >/dev/null; then
    echo "error: componentize-py not found: pip install componentize-py==0.25.1" >&2
    exit 1
fi
# The SDK's site-packages directory, so componentize-py finds `lab`.
site="$("$python" -c 'import os, lab_wit; print(os.path.dirname(os.path.dirname(lab_wit.__file__)))')"
componentize-py -d "$wit" -w plugin componentize -p "$site" -p . app -o {{name}}.wasm >/dev/null
echo "built $(pwd)/{{name}}.wasm"
