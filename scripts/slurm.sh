#!/usr/bin/env bash
# A private one-node Slurm cluster on 127.0.0.1 for labhost's Slurm tests and
# benchmark: its own slurm.conf, state, spool, logs and ports (6917/6918 by
# default, LABHOST_SLURM_PORT to change) under DIR, so it never touches a
# system Slurm. Runs as root (re-executes itself with sudo otherwise).
#
#   scripts/slurm.sh start [DIR]           install, start munged + slurmctld + slurmd, wait for idle
#   scripts/slurm.sh stop [DIR]            stop slurmd + slurmctld (+ leftover slurmstepd); munged stays
#   scripts/slurm.sh env [DIR]             print `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm.sh restart-slurmd [DIR]  start slurmd again (after a test killed it)
#
# DIR defaults to /tmp/labhost-slurm. The node claims 16 CPUs whatever the
# machine has (SlurmdParameters=config_overrides) so fan-outs run 16 at once.
set -euo pipefail

usage() { echo "usage: $0 start|stop|env|restart-slurmd [DIR]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
cmd="$1"
dir="${2:-/tmp/labhost-slurm}"
case "$dir" in /*) ;; *) dir="$(pwd)/$dir" ;; esac
conf="$dir/slurm.conf"
port="${LABHOST_SLURM_PORT:-6917}"

case "$cmd" in
    env) echo "export SLURM_CONF=$conf"; exit 0 ;;
    start|stop|restart-slurmd) ;;
    *) usage ;;
esac
if [ "$(id -u)" != 0 ]; then
    exec sudo --preserve-env=LABHOST_SLURM_PORT "$0" "$@"
fi
export SLURM_CONF="$conf"
host="$(hostname -s)"

# Whether process PID exists and has not exited (a zombie stays in /proc
# until reaped, which PID 1 may do late).
alive() {
    local st
    st="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    st="${st##*) }"
    [ -n "$st" ] && [ "${st%% *}" != Z ]
}

# Whether the NUL-separated FILE (/proc/PID/cmdline, environ) has entry LINE.
has_line() {
    local text
    text="$(tr '\0' '\n' 2>/dev/null <"$1")" || return 1
    grep -qxF -- "$2" <<<"$text"
}

# The pid in DIR/NAME.pid if that process is alive and is NAME started with
# this slurm.conf; fails otherwise (no file, stale file, reused pid).
live_pid() {
    local name="$1" pid
    pid="$(cat "$dir/$name.pid" 2>/dev/null)" || return 1
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
    alive "$pid" && has_line "/proc/$pid/cmdline" "$conf" || return 1
    echo "$pid"
}

# The node's state as sinfo reports it ("idle", "down*", ...), or nothing
# while slurmctld does not answer.
node_state() { sinfo -h -n "$host" -o %T 2>/dev/null | head -n1 || true; }

node_ready() {
    case "$(node_state)" in idle|mixed|allocated|completing) return 0 ;; *) return 1 ;; esac
}

# Both daemons of this configuration alive and the node usable.
cluster_ready() { live_pid slurmctld >/dev/null && live_pid slurmd >/dev/null && node_ready; }

logs_tail() {
    local f
    for f in "$dir/log/slurmctld.log" "$dir/log/slurmd.log"; do
        [ -f "$f" ] || continue
        echo "--- tail $f" >&2
        tail -n 20 "$f" >&2
    done
}

start_slurmd() {
    live_pid slurmd >/dev/null && return 0
    rm -f "$dir/slurmd.pid"
    slurmd -f "$conf"
}

# Waits (0.2 s polls) until CHECK succeeds or SECS seconds have passed.
wait_for() {
    local secs="$1"; shift
    local deadline=$((SECONDS + secs))
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munged() {
    munge_ok && return 0
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
            || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        chown munge:munge /etc/munge /etc/munge/munge.key
        chmod 700 /etc/munge
        chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge
    chown munge:munge /run/munge
    chmod 755 /run/munge
    # --force: a munged killed earlier leaves its socket behind.
    runuser -u munge -- /usr/sbin/munged --force
    wait_for 10 munge_ok || { echo "slurm: munged did not start" >&2; exit 1; }
}

# Writes DIR/slurm.conf; succeeds if its content changed. Beyond the basics:
# JobRequeue=0 makes a job on a lost node end NODE_FAIL (the default requeues
# it as PENDING, eligible again only 2 min later); batch_sched_delay=0 starts
# a submitted job within the controller's 1 s tick (default: up to 3 s).
# MpiDefault/MailProg only quiet errors; PMIx errors in the logs are harmless.
write_conf() {
    local mem new
    mem=$(( $(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo) - 2048 ))
    [ "$mem" -ge 1024 ] || mem=1024
    new="$(cat <<EOF
ClusterName=labhost
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=$port
SlurmdPort=$((port + 1))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
DefMemPerCPU=1024
ReturnToService=2
JobRequeue=0
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SlurmdTimeout=10
MinJobAge=300
KillWait=5
MaxJobCount=20000
SchedulerParameters=batch_sched_delay=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=16 RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
)"
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"
    if [ "$(cat "$conf" 2>/dev/null)" != "$new" ]; then
        printf '%s\n' "$new" >"$conf"
        return 0
    fi
    return 1
}

stop_daemon() {
    local name="$1" pid
    pid="$(live_pid "$name")" || { rm -f "$dir/$name.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$dir/$name.pid"
}

# slurmstepd processes of this cluster (they inherit SLURM_CONF from the
# slurmd that forked them) and every process below them: the jobs' own.
kill_stepds() {
    local pids=() p c
    for p in $(pgrep -x slurmstepd || true); do
        # (Exited ones, zombies until reaped, have no environment left.)
        has_line "/proc/$p/environ" "SLURM_CONF=$conf" && pids+=("$p")
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    local all=("${pids[@]}") frontier=("${pids[@]}") next
    while [ ${#frontier[@]} -gt 0 ]; do
        next=()
        for p in "${frontier[@]}"; do
            for c in $(pgrep -P "$p" || true); do next+=("$c"); done
        done
        all+=("${next[@]+"${next[@]}"}")
        frontier=("${next[@]+"${next[@]}"}")
    done
    kill -KILL "${all[@]}" 2>/dev/null || true
}

case "$cmd" in
start)
    if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
        || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
        echo "slurm: installing slurm-wlm and munge" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge
    fi
    start_munged
    if write_conf && { live_pid slurmctld >/dev/null || live_pid slurmd >/dev/null; }; then
        # The configuration changed under running daemons: start afresh.
        stop_daemon slurmd
        stop_daemon slurmctld
    fi
    if cluster_ready; then
        echo "slurm: node $host $(node_state); export SLURM_CONF=$conf"
        exit 0
    fi
    if ! live_pid slurmctld >/dev/null; then
        rm -f "$dir/slurmctld.pid"
        slurmctld -f "$conf"
    fi
    start_slurmd
    if ! wait_for 60 cluster_ready; then
        echo "slurm: node $host not ready after 60 s (state: $(node_state))" >&2
        logs_tail
        exit 1
    fi
    echo "slurm: node $host $(node_state); export SLURM_CONF=$conf"
    ;;
stop)
    stop_daemon slurmd
    stop_daemon slurmctld
    kill_stepds
    ;;
restart-slurmd)
    [ -f "$conf" ] || { echo "slurm: no $conf; run $0 start first" >&2; exit 1; }
    start_slurmd
    if ! wait_for 30 live_pid slurmd >/dev/null; then
        echo "slurm: slurmd did not start" >&2
        logs_tail
        exit 1
    fi
    ;;
esac
