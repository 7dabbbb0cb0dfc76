#!/usr/bin/env python
"""Where a training step's time goes: step times, and GPU kernel time against wall time.

The first step of ``tools/gpu_check.sh`` (issue #22). On the H200 (2026-11-30)
a Chainer BP step of ResNet-110 ``paper`` at batch 128 took 227 ms against
PyTorch eager's 46 ms; this script says how much of a step is GPU work and how
much is the host (Python, Chainer's checks, kernel launches), which decides
the next design (docs/BENCHMARKS.md, "GPU speed: the goal, the gap, the
levers"). One run, one device, one fixed batch already on the device:

1. **Step time** (median of ``--iters`` steps, each between two device
   synchronisations, after ``--warmup``): ``chainer-bp`` and ``chainer-vfbn``
   built as training builds them (``chainer_vfbn.experiments.bench.steps.ChainerStep``), each with
   Chainer's type checks on and off (``chainer.config.type_check``, which
   ``CHAINER_TYPE_CHECK=0`` turns off for a whole process; the two settings
   alternate step by step), and ``torch``, the PyTorch eager twin
   (``chainer_vfbn.experiments.bench.steps.TorchStep``).
2. **Kernel profile**: ``--profile-steps`` steps of each participant (type
   checks at Chainer's default) under ``torch.profiler`` with CUDA activity.
   Its CUPTI tracing sees every kernel of the process, CuPy's and cuBLAS'
   included. Per step: the kernels launched, their summed GPU time, the time
   the GPU was busy (the union of kernels, copies and sets), and the wall
   time of the same profiled steps; the kernels that take the most time.
   Without a GPU, or without PyTorch's CUDA and CUPTI, this part says "no
   GPU profiler" and why, and the rest still runs.
3. **The stack**: device, library versions, CUDA runtime and driver, and
   whether ``nsys`` or ``ncu`` are on PATH (recorded only; not run).

``--json PATH`` writes everything, rewritten after each part, so that a run
cut short keeps what it measured.

Examples::

    python benchmarks/profile_step.py --device @cupy:0 --json profile.json
    # the CPU path, as CI runs it (figures meaningless for the GPU goals)
    python benchmarks/profile_step.py --arch resnet8-paper -b 4 --iters 1 \\
        --warmup 0 --profile-steps 1
"""
import argparse
import datetime
import json
import shutil
import sys
import time

import chainer_vfbn  # NOQA  (its compat shims must precede chainer)

import chainer  # NOQA
from chainer.backends import cuda  # NOQA
import numpy  # NOQA

from chainer_vfbn.experiments.bench import machine  # NOQA
from chainer_vfbn.experiments.bench.kernel_profile import gpu_profiler  # NOQA
from chainer_vfbn.experiments.bench.kernel_profile import profile_kernels  # NOQA
from chainer_vfbn.experiments.bench.steps import chainer_step_times  # NOQA
from chainer_vfbn.experiments.bench.steps import ChainerStep  # NOQA
from chainer_vfbn.experiments.bench.steps import plain_step_times  # NOQA
from chainer_vfbn.experiments.bench.steps import random_batch  # NOQA
from chainer_vfbn.experiments.bench.steps import torch_device_spec  # NOQA
from chainer_vfbn.experiments.bench.steps import TorchStep  # NOQA

PARTICIPANTS = ('chainer-bp', 'chainer-vfbn', 'torch')


def stack(device):
    """Device, CUDA runtime and driver, and the GPU profilers on PATH."""
    out = {'device': machine.device_name(device), 'device_spec': str(device),
           'nsys': shutil.which('nsys'), 'ncu': shutil.which('ncu')}
    if device.xp is not numpy:
        out['cuda_runtime'] = cuda.cupy.cuda.runtime.runtimeGetVersion()
        out['cuda_driver'] = cuda.cupy.cuda.runtime.driverGetVersion()
    return out


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--arch', default='resnet110-paper',
                   help='network, as the other benchmarks name it')
    p.add_argument('--batchsize', '-b', type=int, default=128)
    p.add_argument('--device', '-d', default='@numpy',
                   help='chainer device: @numpy, @cupy:0 (torch uses the '
                        'same device: cpu, cuda:0)')
    p.add_argument('--iters', type=int, default=5,
                   help='timed steps per participant (and per type-check '
                        'setting)')
    p.add_argument('--warmup', type=int, default=2,
                   help='untimed steps first (kernel compilation, pools)')
    p.add_argument('--profile-steps', type=int, default=3,
                   help='steps of each participant under the profiler')
    p.add_argument('--participants', default=','.join(PARTICIPANTS),
                   help='comma-separated subset of %s' % ', '.join(PARTICIPANTS))
    p.add_argument('--learnrate', type=float, default=0.1)
    p.add_argument('--alpha-gs', type=float, default=1e-3)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--json', default=None, metavar='PATH')
    return p


def parse_args(argv=None):
    """The options, checked, and the participants to time, in order."""
    p = build_parser()
    args = p.parse_args(argv)
    wanted = [w for w in args.participants.split(',') if w]
    bad = set(wanted) - set(PARTICIPANTS)
    if bad or not wanted:
        p.error('unknown participant(s) %s; choose from %s'
                % (', '.join(sorted(bad)) or '(none given)',
                   ', '.join(PARTICIPANTS)))
    if min(args.iters, args.batchsize, args.profile_steps) < 1 \
            or args.warmup < 0:
        p.error('--iters, --batchsize, --profile-steps must be >= 1, '
                '--warmup >= 0')
    return args, wanted


def dump(info, path):
    """Write ``info`` to ``path`` (nothing when ``path`` is ``None``)."""
    if path:
        with open(path, 'w') as f:
            json.dump(info, f, indent=2)


