#!/bin/bash
# Submit a reproduce.py schedule to Slurm: one job array per phase, one run
# per array task, every task writing into the one shared --out, each phase
# after the one before it (afterok), then the report job after them all.
#
#   tools/slurm/submit.sh [--gpu] [--python PY] [--sbatch 'OPTIONS'] -- \
#       --schedule paper --out /shared/table1 --data-dir /shared/cifar10 \
#       --device @cupy:0
#
# Everything after `--` is reproduce.py's (its own `--` and the rows' extra
# options included). --out must be a folder every node sees.
#   --gpu           one GPU per task (--gres=gpu:1; Slurm sets
#                   CUDA_VISIBLE_DEVICES, so the task's GPU is @cupy:0)
#   --python PY     the Python that runs reproduce.py on the nodes
#                   (default: python3 on this PATH)
#   --sbatch OPTS   more sbatch options for every job (--partition,
#                   --time, --account, ...), split on spaces
#
# The phases and their runs come from `reproduce.py --list` with the same
# options: a tuned row's final runs wait for its tuning (mini: length,
# pilot, tune, tune2, tune3, final, in the order of --list), because a
# phase's candidates are known only from the records of the one before.
# A failed task cancels everything after it (the cluster's
# DependencyParameters=kill_invalid_depend); submitting the same command
# again trains only the runs without a record. Logs: OUT/slurm/.
# Prints one line per job; the last is "report: job ID".
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=$(command -v python3 || echo python3)
gpu=() extra=()
usage="usage: tools/slurm/submit.sh [--gpu] [--python PY] [--sbatch 'OPTIONS'] -- REPRODUCE_OPTIONS"
while [ $# -gt 0 ]; do
    case "$1" in
        --gpu) gpu=(--gres=gpu:1); shift ;;
        --python) python=${2:?--python needs a path}; shift 2 ;;
        --sbatch) read -r -a extra <<<"${2:?--sbatch needs options}"; shift 2 ;;
        --) shift; break ;;
        *) echo "submit.sh: unknown option '$1' ($usage)" >&2; exit 2 ;;
    esac
done
if [ $# -eq 0 ]; then
    echo "submit.sh: no reproduce.py options ($usage)" >&2
    exit 2
fi
if ! command -v sbatch >/dev/null 2>&1; then
    echo "submit.sh: sbatch is not on PATH (no Slurm here; tools/slurm/cluster.sh up makes a one-node cluster)" >&2
    exit 2
fi

# --out, for the logs (reproduce.py's options stop at its own `--`).
out=
prev=
for arg in "$@"; do
    [ "$arg" = -- ] && break
    [ "$prev" = --out ] && out=$arg
    case "$arg" in --out=*) out=${arg#--out=} ;; esac
    prev=$arg
done
if [ -z "$out" ]; then
    echo "submit.sh: give reproduce.py an --out that every node sees" >&2
    exit 2
fi
case "$out" in /*) ;; *) out=$PWD/$out ;; esac
mkdir -p "$out/slurm"

# index <TAB> phase <TAB> row <TAB> seed <TAB> key, in the order of phases.
list=$(cd "$repo" && "$python" train/reproduce.py --list "$@") || {
    echo "submit.sh: reproduce.py --list failed (above); nothing submitted" >&2
    exit 2
}
if [ -z "$list" ]; then
    echo "submit.sh: reproduce.py --list has no runs; nothing submitted" >&2
    exit 2
fi
# One "phase indices" line per phase, e.g. "tune 0-11", "final 12,14-16".
phases=$(awk -F'\t' '
    function flush() { if (phase != "") { ranges = ranges (ranges ? "," : "") \
        (lo == hi ? lo : lo "-" hi); print phase, ranges } }
    $2 != phase { flush(); phase = $2; ranges = ""; lo = hi = $1; next }
    $1 == hi + 1 { hi = $1; next }
    { ranges = ranges (ranges ? "," : "") (lo == hi ? lo : lo "-" hi); lo = hi = $1 }
    END { flush() }' <<<"$list")
if [ "$(cut -d' ' -f1 <<<"$phases" | sort | uniq -d)" ]; then
    echo "submit.sh: reproduce.py --list interleaves its phases; nothing submitted" >&2
    exit 2
fi

ids=() after=()
while read -r phase indices; do
    id=$(sbatch --parsable --job-name="vfbn-$phase" --array="$indices" \
             --output="$out/slurm/$phase-%A_%a.out" "${after[@]}" "${gpu[@]}" \
             "${extra[@]}" "$here/reproduce.sbatch" run "$python" "$repo" "$@")
    id=${id%%;*}
    echo "$phase: job $id, array $indices"
    ids+=("$id")
    after=(--dependency="afterok:$id")
done <<<"$phases"
deps=$(IFS=:; echo "${ids[*]}")
id=$(sbatch --parsable --job-name=vfbn-report --output="$out/slurm/report-%j.out" \
         --dependency="afterok:$deps" "${extra[@]}" \
         "$here/reproduce.sbatch" report "$python" "$repo" "$@")
echo "report: job ${id%%;*}"
