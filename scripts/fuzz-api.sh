#!/usr/bin/env bash
# Fuzz the REST API of `labhost serve` from its own OpenAPI document with
# schemathesis (pinned below, installed in a venv under target/).
#
# Starts the built target/debug/labhost serve on 127.0.0.1 (a free port)
# over a fresh temporary workspace with an admin token, uploads the probe
# plugin and runs one job through the API (so real plugin, job, artifact,
# checkpoint and eval ids exist and the fuzzer is given them beside random
# ones), then runs schemathesis against /api/v1/openapi.json in its
# deterministic mode (the same requests every run: no flaky CI).
# Fails on any 5xx, any status code or response body the document does
# not describe, and any request that hangs. The server, its jobs and the
# workspace are gone when the script ends, however it ends.
#
#   scripts/fuzz-api.sh                      # what scripts/test.sh runs
#   LABHOST_FUZZ_EXAMPLES=200 scripts/fuzz-api.sh   # a longer run
#
# Needs python3 (with venv) and curl; the labhost binary is built by
# scripts/test.sh (`cargo build -p labhost-cli`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/debug/labhost"
examples="${LABHOST_FUZZ_EXAMPLES:-100}"

say() { echo "fuzz-api: $*" >&2; }
die() { say "error: $*"; exit 1; }

[ -x "$bin" ] || die "$bin is missing: run \`cargo build -p labhost-cli\` first (scripts/test.sh does)"
command -v curl >/dev/null || die "curl is needed"

# ---- schemathesis, pinned with everything it pulls in --------------------
venv="$target/venv-fuzz"
requirements='anyio==4.16.0
certifi==2026.10.19.post1
charset-normalizer==3.5.3
click==8.5.1
graphql-core==3.3.2
harfile==0.6.0
hypothesis==6.170.17
hypothesis-graphql==0.13.5
idna==3.20
iniconfig==2.3.1
jsonschema_rs==0.60.3
markdown-it-py==4.3.0
MarkupSafe==3.0.4
mdurl==0.1.2
packaging==26.4
pluggy==1.7.0
Pygments==2.21.0
pyrate-limiter==4.5.1
pytest==9.2.0
PyYAML==6.0.4
requests==2.34.2
rich==15.0.0
schemathesis==4.32.5
sortedcontainers==2.4.0
typing_extensions==4.16.0
urllib3==2.8.0
Werkzeug==3.1.9'
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$requirements" ]; then
    say "installing schemathesis into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    printf '%s\n' "$requirements" >"$venv/requirements.txt"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input \
        --only-binary :all: -r "$venv/requirements.txt"
    # Written last: an interrupted install is redone next time.
    printf '%s' "$requirements" >"$venv/.requirements"
fi

# ---- a throwaway workspace and server -----------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/labhost-fuzz.XXXXXX")"
ws="$tmp/ws"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The server and its jobs see nothing of this environment (no secrets the
# fuzzer could grant a job by name, no HOME).
clean_env=(env -i "PATH=$PATH" "HOME=$tmp/home" "TMPDIR=$tmp" RUST_BACKTRACE=1)
mkdir -p "$tmp/home"
token="$("${clean_env[@]}" "$bin" --workspace "$ws" token create fuzz --scope admin 2>/dev/null)"
[ -n "$token" ] || die "could not create a token"
# Whatever the fuzzer launches ends within a minute and stays small.
printf '[limits]\ntimeout = "60s"\nmemory = "256MiB"\nmax-stored = "256MiB"\n' >"$ws/labhost.toml"
"${clean_env[@]}" "$bin" --workspace "$ws" serve --bind 127.0.0.1:0 \
    >"$tmp/serve.out" 2>"$tmp/serve.err" &
server_pid=$!
base=""
for _ in $(seq 1 300); do
    line="$(head -n 1 "$tmp/serve.out" 2>/dev/null || true)"
    case "$line" in
    "labhost serve: listening on "*)
        base="${line#labhost serve: listening on }"
        break
        ;;
    esac
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$base" ] || die "the server did not start: $(cat "$tmp/serve.err")"
say "server at $base (workspace $ws)"

api() { # METHOD PATH [curl args...]
    local method="$1" path="$2"
    shift 2
    curl -fsS -X "$method" -H "Authorization: Bearer $token" "$@" "$base$path"
}
json() { # FIELD-EXPRESSION < JSON
    python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}

