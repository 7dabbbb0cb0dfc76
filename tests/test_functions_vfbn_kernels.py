"""The fused pieces of the VFBN gradients: NumPy references, CuPy kernels."""
import doctest

import numpy
import pytest

import chainer
import chainer.functions as F
from chainer.backends import cuda

from chainer_vfbn.functions import vfbn_kernels

B, K = 5, 4   # batch, classes
TOL = {numpy.float32: dict(atol=1e-6, rtol=1e-5),
       numpy.float64: dict(atol=1e-13, rtol=1e-11)}


def test_docstring_examples():
    result = doctest.testmod(vfbn_kernels)
    assert result.attempted > 0 and result.failed == 0, result


# ---------------------------------------------------------------------------
# The fused pieces' NumPy references.

def test_softmax_minus_onehot_by_hand():
    # softmax([0, log 3]) = [1/4, 3/4]; B = 2 halves every entry.
    a = numpy.zeros((2, 2))
    b = numpy.array([0., numpy.log(3.)])
    t = numpy.array([0, 1], numpy.int32)
    g = vfbn_kernels.softmax_minus_onehot_cpu(a, b, t)
    numpy.testing.assert_allclose(
        g, [[(0.25 - 1) / 2, 0.75 / 2], [0.25 / 2, (0.75 - 1) / 2]],
        rtol=1e-15)


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_softmax_minus_onehot_is_loss_gradient(dtype):
    rng = numpy.random.RandomState(4)
    a = (rng.randn(B, K) * 30).astype(dtype)   # large scores: no overflow
    b = rng.randn(K).astype(dtype)
    t = rng.randint(0, K, B).astype(numpy.int32)
    av = chainer.Variable(a)
    loss = F.softmax_cross_entropy(av + b, t)
    expected, = chainer.grad([loss], [av])
    g = vfbn_kernels.softmax_minus_onehot_cpu(a, b, t)
    assert g.dtype == dtype
    numpy.testing.assert_allclose(g, expected.array, **TOL[dtype])
    # Each row of softmax - onehot sums to 0.
    numpy.testing.assert_allclose(g.sum(axis=1), 0, atol=1e-6)


def test_relu_pieces_cpu():
    a = numpy.array([[-1., 0.5], [2., -3.]])
    b = numpy.array([0.5, -1.])
    z = vfbn_kernels.bias_relu_cpu(a, b)
    numpy.testing.assert_array_equal(z, [[0., 0.], [2.5, 0.]])
    gz = numpy.array([[1., 2.], [3., 4.]])
    numpy.testing.assert_array_equal(
        vfbn_kernels.relu_grad_product_cpu(gz, z), [[0., 0.], [3., 0.]])


# ---------------------------------------------------------------------------
# Fused CuPy kernels against the NumPy references.

def _kernel_cases(dtype, n_class):
    rng = numpy.random.RandomState(30)
    a = (rng.randn(9, n_class) * 10).astype(dtype)
    b = rng.randn(n_class).astype(dtype)
    t = rng.randint(0, n_class, 9).astype(numpy.int32)
    return a, b, t


@pytest.mark.gpu
@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
@pytest.mark.parametrize('n_class', [1, 10, 100])
def test_softmax_minus_onehot_kernel(dtype, n_class):
    a, b, t = _kernel_cases(dtype, n_class)
    expected = vfbn_kernels.softmax_minus_onehot_cpu(a, b, t)
    # A non-contiguous score array, as a transposed product may give.
    a_gpu = cuda.to_gpu(numpy.asfortranarray(a))
    actual = vfbn_kernels.softmax_minus_onehot_gpu(a_gpu, cuda.to_gpu(b),
                                                 cuda.to_gpu(t))
    assert actual.dtype == dtype and actual.shape == a.shape
    tol = dict(atol=1e-7, rtol=1e-5) if dtype == numpy.float32 else \
        dict(atol=1e-15, rtol=1e-12)
    numpy.testing.assert_allclose(cuda.to_cpu(actual), expected, **tol)


def _relu_kernels_agree(a, b, gz):
    """The GPU ReLU kernels give the CPU's values (NaN where the CPU's
    has NaN); returns the CPU's relu(a + b)."""
    z = vfbn_kernels.bias_relu_cpu(a, b)
    z_gpu = vfbn_kernels.bias_relu_gpu(cuda.to_gpu(a), cuda.to_gpu(b))
    numpy.testing.assert_array_equal(cuda.to_cpu(z_gpu), z)
    ga = vfbn_kernels.relu_grad_product_gpu(cuda.to_gpu(gz), z_gpu)
    numpy.testing.assert_array_equal(
        cuda.to_cpu(ga), vfbn_kernels.relu_grad_product_cpu(gz, z))
    return z


@pytest.mark.gpu
@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_relu_kernels(dtype):
    rng = numpy.random.RandomState(31)
    a = rng.randn(9, 13).astype(dtype)
    b = rng.randn(13).astype(dtype)
    gz = rng.randn(9, 13).astype(dtype)
    z = _relu_kernels_agree(a, b, gz)
    assert 0 < (z > 0).sum() < z.size


@pytest.mark.gpu
def test_relu_kernels_keep_nan():
    nan = numpy.nan
    a = numpy.array([[nan, -1., 2.], [0.5, nan, -3.]])
    b = numpy.zeros(3)
    gz = numpy.array([[1., nan, nan], [nan, 2., 3.]])
    z = _relu_kernels_agree(a, b, gz)
    assert numpy.isnan(z).sum() == 2
