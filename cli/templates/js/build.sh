#!/usr/bin/env bash
# Build {{name}}.wasm (a WebAssembly component) for labhost with componentize-js,
# via the labhost JS SDK package @labhost/lab (its `labhost-build-js`), which
# `npm install` puts in node_modules (or: npm install ./labhost-lab-0.2.0.tgz).
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules/@labhost/lab ] || npm install --no-audit --no-fund --loglevel=error
npx --no-install labhost-build-js plugin.js -o {{name}}.wasm
echo "built $(pwd)/{{name}}.wasm"
