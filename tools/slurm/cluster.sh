#!/bin/bash
# A one-node Slurm cluster on this machine, from Debian 12's own packages
# (slurm-wlm and munge, Slurm 22.05), without systemd: for trying the job
# arrays of tools/slurm/submit.sh, and for CI.
#
#   tools/slurm/cluster.sh up        install (as root, apt-get) if needed,
#                                    start munged, slurmctld and slurmd,
#                                    wait until the node is idle
#   tools/slurm/cluster.sh down      stop the daemons this script started,
#                                    remove the cluster's state
#   tools/slurm/cluster.sh status    one line: up or down
#   tools/slurm/cluster.sh wait JOB  wait for a job (and its array) to end;
#                                    exit 0 only if every task COMPLETED
#
# `up` is idempotent: on a cluster that answers, it only checks the node.
# Exit status of `up`: 0 up, 1 failed to start (one line, then the tail of
# the daemons' logs), 3 Slurm cannot be installed here (one line).
#
# What a one-node cluster needs, and why:
# - munge: a key (the package makes one; made here if absent) and munged
#   running as the munge user (authentication of every Slurm message).
# - slurmctld -D and slurmd -D in the background (no systemd here), their
#   addresses pinned to 127.0.0.1 (the host name may not resolve).
# - proctrack/linuxproc and task/none: no cgroups in a container.
# - no accounting (no slurmdbd): sacct does not work; read the records, or
#   `scontrol show job`.
# - a fixed spool directory, made before the daemons start.
# - MailProg=/bin/true (no mail here).
# - DependencyParameters=kill_invalid_depend: a job that depends
#   (afterok) on a failed array is cancelled, instead of waiting forever.
# - a GPU node where /dev/nvidia0 exists (Gres=gpu:N, gres.conf by file).
set -u

SPOOL=${VFBN_SLURM_SPOOL:-/var/spool/slurm-vfbn}
CONF=/etc/slurm/slurm.conf
GRES=/etc/slurm/gres.conf
NODE=$(hostname -s)
PARTITION=vfbn

say() { echo "cluster.sh: $*"; }

answers() {   # the controller answers and this node is registered
    command -v scontrol >/dev/null 2>&1 &&
        timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP' &&
        timeout 10 sinfo -h -N -n "$NODE" -o %T 2>/dev/null | grep -q .
}

alive() {     # the pid in file $1 is running
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

install() {
    if command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1 \
            && command -v sbatch >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        say "Slurm is not installed and this is not root: cannot install slurm-wlm and munge"
        return 3
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            slurm-wlm munge >"$SPOOL/apt.log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update >>"$SPOOL/apt.log" 2>&1
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y \
                --no-install-recommends slurm-wlm munge >>"$SPOOL/apt.log" 2>&1; then
            say "apt-get install slurm-wlm munge failed: $(tail -n 1 "$SPOOL/apt.log")"
            return 3
        fi
    fi
}

write_conf() {
    local cpus gpus=0 gres_node='' gres_types=''
    cpus=$(nproc)
    if [ -e /dev/nvidia0 ]; then
        gpus=$(ls /dev/nvidia[0-9]* 2>/dev/null | wc -l)
        gres_node=" Gres=gpu:$gpus"
        gres_types='GresTypes=gpu'
        echo "NodeName=$NODE Name=gpu File=/dev/nvidia[0-$((gpus - 1))]" >"$GRES"
    else
        rm -f "$GRES"
    fi
    mkdir -p "$(dirname "$CONF")"
    cat >"$CONF" <<EOF
# Written by tools/slurm/cluster.sh: a one-node cluster on 127.0.0.1.
ClusterName=vfbn
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=$SPOOL/slurmctld.pid
SlurmdPidFile=$SPOOL/slurmd.pid
SlurmctldLogFile=$SPOOL/slurmctld.log
SlurmdLogFile=$SPOOL/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MailProg=/bin/true
DependencyParameters=kill_invalid_depend
ReturnToService=2
MinJobAge=3600
$gres_types
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus$gres_node State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if timeout 10 munge -n 2>/dev/null | timeout 10 unmunge >/dev/null 2>&1; then
        return 0
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key || return 1
    fi
    chown munge:munge /etc/munge /etc/munge/munge.key
    chmod 700 /etc/munge
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- munged --force || return 1
    pgrep -u munge -n munged >"$SPOOL/munged.pid"
    for _ in $(seq 50); do
        timeout 10 munge -n 2>/dev/null | timeout 10 unmunge >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

wait_idle() {
    local state
    for _ in $(seq 300); do
        state=$(timeout 10 sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n 1)
        case "$state" in
            idle|mixed|allocated) return 0 ;;
            down*|drain*) timeout 10 scontrol update NodeName="$NODE" State=RESUME \
                              >/dev/null 2>&1 ;;
        esac
        sleep 0.1
    done
    say "the node did not come up (state: ${state:-none})"
    return 1
}

