#!/usr/bin/env bash
# The whole test suite: build the guests and the host, then run every test.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/build-guests.sh"
# The real model the inference tests run (scikit-learn's digits, an MLP
# exported to ONNX): skipped while its inputs are unchanged.
"$root/scripts/build-models.sh"
# The SDK packages (wheel, .crate, npm tarball, C dir) tests/new.rs builds
# scaffolded plugins against; skipped while their inputs are unchanged.
"$root/scripts/package-sdks.sh"
# The dashboard's end-to-end test drives Debian's headless Chromium with
# playwright-core (tests/e2e, versions pinned in its package-lock.json).
if ! command -v chromium >/dev/null; then
    echo "test: installing chromium for the dashboard's browser tests" >&2
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends chromium
fi
[ -d tests/e2e/node_modules ] || (cd tests/e2e && npm ci --no-audit --no-fund --silent)
# The integration tests drive target/debug/labhost, so build it first.
cargo build --locked -p labhost-cli
# The Slurm executor's tests (tests/slurm.rs) run on a real one-node Slurm
# on 127.0.0.1 (Debian's slurm-wlm + munge, installed on first use),
# stopped again when the tests end.
"$root/scripts/slurm.sh" start
export SLURM_CONF=/tmp/labhost-slurm/slurm.conf
trap '"$root/scripts/slurm.sh" stop' EXIT
status=0
# The Python extension is built and tested by test-python.sh (maturin links
# it as an extension module, which a plain test build cannot).
cargo test --locked --workspace --exclude labhost-python --no-fail-fast "$@" || status=$?
# The Python package: wheel built, installed into a fresh venv, pytest.
"$root/scripts/test-python.sh" || status=$?
# The REST API fuzzed from its OpenAPI document (schemathesis, deterministic);
# run even when a test failed, so one run reports both.
"$root/scripts/fuzz-api.sh" || status=$?
exit "$status"
