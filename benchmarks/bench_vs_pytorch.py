#!/usr/bin/env python
"""Training speed of this project's BP and VFBN against PyTorch eager.

One run, one device, one batch, one input size: the ``paper`` ResNet-110
(``--arch``) trained by

* ``chainer-bp``: this project's back-propagation step, built exactly as
  training builds it (:func:`chainer_vfbn.methods.build_method` ``'bp'``:
  ``L.Classifier`` + MomentumSGD(0.9) with weight decay 1e-4, a
  ``StandardUpdater``);
* ``chainer-vfbn``: the VFBN step (``SyntheticGradientUpdater`` with the
  paper's ResNet ``v_f`` from ``build_synthesizer('vfbn', ...)``, Adam
  ``alpha_gs`` on it), when ``chainer_vfbn.synthesizers`` is importable;
* ``torch``: the same network in PyTorch eager
  (:mod:`chainer_vfbn.experiments.bench.torch_resnet`: same layers, option-A
  shortcuts, He init, BN),
  ``F.cross_entropy`` and ``torch.optim.SGD(lr, momentum 0.9, weight_decay
  1e-4)``, when PyTorch is importable.

The participants are timed *interleaved*: every round runs a block of
``--iters`` steps of each in turn (the order rotates from round to round),
so clock changes and other load hit them alike. A block is timed between two
device synchronisations; the figure of a participant is the median over
rounds of its block's time per step. The batch is fixed and already on the
device: data loading and host-to-device copies are not timed.

Printed: images/s of each, the ratio chainer-bp / torch in images/s,
seconds per 50,000-image epoch, the VFBN / BP step ratio, device, versions and
date; ``--json PATH`` writes the same. Goals, printed beside the figures
(never enforced, never assumed): BP >= 0.7x PyTorch eager's images/s,
<= 6 s per 50k-image epoch *on an H100*, VFBN step <= 1.10x the BP step.

Examples::

    python benchmarks/bench_vs_pytorch.py --device @cupy:0 --json vs_torch.json
    # a CPU check of the script itself (figures meaningless for the goals)
    python benchmarks/bench_vs_pytorch.py --arch resnet8-paper -b 8 \\
        --rounds 2 --iters 2 --warmup 1
"""
import argparse
import datetime
import json
import statistics
import sys
import time

import chainer_vfbn  # NOQA  (its compat shims must precede chainer)

import chainer  # NOQA
import numpy  # NOQA


from chainer_vfbn.experiments.bench.machine import device_name  # NOQA
from chainer_vfbn.experiments.bench.machine import print_header  # NOQA
from chainer_vfbn.experiments.bench.machine import versions  # NOQA
from chainer_vfbn.experiments.bench.steps import ChainerStep  # NOQA
from chainer_vfbn.experiments.bench.steps import random_batch  # NOQA
from chainer_vfbn.experiments.bench.steps import torch_device_spec  # NOQA
from chainer_vfbn.experiments.bench.steps import TorchStep  # NOQA

EPOCH_IMAGES = 50000
GOALS = {
    'bp_vs_torch': 0.7,          # chainer-bp images/s >= 0.7 x torch's
    'epoch_s_h100': 6.0,         # chainer-bp seconds per 50k images, H100
    'vfbn_vs_bp': 1.10,          # chainer-vfbn step <= 1.10 x chainer-bp step
}


def time_interleaved(steps, rounds, iters, warmup, log=print):
    """Median seconds per step of each participant, timed in turns.

    Args:
        steps (dict): ``name -> step`` objects (callable, ``synchronize()``).
        rounds (int): Rounds; each runs a block of ``iters`` steps of every
            participant, the order rotated by one each round.
        iters (int): Steps per block.
        warmup (int): Untimed steps of each before the first round.

    Returns:
        dict: ``name -> {'median_s', 'blocks_s'}`` (seconds per step; the
        per-round block means).
    """
    names = list(steps)
    for name in names:
        for _ in range(warmup):
            steps[name]()
        steps[name].synchronize()
    blocks = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            step = steps[name]
            step.synchronize()
            start = time.perf_counter()
            for _ in range(iters):
                step()
            step.synchronize()
            blocks[name].append((time.perf_counter() - start) / iters)
        log('round %d/%d: %s' % (r + 1, rounds, ', '.join(
            '%s %.1f ms' % (n, 1e3 * blocks[n][-1]) for n in names)))
    return {name: {'median_s': statistics.median(b), 'blocks_s': b}
            for name, b in blocks.items()}


def summarize(results, batchsize, device_label):
    """Images/s, epoch time, ratios and goal verdicts from step times."""
    out = {}
    for name, res in results.items():
        ips = batchsize / res['median_s']
        out[name] = dict(res, images_per_sec=ips,
                         epoch_s=EPOCH_IMAGES / ips)
    goals = {}
    bp, torch_ = out.get('chainer-bp'), out.get('torch')
    if bp and torch_:
        ratio = bp['images_per_sec'] / torch_['images_per_sec']
        goals['bp_vs_torch'] = dict(value=ratio, goal='>= %.2f'
                                    % GOALS['bp_vs_torch'],
                                    met=ratio >= GOALS['bp_vs_torch'])
    if bp:
        on_h100 = 'H100' in device_label
        goals['epoch_s_h100'] = dict(
            value=bp['epoch_s'], goal='<= %.1f s on an H100'
            % GOALS['epoch_s_h100'],
            met=(bp['epoch_s'] <= GOALS['epoch_s_h100']) if on_h100 else None)
    vfbn = out.get('chainer-vfbn')
    if bp and vfbn:
        ratio = vfbn['median_s'] / bp['median_s']
        goals['vfbn_vs_bp'] = dict(value=ratio, goal='<= %.2f'
                                   % GOALS['vfbn_vs_bp'],
                                   met=ratio <= GOALS['vfbn_vs_bp'])
    return out, goals


