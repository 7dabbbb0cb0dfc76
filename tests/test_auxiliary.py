"""chainer_vfbn.auxiliary: the resampling maps, DGL's and InfoPro's auxiliary
networks and InfoPro's local loss, each against a hand computation in NumPy
(float64)."""
import math

import chainer
import chainer.functions as F
import numpy
import pytest
from chainer import gradient_check

from chainer_vfbn import auxiliary
from chainer_vfbn.auxiliary import infopro
from chainer_vfbn.auxiliary import registry
from chainer_vfbn.auxiliary import resampling
from chainer_vfbn.auxiliary.dgl import DGLAuxiliary
from chainer_vfbn.auxiliary.infopro import InfoProAuxiliary

K = 10
F64 = numpy.float64


def rand(*shape, seed=0):
    return numpy.random.RandomState(seed).randn(*shape).astype(F64)


def labels(n):
    return (numpy.arange(n) * 3 % K).astype(numpy.int32)


def float64_links():
    return chainer.using_config('dtype', F64)


# -- by hand ------------------------------------------------------------------

def hand_pool(a, out):
    """Adaptive average pooling by PyTorch's documented bins, cell by cell."""
    b, c, height, width = a.shape
    y = numpy.zeros((b, c) + tuple(out))
    for i in range(out[0]):
        r0, r1 = (i * height) // out[0], math.ceil((i + 1) * height / out[0])
        for j in range(out[1]):
            c0, c1 = (j * width) // out[1], math.ceil((j + 1) * width / out[1])
            y[:, :, i, j] = a[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return y


def hand_resize(a, out):
    """Bilinear resizing, corners aligned, pixel by pixel."""
    b, c, height, width = a.shape
    y = numpy.zeros((b, c) + tuple(out))
    for i in range(out[0]):
        sy = i * (height - 1) / (out[0] - 1) if out[0] > 1 else 0.
        i0 = int(math.floor(sy))
        i1, fy = min(i0 + 1, height - 1), sy - i0
        for j in range(out[1]):
            sx = j * (width - 1) / (out[1] - 1) if out[1] > 1 else 0.
            j0 = int(math.floor(sx))
            j1, fx = min(j0 + 1, width - 1), sx - j0
            y[:, :, i, j] = ((1 - fy) * (1 - fx) * a[:, :, i0, j0]
                             + (1 - fy) * fx * a[:, :, i0, j1]
                             + fy * (1 - fx) * a[:, :, i1, j0]
                             + fy * fx * a[:, :, i1, j1])
    return y


def hand_bn(a, bn):
    """Batch normalization in training mode: the batch's own statistics."""
    axes = (0,) + tuple(range(2, a.ndim))
    shape = (1, -1) + (1,) * (a.ndim - 2)
    mean = a.mean(axis=axes, keepdims=True)
    var = a.var(axis=axes, keepdims=True)
    return ((a - mean) / numpy.sqrt(var + bn.eps) * bn.gamma.array.reshape(
        shape) + bn.beta.array.reshape(shape))


def hand_conv(a, conv):
    """A convolution with square kernel, stride and padding, offset by
    offset."""
    w = conv.W.array
    k, s, p = w.shape[2], conv.stride[0], conv.pad[0]
    a = numpy.pad(a, ((0, 0), (0, 0), (p, p), (p, p)))
    ho = (a.shape[2] - k) // s + 1
    wo = (a.shape[3] - k) // s + 1
    y = numpy.zeros((a.shape[0], w.shape[0], ho, wo))
    for ki in range(k):
        for kj in range(k):
            patch = a[:, :, ki:ki + s * (ho - 1) + 1:s,
                      kj:kj + s * (wo - 1) + 1:s]
            y += numpy.einsum('oc,bchw->bohw', w[:, :, ki, kj], patch)
    if conv.b is not None:
        y += conv.b.array.reshape(1, -1, 1, 1)
    return y


def hand_linear(a, fc):
    return a.reshape(len(a), -1) @ fc.W.array.T + fc.b.array


def relu(a):
    return numpy.maximum(a, 0)


def hand_cross_entropy(y, t):
    y = y - y.max(axis=1, keepdims=True)
    log_p = y - numpy.log(numpy.exp(y).sum(axis=1, keepdims=True))
    return -log_p[numpy.arange(len(t)), t].mean()


# -- resampling ---------------------------------------------------------------

def test_bins_are_pytorchs():
    # floor(i·22/6) .. ceil((i+1)·22/6) - 1, written out.
    assert [(r.start, r.stop) for r in resampling.bins(22, 6)] == [
        (0, 4), (3, 8), (7, 11), (11, 15), (14, 19), (18, 22)]
    assert [(r.start, r.stop) for r in resampling.bins(5, 2)] == [
        (0, 3), (2, 5)]
    assert [(r.start, r.stop) for r in resampling.bins(1, 2)] == [
        (0, 1), (0, 1)]                 # more cells than rows: repeated


@pytest.mark.parametrize('size,out', [((11, 11), (3, 3)), ((22, 22), (6, 6)),
                                      ((7, 5), (2, 2)), ((1, 1), (2, 2)),
                                      ((6, 6), (6, 6))])
def test_adaptive_average_pooling_by_hand(size, out):
    a = rand(2, 3, *size)
    y = auxiliary.adaptive_average_pooling_2d(a, out)
    assert y.dtype == F64
    numpy.testing.assert_allclose(y.array, hand_pool(a, out), rtol=1e-12,
                                  atol=1e-14)


@pytest.mark.parametrize('size,out', [((11, 11), (24, 24)), ((6, 4), (9, 7)),
                                      ((3, 3), (3, 3)), ((5, 5), (1, 2))])
def test_bilinear_resize_by_hand(size, out):
    a = rand(2, 3, *size)
    y = auxiliary.resize_bilinear(a, out).array
    numpy.testing.assert_allclose(y, hand_resize(a, out), rtol=1e-12,
                                  atol=1e-14)
    if out[0] > 1 and out[1] > 1:    # the corners are the input's
        numpy.testing.assert_array_equal(y[:, :, ::out[0] - 1,
                                           ::out[1] - 1],
                                         a[:, :, ::size[0] - 1,
                                           ::size[1] - 1])
    if out == size:
        numpy.testing.assert_allclose(y, a, rtol=1e-14)


@pytest.mark.parametrize('fn,out', [
    (resampling.adaptive_average_pooling_2d, (2, 3)),
    (resampling.resize_bilinear, (7, 6))])
def test_resampling_gradients(fn, out):
    a = rand(2, 3, 5, 4)
    gy = rand(2, 3, *out, seed=1)
    gradient_check.check_backward(lambda v: fn(v, out), a, gy, dtype=F64,
                                  atol=1e-8, rtol=1e-7)


# -- DGL ----------------------------------------------------------------------

def hand_dgl(aux, h):
    """DGL's MLP-SR auxiliary net, step by step (see its module)."""
    if h.ndim == 4:
        height, width = h.shape[2:]
        h = hand_pool(h, (math.ceil(height / 4), math.ceil(width / 4)))
        for conv, bn in zip(aux.convs, aux.conv_bns):
            h = relu(hand_bn(hand_conv(h, conv), bn))
        h = hand_pool(h, (2, 2))
    h = h.reshape(len(h), -1)
    for fc, bn in zip(aux.fcs, aux.fc_bns):
        h = relu(hand_bn(hand_linear(h, fc), bn))
    return hand_linear(h, aux.out)


@pytest.mark.parametrize('h_shape,reduced,width', [
    ((32, 22, 22), (6, 6), 128),       # the paper's ResNet, stage 1
    ((64, 11, 11), (3, 3), 256),       # stage 2
    ((6, 4, 4), (1, 1), 24),           # a tiny map: pooled up to 2x2
    ((20,), None, 20)])                # a flat h: the MLP alone
def test_dgl_auxiliary_by_hand(h_shape, reduced, width):
    with float64_links():
        aux = DGLAuxiliary(h_shape, K)
    assert getattr(aux, 'reduced', None) == reduced
    assert [fc.W.shape for fc in aux.fcs] == [(width, width)] * 3
    assert aux.out.W.shape == (K, width)
    if reduced:
        assert [c.W.shape for c in aux.convs] == [(h_shape[0],) * 2 +
                                                  (1, 1)] * 3
        assert all(c.b is None for c in aux.convs)
    for p in aux.params():       # biases and BN shifts away from zero too
        p.array[...] += 0.1 * rand(*p.shape, seed=p.size)
    h = rand(5, *h_shape)
    y = aux(h)
    assert y.shape == (5, K)
    numpy.testing.assert_allclose(y.array, hand_dgl(aux, h), rtol=1e-10,
                                  atol=1e-12)
    loss, y2, values = aux.local_loss(h, None, labels(5))
    assert values == {}
    assert float(loss.array) == pytest.approx(
        hand_cross_entropy(hand_dgl(aux, h), labels(5)), rel=1e-10)


# -- InfoPro ------------------------------------------------------------------

def hand_unit_range(x):
    y = numpy.empty_like(x)
    for b in range(len(x)):
        for c in range(x.shape[1]):
            lo, hi = x[b, c].min(), x[b, c].max()
            y[b, c] = (x[b, c] - lo) / (hi - lo)
    return y


def hand_infopro(aux, h, x, t):
    """λ1·BCE(σ(decoder(h)), x in [0, 1]) + λ2·CE(classifier(h), t)."""
    c = aux.classifier
    a = relu(hand_bn(hand_conv(h, c.conv), c.bn)).mean(axis=(2, 3))
    y = hand_linear(relu(hand_linear(a, c.fc1)), c.fc2)
    d = aux.decoder
    a = hand_resize(h, x.shape[2:]) if h.shape[2:] != x.shape[2:] else h
    z = hand_conv(relu(hand_bn(hand_conv(a, d.conv1), d.bn)), d.conv2)
    p = 1 / (1 + numpy.exp(-z))
    target = hand_unit_range(x)
    bce = -(target * numpy.log(p) + (1 - target) * numpy.log(1 - p)).mean()
    ce = hand_cross_entropy(y, t)
    return 5. * bce + aux.weight * ce, y, bce, ce


@pytest.mark.parametrize('h_shape,maps,stride', [
    ((32, 22, 22), 64, 2),     # larger than 8x8: twice the maps, stride 2
    ((16, 32, 32), 32, 2),     # as InfoPro's 16 -> 32 of a He ResNet
    ((64, 8, 8), 64, 1),       # the last stage's size: kept, stride 1
    ((64, 11, 11), 128, 2)])
def test_infopro_classifier_is_built_from_hs_shape(h_shape, maps, stride):
    aux = InfoProAuxiliary(h_shape, (3, 24, 24), K)
    conv = aux.classifier.conv
    assert conv.W.shape == (maps, h_shape[0], 3, 3) and conv.b is None
    assert conv.stride == (stride, stride) and conv.pad == (1, 1)
    assert aux.classifier.fc1.W.shape == (128, maps)
    assert aux.decoder.conv1.W.shape == (12, h_shape[0], 3, 3)
    assert aux.decoder.conv2.W.shape == (3, 12, 3, 3)


@pytest.mark.parametrize('h_shape,in_shape', [((4, 6, 6), (3, 12, 12)),
                                              ((5, 8, 8), (3, 8, 8))])
@pytest.mark.parametrize('weight', [0.5, 2.0])
def test_infopro_local_loss_by_hand(h_shape, in_shape, weight):
    with float64_links():
        aux = InfoProAuxiliary(h_shape, in_shape, K, weight=weight)
    for p in aux.params():
        p.array[...] += 0.1 * rand(*p.shape, seed=p.size)
    h, x, t = rand(6, *h_shape), 3 * rand(6, *in_shape, seed=1), labels(6)
    loss, y, values = aux.local_loss(h, x, t)
    want, y_hand, bce, ce = hand_infopro(aux, h, x, t)
    numpy.testing.assert_allclose(y.array, y_hand, rtol=1e-10)
    assert float(values['reconstruction'].array) == pytest.approx(bce,
                                                                  rel=1e-10)
    assert float(values['classification'].array) == pytest.approx(ce,
                                                                  rel=1e-10)
    assert float(loss.array) == pytest.approx(want, rel=1e-10)
    assert float(loss.array) == pytest.approx(5 * bce + weight * ce,
                                              rel=1e-10)
    numpy.testing.assert_array_equal(aux(h).array, y.array)


def test_infopro_flat_h_or_input_uses_mlps():
    with float64_links():
        aux = InfoProAuxiliary((20,), (3, 8, 8), K)
    assert not aux.classifier.spatial and not aux.decoder.spatial
    h, x, t = rand(4, 20), rand(4, 3, 8, 8, seed=1), labels(4)
    loss, y, values = aux.local_loss(h, x, t)
    assert y.shape == (4, K) and aux.decoder(h).shape == x.shape
    d = aux.decoder
    z = hand_linear(relu(hand_bn(hand_linear(h, d.fc1), d.bn)), d.fc2)
    numpy.testing.assert_allclose(d(h).array, z.reshape(x.shape), rtol=1e-10)
    with float64_links():
        aux = InfoProAuxiliary((4, 3, 3), (12,), K)     # a flat input
    x = rand(4, 12, seed=2)
    loss, y, values = aux.local_loss(rand(4, 4, 3, 3), x, t)
    assert aux.decoder(rand(4, 4, 3, 3)).shape == (4, 12)
    assert numpy.isfinite(float(loss.array))


def test_unit_range_and_bce():
    x = numpy.array([[[[-1., 0.], [3., 1.]], [[2., 2.], [2., 2.]]]])
    numpy.testing.assert_array_equal(infopro.unit_range(x), [[
        [[0., .25], [1., .5]], [[0., 0.], [0., 0.]]]])  # a constant: zeros
    numpy.testing.assert_array_equal(
        infopro.unit_range(numpy.array([[-1., 0., 3.]])), [[0., .25, 1.]])
    z, target = rand(3, 7), numpy.random.RandomState(1).rand(3, 7)
    p = 1 / (1 + numpy.exp(-z))
    want = -(target * numpy.log(p) + (1 - target) * numpy.log(1 - p)).mean()
    assert float(infopro.binary_cross_entropy_with_logits(z, target).array) \
        == pytest.approx(want, rel=1e-12)
    # No overflow where σ(z) rounds to 0 or 1.
    big = numpy.array([[-800., 800.]])
    assert float(infopro.binary_cross_entropy_with_logits(
        big, numpy.array([[1., 0.]])).array) == pytest.approx(800.)


def test_infopro_weights_are_the_papers_k2():
    # blackfeather-wang/InfoPro-Pytorch, comand.sh, ResNet-110, K = 2:
    # --ixx_1 5 --ixy_1 0.5.
    assert infopro.RECONSTRUCTION_WEIGHT == 5.0
    assert registry.KINDS['infopro'].weight == infopro.CLASSIFIER_WEIGHT \
        == 0.5


# -- the registry -------------------------------------------------------------

def test_registry_builds_each_kind_and_checks_the_weight():
    assert registry.names() == ('dgl', 'infopro')
    assert registry.weighted() == ('infopro',)
    aux = registry.build_auxiliary('infopro', (4, 6, 6), (3, 12, 12),
                                   weight=2.)
    assert isinstance(aux, InfoProAuxiliary) and aux.weight == 2.
    assert registry.build_auxiliary('infopro', (4, 6, 6),
                                    (3, 12, 12)).weight == 0.5
    assert isinstance(registry.build_auxiliary('dgl', (4, 6, 6), (3, 8, 8)),
                      DGLAuxiliary)
    assert registry.build_auxiliary('dgl', (4, 6, 6), (3, 8, 8)).loss_func \
        is F.softmax_cross_entropy
    for call, message in [
            (lambda: registry.build_auxiliary('dgl', (4, 6, 6), (3, 8, 8),
                                              weight=1.),
             'local_weight applies to infopro only, not to dgl'),
            (lambda: registry.resolve_weight('vfbn', 1.),
             'local_weight applies to infopro only, not to vfbn'),
            (lambda: registry.resolve_weight('infopro', -1.),
             'local_weight must be finite and >= 0, got -1.0'),
            (lambda: registry.resolve_weight('infopro', float('nan')),
             'local_weight must be finite and >= 0, got nan'),
            (lambda: registry.build_auxiliary('greedy', (4,), (3,)),
             "unknown local-learning method 'greedy'; choose from dgl, "
             'infopro'),
            (lambda: registry.build_auxiliary('dgl', (4, 6), (3,)),
             'dgl needs h of shape (C, H, W) or (D,) with positive sizes, '
             'got (4, 6)')]:
        with pytest.raises(ValueError) as e:
            call()
        assert str(e.value) == message
    assert registry.resolve_weight('infopro', 0.) == 0.
    assert registry.resolve_weight('dgl', None) is None
