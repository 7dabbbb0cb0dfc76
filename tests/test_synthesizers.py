"""Gradient synthesizers: shapes, the factory and their gradients by number."""
import copy

import numpy
import pytest

import chainer
import chainer.functions as F
from chainer import gradient_check
from chainer.backends import cuda

import chainer_vfbn
from chainer_vfbn.models import resnet_cifar
from chainer_vfbn.models import ResidualUnit
from chainer_vfbn.synthesizers import build_synthesizer
from chainer_vfbn.synthesizers import concat_label_maps
from chainer_vfbn.synthesizers import DNILinear
from chainer_vfbn.synthesizers import DNIResNet
from chainer_vfbn.synthesizers import SYNTHESIZERS
from chainer_vfbn.synthesizers import VFBN
from chainer_vfbn.synthesizers import VFBNLinear
from chainer_vfbn.synthesizers import VFBNMLP
from chainer_vfbn.synthesizers import VFBNResNet

H_SHAPE = (4, 5, 5)   # small (C, H, W) for fast tests
K = 3                 # classes


def batch(rng, n=4, shape=H_SHAPE, dtype=numpy.float64, n_class=K):
    h = rng.randn(n, *shape).astype(dtype)
    t = (numpy.arange(n) % n_class).astype(numpy.int32)
    return h, t


def loss_grad(vf, h, t):
    """``∂/∂h`` mean softmax cross-entropy of ``vf(h)`` (plain autograd)."""
    h = chainer.Variable(h)
    grad, = chainer.grad([F.softmax_cross_entropy(vf(h), t)], [h])
    return grad.array


def build64(method, h_shape=H_SHAPE, n_class=K, **kwargs):
    with chainer.using_config('dtype', numpy.float64):
        return build_synthesizer(method, h_shape, n_class, **kwargs)


def randomize(link, rng, scale=0.3):
    for p in link.params():
        p.array[...] = rng.randn(*p.shape) * scale


# ---------------------------------------------------------------------------
# The factory and the common interface.

def test_factory_names_and_classes():
    assert tuple(SYNTHESIZERS) == ('dni-linear', 'dni-resnet', 'vfbn',
                                   'vfbn-linear', 'vfbn-mlp')
    expected = dict(zip(SYNTHESIZERS, (DNILinear, DNIResNet, VFBNResNet,
                                       VFBNLinear, VFBNMLP)))
    for method in SYNTHESIZERS:
        synth = build_synthesizer(method, (64, 11, 11), n_hidden=32)
        assert type(synth) is expected[method], method
    # The paper's split: 64 maps of 11x11 and 10 classes.
    assert build_synthesizer('dni-linear', (64, 11, 11)).conv.W.shape == \
        (64, 74, 5, 5)
    assert build_synthesizer('vfbn-linear', (64, 11, 11)).fc.W.shape == \
        (10, 7744)
    mlp = build_synthesizer('vfbn-mlp', (64, 11, 11), n_hidden=32)
    assert mlp.l1.W.shape == (32, 7744) and mlp.l2.W.shape == (10, 32)
    assert build_synthesizer('vfbn-mlp', (2, 3, 3)).l1.W.shape == (256, 18)


def test_factory_errors():
    with pytest.raises(ValueError, match="unknown synthesizer 'bp'; choose "
                       'from dni-linear, dni-resnet, vfbn, vfbn-linear, '
                       'vfbn-mlp'):
        build_synthesizer('bp', H_SHAPE)
    with pytest.raises(ValueError, match=r"'vfbn' .* needs h_shape \(C, H, "
                       r'W\), got \(7,\)'):
        build_synthesizer('vfbn', (7,))
    with pytest.raises(ValueError, match='h_shape must be'):
        build_synthesizer('dni-linear', (4, 5))


@pytest.mark.parametrize('method', SYNTHESIZERS)
def test_interface(method):
    # As the updater calls it: a fresh Variable holding h, float32.
    rng = numpy.random.RandomState(0)
    synth = build_synthesizer(method, H_SHAPE, K, n_hidden=8)
    randomize(synth, rng, 0.1)
    h, t = batch(rng, dtype=numpy.float32)
    grad_synth = synth(chainer.Variable(h), t)
    assert isinstance(grad_synth, chainer.Variable)
    assert grad_synth.shape == h.shape and grad_synth.dtype == numpy.float32
    assert numpy.isfinite(grad_synth.array).all()
    assert numpy.abs(grad_synth.array).max() > 0
    # Differentiable w.r.t. every parameter of the synthesizer (Eq. 3).
    grad_true = rng.randn(*h.shape).astype(numpy.float32) * 1e-2
    synth.cleargrads()
    F.sum(F.squared_difference(grad_synth, grad_true)).backward()
    for name, p in synth.namedparams():
        assert p.grad is not None and numpy.isfinite(p.grad).all(), name
    assert any(numpy.abs(p.grad).max() > 0 for p in synth.params())