def _verdict(met):
    return 'n/a (not an H100)' if met is None else ('met' if met else 'NOT met')


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--arch', default='resnet110-paper')
    p.add_argument('--batchsize', '-b', type=int, default=128)
    p.add_argument('--device', '-d', default='@numpy',
                   help='chainer device: @numpy, @cupy:0 (torch uses the '
                        'same device: cpu, cuda:0)')
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--iters', type=int, default=10,
                   help='steps per block (per participant and round)')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--participants', default='chainer-bp,chainer-vfbn,torch',
                   help='comma-separated subset of chainer-bp, chainer-vfbn, '
                        'torch')
    p.add_argument('--learnrate', type=float, default=0.1)
    p.add_argument('--alpha-gs', type=float, default=1e-3)
    p.add_argument('--cudnn-benchmark', action='store_true',
                   help="let both autotune convolutions (chainer's "
                        "config.autotune, torch's cudnn.benchmark); off: both "
                        'use their defaults')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--json', default=None, metavar='PATH')
    return p


def parse_args(argv=None):
    """The options, checked, and the participants to time, in order."""
    p = build_parser()
    args = p.parse_args(argv)
    wanted = [w for w in args.participants.split(',') if w]
    bad = set(wanted) - {'chainer-bp', 'chainer-vfbn', 'torch'}
    if bad or not wanted:
        p.error('unknown participant(s) %s' % ', '.join(sorted(bad)))
    if min(args.rounds, args.iters, args.batchsize) < 1 or args.warmup < 0:
        p.error('--rounds, --iters, --batchsize must be >= 1, --warmup >= 0')
    return args, wanted


def make_steps(wanted, args, device, x, t):
    """``(steps, skipped)``: a step of each participant that imports, and
    why each other one is not timed."""
    batch = (device.send(x), device.send(t))
    steps, skipped = {}, {}
    for name in wanted:
        try:
            if name == 'torch':
                # Imported here: PyTorch is a heavy optional dependency;
                # without it the other participants are still timed.
                import torch
                if args.cudnn_benchmark:
                    torch.backends.cudnn.benchmark = True
                steps[name] = TorchStep(args.arch, x, t,
                                        torch_device_spec(device),
                                        args.learnrate, args.seed)
            else:
                method = name.split('-', 1)[1]
                steps[name] = ChainerStep(method, args.arch, batch, device,
                                          args.learnrate, args.alpha_gs,
                                          args.seed)
        except ImportError as e:
            skipped[name] = 'not timed: cannot import what it needs (%s)' % e
    return steps, skipped


def print_figures(figures, goals, skipped):
    """The participants' table, then each goal's value and verdict."""
    print()
    print('| participant | ms/step | images/s | s per 50k-image epoch |')
    print('|---|---:|---:|---:|')
    for name, f in figures.items():
        print('| %s | %.1f | %.1f | %.2f |' % (
            name, 1e3 * f['median_s'], f['images_per_sec'], f['epoch_s']))
    for name, why in skipped.items():
        print('| %s | %s | | |' % (name, why))
    print()
    texts = {'bp_vs_torch': 'chainer-bp / torch images/s',
             'epoch_s_h100': 'chainer-bp s per 50k-image epoch',
             'vfbn_vs_bp': 'chainer-vfbn / chainer-bp step'}
    for key, g in goals.items():
        print('%-34s %8.3f   goal %s: %s' % (texts[key], g['value'], g['goal'],
                                            _verdict(g['met'])))
    missing = [texts[k] for k in texts if k not in goals]
    for text in missing:
        print('%-34s %8s   (a participant was not timed)' % (text, 'n/a'))


def main(argv=None):
    args, wanted = parse_args(argv)
    device = chainer.get_device(args.device)
    device.use()
    if args.cudnn_benchmark:
        chainer.config.autotune = True
    x, t = random_batch(args.arch, args.batchsize, args.seed)
    steps, skipped = make_steps(wanted, args, device, x, t)
    label = device_name(device)
    info = {'date': datetime.datetime.now().astimezone().isoformat(
                timespec='seconds'),
            'device': label, 'device_spec': str(device),
            'versions': versions(with_torch=True), 'config': vars(args),
            'timing': ('interleaved blocks; median over rounds of seconds per '
                       'step; batch resident on the device')}
    print('# %s, batch %d, %dx%d input: %d rounds x %d steps, %d warm-up'
          % (args.arch, args.batchsize, x.shape[2], x.shape[3], args.rounds,
             args.iters, args.warmup))
    print_header(info, device)
    for name, why in skipped.items():
        print('%s: %s' % (name, why))
    if not steps:
        print('nothing to time')
        return 1
    sys.stdout.flush()

    results = time_interleaved(steps, args.rounds, args.iters, args.warmup)
    figures, goals = summarize(results, args.batchsize, label)
    print_figures(figures, goals, skipped)
    if args.json:
        info.update(results=figures, skipped=skipped, goals=goals)
        with open(args.json, 'w') as f:
            json.dump(info, f, indent=2)
        print('wrote %s' % args.json)
    return 0


if __name__ == '__main__':
    sys.exit(main())
