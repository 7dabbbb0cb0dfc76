#!/usr/bin/env python
"""Multiply-accumulates per image of each rank's work at a split.

The hardware-free side of ``bench_decoupled.py``: a decoupled run with K = 2
is a two-stage pipeline, so it can gain at most ``(bottom + top) / slowest
rank`` on model-parallel back-prop, whatever the machine. This script counts
the multiply-accumulates (MACs) that Chainer actually executes
(:mod:`chainer_vfbn.experiments.bench.macs`: every convolution, deconvolution, linear
map and matrix product, forward and backward, the synthesizer's double
backward included) in each rank's piece of one training step, built from
the functions both trainers call
(:func:`chainer_vfbn.experiments.bench.pipeline.rank_steps`):

* ``bottom``: the bottom module's forward and backward (rank 0 of a
  decoupled run, given ``∂ℓ/∂h``);
* ``top``: the top module's forward, loss and backward (rank 1);
* ``δ̂``: the synthesizer's ``synth(h, t)`` (the bottom rank pays it);
* ``δ̂ + Eq. 3``: ``δ̂`` and its training step, the double backward of
  ``||δ - δ̂||²`` (the rank above pays it with ``--synth-placement above``);

at the paper's split, and at the split that balances the two ranks best.
Batch normalisation, ReLU, pooling and the optimizers' updates are not
counted: few MACs, but on a CPU not free, which is why the measured bound
in ``docs/decoupled.md`` is lower than the one printed here.

Usage::

    python benchmarks/count_macs.py                        # paper presets
    python benchmarks/count_macs.py --arch resnet110-paper --method vfbn
"""
import argparse
import sys

import chainer_vfbn  # NOQA  (its compat shims must precede chainer)

import numpy  # NOQA

from chainer_vfbn import forward_shapes  # NOQA
from chainer_vfbn import split_points  # NOQA
from chainer_vfbn.experiments.bench.macs import split_costs  # NOQA
from chainer_vfbn.experiments.bench.pipeline import pipeline_bounds  # NOQA
from chainer_vfbn.models import resnet_cifar  # NOQA


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--arch', action='append',
                   help='architecture(s), e.g. resnet110-paper (repeatable; '
                   'default: resnet20-paper and resnet110-paper)')
    p.add_argument('--method', default='vfbn',
                   help='synthesizer (default: vfbn, the paper\'s v_f)')
    p.add_argument('--no-scan', action='store_true',
                   help='only the paper\'s split, not every split point')
    args = p.parse_args(argv)
    archs = args.arch or ['resnet20-paper', 'resnet110-paper']
    print('count_macs: MACs per image executed by Chainer (conv, deconv, '
          'linear; forward and backward), %s synthesizer' % args.method)
    print('bound = (bottom + top) / slowest rank: the most a K = 2 decoupled '
          'run can gain on model-parallel BP; "free" = a synthesizer that '
          'costs nothing, "above"/"below" = --synth-placement')
    for arch in archs:
        numpy.random.seed(0)
        net = resnet_cifar(arch)
        splits = [net.default_split] if args.no_scan else [
            s for s in split_points(net) if s.startswith('stage')]
        rows = []
        for split in splits:
            c = split_costs(net, split, args.method)
            rows.append((split, c, pipeline_bounds(c)))
        print()
        print('%s (paper split %s)' % (arch, net.default_split))
        print('%-15s %8s %8s %8s %10s %7s %9s %7s %7s %7s'
              % ('split after', 'bottom', 'top', 'δ̂', 'δ̂+Eq.3',
                 'bottom%', 'h', 'free', 'above', 'below'))
        shapes = forward_shapes(net, net.in_shape)
        for split, c, bd in rows:
            shape = 'x'.join(str(n) for n in shapes[split])
            mark = '  <- paper' if split == net.default_split else ''
            print('%-15s %8.1f %8.1f %8.1f %10.1f %6.0f%% %9s %6.2fx %6.2fx '
                  '%6.2fx%s' % (split, c['bottom'] / 1e6, c['top'] / 1e6,
                                c['dhat'] / 1e6, c['dhat_train'] / 1e6,
                                100 * c['bottom'] / (c['bottom'] + c['top']),
                                shape, bd['free'], bd['above'], bd['below'],
                                mark))
        if len(rows) > 1:
            best = max(rows, key=lambda r: r[2]['above'])
            print('best split for --synth-placement above: %s (%.2fx)'
                  % (best[0], best[2]['above']))
        print('(MACs in millions per image)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