# ---- ids for the fuzzer: an uploaded plugin and a job that stored things --
digest="$(api POST /api/v1/plugins -H 'Content-Type: application/wasm' \
    --data-binary "@$root/guests/dist/rust/probe.wasm" | json 'd["blake3"]')"
job="$(api POST /api/v1/jobs -H 'Content-Type: application/json' \
    --data "{\"plugin\": \"$digest\"}" | json 'd["id"]')"
wait_complete() { # JOB: poll until it ended (60 s at most); it must be COMPLETE
    local status=""
    for _ in $(seq 1 600); do
        status="$(api GET "/api/v1/jobs/$1" | json 'd["status"]')"
        case "$status" in QUEUED | RUNNING) ;; *) break ;; esac
        sleep 0.1
    done
    [ "$status" = COMPLETE ] || die "the seed job $1 ended $status"
}
wait_complete "$job"
record="$(api GET "/api/v1/jobs/$job")"

# A server must outlive clients that hang up mid-response: with SIGPIPE at
# its default a write to a closed socket ended the whole process (found by
# this fuzzing, intermittently: an events stream closed by its client).
mask="$(sed -n 's/^SigIgn:[[:space:]]*//p' "/proc/$server_pid/status" 2>/dev/null || true)"
if [ -n "$mask" ] && ((((0x$mask >> 12) & 1) == 0)); then
    die "labhost serve does not ignore SIGPIPE: a client that hangs up can kill it"
fi

# One dictionary per path or query parameter: the real values, as TOML arrays.
values() { json "json.dumps(sorted(set($1)))" <<<"$record"; }
ids="$(values '[d["id"]] + d["models"] + d["datasets"]')"
names="$(values '[s["name"] for s in d["artifacts"] + d["checkpoints"]] + [e["name"] for e in d["evals"]]')"
paths="$(values '[f["path"] for s in d["artifacts"] + d["checkpoints"] for f in s["files"] if f["path"]]')"
[ "$paths" != "[]" ] || paths='[""]'
config="$tmp/schemathesis.toml"
cat >"$config" <<EOF
[dictionaries]
ids = { values = $ids }
digests = { values = ["$digest"] }
kinds = { values = ["artifacts", "checkpoints", "evals"] }
names = { values = $names }
paths = { values = $paths }

# Half the time a real value, else whatever the fuzzer makes of the schema.
[parameters]
"path.id" = { dictionary = "ids", probability = 0.5 }
"path.digest" = { dictionary = "digests", probability = 0.5 }
"path.kind" = { dictionary = "kinds", probability = 0.5 }
"path.name" = { dictionary = "names", probability = 0.5 }
"query.path" = { dictionary = "paths", probability = 0.5 }
"body.plugin" = { dictionary = "digests", probability = 0.5 }
EOF

# Binary request bodies (a .wasm, a bundle .tar) are sent as the raw bytes
# schemathesis generates for them.
cat >"$tmp/labhost_fuzz_hooks.py" <<'PY'
import schemathesis

for media_type in ("application/wasm", "application/x-tar"):
    schemathesis.serializer.alias(media_type, "application/octet-stream")
PY

# ---- fuzz ---------------------------------------------------------------
checks="${LABHOST_FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance}"
say "schemathesis: deterministic, at most $examples examples per operation, checks $checks"
fuzz() {
    (cd "$tmp" && PYTHONPATH="$tmp" SCHEMATHESIS_HOOKS=labhost_fuzz_hooks "$venv/bin/schemathesis" --config-file "$config" run "$base/api/v1/openapi.json" \
        --header "Authorization: Bearer $token" \
        --checks "$checks" \
        --mode all \
        --phases examples,coverage,fuzzing \
        --max-examples "$examples" \
        --generation-deterministic \
        --workers 1 \
        --request-timeout 30 \
        --no-color "$@")
}
started=$(date +%s)
rc=0
# Deletes last, so the seed job is there for every other operation.
fuzz --exclude-method DELETE || rc=$?
if api GET /api/v1/openapi.json | json 'any("delete" in p for p in d["paths"].values())' | grep -q True; then
    fuzz --include-method DELETE || rc=$?
fi
say "schemathesis took $(($(date +%s) - started))s"
if ! kill -0 "$server_pid" 2>/dev/null; then
    code=0
    wait "$server_pid" || code=$?
    server_pid=""
    say "error: the server died (exit status $code): $(tail -n 20 "$tmp/serve.err")"
    rc=1
fi
exit "$rc"
