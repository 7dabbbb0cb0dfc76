#!/usr/bin/env bash
# Build the REAL Dockerfile and run the image, on a machine without Docker or
# CUDA (issue #22). Run from anywhere, as root:
#
#   bash tools/docker_check.sh [--install] [--base-cache DIR] [--mirror URL]
#
#   --install         apt-get install what it needs first (podman buildah
#                     debootstrap fuse-overlayfs slirp4netns uidmap runc)
#   --base-cache DIR  keep the stand-in base's tarball in DIR and reuse it on
#                     the next run (default $DOCKER_CHECK_BASE_CACHE; unset:
#                     made afresh, then deleted)
#   --mirror URL      the Debian mirror for debootstrap (default: apt's own,
#                     from /etc/apt/sources.list[.d])
#
# What it does, each step timed and printed:
#   1. the stand-in base: `debootstrap --variant=minbase bookworm` from the
#      mirror, the host's extra CA certificates (/usr/local/share/
#      ca-certificates/*.crt: the network here re-signs TLS, as corporate
#      proxies do) copied in, `podman import`;
#   2. `podman build` of the Dockerfile unchanged but for its BASE_IMAGE
#      argument (rootful podman, `--runtime runc`: crun refuses hybrid
#      cgroups; `--ulimit nofile/nproc` at or below this shell's hard limits,
#      which root cannot raise here; host network for the RUN steps);
#   3. inside the image, offline (`--network none`):
#      - the README's sample job (its command read from README.md) cut to 3
#        iterations on the CPU, and assertions on its summary.json;
#      - the default command (the image's CMD) with `--help` appended: its
#        arguments must parse;
#      - the Dockerfile's pip-upgrade line (read from the Dockerfile) must
#        FAIL without the index;
#   4. clean-up (also on failure or interrupt): the containers, images and
#      storage live in a private folder, removed at the end; firewall chains
#      are compared before and after.
# What the stand-in cannot prove is printed at the end: Ubuntu 22.04's package
# names, and anything of CUDA, cuDNN or CuPy on a GPU.
#
# Exit status: 0 all passed; 1 the image failed to build or a check failed;
# 2 bad usage; 3 no container engine can run here (not root, podman or
# debootstrap missing, the base cannot be made, or podman cannot run a
# container at all): nothing was learnt about the image.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

install=0
base_cache=${DOCKER_CHECK_BASE_CACHE:-}
mirror=
usage() { sed -n '2,40p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --install) install=1; shift ;;
        --base-cache) [ $# -ge 2 ] || usage; base_cache=$2; shift 2 ;;
        --mirror) [ $# -ge 2 ] || usage; mirror=$2; shift 2 ;;
        -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
        *) echo "docker_check: unknown argument $1" >&2; usage ;;
    esac
done

t_start=$(date +%s)
say() { echo "docker_check: $*"; }
cannot() { say "CANNOT CHECK HERE, the image was not built: $*"; exit 3; }
fail() { say "FAILED: $*"; exit 1; }
since() { echo $(( $(date +%s) - $1 )); }

PACKAGES="podman buildah debootstrap fuse-overlayfs slirp4netns uidmap runc"
[ "$(id -u)" = 0 ] || cannot "needs root (rootful podman)"
if [ "$install" = 1 ]; then
    missing=
    for p in $PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    if [ -n "$missing" ]; then
        say "installing$missing"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq $missing) > /tmp/docker_check_apt.log 2>&1 \
            || cannot "apt-get could not install$missing (/tmp/docker_check_apt.log)"
        rm -f /tmp/docker_check_apt.log
    fi
fi
for cmd in podman debootstrap python3; do
    command -v "$cmd" >/dev/null 2>&1 \
        || cannot "no $cmd (Debian: apt-get install $PACKAGES; or run with --install)"
done

# --------------------------------------------------- private storage, clean-up
work=$(mktemp -d /tmp/docker_check.XXXXXX)
mkdir -p "$work/storage" "$work/runroot" "$work/tmp" "$work/results"
export TMPDIR=$work/tmp   # podman's and buildah's temporary files
PODMAN=(podman --root "$work/storage" --runroot "$work/runroot")
base_img=localhost/chainer-vfbn-standin:bookworm
image=localhost/chainer-vfbn-check:latest

