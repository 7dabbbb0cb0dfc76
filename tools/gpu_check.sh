#!/usr/bin/env bash
# One command that makes a lent GPU count (issue #11): on a fresh machine
# without internet, install from the offline kit and check, in about 9 minutes,
# what only a GPU can check. Run from the repository root:
#
#   OUT=/some/folder bash tools/gpu_check.sh [--dry-run] [--kit DIR] [--mini DIR]
#                                            [--budget SECONDS] [--extra-wheels DIR]
#
#   --kit DIR      the wheelhouse of tools/make_kit.sh ($CHAINER_VFBN_KIT, default .device/kit)
#   --mini DIR     the folder holding the mini set's cifar-10-python.tar.gz
#                  ($CHAINER_VFBN_MINI_DIR, default .device/cifar-10-mini)
#   --budget S     wall-clock seconds for everything (default 520)
#   --extra-wheels DIR  more wheels for the install; the dry run's stand-in for
#                  the NumPy that a GPU machine has
#   --only A,B     run only these steps (install and stack always run)
#   --dry-run      run every step that needs no GPU (the kit install into a new
#                  venv, the stack print, the MPI launcher), and check each GPU
#                  step's command against its script's --help
#   $OUT           where everything is written (default: a new temporary folder);
#                  $PYTHON the machine's Python (default python3).
#
# Steps, each time-boxed (cut short when the budget runs out), each one's
# failure recorded without stopping the next:
#   install      a venv with --system-site-packages (the machine's NumPy, CuPy,
#                PyTorch, mpi4py), the kit, this checkout (editable)
#   stack        versions, device, and where cuBLAS is loaded from; where CuPy
#                cannot load cuBLAS, the pip wheel's nvidia/.../lib is put on
#                LD_LIBRARY_PATH (CuPy 14 wheels carry no cuBLAS)
#   profile      FIRST, within about 2 minutes: where a step's time goes
#                (benchmarks/profile_step.py): BP and VFBN step times at batch
#                128 on ResNet-110 `paper`, Chainer's type checks on and off,
#                PyTorch's step; for 3 steps of each, the summed GPU kernel
#                time, the GPU's busy time and the kernels launched against
#                the wall time (torch.profiler, CUPTI), JSON
#   cli-gpu0     the README's `train_cifar.py --method vfbn --device 0`, 30 iterations
#   pytest-gpu   pytest -m gpu with CHAINER_VFBN_REQUIRE_GPU=1
#   bench-kernels, bench-step, bench-vs-pytorch   the three GPU benchmarks, JSON
#   decoupled    2 MPI ranks sharing GPU 0 (the mpich wheel where there is no mpiexec)
#   table1-mini  as much of the mini Table 1 (final phase, untuned: each method's
#                default alpha_gs) on ResNet-110 as fits, 9 runs at once, beside
#                the tests and the decoupled run, after the benchmarks
# Written to $OUT (at most 8 files come back from a lent machine): gpu_check.log
# (everything, the summary table at its end), summary.json (one line per step),
# stack.json, profile.json, kernels.json, step.json, vs_pytorch.json,
# results.tar.gz (every step's log and output folder, summary.md, snapshots
# left out).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

dry_run=0
kit=${CHAINER_VFBN_KIT:-.device/kit}
mini=${CHAINER_VFBN_MINI_DIR:-.device/cifar-10-mini}
budget=520
extra_wheels=
only=
usage() { sed -n '2,46p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1; shift ;;
        --kit) [ $# -ge 2 ] || usage; kit=$2; shift 2 ;;
        --mini) [ $# -ge 2 ] || usage; mini=$2; shift 2 ;;
        --budget) [ $# -ge 2 ] || usage; budget=$2; shift 2 ;;
        --extra-wheels) [ $# -ge 2 ] || usage; extra_wheels=$2; shift 2 ;;
        --only) [ $# -ge 2 ] || usage; only=,$2,; shift 2 ;;
        -h|--help) sed -n '2,46p' "$0"; exit 0 ;;
        *) echo "gpu_check: unknown argument $1" >&2; usage ;;
    esac
