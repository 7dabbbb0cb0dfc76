"""The fused pieces of the VFBN gradients, on arrays: NumPy and CuPy.

:mod:`chainer_vfbn.functions.vfbn_grad` computes the closed-form VFBN
gradients (Eqs. 8-9) with FunctionNodes; the array work of their forwards
lives here, each piece twice: ``*_cpu`` the NumPy reference, ``*_gpu`` a
fused CuPy kernel of :data:`ELEMENTWISE_KERNELS` (memoized by
``cuda.elementwise``), with the matrix products left to cuBLAS by the
callers:

``softmax_minus_onehot``
    Per class: the row's max and sum of exponentials, then
    ``(softmax(a + b) - Y) / B``, with the score bias added on the fly and
    the labels checked (kernel ``vfbn_softmax_minus_onehot``).
``bias_relu``
    ``f(a + b1)`` with ``f = ReLU`` (``vfbn_bias_relu``).
``relu_grad_product``
    Per hidden unit: ``f'(a1) ⊙ (g W2)``, read from ``z = f(a1)``
    (``vfbn_relu_grad_product``).
``softmax_vjp``
    The VJP of ``g = (softmax(a) - Y) / B``, the hot part of the backward
    (``vfbn_softmax_vjp``).

Both paths give the same results, NaN included (a NaN in an input
propagates; the kernels never turn it into 0), and the same ``ValueError``
for a label out of ``[0, n_class)``: on the GPU the kernel flags a bad
label as it reads it, and the flag is read back, one 4-byte copy that waits
for the kernel. Importing this module never needs CuPy.
"""
import collections

import numpy

from chainer.backends import cuda
from chainer import utils


ElementwiseKernelSpec = collections.namedtuple(
    'ElementwiseKernelSpec', 'in_params out_params operation scalars')
ElementwiseKernelSpec.__doc__ = (
    'A cupy.ElementwiseKernel, and which inputs are passed as scalars (the '
    'others are arrays).')

#: Every CuPy kernel of this module, by name. ``T`` is the float dtype of
#: ``h`` (float32, float64), ``S`` the integer dtype of the labels.
#: ``tools/compile_kernels.py`` compiles each with NVRTC, without a GPU.
ELEMENTWISE_KERNELS = {
    # (softmax(a + b) - onehot(t)) / B, one thread per score. The thread
    # reads its row to get the max and the sum of exponentials (K is small,
    # 10 for CIFAR-10, so re-reading costs less than a reduction launch). A
    # NaN in the row makes the whole row NaN, as in NumPy. The first thread
    # of a row flags a label out of [0, n_class) in bad[0].
    'vfbn_softmax_minus_onehot': ElementwiseKernelSpec(
        'raw T a, raw T b, raw S t, int32 n_class, T n_batch',
        'T g, raw int32 bad', scalars=('n_class', 'n_batch'), operation='''
        const ptrdiff_t row = i / n_class;
        const int col = i % n_class;
        const ptrdiff_t start = row * n_class;
        const S label = t[row];
        if (col == 0 && (label < 0 || label >= n_class)) bad[0] = 1;
        T amax = a[start] + b[0];
        for (int j = 1; j < n_class; ++j) {
            const T v = a[start + j] + b[j];
            amax = v > amax ? v : amax;
        }
        T total = 0;
        for (int j = 0; j < n_class; ++j) {
            total += exp(a[start + j] + b[j] - amax);
        }
        const T p = exp(a[i] + b[col] - amax) / total;
        g = (p - (col == label ? (T)1 : (T)0)) / n_batch;
        '''),
    # f(a + b), f = ReLU, as numpy.maximum(a + b, 0): NaN stays NaN.
    'vfbn_bias_relu': ElementwiseKernelSpec(
        'T a, raw T b, int32 n_unit', 'T z',
        'const T v = a + b[i % n_unit]; z = v < 0 ? (T)0 : v', ('n_unit',)),
    # f'(a1) ⊙ gz read from z = f(a1), as gz * (z > 0) in NumPy: a NaN in
    # gz stays NaN where z <= 0 too.
    'vfbn_relu_grad_product': ElementwiseKernelSpec(
        'T gz, T z', 'T ga', 'ga = gz * (T)(z > 0)', ()),
    # VJP of g = (softmax(a) - Y) / B: s ⊙ (gg - <s, gg>) / B with
    # s = B g + Y, the inner product over the thread's row.
    'vfbn_softmax_vjp': ElementwiseKernelSpec(
        'raw T g, raw T gg, raw S t, int32 n_class, T n_batch', 'T ga',
        scalars=('n_class', 'n_batch'), operation='''
        const ptrdiff_t row = i / n_class;
        const int col = i % n_class;
        const ptrdiff_t start = row * n_class;
        const S label = t[row];
        T inner = 0;
        for (int j = 0; j < n_class; ++j) {
            const T s_j = g[start + j] * n_batch + (j == label ? (T)1 : (T)0);
            inner += s_j * gg[start + j];
        }
        const T s = g[i] * n_batch + (col == label ? (T)1 : (T)0);
        ga = s * (gg[i] - inner) / n_batch;
        '''),
}


def _kernel(name):
    """The (memoized) CuPy kernel ``name`` of :data:`ELEMENTWISE_KERNELS`."""
    spec = ELEMENTWISE_KERNELS[name]
    return cuda.elementwise(spec.in_params, spec.out_params, spec.operation,
                            name)


