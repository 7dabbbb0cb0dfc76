"""Closed-form VFBN gradients (Eq. 8, 9) vs autograd and finite differences."""
import numpy
import pytest

import chainer
import chainer.functions as F
from chainer import testing
from chainer.backends import cuda
from chainer.utils import type_check

from chainer_vfbn.functions import vfbn_grad
from chainer_vfbn.functions import vfbn_kernels
from chainer_vfbn.functions import vfbn_linear_grad
from chainer_vfbn.functions import vfbn_mlp_grad
from chainer_vfbn.functions import VFBNLinearGrad
from chainer_vfbn.functions import VFBNMLPGrad

B, D, H, K = 5, 7, 6, 4   # batch, features of h, hidden units, classes
TOL = {numpy.float32: dict(atol=1e-6, rtol=1e-5),
       numpy.float64: dict(atol=1e-13, rtol=1e-11)}


def linear_inputs(rng, dtype=numpy.float64):
    h = rng.randn(B, D).astype(dtype)
    W = rng.randn(K, D).astype(dtype)
    b = rng.randn(K).astype(dtype)
    t = rng.randint(0, K, B).astype(numpy.int32)
    return h, W, b, t


def mlp_inputs(rng, dtype=numpy.float64, margin=0.05):
    """Inputs whose hidden pre-activations keep ``margin`` off the ReLU kink.

    Finite differences (eps <= 1e-3, weights O(1)) then never cross it.
    """
    while True:
        h = rng.randn(B, D)
        W1 = rng.randn(H, D) / numpy.sqrt(D)
        b1 = rng.randn(H) * 0.1
        if numpy.abs(h.dot(W1.T) + b1).min() > margin:
            break
    W2 = rng.randn(K, H)
    b2 = rng.randn(K)
    t = rng.randint(0, K, B).astype(numpy.int32)
    return tuple(a.astype(dtype) for a in (h, W1, b1, W2, b2)) + (t,)


def vf_linear(h, W, b):
    return F.linear(h, W, b)


def vf_mlp(h, W1, b1, W2, b2):
    return F.linear(F.relu(F.linear(h, W1, b1)), W2, b2)


def autograd_grad(vf, h, params, t):
    """``∂/∂h softmax_cross_entropy(vf(h, *params), t)`` by double backprop."""
    h = chainer.Variable(h) if not isinstance(h, chainer.Variable) else h
    loss = F.softmax_cross_entropy(vf(h, *params), t,
                                   enable_double_backprop=True)
    grad, = chainer.grad([loss], [h], enable_double_backprop=True)
    return grad


# ---------------------------------------------------------------------------
# Forward: the closed forms equal autograd's gradient of the loss.

@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_linear_equals_autograd(dtype):
    h, W, b, t = linear_inputs(numpy.random.RandomState(0), dtype)
    expected = autograd_grad(vf_linear, h, (W, b), t).array
    actual = vfbn_linear_grad(h, W, b, t)
    assert actual.shape == (B, D) and actual.dtype == dtype
    numpy.testing.assert_allclose(actual.array, expected, **TOL[dtype])
    assert numpy.abs(expected).max() > 1e-3   # not vacuous


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_mlp_equals_autograd(dtype):
    h, W1, b1, W2, b2, t = mlp_inputs(numpy.random.RandomState(1), dtype)
    expected = autograd_grad(vf_mlp, h, (W1, b1, W2, b2), t).array
    actual = vfbn_mlp_grad(h, W1, b1, W2, b2, t)
    assert actual.shape == (B, D) and actual.dtype == dtype
    numpy.testing.assert_allclose(actual.array, expected, **TOL[dtype])
    assert numpy.abs(expected).max() > 1e-3


def test_linear_is_eq8_negated_over_batch():
    # Eq. (8), one example at a time: W^T (y - softmax(W h + b)); ours is
    # the gradient of the batch-mean loss, -1/B times that.
    h, W, b, t = linear_inputs(numpy.random.RandomState(2))
    actual = vfbn_linear_grad(h, W, b, t).array
    for n in range(B):
        a = W.dot(h[n]) + b
        p = numpy.exp(a - a.max())
        p /= p.sum()
        y = numpy.eye(K)[t[n]]
        numpy.testing.assert_allclose(actual[n], -W.T.dot(y - p) / B,
                                      rtol=1e-12, atol=1e-14)