done
case "$budget" in ''|*[!0-9]*) echo "gpu_check: --budget must be whole seconds, got $budget" >&2; exit 2 ;; esac

start=$(date +%s)
deadline=$((start + budget))
OUT=${OUT:-$(mktemp -d /tmp/gpu_check.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d /tmp/gpu_check_work.XXXXXX)   # venv, results; packed at the end
mkdir -p "$work/logs" "$work/results"
log=$OUT/gpu_check.log
: > "$log"
summary=$work/summary.tsv
: > "$summary"
kit=$(cd "$kit" 2>/dev/null && pwd || echo "$kit")
mini=$(cd "$mini" 2>/dev/null && pwd || echo "$mini")
venv=$work/venv
py=$venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg

say() { echo "gpu_check: $*" | tee -a "$log"; }
left() { echo $((deadline - $(date +%s))); }

ok_label=ok   # the status of a step that exits with one of its OK_CODES
# step NAME CAP_SECONDS OK_CODES -- COMMAND...: run COMMAND under `timeout`
# (CAP, or what is left of the budget), its output to the terminal, the
# combined log and logs/NAME.log; record status, exit code and seconds.
step() {
    local name=$1 cap=$2 ok=$3; shift 4
    local t0 rc status limit
    if [ -n "$only" ] && [[ "$only" != *",$name,"* ]] && [ "$name" != install ] && [ "$name" != stack ]; then
        say "--- $name: not asked for (--only)"
        return 0
    fi
    limit=$(left)
    [ "$cap" -lt "$limit" ] && limit=$cap
    if [ "$limit" -lt 15 ]; then
        say "--- $name: skipped, the budget is spent ($(left) s left)"
        printf '%s\tskipped (budget spent)\t-\t0\n' "$name" >> "$summary"
        return 0
    fi
    say "--- $name (at most ${limit} s): $*"
    t0=$(date +%s)
    { timeout -k 10 "$limit" "$@"; echo $? > "$work/rc.$name"; } 2>&1 \
        | tee "$work/logs/$name.log" | tee -a "$log"
    rc=$(cat "$work/rc.$name")
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status="TIMED OUT after ${limit} s"
    elif [[ " $ok " == *" $rc "* ]]; then status=$ok_label
    else status=FAILED; fi
    say "--- $name: $status (exit $rc, $(( $(date +%s) - t0 )) s)"
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$(( $(date +%s) - t0 ))" >> "$summary"
}

# gpu_step NAME CAP -- COMMAND...: a step that needs the GPU. In a dry run,
# check instead that the script exists and that its --help lists every
# --flag of COMMAND (catches drift between this file and the scripts).
gpu_step() {
    local name=$1 cap=$2; shift 3
    if [ "$dry_run" = 0 ]; then step "$name" "$cap" 0 -- "$@"; return; fi
    ok_label='command checked (dry run)'
    step "$name" 120 0 -- "$py" - "$@" <<'EOF'
import os, re, subprocess, sys
cmd = sys.argv[1:]
print('dry run: would run: %s' % ' '.join(cmd))
# The program: the last `X.py`, or `-m MODULE`.
if '-m' in cmd:
    i = cmd.index('-m') + 1
    target = ['-m', cmd[i]]
else:
    i = max([j for j, a in enumerate(cmd) if a.endswith('.py')], default=-1)
    if i < 0 or not os.path.exists(cmd[i]):
        sys.exit('dry run: no script in %s' % ' '.join(cmd))
    target = [cmd[i]]
flags = [a.split('=')[0] for a in cmd[i + 1:] if a.startswith('--')]
proc = subprocess.run([sys.executable] + target + ['--help'],
                      capture_output=True, text=True)
if proc.returncode != 0:
    sys.exit('dry run: %s --help failed:\n%s' % (' '.join(target), proc.stderr[-2000:]))
missing = [f for f in flags if not re.search(re.escape(f) + r'(?![\w-])', proc.stdout)]
if missing:
    sys.exit('dry run: %s --help lists no %s' % (' '.join(target), ', '.join(missing)))
print('dry run: %s accepts %s' % (' '.join(target), ' '.join(flags) or 'no flags'))
EOF
    ok_label=ok
}

[ -f "$mini/cifar-10-python.tar.gz" ] || say "the mini set is missing: no $mini/cifar-10-python.tar.gz"
say "start $(date -u +%Y-%m-%dT%H:%M:%SZ); budget ${budget} s; repo $REPO ($(git -C "$REPO" describe --always --dirty 2>/dev/null || echo no git)); OUT $OUT; dry run $dry_run"

# ----------------------------------------------------------------- install
install() {
    set -e
    local links=(--no-index --find-links "$kit")
    [ -n "$extra_wheels" ] && links+=(--find-links "$extra_wheels")
    [ -f "$kit/requirements.txt" ] || { echo "no kit at $kit (build it with tools/make_kit.sh)"; return 1; }
    "${PYTHON:-python3}" -m venv --system-site-packages "$venv"
    # Where the machine's Python is itself a venv (/opt/torch/.venv), the
    # flag above only reaches its base interpreter: a .pth file makes that
    # venv's site-packages (NumPy, CuPy, PyTorch) visible too, after ours.
    "${PYTHON:-python3}" - "$venv" <<'PTH'
import glob, os, site, sys
if sys.prefix != sys.base_prefix:
    target, = glob.glob(os.path.join(sys.argv[1], 'lib', 'python*', 'site-packages'))
    with open(os.path.join(target, 'machine_venv.pth'), 'w') as f:
        f.write('\n'.join(site.getsitepackages()) + '\n')
    print('the machine venv %s is visible through %s/machine_venv.pth' % (sys.prefix, target))
PTH
    # setuptools<81 named explicitly: a newer system setuptools would satisfy
    # Chainer without pkg_resources.
    "$py" -m pip install -q "${links[@]}" -r "$kit/requirements.txt" 'setuptools<81'
    # This checkout is not installed: setuptools' develop step fetches its
    # build requirements from the network even with --no-build-isolation (it
    # failed so on the GPU machine, 2026-11-30); PYTHONPATH (below) reaches it.
    "$py" -m pip list 2>/dev/null | grep -iE '^(chainer|chainer-vfbn|numpy|cupy|torch|setuptools|pytest|pillow|mpi4py|mpich) ' || true
}
export venv py kit extra_wheels REPO
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
export -f install
step install 150 0 -- bash -c install

# ------------------------------------------------------------------- stack
# Where CuPy cannot load cuBLAS (CuPy 14 wheels carry none), use a pip
# wheel's (PyTorch brings nvidia-cublas): its folder goes on LD_LIBRARY_PATH.
# (The probe: Chainer sees CuPy, and a cuBLAS product runs.)
if [ -x "$py" ] && ! "$py" -c 'import chainer_vfbn; from chainer.backends import cuda; assert cuda.available; a = cuda.cupy.ones((2, 2), "f"); a.dot(a)' >/dev/null 2>&1; then
    cublas_dir=$("$py" - <<'EOF'
import glob, os, sys
for base in sys.path:
    hits = sorted(glob.glob(os.path.join(base, 'nvidia', '**', 'libcublas.so*'), recursive=True))
    if hits:
        print(os.path.dirname(hits[0])); break
EOF
)
    if [ -n "$cublas_dir" ]; then
        export LD_LIBRARY_PATH=$cublas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        say "CuPy could not load cuBLAS by itself: LD_LIBRARY_PATH now starts with $cublas_dir"
    else
        say "CuPy cannot load cuBLAS, and no pip wheel under site-packages/nvidia has it"
    fi
fi
stack_ok=0; [ "$dry_run" = 1 ] && stack_ok="0 1" && ok_label='ok (dry run: no GPU expected)'
step stack 90 "$stack_ok" -- "$py" tools/gpu_stack.py --json "$OUT/stack.json"

ok_label=ok

# ------------------------------------------- where a step's time goes, FIRST
# The question that decides the next design (docs/BENCHMARKS.md): how much of
# a Chainer step is GPU work, and how much the host. First, so that it is
# answered within the first minutes; it also fills CuPy's kernel cache.
gpu_step profile 120 -- "$py" benchmarks/profile_step.py --device @cupy:0 \
    --arch resnet110-paper --batchsize 128 --iters 5 --warmup 2 \
    --profile-steps 3 --json "$OUT/profile.json"

# ----------------------------------------- the README's command, shortened
# `python train/train_cifar.py --method vfbn --device 0` (ResNet-110 paper
# preset) on the mini set, 30 iterations, the 36-view test at the end; it
# also compiles the kernels the profile did not (evaluation, the data
# pipeline) before the benchmarks time anything.
gpu_step cli-gpu0 90 -- "$py" train/train_cifar.py --method vfbn --device 0 \
    --data-dir "$mini" --no-download --iterations 30 --tta-interval 1 \
    --test-batchsize 256 --no-progress --out "$work/results/cli-gpu0"

# ---------------------------------------------------------- the benchmarks
gpu_step bench-kernels 60 -- "$py" benchmarks/bench_kernels.py --device @cupy:0 \
    --repeats 20 --warmup 3 --json "$OUT/kernels.json"
gpu_step bench-step 80 -- "$py" benchmarks/bench_step.py --device @cupy:0 \
    --arch resnet110-paper --batchsize 128 --iters 5 --warmup 2 --json "$OUT/step.json"
gpu_step bench-vs-pytorch 70 -- "$py" benchmarks/bench_vs_pytorch.py --device @cupy:0 \
    --arch resnet110-paper --batchsize 128 --rounds 3 --iters 5 --warmup 2 \
    --json "$OUT/vs_pytorch.json"

# ------------------------- the mini Table 1, beside the tests (not the benchmarks)
# Started once the benchmarks are done (their timings must not share the GPU),
# in the background while the tests and the decoupled run go on; no run starts
# after the deadline, and what finished comes back as records in results.tar.gz.
table1=("$py" train/reproduce.py --schedule mini --phase final --untuned
    --arch resnet110-paper --device @cupy:0 --jobs 9 --data-dir "$mini"
    --out "$work/results/table1-mini" --records "$work/results/table1-records"
    --deadline $(( deadline - 100 )))
table1_pid=
if [ "$dry_run" = 1 ]; then
    gpu_step table1-mini 120 -- "${table1[@]}"
else
    step table1-mini $(( $(left) - 30 )) 0 -- "${table1[@]}" &
    table1_pid=$!
fi

# --------------------------------------------- 2 MPI ranks sharing GPU 0 (after the MPI launcher, which pytest's decoupled GPU test needs too)
mpi_ready() {
    # An MPI launcher: the machine's, else the kit's mpich wheel.
    if ! command -v mpiexec >/dev/null 2>&1 && [ -x "$py" ]; then
        if ls "$kit"/mpich-*.whl >/dev/null 2>&1; then
            "$py" -m pip install -q --no-index --find-links "$kit" mpich \
                && echo "installed the kit's mpich wheel (mpiexec, libmpi) into the venv"
        fi
    fi
    command -v mpiexec >/dev/null 2>&1 || { echo "no mpiexec, and the kit has no mpich wheel"; return 1; }
    "$py" -c 'import mpi4py' 2>/dev/null || { echo "no mpi4py on this machine"; return 1; }
    local launcher
    launcher=$("$py" tests/_mpi.py)
    echo "launcher: $launcher ($(command -v mpiexec))"
    timeout 60 $launcher -n 2 "$py" -c 'from mpi4py import MPI; c = MPI.COMM_WORLD; print("rank %d of %d: %s" % (c.rank, c.size, MPI.Get_library_version().splitlines()[0]))'
}
export PATH=$venv/bin:$PATH LD_LIBRARY_PATH=$venv/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [ -x "$py" ]; then
    mpi_ok=0; [ "$dry_run" = 1 ] && mpi_ok="0 1" && ok_label='ok (dry run: MPI optional)'
    export -f mpi_ready
    step mpi 90 "$mpi_ok" -- bash -c mpi_ready
    ok_label=ok
fi
if [ -x "$py" ] && [ "$(awk -F'\t' '$1 == "mpi" {s = $2} END {print s}' "$summary")" = ok ] && command -v mpiexec >/dev/null 2>&1 && "$py" -c 'import mpi4py' 2>/dev/null; then
    gpu_step decoupled 90 -- env OMP_NUM_THREADS=1 $("$py" tests/_mpi.py) -n 2 \
        "$py" train/train_cifar.py --decoupled --method vfbn --arch resnet110-paper \
        --device @cupy:0 --max-staleness 1 --iterations 40 --batchsize 128 \
        --data-dir "$mini" --no-download --tta-interval 0 --no-progress \
        --out "$work/results/decoupled"
else
    say "--- decoupled: skipped, no working MPI launcher with mpi4py (see the mpi step)"
    printf 'decoupled\tskipped (no MPI launcher with mpi4py)\t-\t0\n' >> "$summary"
fi

# --------------------------------------------------------------- the tests
gpu_step pytest-gpu 150 -- env CHAINER_VFBN_REQUIRE_GPU=1 \
    CHAINER_VFBN_MINI="$mini/cifar-10-python.tar.gz" \
    "$py" -m pytest -m gpu -q -p no:cacheprovider --junit-xml="$work/results/pytest-gpu.xml"


# ------------------------------------------------- wait for the mini Table 1
if [ -n "$table1_pid" ]; then
    say "waiting for table1-mini ($(left) s of the budget left)"
    wait "$table1_pid"
fi

# ------------------------------------------------------------ the summary
{
    echo "# tools/gpu_check.sh $( [ "$dry_run" = 1 ] && echo '--dry-run ')— $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "repo $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?'), budget ${budget} s, used $(( $(date +%s) - start )) s"
    echo
    echo '| step | status | exit | seconds |'
    echo '|---|---|---:|---:|'
    while IFS=$'\t' read -r name status rc secs; do
        echo "| $name | $status | $rc | $secs |"
    done < "$summary"
} > "$work/logs/summary.md"
"${PYTHON:-python3}" - "$summary" "$OUT/summary.json" "$budget" "$dry_run" <<'EOF'
import json, sys
rows = [dict(zip(('step', 'status', 'exit', 'seconds'), l.rstrip('\n').split('\t')))
        for l in open(sys.argv[1]) if l.strip()]
json.dump({'budget_s': int(sys.argv[3]), 'dry_run': sys.argv[4] == '1', 'steps': rows},
          open(sys.argv[2], 'w'), indent=2)
EOF
cp "$summary" "$work/logs/summary.tsv"
tar -czf "$OUT/results.tar.gz" -C "$work" --exclude='*.npz' --exclude='snapshot*' logs results
cat "$work/logs/summary.md" | tee -a "$log"
say "wrote $(ls "$OUT" | tr '\n' ' ')($(du -sh "$OUT" | cut -f1)) in $OUT"
# Exit 1 when a step failed or timed out (skipped steps are not failures).
failed=0
cut -f2 "$summary" | grep -qE '^(FAILED|TIMED OUT)' && failed=1
rm -rf "$work"
exit $failed