up() {
    mkdir -p "$SPOOL/ctld" "$SPOOL/d"
    install || return $?
    if answers; then
        wait_idle || return 1
        say "up (already): node $NODE, partition $PARTITION"
        return 0
    fi
    write_conf
    if ! start_munge; then
        say "munged did not start (see /var/log/munge/munged.log)"
        return 1
    fi
    alive "$SPOOL/slurmctld.pid" || { setsid slurmctld -D -i </dev/null >>"$SPOOL/slurmctld.out" 2>&1 &
                                       echo $! >"$SPOOL/slurmctld.pid"; }
    for _ in $(seq 100); do
        timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP' && break
        sleep 0.1
    done
    alive "$SPOOL/slurmd.pid" || { setsid slurmd -D -N "$NODE" </dev/null >>"$SPOOL/slurmd.out" 2>&1 &
                                    echo $! >"$SPOOL/slurmd.pid"; }
    if ! wait_idle; then
        tail -n 5 "$SPOOL/slurmctld.log" "$SPOOL/slurmd.log" 2>/dev/null
        return 1
    fi
    say "up: node $NODE ($(nproc) CPUs$( [ -e "$GRES" ] && echo ", $(grep -c . "$GRES") GPU line(s)")), partition $PARTITION, state in $SPOOL"
}

stop_pid() {   # stop the process in pid file $1, by its id; wait for it
    local pid
    alive "$1" || { rm -f "$1"; return 0; }
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    rm -f "$1"
}

down() {
    command -v scancel >/dev/null 2>&1 && answers && timeout 10 scancel --user root 2>/dev/null
    stop_pid "$SPOOL/slurmd.pid"
    stop_pid "$SPOOL/slurmctld.pid"
    stop_pid "$SPOOL/munged.pid"
    rm -rf "$SPOOL/ctld" "$SPOOL/d"
    say "down"
}

wait_job() {   # every task of job $1 ended; 0 if all COMPLETED
    local job=$1 states
    while :; do
        states=$(timeout 10 scontrol show job -o "$job" 2>/dev/null |
                 grep -o 'JobState=[A-Z_]*' | cut -d= -f2 | sort -u | tr '\n' ' ')
        if [ -z "$states" ]; then
            say "job $job is unknown to the controller"
            return 1
        fi
        case "$states" in
            *PENDING*|*RUNNING*|*CONFIGURING*|*COMPLETING*|*SUSPENDED*) sleep 1 ;;
            'COMPLETED ') return 0 ;;
            *) say "job $job ended: $states"; return 1 ;;
        esac
    done
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) if answers; then say "up"; else say "down"; exit 1; fi ;;
    wait) [ -n "${2:-}" ] || { say "usage: cluster.sh wait JOBID"; exit 2; }
          wait_job "$2" ;;
    *) echo "usage: tools/slurm/cluster.sh up|down|status|wait JOBID" >&2; exit 2 ;;
esac
