#!/usr/bin/env bash
# The Python package: build the `labhost` wheel with maturin (abi3, one
# wheel for CPython >= 3.9), install it into a fresh virtualenv (nothing of
# this checkout on its path) and run python/tests with pytest there.
#
#   scripts/test-python.sh            # what scripts/test.sh runs
#   scripts/test-python.sh -k asyncio # pytest arguments
#   scripts/test-python.sh --bench    # instead of the tests: the package's
#                                     # figures (python/bench/run_overhead.py)
#
# The wheel is built with the dev profile, so it reuses the workspace's
# compiled dependencies (they are optimised: see Cargo.toml); a release
# wheel for users: `maturin build --release -m python/Cargo.toml`.
# Needs the guests (scripts/build-guests.sh) and python3 with venv.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
say() { echo "test-python: $*" >&2; }

# The build tools, pinned, in their own venv (kept between runs).
tools="$target/venv-maturin"
requirements='maturin==1.16.0'
if [ "$(cat "$tools/.requirements" 2>/dev/null)" != "$requirements" ]; then
    say "installing $requirements into $tools"
    rm -rf "$tools"
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet --disable-pip-version-check --only-binary :all: $requirements
    printf '%s' "$requirements" >"$tools/.requirements"
fi

wheels="$target/wheels"
rm -rf "$wheels"
say "building the wheel"
"$tools/bin/maturin" build --locked --profile dev -m python/Cargo.toml -o "$wheels" --quiet
wheel="$(ls "$wheels"/labhost-*.whl)"
say "built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"

# A fresh venv every run: the wheel and the test tools, nothing else.
venv="$target/venv-python-test"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary :all: \
    pytest==9.2.0 pandas==3.1.1 fastapi==0.165.0 uvicorn==0.55.0 "$wheel"
cd "$(mktemp -d)" # not the checkout: `import labhost` must find the installed wheel
if [ "${1:-}" = --bench ]; then
    # The Rust side of the same loop, built with the wheel's profile.
    (cd "$root" && cargo build --locked --quiet -p labhost --example job_loop)
    exec "$venv/bin/python" "$root/python/bench/run_overhead.py" "$wheel" "$target/debug/examples/job_loop" "${@:2}"
fi
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/python/tests" "$@"