firewall_chains() {  # every firewall chain (nftables and iptables), one per line; read-only
    { command -v nft >/dev/null 2>&1 && nft list ruleset 2>/dev/null \
        | awk '$1 == "table" {t = $2 " " $3} $1 == "chain" {print "nft " t " " $2}'
      command -v iptables-save >/dev/null 2>&1 && iptables-save 2>/dev/null \
        | awk '/^\*/ {t = substr($1, 2)} /^:/ {print "iptables " t " " substr($1, 2)}'
    } | sort
}
count_lines() { [ -z "$1" ] && echo 0 || wc -l <<<"$1"; }
chains_before=$(firewall_chains)

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    "${PODMAN[@]}" rm -af >/dev/null 2>&1
    "${PODMAN[@]}" rmi -af >/dev/null 2>&1
    # Anything still mounted under the private folder (an interrupted build).
    grep -o " $work/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null
    done
    rm -rf "$work"
    local chains_after
    chains_after=$(firewall_chains)
    if [ "$chains_after" != "$chains_before" ]; then
        say "firewall chains changed during the check:"
        diff <(echo "$chains_before") <(echo "$chains_after") | sed 's/^/    /'
        [ "$rc" = 0 ] && rc=1
    fi
    [ -d "$work" ] && say "could not remove $work" && [ "$rc" = 0 ] && rc=1
    say "cleaned up: the private storage ($work), its images and containers removed; firewall chains $( [ "$chains_after" = "$chains_before" ] && echo unchanged || echo CHANGED) ($(count_lines "$chains_before") before, $(count_lines "$chains_after") after)"
    say "exit $rc after $(since "$t_start") s"
    exit "$rc"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT TERM

# Limits at or below this shell's hard limits (podman's defaults are above
# them here, and root cannot raise them: "setrlimit RLIMIT_NOFILE: Operation
# not permitted").
clamp() {  # clamp HARD WANTED -> the smaller ("unlimited" counts as infinite)
    if [ "$1" = unlimited ] || [ "$1" -ge "$2" ]; then echo "$2"; else echo "$1"; fi
}
nofile=$(clamp "$(ulimit -Hn)" 1048576)
nproc=$(clamp "$(ulimit -Hu)" 32768)
RUNOPTS=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
# crun refuses hybrid cgroups ("cgroups in hybrid mode not supported").
command -v runc >/dev/null 2>&1 && RUNOPTS+=(--runtime runc)
say "podman $(podman --version | awk '{print $3}'), options ${RUNOPTS[*]}, storage $work"