@pytest.mark.parametrize('method', SYNTHESIZERS)
def test_training_reduces_synthesizer_loss(method):
    # A few Adam steps on ||δ - δ̂||^2 (Eq. 3) with a fixed target.
    rng = numpy.random.RandomState(1)
    synth = build_synthesizer(method, H_SHAPE, K, n_hidden=8)
    h, t = batch(rng, dtype=numpy.float32)
    teacher = build_synthesizer('vfbn-linear', H_SHAPE, K)
    randomize(teacher, rng, 1.)
    grad_true = teacher(h, t).array
    opt = chainer.optimizers.Adam(alpha=1e-2)
    opt.setup(synth)
    losses = []
    for _ in range(30):
        loss = F.sum(F.squared_difference(synth(chainer.Variable(h), t),
                                          grad_true))
        synth.cleargrads()
        loss.backward()
        opt.update()
        losses.append(float(loss.array))
    assert losses[-1] < 0.95 * losses[0], losses


# ---------------------------------------------------------------------------
# Jaderberg's models.

def test_concat_label_maps():
    h = numpy.arange(2 * 2 * 3 * 3, dtype=numpy.float32).reshape(2, 2, 3, 3)
    x = concat_label_maps(chainer.Variable(h), numpy.array([2, 0]), 3).array
    assert x.shape == (2, 5, 3, 3)
    numpy.testing.assert_array_equal(x[:, :2], h)
    numpy.testing.assert_array_equal(x[0, 2:].reshape(3, 9).mean(1),
                                     [0, 0, 1])
    numpy.testing.assert_array_equal(x[1, 2:].reshape(3, 9).mean(1),
                                     [1, 0, 0])
    assert set(numpy.unique(x[:, 2:])) == {0., 1.}


def test_dni_linear_starts_at_zero():
    synth = DNILinear(4, K)
    assert (synth.conv.W.array == 0).all() and (synth.conv.b.array == 0).all()
    h, t = batch(numpy.random.RandomState(2), dtype=numpy.float32)
    numpy.testing.assert_array_equal(synth(h, t).array, 0)


def test_dni_linear_is_a_5x5_convolution_of_h_and_y():
    rng = numpy.random.RandomState(3)
    with chainer.using_config('dtype', numpy.float64):
        synth = DNILinear(4, K)
    randomize(synth, rng)
    h, t = batch(rng)
    out = synth(h, t).array
    W, b = synth.conv.W.array, synth.conv.b.array
    x = numpy.concatenate(
        [h, numpy.broadcast_to(numpy.eye(K)[t][:, :, None, None],
                               (4, K, 5, 5))], axis=1)
    x = numpy.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for n, o, i, j in [(0, 0, 0, 0), (1, 3, 2, 4), (3, 2, 4, 1)]:
        # Eq. (7) at one output: a weighted sum of [h, y] around (i, j).
        expected = b[o] + (W[o] * x[n, :, i:i + 5, j:j + 5]).sum()
        assert out[n, o, i, j] == pytest.approx(expected, rel=1e-12)


def test_dni_linear_flat_h_is_linear_in_h_and_y():
    # (B, D) is read as D maps of 1x1: only the centre tap sees data.
    rng = numpy.random.RandomState(4)
    with chainer.using_config('dtype', numpy.float64):
        synth = DNILinear(6, K)
    randomize(synth, rng)
    h, t = batch(rng, shape=(6,))
    hy = numpy.concatenate([h, numpy.eye(K)[t]], axis=1)
    expected = hy.dot(synth.conv.W.array[:, :, 2, 2].T) + synth.conv.b.array
    out = synth(h, t)
    assert out.shape == (4, 6)
    numpy.testing.assert_allclose(out.array, expected, rtol=1e-12)


def test_dni_linear_first_update_from_zero():
    # At W = b = 0, ∂||δ - δ̂||^2/∂b_o = -2 Σ_{n,i,j} δ[n, o, i, j].
    rng = numpy.random.RandomState(5)
    with chainer.using_config('dtype', numpy.float64):
        synth = DNILinear(4, K)
    h, t = batch(rng)
    grad_true = rng.randn(*h.shape)
    synth.cleargrads()
    F.sum(F.squared_difference(synth(h, t), grad_true)).backward()
    numpy.testing.assert_allclose(synth.conv.b.grad,
                                  -2 * grad_true.sum(axis=(0, 2, 3)),
                                  rtol=1e-12)
    assert numpy.abs(synth.conv.W.grad).max() > 0


