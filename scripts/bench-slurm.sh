#!/usr/bin/env bash
# The Slurm executor's benchmark (issue 16), on the one-node test cluster
# (scripts/slurm.sh), side by side with plain `sbatch --wrap` jobs on the
# same cluster in the same run:
#   1. dispatch overhead: from the submitting command's start to the guest's
#      start (the job record's started_at), N jobs one after another; anchor:
#      `sbatch --wrap` of a script that writes its own start time;
#   2. a 100-instance fan-out: wall time of `labhost pipeline run --executor
#      slurm --workers 100` of 100 probe instances; anchor: 100 `sbatch
#      --wrap` no-ops submitted in a loop, until the last one ran.
# Usage: scripts/bench-slurm.sh [N=20] [FANOUT=100]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
n="${1:-20}"
fanout="${2:-100}"
scripts/build-guests.sh rust
cargo build --locked -p labhost-cli
scripts/slurm.sh start
export SLURM_CONF=/tmp/labhost-slurm/slurm.conf
labhost="$root/target/debug/labhost"
probe="$root/guests/dist/rust/probe.wasm"
scratch="$(mktemp -d /tmp/labhost-bench-slurm.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
ws="$scratch/ws"
now() { date +%s.%N; }

# Wait until none of the Slurm jobs in "$@" is pending or running.
wait_slurm() {
    local ids
    ids="$(IFS=,; echo "$*")"
    while squeue -h -t PENDING,RUNNING,CONFIGURING,COMPLETING -j "$ids" 2>/dev/null | grep -q .; do
        sleep 0.05
    done
}

# Warm: the compile cache and the node's first job.
"$labhost" -w "$ws" compile "$probe" >/dev/null
"$labhost" -w "$ws" run "$probe" -c scenario=bench -c target=log -c count=0 --executor slurm --json >/dev/null

echo "dispatch: $n jobs one after another, submit → guest start (labhost) / script start (sbatch)"
: >"$scratch/labhost.txt"
: >"$scratch/sbatch.txt"
for i in $(seq "$n"); do
    # Alternate, so drift in the machine's load hits both alike.
    t0="$(now)"
    "$labhost" -w "$ws" run "$probe" -c scenario=bench -c target=log -c count=0 --executor slurm --json >"$scratch/rec.json"
    python3 - "$t0" "$scratch/rec.json" >>"$scratch/labhost.txt" <<'PY'
import json, sys, datetime
t0 = float(sys.argv[1])
rec = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
assert rec["status"] == "COMPLETE", rec["message"]
started = datetime.datetime.fromisoformat(rec["started_at"].replace("Z", "+00:00")).timestamp()
print(started - t0)
PY
    t0="$(now)"
    id="$(sbatch --parsable --output=/dev/null --wrap "date +%s.%N > $scratch/start-$i")"
    wait_slurm "$id"
    python3 -c "import sys; print(float(open('$scratch/start-$i').read()) - $t0)" >>"$scratch/sbatch.txt"
done

# The fan-out: one stage, FANOUT instances.
counts="$(seq -s, 0 $((fanout - 1)))"
cat >"$scratch/fanout.toml" <<TOML
name = "fanout"
experiment = "fanout"
[stages.probe]
plugin = "$probe"
config = { scenario = "bench", target = "log" }
matrix = { count = [$counts] }
TOML
t0="$(now)"
"$labhost" -w "$ws" pipeline run "$scratch/fanout.toml" --executor slurm --workers "$fanout" --json >"$scratch/fanout.out"
labhost_fan="$(python3 -c "print($(now) - $t0)")"
complete="$("$labhost" -w "$ws" jobs -e fanout --status complete --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
[ "$complete" = "$fanout" ] || { echo "bench-slurm: only $complete of $fanout fan-out jobs completed" >&2; exit 1; }
t0="$(now)"
mkdir "$scratch/fan"
for i in $(seq "$fanout"); do
    sbatch --parsable --output=/dev/null \
        --wrap "date +%s.%N > $scratch/fan/.$i && mv $scratch/fan/.$i $scratch/fan/$i" >/dev/null
done
# Each no-op writes (then renames into view) when it ran; the wall is until
# the last one's end (the directory is watched: no squeue load on Slurm).
while [ "$(ls "$scratch/fan" | wc -l)" -lt "$fanout" ]; do sleep 0.05; done
sbatch_fan="$(python3 -c "import glob; print(max(float(open(f).read()) for f in glob.glob('$scratch/fan/*')) - $t0)")"

python3 - "$scratch/labhost.txt" "$scratch/sbatch.txt" "$labhost_fan" "$sbatch_fan" "$fanout" <<'PY'
import statistics, sys
lab = sorted(float(x) for x in open(sys.argv[1]))
sb = sorted(float(x) for x in open(sys.argv[2]))
def pct(v, p):
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
print(f"{'':38}{'labhost --executor slurm':>26}{'sbatch --wrap':>16}{'ratio':>8}")
for name, p in [("dispatch p50 (s)", 50), ("dispatch p90 (s)", 90)]:
    a, b = pct(lab, p), pct(sb, p)
    print(f"{name:38}{a:>26.3f}{b:>16.3f}{a / b:>8.2f}")
a, b = float(sys.argv[3]), float(sys.argv[4])
print(f"{f'fan-out of {sys.argv[5]} jobs, wall (s)':38}{a:>26.2f}{b:>16.2f}{a / b:>8.2f}")
PY