def test_mlp_is_eq9_negated_over_batch():
    h, W1, b1, W2, b2, t = mlp_inputs(numpy.random.RandomState(3))
    actual = vfbn_mlp_grad(h, W1, b1, W2, b2, t).array
    for n in range(B):
        a1 = W1.dot(h[n]) + b1
        a2 = W2.dot(numpy.maximum(a1, 0)) + b2
        p = numpy.exp(a2 - a2.max())
        p /= p.sum()
        y = numpy.eye(K)[t[n]]
        # Eq. (9): W1^T f'(a1) W2^T (y - softmax(a2)), f'(a1) diagonal.
        expected = W1.T.dot((a1 > 0) * W2.T.dot(y - p))
        numpy.testing.assert_allclose(actual[n], -expected / B,
                                      rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------
# Errors.

def test_type_errors():
    h, W, b, t = linear_inputs(numpy.random.RandomState(6))
    half = [a.astype(numpy.float16) for a in (h, W, b)]
    with pytest.raises(type_check.InvalidType, match='itemsize'):
        vfbn_linear_grad(*half, t)
    with pytest.raises(type_check.InvalidType):
        vfbn_linear_grad(h, W[:, :-1], b, t)          # D mismatch
    with pytest.raises(type_check.InvalidType):
        vfbn_linear_grad(h, W, b, t.astype(numpy.float32))
    with pytest.raises(type_check.InvalidType):
        vfbn_linear_grad(h, W, b, t[:-1])             # batch mismatch
    h, W1, b1, W2, b2, t = mlp_inputs(numpy.random.RandomState(7))
    with pytest.raises(type_check.InvalidType):
        vfbn_mlp_grad(h, W1, b1, W2[:, :-1], b2, t)   # H mismatch


# ---------------------------------------------------------------------------
# Backward and double backward (finite differences, float64), on every
# backend: NumPy here, CuPy where there is a GPU (marked ``gpu``).

BACKENDS = [{}, {'use_cuda': True}]
GRAD_TOL = dict(eps=1e-4, atol=1e-7, rtol=1e-6)


class _Base(object):

    def setUp(self):
        self.rng = numpy.random.RandomState(self.seed)
        self.check_forward_options = dict(atol=1e-12, rtol=1e-10)
        self.check_backward_options = dict(GRAD_TOL)
        self.check_double_backward_options = dict(GRAD_TOL)

    def generate_grad_outputs(self, outputs_template):
        return tuple(self.rng.uniform(-1, 1, a.shape).astype(a.dtype)
                     for a in outputs_template)

    def generate_grad_grad_inputs(self, inputs_template):
        return tuple(self.rng.uniform(-1, 1, a.shape).astype(a.dtype)
                     for a in inputs_template)


class _LinearCase(_Base):

    def generate_inputs(self):
        h, W, b, self.t = linear_inputs(self.rng)
        return h, W, b

    def expected_grad_synth(self, inputs):
        return autograd_grad(vf_linear, inputs[0], inputs[1:], self.t).array


class _MLPCase(_Base):

    def generate_inputs(self):
        inputs = mlp_inputs(self.rng)
        self.t = inputs[-1]
        return inputs[:-1]

    def expected_grad_synth(self, inputs):
        return autograd_grad(vf_mlp, inputs[0], inputs[1:], self.t).array


@testing.inject_backend_tests(None, BACKENDS)
class TestVFBNLinearGrad(_LinearCase, testing.FunctionTestCase):

    seed = 10

    def forward(self, inputs, device):
        return vfbn_linear_grad(*inputs, device.send(self.t)),

    def forward_expected(self, inputs):
        return self.expected_grad_synth(inputs),


@testing.inject_backend_tests(None, BACKENDS)
class TestVFBNLinearGradAllOutputs(_LinearCase,
                                   testing.FunctionTestCase):
    # Both outputs, (grad_synth, g): the VJP w.r.t. g is what double
    # backprop uses.

    seed = 11

    def forward(self, inputs, device):
        return VFBNLinearGrad().apply(tuple(inputs) + (device.send(self.t),))

    def forward_expected(self, inputs):
        h, W, b = inputs
        a = chainer.Variable(h.dot(W.T) + b)
        g, = chainer.grad([F.softmax_cross_entropy(a, self.t)], [a])
        return self.expected_grad_synth(inputs), g.array


@testing.inject_backend_tests(None, BACKENDS)
class TestVFBNMLPGrad(_MLPCase, testing.FunctionTestCase):

    seed = 12

    def forward(self, inputs, device):
        return vfbn_mlp_grad(*inputs, device.send(self.t)),

    def forward_expected(self, inputs):
        return self.expected_grad_synth(inputs),


@testing.inject_backend_tests(None, BACKENDS)
class TestVFBNMLPGradAllOutputs(_MLPCase, testing.FunctionTestCase):
    # (grad_synth, z, g, ga1): every intermediate's VJP.

    seed = 13

    def forward(self, inputs, device):
        return VFBNMLPGrad().apply(tuple(inputs) + (device.send(self.t),))

    def forward_expected(self, inputs):
        h, W1, b1, W2, b2 = inputs
        a1 = h.dot(W1.T) + b1
        z = numpy.maximum(a1, 0)
        a2 = chainer.Variable(z.dot(W2.T) + b2)
        g, = chainer.grad([F.softmax_cross_entropy(a2, self.t)], [a2])
        g = g.array
        ga1 = g.dot(W2) * (a1 > 0)
        return self.expected_grad_synth(inputs), z, g, ga1


# ---------------------------------------------------------------------------
# The training signal (Eq. 3): d||δ - δ̂||^2 / d(params of v_f), closed form
# against double-backprop autograd.

def _training_signal(grad_synth_fn, h, params, grad_true):
    params = [chainer.Variable(p) for p in params]
    h = chainer.Variable(h)
    loss = F.sum(F.squared_difference(grad_synth_fn(h, *params), grad_true))
    return [g.array for g in chainer.grad([loss], [h] + params)]


def test_linear_training_signal_equals_autograd():
    rng = numpy.random.RandomState(20)
    h, W, b, t = linear_inputs(rng)
    grad_true = rng.randn(B, D) / B
    closed = _training_signal(lambda h, W, b: vfbn_linear_grad(h, W, b, t),
                              h, (W, b), grad_true)
    auto = _training_signal(
        lambda h, W, b: autograd_grad(vf_linear, h, (W, b), t),
        h, (W, b), grad_true)
    for name, c, a in zip(('h', 'W', 'b'), closed, auto):
        assert numpy.abs(a).max() > 1e-4, name
        numpy.testing.assert_allclose(c, a, rtol=1e-10, atol=1e-13,
                                      err_msg=name)


def test_mlp_training_signal_equals_autograd():
    rng = numpy.random.RandomState(21)
    h, W1, b1, W2, b2, t = mlp_inputs(rng)
    grad_true = rng.randn(B, D) / B
    params = (W1, b1, W2, b2)
    closed = _training_signal(lambda h, *p: vfbn_mlp_grad(h, *p, t),
                              h, params, grad_true)
    auto = _training_signal(lambda h, *p: autograd_grad(vf_mlp, h, p, t),
                            h, params, grad_true)
    for name, c, a in zip(('h', 'W1', 'b1', 'W2', 'b2'), closed, auto):
        assert numpy.abs(a).max() > 1e-4, name
        numpy.testing.assert_allclose(c, a, rtol=1e-10, atol=1e-13,
                                      err_msg=name)


# ---------------------------------------------------------------------------
# The FunctionNodes on the GPU (fused kernels) against the CPU.

@pytest.mark.gpu
@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_nodes_gpu_equal_cpu(dtype):
    rng = numpy.random.RandomState(32)
    inputs = mlp_inputs(rng, dtype)
    tol = dict(atol=1e-6, rtol=1e-4) if dtype == numpy.float32 else \
        dict(atol=1e-12, rtol=1e-10)
    for node, args in ((VFBNLinearGrad, inputs[:3] + inputs[-1:]),
                       (VFBNMLPGrad, inputs)):
        cpu = node().apply(args)
        gpu = node().apply(tuple(cuda.to_gpu(a) for a in args))
        for c, g in zip(cpu, gpu):
            numpy.testing.assert_allclose(cuda.to_cpu(g.array), c.array,
                                          **tol)


# ---------------------------------------------------------------------------
# The softmax's VJP (the backward's hot part), fused.

ON_CPU_AND_GPU = pytest.mark.parametrize('on_gpu', [
    pytest.param(False, id='cpu'),
    pytest.param(True, id='gpu', marks=pytest.mark.gpu)])


def _vjp_inputs(rng, dtype=numpy.float64, n_class=K):
    a = rng.randn(B, n_class).astype(dtype)
    t = rng.randint(0, n_class, B).astype(numpy.int32)
    g = vfbn_kernels.softmax_minus_onehot_cpu(a, numpy.zeros(n_class, dtype),
                                              t)
    gg = rng.randn(B, n_class).astype(dtype)
    return a, g, gg, t


@ON_CPU_AND_GPU
def test_softmax_vjp_is_the_vjp_of_softmax_minus_onehot(on_gpu):
    # Autograd's VJP of a -> (softmax(a) - Y) / B, against the fused node.
    a, g, gg, t = _vjp_inputs(numpy.random.RandomState(40))
    av = chainer.Variable(a)
    gv = (F.softmax(av) - numpy.eye(K)[t]) / B
    expected, = chainer.grad([gv], [av], grad_outputs=[chainer.Variable(gg)])
    send = cuda.to_gpu if on_gpu else (lambda x: x)
    actual = vfbn_grad._softmax_vjp(send(g), send(gg), send(t))
    numpy.testing.assert_allclose(cuda.to_cpu(actual.array), expected.array,
                                  rtol=1e-12, atol=1e-15)
    assert numpy.abs(expected.array).max() > 1e-3


@ON_CPU_AND_GPU
def test_softmax_vjp_backward_and_double_backward(on_gpu):
    _, g, gg, t = _vjp_inputs(numpy.random.RandomState(41))
    rng = numpy.random.RandomState(42)
    arrays = [g, gg, t, rng.randn(B, K), rng.randn(B, K), rng.randn(B, K)]
    if on_gpu:
        arrays = [cuda.to_gpu(x) for x in arrays]
    g, gg, t, u, uu_g, uu_gg = arrays

    def fn(g, gg):
        return vfbn_grad._softmax_vjp(g, gg, t)

    chainer.gradient_check.check_backward(fn, (g, gg), u, **GRAD_TOL)
    chainer.gradient_check.check_double_backward(
        fn, (g, gg), u, (uu_g, uu_gg), **GRAD_TOL)


# ---------------------------------------------------------------------------
# The CPU and GPU paths agree on what goes wrong: labels out of range, NaN.

LABEL_DTYPES = [numpy.int8, numpy.int16, numpy.int32, numpy.int64]


@ON_CPU_AND_GPU
@pytest.mark.parametrize('label_dtype', LABEL_DTYPES)
@pytest.mark.parametrize('bad, message', [
    (K, r'^labels must lie in \[0, 4\), got min 0, max 4$'),
    (-1, r'^labels must lie in \[0, 4\), got min -1, max 3$')])
def test_labels_out_of_range_same_error(on_gpu, label_dtype, bad, message):
    t = numpy.array([0, 3, bad, 1, 2], label_dtype)
    linear = linear_inputs(numpy.random.RandomState(50))[:3] + (t,)
    mlp = mlp_inputs(numpy.random.RandomState(50))[:5] + (t,)
    for fn, args in ((vfbn_linear_grad, linear), (vfbn_mlp_grad, mlp)):
        if on_gpu:
            args = tuple(cuda.to_gpu(a) for a in args)
        with pytest.raises(ValueError, match=message):
            fn(*args)


@ON_CPU_AND_GPU
@pytest.mark.parametrize('label_dtype', LABEL_DTYPES)
def test_every_label_dtype(on_gpu, label_dtype):
    inputs = mlp_inputs(numpy.random.RandomState(51))
    expected = vfbn_mlp_grad(*inputs).array
    args = inputs[:5] + (inputs[5].astype(label_dtype),)
    if on_gpu:
        args = tuple(cuda.to_gpu(a) for a in args)
    numpy.testing.assert_allclose(cuda.to_cpu(vfbn_mlp_grad(*args).array),
                                  expected, rtol=1e-10, atol=1e-13)


def _nan_cases():
    """MLP inputs with a NaN in h, in b1 (a hidden unit), in W2."""
    for where in ('h', 'b1', 'W2'):
        inputs = list(mlp_inputs(numpy.random.RandomState(52)))
        index = {'h': 0, 'b1': 2, 'W2': 3}[where]
        inputs[index].reshape(-1)[1] = numpy.nan
        yield where, tuple(inputs)


def _signal(fn, inputs, grad_true):
    """δ̂ and the gradients of ``||δ - δ̂||^2`` w.r.t. every float input."""
    vs = [chainer.Variable(a) for a in inputs[:-1]]
    y = fn(*vs, inputs[-1])
    loss = F.sum(F.squared_difference(y, grad_true))
    return [y.array] + [g.array for g in chainer.grad([loss], vs)]


def test_nan_propagates_on_the_cpu():
    for where, inputs in _nan_cases():
        grad_synth = vfbn_mlp_grad(*inputs).array
        assert numpy.isnan(grad_synth).any(), where


@pytest.mark.gpu
@pytest.mark.parametrize('where, inputs', list(_nan_cases()))
def test_nan_same_on_cpu_and_gpu(where, inputs):
    grad_true = numpy.random.RandomState(53).randn(B, D)
    # The linear v_f's own inputs, the NaN in h, b or W (h, W, b, t).
    linear = list(linear_inputs(numpy.random.RandomState(52)))
    linear[{'h': 0, 'b1': 2, 'W2': 1}[where]].reshape(-1)[1] = numpy.nan
    for fn, args in ((vfbn_linear_grad, tuple(linear)),
                     (vfbn_mlp_grad, inputs)):
        cpu = _signal(fn, args, grad_true)
        gpu = _signal(fn, tuple(cuda.to_gpu(a) for a in args),
                      cuda.to_gpu(grad_true))
        for c, g in zip(cpu, gpu):
            g = cuda.to_cpu(g)
            numpy.testing.assert_array_equal(numpy.isnan(g), numpy.isnan(c),
                                             err_msg=where)
            numpy.testing.assert_allclose(g, c, rtol=1e-10, atol=1e-13,
                                          err_msg=where)
