#!/usr/bin/env bash
# Package the four guest SDKs into guests/dist/sdk/ (idempotent: a package is
# rebuilt only when a stamp of its inputs changed):
#   python/labhost_lab-0.2.0-py3-none-any.whl  package `lab` + lab_wit/lab.wit
#   rust/labhost-sdk-0.2.0.crate               `cargo package` (WIT vendored),
#   rust/labhost-sdk-0.2.0/                    ... and unpacked, for [patch]
#   js/labhost-lab-0.2.0.tgz                   `npm pack` of @labhost/lab
#   c/labhost-c-sdk-0.2.0/                     lab.h, lab.c, wit/, tool/
# The vendored WIT copies (guests/rust/sdk/wit*, the C SDK embedded by
# `labhost new` in cli/sdk/c/) must equal their sources; the script fails if
# not. `--sync` copies the sources over them first.
# Needs guests/python/.venv and guests/js/node_modules (build-guests.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
dist="$root/guests/dist/sdk"
version=0.2.0

# checked copy <- source
copies=(
    "guests/rust/sdk/wit/lab.wit host/wit/lab.wit"
    "guests/rust/sdk/wit-0.1.0/lab.wit host/wit-versions/0.1.0/lab.wit"
    "cli/sdk/c/lab.h guests/c/lab.h"
    "cli/sdk/c/lab.c guests/c/lab.c"
    "cli/sdk/c/wit/lab.wit host/wit/lab.wit"
    "cli/sdk/c/tool/Cargo.toml guests/c/tool/Cargo.toml"
    "cli/sdk/c/tool/Cargo.lock guests/c/tool/Cargo.lock"
    "cli/sdk/c/tool/src/main.rs guests/c/tool/src/main.rs"
)
stale=0
for pair in "${copies[@]}"; do
    read -r copy src <<<"$pair"
    if ! cmp -s "$copy" "$src"; then
        if [ "${1:-}" = --sync ]; then
            mkdir -p "$(dirname "$copy")"
            cp "$src" "$copy"
            echo "package-sdks: synced $copy from $src" >&2
        else
            echo "package-sdks: error: $copy differs from $src (run scripts/package-sdks.sh --sync)" >&2
            stale=1
        fi
    fi
done
[ "$stale" = 0 ] || exit 1

# stamp NAME FILES... : true (and nothing to do) if the inputs are unchanged.
# Otherwise remembers the new stamp in $want for `done_stamp NAME`.
unchanged() {
    local name="$1"; shift
    want="$(find "$@" -type f -not -path '*/__pycache__/*' -not -path '*/target/*' -print0 \
            | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
    [ "$(cat "$dist/.$name.stamp" 2>/dev/null)" = "$want" ]
}
done_stamp() { echo "$want" > "$dist/.$1.stamp"; }
built=()
mkdir -p "$dist/python" "$dist/rust" "$dist/js" "$dist/c"

# Python: a wheel built by the in-tree backend (guests/python/sdk/_build.py).
whl="$dist/python/labhost_lab-$version-py3-none-any.whl"
if ! { [ -f "$whl" ] && unchanged python guests/python/sdk/lab guests/python/sdk/lab_wit \
        guests/python/sdk/_build.py guests/python/sdk/pyproject.toml guests/python/sdk/README.md host/wit; }; then
    unchanged python guests/python/sdk/lab guests/python/sdk/lab_wit \
        guests/python/sdk/_build.py guests/python/sdk/pyproject.toml guests/python/sdk/README.md host/wit || true
    pip="$root/guests/python/.venv/bin/pip"
    [ -x "$pip" ] || { python3 -m venv "$root/guests/python/.venv"; }
    "$pip" wheel --quiet --no-deps --disable-pip-version-check -w "$dist/python" guests/python/sdk
    done_stamp python
    built+=(python)
fi

# Rust: `cargo package` (verifies the crate builds on its own), then unpacked.
crate="$dist/rust/labhost-sdk-$version.crate"
rust_inputs=(guests/rust/sdk/src guests/rust/sdk/wit guests/rust/sdk/wit-0.1.0 guests/rust/sdk/build.rs
    guests/rust/sdk/Cargo.toml guests/rust/sdk/README.md guests/rust/Cargo.toml)
if ! { [ -f "$crate" ] && [ -d "${crate%.crate}" ] && unchanged rust "${rust_inputs[@]}"; }; then
    unchanged rust "${rust_inputs[@]}" || true
    flock /tmp/labhost-cargo.lock cargo package --quiet --offline --allow-dirty -p labhost-sdk \
        --manifest-path guests/rust/Cargo.toml
    cp "guests/rust/target/package/labhost-sdk-$version.crate" "$crate"
    rm -rf "${crate%.crate}"
    tar xzf "$crate" -C "$dist/rust"
    done_stamp rust
    built+=(rust)
fi

# JavaScript: `npm pack` (its prepack copies lab.js and the WIT in).
tgz="$dist/js/labhost-lab-$version.tgz"
if ! { [ -f "$tgz" ] && unchanged js guests/js/sdk/package.json guests/js/sdk/prepack.js \
        guests/js/sdk/bin guests/js/sdk/README.md guests/js/lab.js guests/js/wit host/wit; }; then
    unchanged js guests/js/sdk/package.json guests/js/sdk/prepack.js \
        guests/js/sdk/bin guests/js/sdk/README.md guests/js/lab.js guests/js/wit host/wit || true
    (cd "$dist/js" && npm pack --silent --loglevel=error "$root/guests/js/sdk" >/dev/null)
    done_stamp js
    built+=(js)
fi

# C: the directory `labhost new --lang c` also writes (cli/sdk/c/).
cdir="$dist/c/labhost-c-sdk-$version"
if ! { [ -d "$cdir" ] && unchanged c cli/sdk/c; }; then
    unchanged c cli/sdk/c || true
    rm -rf "$cdir"
    cp -r cli/sdk/c "$cdir"
    done_stamp c
    built+=(c)
fi

sizes="$(du -sh "$whl" "$crate" "$tgz" "$cdir" | sed "s#$root/##" | awk '{printf "%s %s, ", $2, $1}')"
echo "package-sdks: ${sizes%, } (rebuilt: ${built[*]:-none})" >&2
