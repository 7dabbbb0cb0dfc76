"""Multiply-accumulates (MACs) that Chainer executes, counted as they run.

:class:`MACCounter`, a :class:`~chainer.FunctionHook`, counts every
convolution, deconvolution and linear function (forward *and* the
backward's own function calls, so the gradients w.r.t. inputs and weights
and a synthesizer's double backward are counted as run), ``F.matmul`` and
the closed-form VFBN functions of Eqs. 8-9 (``VFBNLinearGrad``,
``VFBNMLPGrad``); any other matrix product that runs stops :func:`count`
with an error rather than leaving it short. Batch normalisation, ReLU,
pooling and the optimizers' updates are not counted.

Example::

    >>> import chainer_vfbn
    >>> import chainer.links as L, numpy
    >>> from chainer_vfbn.experiments.bench.macs import count
    >>> fc = L.Linear(3, 5)
    >>> count(lambda: fc(numpy.zeros((7, 3), numpy.float32)))
    105
"""
import chainer
import numpy
from chainer.utils import conv

from chainer_vfbn.experiments.bench.pipeline import rank_steps


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


def split_costs(net, split_at, method, batchsize=4):
    """MACs per image of each piece of a K = 2 step cut after ``split_at``
    (:func:`chainer_vfbn.experiments.bench.pipeline.rank_steps`)."""
    _, steps = rank_steps(net, split_at, method, batchsize)
    return {name: count(f) / batchsize for name, f in steps.items()}
