#!/usr/bin/env bash
# The labhost demo: build the host and the Rust guests, then run a
# three-stage pipeline (generate a dataset -> train a model -> evaluate it)
# in a fresh workspace, and show where everything landed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ws="${LABHOST_HOME:-$root/labhost-workspace/demo}"

"$root/scripts/build-guests.sh" rust   # the demo needs only the Rust guests
cargo build --quiet -p labhost
labhost="$root/target/debug/labhost"
g="$root/guests/dist/rust"

rm -rf "$ws"
export LABHOST_HOME="$ws"
echo "== 1/3 generate a sentiment dataset"
"$labhost" run "$g/datagen.wasm" --experiment demo -c rows=400
echo "== 2/3 train a logistic-regression classifier on it"
"$labhost" run "$g/trainer.wasm" --experiment demo --dataset sentiment -c epochs=8
echo "== 3/3 evaluate the model on the test split"
"$labhost" run "$g/evaluator.wasm" --experiment demo --dataset sentiment --model sentiment-logreg
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
