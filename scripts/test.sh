#!/usr/bin/env bash
# The whole test suite: build the guests and the host, then run every test.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/build-guests.sh"
# The SDK packages (wheel, .crate, npm tarball, C dir) tests/new.rs builds
# scaffolded plugins against; skipped while their inputs are unchanged.
"$root/scripts/package-sdks.sh"
# The integration tests drive target/debug/labhost, so build it first.
cargo build --locked -p labhost-cli
cargo test --locked --workspace --no-fail-fast "$@"