def time_participant(name, args, device, x, t, batch):
    """``(step, times)`` of one participant: type checks on and off for
    Chainer's, plain for torch."""
    if name == 'torch':
        step = TorchStep(args.arch, x, t, torch_device_spec(device),
                         args.learnrate, args.seed)
        return step, plain_step_times(step, args.iters, args.warmup)
    step = ChainerStep(name.split('-', 1)[1], args.arch, batch, device,
                       args.learnrate, args.alpha_gs, args.seed)
    return step, chainer_step_times(step, args.iters, args.warmup)


def time_steps(wanted, args, device, x, t, info):
    """Part 1: each participant's step times into ``info``; the steps."""
    batch = (device.send(x), device.send(t))
    steps = {}
    for name in wanted:
        t0 = time.perf_counter()
        try:
            steps[name], info['step_time'][name] = time_participant(
                name, args, device, x, t, batch)
        except ImportError as e:
            info['skipped'][name] = 'cannot import what it needs (%s)' % e
            print('%s: skipped, %s' % (name, info['skipped'][name]))
            continue
        res = info['step_time'][name]
        print('%-13s %s   (%.0f s with set-up and warm-up)' % (
            name, ', '.join('%s %.1f ms' % (k, 1e3 * v['median_s'])
                            for k, v in res.items())
            if 'median_s' not in res else '%.1f ms' % (1e3 * res['median_s']),
            time.perf_counter() - t0))
        sys.stdout.flush()
        dump(info, args.json)
    return steps


def step_ratios(step_time):
    """``(ratios, med)``: the ratios printed at the end, and each
    participant's median step (type checks on)."""
    ratios = {}
    med = {n: r.get('type_check_on', r)['median_s']
           for n, r in step_time.items()}
    if 'chainer-bp' in med and 'torch' in med:
        ratios['chainer_bp_vs_torch_images_per_s'] = \
            med['torch'] / med['chainer-bp']
    if 'chainer-bp' in med and 'chainer-vfbn' in med:
        ratios['vfbn_step_vs_bp_step'] = med['chainer-vfbn'] / med['chainer-bp']
    for name, res in step_time.items():
        if 'type_check_off' in res:
            ratios['%s_type_check_off_vs_on' % name] = (
                res['type_check_off']['median_s']
                / res['type_check_on']['median_s'])
    return ratios, med


def print_profile(name, stats, step_s):
    """One participant's kernel profile and its top kernels."""
    print('%-13s %6.0f kernels/step, kernels %.1f ms, GPU busy %.1f ms '
          'of a %.1f ms step (%.0f%%); profiled wall %.1f ms/step'
          % (name, stats['kernels_per_step'],
             1e3 * stats['kernel_s_per_step'],
             1e3 * stats['gpu_busy_s_per_step'], 1e3 * step_s,
             100 * stats['gpu_busy_fraction_of_step'],
             1e3 * stats['wall_profiled_s_per_step']))
    for k in stats['top_kernels'][:5]:
        print('    %7.2f ms/step %6.0f calls  %s' % (
            1e3 * k['s_per_step'], k['calls_per_step'], k['name'][:90]))


def profile(steps, med, args, device, info):
    """Part 2: each step's GPU kernels under the profiler, into ``info``."""
    torch, why = gpu_profiler(device)
    prof = {'available': torch is not None, 'reason': why,
            'tool': 'torch.profiler (CUPTI)', 'steps': args.profile_steps,
            'type_check': info['type_check_default'], 'participants': {}}
    info['kernel_profile'] = prof
    if torch is None:
        print(why)
    for name, step in steps.items() if torch is not None else ():
        try:
            stats = profile_kernels(step, args.profile_steps, torch)
        except Exception as e:  # a profiler failure must not lose part 1
            prof['participants'][name] = {'error': '%s: %s' % (
                type(e).__name__, e)}
            print('%s: the profiler failed: %s' % (name, e))
            continue
        step_s = med[name]
        stats['gpu_busy_fraction_of_step'] = stats['gpu_busy_s_per_step'] / step_s
        prof['participants'][name] = stats
        print_profile(name, stats, step_s)
        sys.stdout.flush()
        dump(info, args.json)


def main(argv=None):
    args, wanted = parse_args(argv)
    device = chainer.get_device(args.device)
    device.use()
    x, t = random_batch(args.arch, args.batchsize, args.seed)
    info = {'date': datetime.datetime.now().astimezone().isoformat(
                timespec='seconds'),
            'stack': stack(device),
            'versions': machine.versions(with_torch='torch' in wanted),
            'config': vars(args),
            'type_check_default': bool(chainer.global_config.type_check),
            'step_time': {}, 'skipped': {}}
    print('# %s, batch %d: %d timed steps after %d warm-up; %d profiled'
          % (args.arch, args.batchsize, args.iters, args.warmup,
             args.profile_steps))
    print('date:     %s' % info['date'])
    print('device:   %s (%s)' % (info['stack']['device'], device))
    print('versions: %s' % ', '.join('%s %s' % kv
                                     for kv in info['versions'].items()))
    sys.stdout.flush()

    steps = time_steps(wanted, args, device, x, t, info)       # 1.
    ratios, med = step_ratios(info['step_time'])
    info['ratios'] = ratios
    dump(info, args.json)
    profile(steps, med, args, device, info)                    # 2.

    print()
    for key, value in ratios.items():
        print('%-42s %.3f' % (key, value))
    if args.json:
        dump(info, args.json)
        print('wrote %s' % args.json)
    return 0 if steps else 1


if __name__ == '__main__':
    sys.exit(main())