def _check_labels(t, n_class):
    """Raise ``ValueError`` unless every label lies in ``[0, n_class)``."""
    if t.size:
        low, high = int(t.min()), int(t.max())
        if low < 0 or high >= n_class:
            raise ValueError('labels must lie in [0, %d), got min %d, max %d'
                             % (n_class, low, high))


def softmax_minus_onehot_cpu(a, b, t):
    """``(softmax(a + b) - onehot(t)) / B`` with NumPy (the reference).

    Args:
        a (numpy.ndarray): Scores without bias, ``(B, K)``.
        b (numpy.ndarray): Bias of the scores, ``(K,)``.
        t (numpy.ndarray): Integer labels in ``[0, K)``, ``(B,)``.

    Returns:
        numpy.ndarray: ``∂ℓ/∂a`` of the mean softmax cross-entropy ``ℓ``,
        ``(B, K)``, dtype of ``a``.

    Example:
        >>> a = numpy.zeros((1, 2), numpy.float32)
        >>> softmax_minus_onehot_cpu(a, numpy.zeros(2, numpy.float32),
        ...                          numpy.array([0]))
        array([[-0.5,  0.5]], dtype=float32)
    """
    n_batch, n_class = a.shape
    _check_labels(t, n_class)
    s = a + b
    s -= s.max(axis=1, keepdims=True)   # exp never overflows
    numpy.exp(s, out=s)
    s /= s.sum(axis=1, keepdims=True)
    s[numpy.arange(n_batch), t] -= 1
    s /= n_batch
    return utils.force_array(s, a.dtype)


def softmax_minus_onehot_gpu(a, b, t):
    """Same as :func:`softmax_minus_onehot_cpu`, one fused CuPy kernel.

    Raises the same ``ValueError`` for a label out of range: the kernel
    flags it, and reading the flag back waits for the kernel.
    """
    cupy = cuda.cupy
    n_batch, n_class = a.shape
    a = cupy.ascontiguousarray(a)
    b = cupy.ascontiguousarray(b)
    t = cupy.ascontiguousarray(t)
    g = cupy.empty_like(a)
    bad = cupy.zeros(1, numpy.int32)
    _kernel('vfbn_softmax_minus_onehot')(
        a, b, t, n_class, a.dtype.type(n_batch), g, bad)
    if int(bad[0]):
        _check_labels(t, n_class)
    return g


def bias_relu_cpu(a, b):
    """``f(a + b)`` with ``f = ReLU``; ``a`` is ``(B, H)``, ``b`` ``(H,)``.

    Example:
        >>> bias_relu_cpu(numpy.array([[-1., 1.]]), numpy.array([0.5, 0.5]))
        array([[0. , 1.5]])
    """
    return utils.force_array(numpy.maximum(a + b, 0), a.dtype)


def bias_relu_gpu(a, b):
    """Same as :func:`bias_relu_cpu`, one fused CuPy kernel."""
    a = cuda.cupy.ascontiguousarray(a)
    b = cuda.cupy.ascontiguousarray(b)
    return _kernel('vfbn_bias_relu')(a, b, b.shape[0])


def relu_grad_product_cpu(gz, z):
    """``f'(a1) ⊙ gz`` for ``f = ReLU``, read from ``z = f(a1)``: ``z > 0``.

    Example:
        >>> relu_grad_product_cpu(numpy.array([2., 3.]), numpy.array([0., 1.]))
        array([0., 3.])
    """
    return utils.force_array(gz * (z > 0), gz.dtype)


def relu_grad_product_gpu(gz, z):
    """Same as :func:`relu_grad_product_cpu`, one fused CuPy kernel."""
    return _kernel('vfbn_relu_grad_product')(gz, z)


def softmax_vjp_cpu(g, gg, t):
    """``s ⊙ (gg - <s, gg>) / B`` with ``s = B g + Y``, with NumPy.

    The VJP of ``g = (softmax(a) - Y) / B`` w.r.t. ``a`` (see
    :class:`~chainer_vfbn.functions.vfbn_grad.SoftmaxMinusOnehotVJP`);
    ``g`` and ``gg`` are ``(B, K)``, ``t`` the labels, already checked by
    the forward that made ``g``.

    Example:
        >>> g = numpy.array([[-0.5, 0.5]])
        >>> softmax_vjp_cpu(g, numpy.array([[1., 0.]]), numpy.array([0]))
        array([[ 0.25, -0.25]])
    """
    n_batch = g.shape[0]
    s = g * n_batch
    s[numpy.arange(n_batch), t] += 1
    inner = (s * gg).sum(axis=1, keepdims=True)
    # Times 1/B, as chainer's Variable / scalar computes it: the same bits
    # as the composition of chainer functions this replaces.
    return utils.force_array(s * (gg - inner) * g.dtype.type(1. / n_batch),
                             g.dtype)


def softmax_vjp_gpu(g, gg, t):
    """Same as :func:`softmax_vjp_cpu`, one fused CuPy kernel."""
    cupy = cuda.cupy
    g = cupy.ascontiguousarray(g)
    gg = cupy.ascontiguousarray(gg)
    t = cupy.ascontiguousarray(t)
    n_batch, n_class = g.shape
    return _kernel('vfbn_softmax_vjp')(g, gg, t, n_class,
                                       g.dtype.type(n_batch),
                                       cupy.empty_like(g))