def test_dni_resnet_structure():
    synth = DNIResNet(4, K, width=8)
    assert synth.conv_in.W.shape == (8, 4 + K, 3, 3)
    assert synth.conv_in.b is None and synth.bn_in.gamma.shape == (8,)
    for unit in (synth.unit1, synth.unit2):   # 4 convs, skip every 2
        assert isinstance(unit, ResidualUnit)
        assert unit.conv1.W.shape == unit.conv2.W.shape == (8, 8, 3, 3)
    assert synth.conv_out.W.shape == (4, 8, 3, 3)
    assert (synth.conv_out.W.array == 0).all()
    assert (synth.conv_out.b.array == 0).all()
    assert numpy.abs(synth.conv_in.W.array).max() > 0
    h, t = batch(numpy.random.RandomState(6), dtype=numpy.float32)
    numpy.testing.assert_array_equal(synth(h, t).array, 0)   # zero start
    assert build_synthesizer('dni-resnet', (64, 11, 11)).conv_in.W.shape == \
        (64, 74, 3, 3)


# ---------------------------------------------------------------------------
# VFBN with double backprop.

@pytest.mark.parametrize('train', [True, False])
@pytest.mark.parametrize('arch', ['resnet8-paper', 'resnet8-he'])
def test_vfbn_with_exact_top_is_true_gradient(arch, train):
    # v_f = a copy of the layers above the split: δ̂ = δ exactly (Eq. 5, 6).
    rng = numpy.random.RandomState(7)
    with chainer.using_config('dtype', numpy.float64):
        net = resnet_cifar(arch)
    bottom, top = chainer_vfbn.split(net)
    for bn in (link for link in net.links()
               if isinstance(link, chainer.links.BatchNormalization)):
        bn.avg_mean[...] = rng.randn(*bn.avg_mean.shape) * 0.1
        bn.avg_var[...] = rng.uniform(0.5, 2, bn.avg_var.shape)
    synth = VFBN(copy.deepcopy(top))
    x = rng.randn(4, 3, net.insize, net.insize)
    t = numpy.array([0, 3, 9, 3], numpy.int32)
    with chainer.using_config('train', train):
        h = bottom(x)
        inp = chainer.Variable(h.array)
        loss = F.softmax_cross_entropy(top(inp), t)
        loss.backward()
        grad_true = inp.grad
        grad_synth = synth(chainer.Variable(h.array), t)
    assert grad_synth.dtype == numpy.float64
    assert numpy.abs(grad_true).max() > 1e-4
    numpy.testing.assert_allclose(grad_synth.array, grad_true, atol=1e-5,
                                  rtol=1e-5)
    numpy.testing.assert_allclose(grad_synth.array, grad_true, atol=1e-12,
                                  rtol=1e-9)


def test_vfbn_wraps_h_without_grad_and_leaves_param_grads():
    rng = numpy.random.RandomState(8)
    synth = build64('vfbn')
    h, t = batch(rng)
    synth.cleargrads()
    expected = loss_grad(synth.vf, h, t)
    for arg in (h, chainer.Variable(h, requires_grad=False)):
        grad_synth = synth(arg, t)
        numpy.testing.assert_allclose(grad_synth.array, expected,
                                      rtol=1e-12, atol=1e-15)
    assert all(p.grad is None for p in synth.params())


def test_vfbn_needs_backprop():
    synth = build64('vfbn')
    h, t = batch(numpy.random.RandomState(14))
    with chainer.no_backprop_mode():
        with pytest.raises(RuntimeError, match='back-propagation enabled'):
            synth(h, t)


def test_vfbn_resnet_is_loss_gradient_by_finite_differences():
    # δ̂ = ∂ℓ(t, v_f(h))/∂h, checked numerically (BN on batch statistics).
    rng = numpy.random.RandomState(9)
    synth = build64('vfbn', (2, 3, 3))
    h, t = batch(rng, n=3, shape=(2, 3, 3))

    def loss():
        return F.softmax_cross_entropy(synth.vf(h), t).array,

    numerical, = gradient_check.numerical_grad(loss, (h,), (1.,), eps=1e-6)
    grad_synth = synth(h, t).array
    assert numpy.abs(numerical).max() > 1e-3
    numpy.testing.assert_allclose(grad_synth, numerical, atol=1e-8,
                                  rtol=1e-6)


