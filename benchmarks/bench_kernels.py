#!/usr/bin/env python
"""Closed-form VFBN gradients (Eq. 8, 9) against the same maths by autograd.

Times, on one device, the synthetic gradient ``δ̂`` of a linear ``v_f``
(Eq. 8, :class:`~chainer_vfbn.synthesizers.VFBNLinear`) and of a
one-hidden-layer ``v_f`` (Eq. 9, :class:`~chainer_vfbn.synthesizers.VFBNMLP`)
two ways, on the same parameters and inputs:

``closed``
    the FunctionNodes of :mod:`chainer_vfbn.functions.vfbn_grad` (cuBLAS
    products and fused CuPy kernels on a GPU, NumPy on the CPU);
``autograd``
    separate chainer ops: ``Linear`` (-``ReLU``-``Linear``),
    ``softmax_cross_entropy`` and ``chainer.grad(...,
    enable_double_backprop=True)``, i.e.
    :class:`~chainer_vfbn.synthesizers.VFBN` with the same ``v_f``.

Two measurements each: ``forward`` (compute ``δ̂`` with the graph the
synthesizer's training needs) and ``forward+backward`` (also back-propagate
``||δ - δ̂||^2``, Eq. 3, into ``v_f``'s parameters). Sizes default to the
paper's split (Appendix B.1): ``h`` of 64 maps at 11x11 (7744 features),
batch 128, 10 classes; ``--n-hidden`` hidden units for Eq. 9. Each figure is
the median of ``--repeats`` runs after ``--warmup`` untimed ones, the two
ways interleaved run by run; on a GPU the device is synchronised before and
after each run.

Example::

    python benchmarks/bench_kernels.py --device @numpy
    python benchmarks/bench_kernels.py --device @cupy:0 --json kernels.json
"""
import argparse
import datetime
import functools
import json
import statistics
import time

import chainer_vfbn  # NOQA  (its compat shims must precede chainer)

import chainer
import chainer.functions as F
import numpy

from chainer_vfbn.experiments.bench.machine import device_name
from chainer_vfbn.experiments.bench.machine import print_header
from chainer_vfbn.experiments.bench.machine import synchronize
from chainer_vfbn.experiments.bench.machine import versions

from chainer_vfbn.synthesizers import VFBN
from chainer_vfbn.synthesizers import VFBNLinear
from chainer_vfbn.synthesizers import VFBNMLP


class VirtualForward(chainer.Chain):
    """``v_f`` of a closed-form synthesizer as a chain (shared parameters)."""

    def __init__(self, synth):
        super().__init__()
        with self.init_scope():
            self.synth = synth

    def forward(self, h):
        return self.synth.virtual_forward(h)


def run_once(synth, h, t, grad_true, backward):
    """One synthesizer call as the updater makes it, optionally + Eq. 3."""
    grad_synth = synth(chainer.Variable(h), t)
    if backward:
        synth.cleargrads()
        F.sum(F.squared_difference(grad_synth, grad_true)).backward()
    return grad_synth


def median_times(fns, device, warmup, repeats):
    """Median time of each of ``fns`` (a dict), runs interleaved.

    Alternating the functions run by run (and their order repeat by repeat)
    spreads any drift in the machine's load over all of them alike.
    """
    names = list(fns)
    times = {name: [] for name in names}
    for i in range(warmup + repeats):
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            synchronize(device)
            start = time.perf_counter()
            fns[name]()
            synchronize(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: {'median_s': statistics.median(ts), 'times_s': ts}
            for name, ts in times.items()}


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', '-d', default='@numpy',
                        help='device specifier: @numpy, @cupy:0, ...')
    parser.add_argument('--batchsize', '-b', type=int, default=128,
                        help='examples in h')
    parser.add_argument('--h-shape', default='64,11,11',
                        help="one example's h, C,H,W (the paper's split)")
    parser.add_argument('--n-class', type=int, default=10)
    parser.add_argument('--n-hidden', type=int, default=256,
                        help='hidden units of the Eq. 9 v_f')
    parser.add_argument('--dtype', default='float32',
                        choices=('float32', 'float64'))
    parser.add_argument('--repeats', type=int, default=20,
                        help='timed runs per figure')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed runs first (allocation, kernel build)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None, metavar='PATH',
                        help='also write the configuration and figures here')
    return parser


