#!/usr/bin/env python
"""Multiply-accumulates per image of each rank's work at a split.

The hardware-free side of ``bench_decoupled.py``: a decoupled run with K = 2
is a two-stage pipeline, so it can gain at most ``(bottom + top) / slowest
rank`` on model-parallel back-prop, whatever the machine. This script counts
the multiply-accumulates (MACs) that Chainer actually executes, by a
:class:`~chainer.FunctionHook` on every convolution, deconvolution and
linear function (forward *and* the backward's own function calls, so the
gradient w.r.t. inputs and weights and the synthesizer's double backward
are all counted as run), for:

Also counted: ``F.matmul`` and the closed-form VFBN functions of Eqs. 8-9
(``VFBNLinearGrad``, ``VFBNMLPGrad``); any other matrix product that runs
stops the count with an error rather than leaving it short.

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

# _common first: it imports chainer_vfbn (its compat shims) before chainer.
from _common import pipeline_bounds, split_steps

import chainer
import numpy
from chainer.utils import conv

from chainer_vfbn import forward_shapes
from chainer_vfbn import split_points
from chainer_vfbn.models import resnet_cifar


def _conv_macs(function, in_data):
    x, W = in_data[0], in_data[1]
    ho = conv.get_conv_outsize(x.shape[2], W.shape[2], function.sy,
                               function.ph, function.cover_all, function.dy)
    wo = conv.get_conv_outsize(x.shape[3], W.shape[3], function.sx,
                               function.pw, function.cover_all, function.dx)
    return x.shape[0] * ho * wo * W.size


def _deconv_macs(function, in_data):
    x, W = in_data[0], in_data[1]   # every input pixel meets every weight
    return x.shape[0] * x.shape[2] * x.shape[3] * W.size


def _conv_grad_w_macs(function, in_data):
    gy = in_data[1]                 # every output pixel meets every weight
    return gy.shape[0] * gy.shape[2] * gy.shape[3] * int(
        numpy.prod(function.W_shape))


def _linear_macs(function, in_data):
    x, W = in_data[0], in_data[1]   # x (N, K), W (M, K)
    return (x.size // W.shape[1]) * W.size


def _linear_grad_data_macs(function, in_data):
    W, gy = in_data[0], in_data[1]  # gx (N, K) = gy (N, M) W (M, K)
    return gy.shape[0] * W.size


def _linear_grad_weight_macs(function, in_data):
    x, gy = in_data[0], in_data[1]  # gW (M, K) = gy^T (M, N) x (N, K)
    return x.shape[0] * x.shape[1] * gy.shape[1]


def _matmul_macs(function, in_data):
    a, b = in_data[0], in_data[1]   # (..., M, K) @ (..., K, N), as F.matmul
    a_shape = (1,) + a.shape if a.ndim == 1 else a.shape
    b_shape = b.shape + (1,) if b.ndim == 1 else b.shape
    if function.transa and a.ndim > 1:
        a_shape = a_shape[:-2] + a_shape[:-3:-1]
    if function.transb and b.ndim > 1:
        b_shape = b_shape[:-2] + b_shape[:-3:-1]
    batch = numpy.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    return int(numpy.prod(batch)) * a_shape[-2] * a_shape[-1] * b_shape[-1]


def _vfbn_linear_macs(function, in_data):
    h, W = in_data[0], in_data[1]   # scores h W^T, then δ̂ = g W
    return 2 * h.shape[0] * W.size


def _vfbn_mlp_macs(function, in_data):
    h, W1, W2 = in_data[0], in_data[1], in_data[3]
    return 2 * h.shape[0] * (W1.size + W2.size)


COUNTERS = {
    'MatMul': _matmul_macs,
    'VFBNLinearGrad': _vfbn_linear_macs,
    'VFBNMLPGrad': _vfbn_mlp_macs,
    'Convolution2DFunction': _conv_macs,
    'Convolution2DGradW': _conv_grad_w_macs,
    'Deconvolution2DFunction': _deconv_macs,
    'LinearFunction': _linear_macs,
    'LinearGradData': _linear_grad_data_macs,
    'LinearGradWeight': _linear_grad_weight_macs,
}


class MACCounter(chainer.FunctionHook):

    """Counts the MACs of the convolutions and linear maps that run.

    Use as a context manager around any forward/backward code::

        with MACCounter() as c:
            loss.backward()
        c.total

    Functions it does not count that do matrix products (other
    convolutions, ``F.tensordot``, ``F.einsum``, ...) are listed in
    :attr:`unknown` by name, and :func:`count` raises, so that a count is
    never silently short; elementwise functions are ignored.
    """

    name = 'MACCounter'
    # Functions that multiply matrices but are not in COUNTERS: everything
    # in chainer.functions.connection and chainer_vfbn.functions but these
    # (no products), and these from chainer.functions.math.
    MODULES = ('chainer.functions.connection', 'chainer_vfbn.functions')
    NO_PRODUCT = ('EmbedIDFunction', 'EmbedIDGrad', 'Shift')
    PRODUCTS = ('BatchMatMul', 'BatchMatMulGrad', 'TensorDot', 'EinSum')

    def __init__(self):
        self.total = 0
        self.unknown = set()

    def forward_preprocess(self, function, in_data):
        cls = type(function)
        counter = COUNTERS.get(cls.__name__)
        if counter is None:
            if cls.__name__ in self.PRODUCTS or (
                    cls.__module__.startswith(self.MODULES)
                    and cls.__name__ not in self.NO_PRODUCT):
                self.unknown.add(cls.__name__)
            return
        self.total += int(counter(function, in_data))


def count(f):
    """MACs executed by ``f()``; raises if an unknown matrix product ran."""
    with MACCounter() as counter:
        f()
    if counter.unknown:
        raise RuntimeError('cannot count the MACs of %s'
                           % ', '.join(sorted(counter.unknown)))
    return counter.total


def split_costs(net, split, method, batchsize=4):
    """MACs per image of each piece of a K = 2 step cut after ``split``."""
    _, steps = split_steps(net, split, method, batchsize)
    return {name: count(f) / batchsize for name, f in steps.items()}


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
