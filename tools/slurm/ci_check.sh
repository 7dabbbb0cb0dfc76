#!/bin/bash
# CI's Slurm check (.ci/run), runnable alone:
#
#   tools/slurm/ci_check.sh PYTHON [ROWS]
#
# brings a one-node cluster up (tools/slurm/cluster.sh), runs ROWS of the
# `smoke` schedule on the bundled sample through it (tools/slurm/submit.sh: a
# job array, one run per task, into one shared --out, then the report job),
# runs the same rows locally with reproduce.py, and checks that the two
# tables are equal (every figure but the two read off the clock: wall time
# and images/s). It takes the cluster down again if it brought it up.
# ROWS (reproduce.py's --rows, comma-separated) defaults to bp,vfbn: one row
# without a synthesizer and one with, a two-task array. The mechanism checked
# (array, shared --out, records, report job, equal tables) is the same for
# every row, and each method's training is tested elsewhere; give all nine
# smoke rows to check the whole schedule.
# Exit status: 0 equal, 1 a job failed or the tables differ, 3 Slurm
# cannot be installed or started here (one line).
set -u
cd "$(dirname "$0")/../.."
python=${1:?usage: tools/slurm/ci_check.sh PYTHON [ROWS]}
rows=${2:-bp,vfbn}
export OMP_NUM_THREADS=1   # the same arithmetic in the jobs and locally
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}   # this checkout, here and in the jobs

say() { echo "slurm check: $*"; }

started=0
if ! tools/slurm/cluster.sh status >/dev/null 2>&1; then
    started=1
    up_log=$(tools/slurm/cluster.sh up 2>&1)
    rc=$?
    if [ $rc -ne 0 ]; then
        say "no Slurm here, skipped: $(grep -m 1 'cluster.sh:' <<<"$up_log" || tail -n 1 <<<"$up_log")"
        tools/slurm/cluster.sh down >/dev/null 2>&1
        exit 3
    fi
fi
finish() { [ $started = 1 ] && tools/slurm/cluster.sh down >/dev/null 2>&1; }
trap finish EXIT

work=$(mktemp -d /tmp/vfbn-slurm-ci.XXXXXX)
start=$(date +%s)
submitted=$(tools/slurm/submit.sh --python "$python" -- \
                --schedule smoke --rows "$rows" --out "$work/cluster") || {
    say "submit.sh failed: $submitted"; exit 1; }
echo "$submitted" | sed 's/^/slurm check: /'
report=$(sed -n 's/^report: job \([0-9]*\)$/\1/p' <<<"$submitted")
# The local run while the jobs run (one process; the cluster's two CPUs
# are the jobs').
"$python" train/reproduce.py --schedule smoke --rows "$rows" --out "$work/local" \
    >"$work/local.log" 2>&1 || { say "the local run failed:"; tail -n 5 "$work/local.log"; exit 1; }
if ! tools/slurm/cluster.sh wait "$report" >"$work/wait.log" 2>&1; then
    say "the cluster's jobs failed: $(cat "$work/wait.log")"
    tail -n 5 "$work"/cluster/slurm/*.out
    exit 1
fi
"$python" - "$work/local/table.json" "$work/cluster/table.json" <<'EOF' || exit 1
import json
import sys

CLOCK = ('wall_time_s', 'images_per_sec')   # measured, not computed


def rows(path):
    with open(path) as f:
        table = json.load(f)
    return [{k: v for k, v in row.items() if k not in CLOCK}
            for row in table['rows']]


local, cluster = rows(sys.argv[1]), rows(sys.argv[2])
if not local or local != cluster:
    diff = [(a.get('row'), k) for a, b in zip(local, cluster)
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    sys.exit('slurm check: the tables differ (%d local rows, %d from the '
             'cluster): %s' % (len(local), len(cluster), diff[:5]))
print('slurm check: the job array\'s table equals the local run\'s (%d rows)'
      % len(local))
EOF
say "done in $(( $(date +%s) - start )) s"
rm -rf "$work"