def parse_args(argv=None):
    """The options, checked, and ``h``'s shape of one example."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error('--repeats must be >= 1 and --warmup >= 0')
    try:
        h_shape = tuple(int(d) for d in args.h_shape.split(','))
    except ValueError:
        parser.error('--h-shape must be integers separated by commas, got %r'
                     % args.h_shape)
    return args, h_shape


def make_inputs(args, h_shape, dtype, device):
    """Random ``h``, labels ``t`` and true gradient δ, on ``device``."""
    rng = numpy.random.RandomState(args.seed)
    h = rng.randn(args.batchsize, *h_shape).astype(dtype)
    t = rng.randint(0, args.n_class, args.batchsize).astype(numpy.int32)
    grad_true = (rng.randn(*h.shape) / args.batchsize).astype(dtype)
    return tuple(device.send(a) for a in (h, t, grad_true))


def make_synthesizers(args, in_size, dtype, device):
    """``(closed, composed)``: each ``{'eq8', 'eq9'}``, the same ``v_f``
    computed by the closed forms and by autograd."""
    numpy.random.seed(args.seed)   # the links' initializers
    with chainer.using_config('dtype', dtype):
        closed = {'eq8': VFBNLinear(in_size, args.n_class),
                  'eq9': VFBNMLP(in_size, args.n_hidden, args.n_class)}
    composed = {name: VFBN(VirtualForward(synth))
                for name, synth in closed.items()}
    for link in list(closed.values()):
        link.to_device(device)
    return closed, composed


def measure(closed, composed, inputs, device, warmup, repeats):
    """``{'eq8 forward': row, ...}``: both ways' median times, speed-up
    and their largest difference, for each equation and mode."""
    h, t, grad_true = inputs
    results = {}
    for eq in ('eq8', 'eq9'):
        # The two ways agree (same parameters): the figures compare equals.
        a = run_once(closed[eq], h, t, grad_true, False).array
        b = run_once(composed[eq], h, t, grad_true, False).array
        max_diff = float(abs(device.xp.asarray(a - b)).max())
        for mode, backward in (('forward', False),
                               ('forward+backward', True)):
            fns = {way: functools.partial(run_once, synth, h, t, grad_true,
                                          backward)
                   for way, synth in (('closed', closed[eq]),
                                      ('autograd', composed[eq]))}
            row = median_times(fns, device, warmup, repeats)
            row['max_abs_diff'] = max_diff
            row['speedup'] = row['autograd']['median_s'] / \
                row['closed']['median_s']
            results['%s %s' % (eq, mode)] = row
    return results


def print_table(results, device):
    """The results as a Markdown table."""
    label = 'CPU' if device.xp is numpy else 'GPU'
    print()
    print('| %s: case | closed form (ms) | autograd (ms) | speedup | '
          'max abs diff |' % label)
    print('|---|---:|---:|---:|---:|')
    for case, row in results.items():
        print('| %s | %.3f | %.3f | %.2fx | %.1e |' % (
            case, 1e3 * row['closed']['median_s'],
            1e3 * row['autograd']['median_s'], row['speedup'],
            row['max_abs_diff']))


def main(argv=None):
    args, h_shape = parse_args(argv)
    device = chainer.get_device(args.device)
    device.use()
    dtype = numpy.dtype(args.dtype)
    inputs = make_inputs(args, h_shape, dtype, device)
    in_size = int(numpy.prod(h_shape))
    closed, composed = make_synthesizers(args, in_size, dtype, device)

    info = {'date': datetime.datetime.now().astimezone().isoformat(
                timespec='seconds'),
            'device': device_name(device), 'device_spec': str(device),
            'versions': versions(), 'config': vars(args)}
    print('# VFBN closed forms (Eq. 8, 9) vs autograd double backprop')
    print_header(info, device)
    print('h: (%d, %s) = %d features, %s, %d classes, n_hidden %d; median of '
          '%d after %d warm-up'
          % (args.batchsize, ', '.join(map(str, h_shape)), in_size,
             dtype.name, args.n_class, args.n_hidden, args.repeats,
             args.warmup))
    results = measure(closed, composed, inputs, device, args.warmup,
                      args.repeats)
    print_table(results, device)
    if args.json:
        info['results'] = results
        with open(args.json, 'w') as f:
            json.dump(info, f, indent=2)
        print('wrote %s' % args.json)


if __name__ == '__main__':
    main()