# ------------------------------------------------------------ 1. the base
t0=$(date +%s)
if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}')
    [ -n "$mirror" ] || mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '$1 == "URIs:" && $2 !~ /security/ {print $2; exit}')
    mirror=${mirror:-http://deb.debian.org/debian}
fi
base_tar=$work/standin-bookworm.tar
if [ -n "$base_cache" ] && [ -s "$base_cache/standin-bookworm.tar" ]; then
    base_tar=$base_cache/standin-bookworm.tar
    say "1. base: reusing $base_tar (--base-cache)"
else
    say "1. base: debootstrap --variant=minbase bookworm from $mirror"
    debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" \
        > "$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log"; cannot "debootstrap failed (see above)"; }
    certs=(/usr/local/share/ca-certificates/*.crt)
    if [ -e "${certs[0]}" ]; then
        mkdir -p "$work/rootfs/usr/local/share/ca-certificates"
        cp "${certs[@]}" "$work/rootfs/usr/local/share/ca-certificates/"
        say "   the host's extra CA certificates copied in: ${certs[*]##*/}"
    fi
    tar -C "$work/rootfs" -cf "$base_tar" . || cannot "could not pack the base"
    rm -rf "$work/rootfs"
    if [ -n "$base_cache" ]; then
        mkdir -p "$base_cache" && cp "$base_tar" "$base_cache/standin-bookworm.tar" \
            && say "   kept in $base_cache/standin-bookworm.tar"
    fi
fi
# A real base image sets PATH; an imported tarball has no configuration.
"${PODMAN[@]}" import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$base_tar" "$base_img" > "$work/import.log" 2>&1 \
    || { cat "$work/import.log"; cannot "podman import failed"; }
"${PODMAN[@]}" run --rm --network none "${RUNOPTS[@]}" "$base_img" true \
    || cannot "podman cannot run a container from the stand-in base"
say "1. base: ready in $(since "$t0") s"

# ----------------------------------------------------------- 2. the build
t0=$(date +%s)
say "2. build: podman build --build-arg BASE_IMAGE=$base_img (the Dockerfile otherwise unchanged)"
"${PODMAN[@]}" build "${RUNOPTS[@]}" --network host --build-arg "BASE_IMAGE=$base_img" \
    -t "$image" -f "$REPO/Dockerfile" "$REPO" 2>&1 | tee "$work/build.log" | sed 's/^/    /'
[ "${PIPESTATUS[0]}" = 0 ] || fail "the image did not build (step 2)"
build_s=$(since "$t0")
size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$image")
say "2. build: done in ${build_s} s; image size $(( size / 1000000 )) MB"

run_in_image() {  # run_in_image COMMAND...: offline, in the image
    "${PODMAN[@]}" run --rm --network none "${RUNOPTS[@]}" -v "$work/results:/results" \
        "$image" "$@"
}

# ---------------------------------------------- 3a. the README's sample job
t0=$(date +%s)
job=$(grep -o 'train/train_cifar.py [^&`]*--dataset sample[^&`]*' "$REPO/README.md" | head -n 1)
[ -n "$job" ] || fail "README.md shows no 'train/train_cifar.py ... --dataset sample' job"
# shellcheck disable=SC2086  # the README's words, split as its shell would
set -- $job
say "3a. the README's sample job, 3 iterations, CPU, offline: python $* (then --iterations 3 --tta-interval 0 --no-progress --out /results/sample)"
run_in_image python "$@" --iterations 3 --tta-interval 0 --no-progress --out /results/sample \
    2>&1 | sed 's/^/    /'
[ "${PIPESTATUS[0]}" = 0 ] || fail "the sample job failed in the image (step 3a)"
python3 - "$work/results/sample" <<'EOF' || fail "the sample job's summary.json is wrong (step 3a)"
import json, math, os, sys
out = sys.argv[1]
s = json.load(open(os.path.join(out, 'summary.json')))
checks = {
    'status is finished': s.get('status') == 'finished',
    'method is vfbn': s.get('method') == 'vfbn',
    '3 iterations': s.get('iterations') == 3,
    'the bundled sample': str(s.get('dataset', '')).startswith('sample'),
    'on the CPU': s.get('device') == '@numpy',
    'a finite training loss > 0': isinstance(s.get('train_loss'), float)
        and math.isfinite(s['train_loss']) and s['train_loss'] > 0,
    'a test error in [0, 1]': isinstance(s.get('test_error'), float)
        and 0 <= s['test_error'] <= 1,
    'the log and the loss plot written': all(
        os.path.isfile(os.path.join(out, f)) for f in ('log', 'loss.png')),
}
for what, ok in checks.items():
    print('    %s: %s' % ('ok' if ok else 'FAILED', what))
print('    summary: train_loss %r, test_error %r, %s images/s'
      % (s.get('train_loss'), s.get('test_error'), s.get('images_per_sec')))
sys.exit(0 if all(checks.values()) else 1)
EOF
say "3a. done in $(since "$t0") s"

# ------------------------------------------ 3b. the default command parses
cmd_json=$("${PODMAN[@]}" image inspect --format '{{json .Config.Cmd}}' "$image")
mapfile -d '' cmd < <(python3 -c 'import json, sys; sys.stdout.write("\0".join(json.loads(sys.argv[1])))' "$cmd_json")
say "3b. the default command with --help appended (each argument before it is parsed): ${cmd[*]} --help"
help=$(run_in_image "${cmd[@]}" --help 2>&1)
rc=$?
if [ "$rc" != 0 ] || ! grep -q '^usage: ' <<<"$help"; then
    echo "$help" | tail -n 5 | sed 's/^/    /'
    fail "the default command's arguments do not parse (exit $rc; step 3b)"
fi
say "3b. ok: $(grep -m1 '^usage: ' <<<"$help")"

# --------------------------------- 3c. the pip step fails without the index
pip_line=$(sed -n 's/^RUN \(python -m pip install --upgrade.*\)$/\1/p' "$REPO/Dockerfile")
[ -n "$pip_line" ] || fail "no 'RUN python -m pip install --upgrade ...' line in the Dockerfile"
say "3c. the Dockerfile's pip step, offline, must fail: $pip_line"
run_in_image sh -c "$pip_line" > "$work/pip_offline.log" 2>&1
rc=$?
tail -n 2 "$work/pip_offline.log" | sed 's/^/    /'
[ "$rc" != 0 ] || fail "the pip step exits 0 without the index (it would keep an old pip silently; step 3c)"
say "3c. ok: it exits $rc without the index"

# ------------------------------------------------------------------ report
"${PODMAN[@]}" run --rm --network none "${RUNOPTS[@]}" "$image" python -W ignore -c \
    'import sys, numpy, chainer, cupy; print("    in the image: python", sys.version.split()[0], "numpy", numpy.__version__, "chainer", chainer.__version__, "cupy", cupy.__version__)' \
    || fail "the image's stack does not import (cupy included)"
say "PASSED: the Dockerfile builds on the stand-in base in ${build_s} s ($(( size / 1000000 )) MB); the sample job, the default command's arguments and the offline pip step behave; $(since "$t_start") s in all"
say "NOT PROVEN by the stand-in (Debian bookworm, no GPU): that Ubuntu 22.04 (the CUDA image's OS) has the packages python3.11 and python3.11-venv under those names; anything of CUDA, cuDNN 8 or CuPy on a GPU (the image's CuPy is imported, never run); the default command's full run"
exit 0
