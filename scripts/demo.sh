#!/usr/bin/env bash
# The labhost demo: build the host and the Rust guests, then run the
# pipeline examples/pipelines/sentiment.toml (generate a dataset -> train
# three models, fanned out over learning rates -> evaluate each) in a fresh
# workspace, and show where everything landed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ws="${LABHOST_HOME:-$root/labhost-workspace/demo}"

"$root/scripts/build-guests.sh" rust   # the demo needs only the Rust guests
"$root/scripts/build-models.sh"        # the digits MLP (scikit-learn → ONNX)
cargo build --quiet -p labhost-cli
labhost="$root/target/debug/labhost"
g="$root/guests/dist/rust"

rm -rf "$ws"
export LABHOST_HOME="$ws"
echo "== the demo pipeline (examples/pipelines/sentiment.toml): generate a sentiment"
echo "== dataset, train three classifiers on it (learning rates 0.1, 0.5, 2.0), evaluate each"
"$labhost" pipeline run "$root/examples/pipelines/sentiment.toml"
echo
echo "== a real network through wasi:nn: scikit-learn's digits MLP (ONNX) scored next to a"
echo "== hand-written nearest-centroid model on the 450 test images"
m="$root/examples/models/build"
"$labhost" models add digits-mlp "$m/digits-mlp.onnx" --architecture mlp-64 --parent-model "scikit-learn MLPClassifier"
"$labhost" datasets add digits "$m/digits.jsonl" --description "scikit-learn's bundled 8x8 digits"
"$labhost" run "$g/digits_eval.wasm" --model digits-mlp --dataset digits --experiment demo
"$labhost" evals "$("$labhost" jobs --plugin digits-evaluator --limit 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')"
echo
echo "== the workspace ($ws)"
"$labhost" jobs
echo
"$labhost" models
echo
"$labhost" datasets
echo
"$labhost" verify
echo
(cd "$ws" && find . -path '*/.lock' -prune -o -type f -print | sort)