def test_vfbn_resnet_structure():
    synth = VFBNResNet(4, K)
    vf = synth.vf
    assert vf.layer_names == ['unit1', 'unit2', 'head']
    for unit in (vf.unit1, vf.unit2):
        assert isinstance(unit, ResidualUnit)
        assert unit.conv1.W.shape == unit.conv2.W.shape == (4, 4, 3, 3)
    assert vf.head.fc.W.shape == (K, 4)


def test_vfbn_training_signal_by_finite_differences():
    # ∂||δ - δ̂||^2 / ∂θ for θ in v_f (double backprop), checked numerically.
    rng = numpy.random.RandomState(10)
    synth = build64('vfbn', (2, 3, 3))
    randomize(synth, rng, 0.5)
    h, t = batch(rng, n=3, shape=(2, 3, 3))
    grad_true = rng.randn(*h.shape) * 0.1
    params = [synth.vf.head.fc.b, synth.vf.unit2.bn2.gamma,
              synth.vf.unit1.conv1.W]

    def synth_loss():
        return F.sum(F.squared_difference(synth(h, t), grad_true)).array,

    synth.cleargrads()
    F.sum(F.squared_difference(synth(h, t), grad_true)).backward()
    numerical = gradient_check.numerical_grad(
        synth_loss, [p.array for p in params], (1.,), eps=1e-6)
    for p, num in zip(params, numerical):
        assert numpy.abs(num).max() > 1e-6, p.name
        numpy.testing.assert_allclose(p.grad, num, atol=1e-8, rtol=1e-5,
                                      err_msg=p.name)


# ---------------------------------------------------------------------------
# Closed-form VFBNs on 4-d activations.

@pytest.mark.parametrize('method', ['vfbn-linear', 'vfbn-mlp'])
def test_closed_form_equals_autograd_through_vf(method):
    rng = numpy.random.RandomState(11)
    synth = build64(method, n_hidden=8)
    randomize(synth, rng)
    h, t = batch(rng)
    grad_synth = synth(chainer.Variable(h), t)
    assert grad_synth.shape == h.shape
    numpy.testing.assert_allclose(
        grad_synth.array, loss_grad(synth.virtual_forward, h, t),
        rtol=1e-10, atol=1e-14)
    # ... and equals VFBN (double backprop) with the same v_f.
    generic = VFBN(copy.deepcopy(synth))
    generic.vf.forward = generic.vf.virtual_forward
    numpy.testing.assert_allclose(
        grad_synth.array, generic(h, t).array, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize('method', ['vfbn-linear', 'vfbn-mlp'])
def test_closed_form_training_signal_equals_double_backprop(method):
    rng = numpy.random.RandomState(12)
    closed = build64(method, n_hidden=8)
    randomize(closed, rng)
    auto = VFBN(copy.deepcopy(closed))
    auto.vf.forward = auto.vf.virtual_forward
    h, t = batch(rng)
    grad_true = rng.randn(*h.shape) * 0.1
    for synth in (closed, auto):
        synth.cleargrads()
        F.sum(F.squared_difference(synth(h, t), grad_true)).backward()
    auto_params = dict(auto.vf.namedparams())
    for name, p in closed.namedparams():
        assert numpy.abs(p.grad).max() > 1e-6, name
        numpy.testing.assert_allclose(p.grad, auto_params[name].grad,
                                      rtol=1e-10, atol=1e-14, err_msg=name)


# ---------------------------------------------------------------------------
# GPU against CPU.

@pytest.mark.gpu
@pytest.mark.parametrize('method', SYNTHESIZERS)
def test_gpu_equals_cpu(method):
    rng = numpy.random.RandomState(13)
    cpu = build64(method, n_hidden=8)
    randomize(cpu, rng, 0.3)
    gpu = copy.deepcopy(cpu)
    gpu.to_device('@cupy:0')
    h, t = batch(rng)
    grad_true = rng.randn(*h.shape) * 0.1
    results = []
    for synth, xp_h, xp_t, xp_g in (
            (cpu, h, t, grad_true),
            (gpu, cuda.to_gpu(h), cuda.to_gpu(t), cuda.to_gpu(grad_true))):
        grad_synth = synth(chainer.Variable(xp_h), xp_t)
        synth.cleargrads()
        F.sum(F.squared_difference(grad_synth, xp_g)).backward()
        results.append((cuda.to_cpu(grad_synth.array),
                        {n: cuda.to_cpu(p.grad)
                         for n, p in synth.namedparams()}))
    (c_out, c_grads), (g_out, g_grads) = results
    numpy.testing.assert_allclose(g_out, c_out, rtol=1e-7, atol=1e-10)
    for name in c_grads:
        numpy.testing.assert_allclose(g_grads[name], c_grads[name],
                                      rtol=1e-6, atol=1e-9, err_msg=name)
