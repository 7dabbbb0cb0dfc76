#!/usr/bin/env bash
# Build an offline install kit: a folder of wheels from which chainer-vfbn's
# dependencies install on a machine without internet (many GPU clusters).
#
#   tools/make_kit.sh [--python-version 3.12] [--no-mpich] [--plot] [--report] KIT_DIR
#
# Run it where the package registry can be reached. The kit holds, for the
# target Python on manylinux x86_64:
#   - chainer 7.8.1 built as a wheel (it is an sdist whose setup.py needs
#     setuptools<81, hence constraints.txt for the build) and the dependencies
#     it declares, except NumPy;
#   - setuptools<81 (Chainer imports pkg_resources at run time), pillow and
#     pytest with their dependencies;
#   - the `mpich` wheel (mpiexec and libmpi, about 13 MB) for the decoupled
#     runs where the target has mpi4py but no MPI launcher; --no-mpich leaves
#     it out;
#   - with --plot, matplotlib and its dependencies (about 17 MB more);
#   - with --report, scipy (the `report` extra: the p-values of the mini
#     schedule's report, train/reproduce.py; about 35 MB more).
# NumPy and CuPy are left out: the target brings its own (they must match its
# CUDA and Python). On the target, in a venv that sees them:
#   python3 -m venv --system-site-packages .venv
#   .venv/bin/pip install --no-index --find-links KIT_DIR -r KIT_DIR/requirements.txt
#   .venv/bin/pip install --no-index --find-links KIT_DIR --no-build-isolation -e .
# requirements.txt names setuptools<81 explicitly: otherwise a newer setuptools
# of the system's site-packages satisfies Chainer, without pkg_resources.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 [--python-version X.Y] [--no-mpich] [--plot] [--report] KIT_DIR" >&2; exit 2; }
pyver=3.12 mpich=1 plot=0 report=0 kit=
while [ $# -gt 0 ]; do
    case "$1" in
        --python-version) [ $# -ge 2 ] || usage; pyver=$2; shift 2 ;;
        --no-mpich) mpich=0; shift ;;
        --plot) plot=1; shift ;;
        --report) report=1; shift ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        -*) usage ;;
        *) [ -z "$kit" ] || usage; kit=$1; shift ;;
    esac
done
[ -n "$kit" ] || usage
case "$pyver" in 3.[0-9]*) ;; *) echo "make_kit: --python-version must look like 3.12, got $pyver" >&2; exit 2 ;; esac
abi=cp${pyver/./}
host_python=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

mkdir -p "$kit"
kit=$(cd "$kit" && pwd)
# The pure-Python chainer wheel, built here with the host Python: its build
# needs setuptools<81 (its setup.py imports pkg_resources).
PIP_CONSTRAINT=$PWD/constraints.txt PIP_BUILD_CONSTRAINT=$PWD/constraints.txt \
    "$host_python" -m pip wheel -q --no-deps -w "$kit" 'chainer==7.8.1'
chainer_wheel=$(ls "$kit"/chainer-7.8.1-*.whl)

# Chainer's declared dependencies, read from its wheel, without NumPy (the
# target's own) and setuptools (pinned below).
mapfile -t chainer_deps < <("$host_python" - "$chainer_wheel" <<'EOF'
import re, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    meta = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))
    text = z.read(meta).decode()
for line in text.splitlines():
    if line.startswith('Requires-Dist:') and 'extra ==' not in line:
        req = line.split(':', 1)[1].strip()
        name = re.match(r'[A-Za-z0-9_.-]+', req).group(0).lower()
        if name not in ('numpy', 'setuptools'):
            print(req.split(';')[0].strip())
EOF
)

wanted=('setuptools<81' pillow threadpoolctl pytest "${chainer_deps[@]}")
[ "$mpich" = 1 ] && wanted+=(mpich)
[ "$plot" = 1 ] && wanted+=(matplotlib)
[ "$report" = 1 ] && wanted+=(scipy)
# Binary wheels for the target, whatever the host's Python. A dependency that
# resolves to NumPy (matplotlib's, scipy's) is pulled too; it is removed below.
"$host_python" -m pip download -q --only-binary=:all: --dest "$kit" \
    --python-version "$pyver" --implementation cp --abi "$abi" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 "${wanted[@]}"
rm -f "$kit"/numpy-*.whl "$kit"/cupy*.whl

# What the target installs (mpich only where it has no MPI launcher).
{
    echo "# chainer-vfbn offline kit for CPython $pyver, manylinux x86_64; built $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "# pip install --no-index --find-links THIS_DIR -r THIS_DIR/requirements.txt"
    echo 'chainer==7.8.1'
    echo 'setuptools<81'
    echo 'pillow'
    echo 'threadpoolctl'
    echo 'pytest'
    [ "$plot" = 1 ] && echo 'matplotlib'
    [ "$report" = 1 ] && echo 'scipy'
} > "$kit/requirements.txt"
echo "make_kit: $(ls "$kit"/*.whl | wc -l) wheels, $(du -sh "$kit" | cut -f1) in $kit (CPython $pyver)"
