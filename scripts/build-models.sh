#!/usr/bin/env bash
# Build the demo's real model and its data (idempotent) into
# examples/models/build/: digits-mlp.onnx (an MLP trained by scikit-learn on
# its bundled 8x8 digits, exported with skl2onnx), digits.jsonl (every image
# with its label and split) and digits.json (sizes, scikit-learn's own test
# accuracy). See examples/models/digits.py.
# The Python packages go to a venv in examples/models/.venv (git-ignored),
# installed only when missing; the build is skipped while a stamp of the
# inputs matches the last one. Nothing is downloaded but the packages: the
# data ships inside scikit-learn.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/examples/models/.venv"
out="$root/examples/models/build"
pins=(scikit-learn==1.7.2 skl2onnx==1.20.0 onnx==1.23.2 numpy==2.4.6)
if ! "$venv/bin/python" -c 'import sklearn, skl2onnx, onnx' 2>/dev/null; then
    if ! python3 -m venv "$venv" 2>/dev/null; then
        echo "build-models: python3 -m venv failed; installing python3-venv" >&2
        sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
        $sudo_ apt-get update -qq
        $sudo_ apt-get install -y -qq python3 python3-venv
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
fi
want="$( { echo "${pins[*]}"; sha256sum examples/models/digits.py; } | sha256sum | cut -d' ' -f1)"
if [ -f "$out/digits-mlp.onnx" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$want" ]; then
    exit 0
fi
mkdir -p "$out"
"$venv/bin/python" examples/models/digits.py "$out" >/dev/null
echo "$want" > "$out/.stamp"
echo "build-models: $(cat "$out/digits.json" | tr -d '\n ')" >&2
