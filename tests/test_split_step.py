"""The per-split science of chainer_vfbn.split_step, in one process."""
import chainer_vfbn  # NOQA  (before chainer)

import chainer  # NOQA
import chainer.links as L  # NOQA
import numpy  # NOQA
import pytest  # NOQA

from chainer_vfbn import split_step  # NOQA


class _Table(chainer.Link):
    """``synth(h, t) = b``: a prediction that is its own parameter."""

    def __init__(self, b):
        super().__init__()
        with self.init_scope():
            self.b = chainer.Parameter(numpy.array(b, numpy.float32))

    def forward(self, h, t):
        return self.b * 1


def test_synth_names():
    assert split_step.synth_names(1) == ['synth']
    assert split_step.synth_names(3) == ['synth0', 'synth1', 'synth2']
    assert split_step.synth_name(6, 7) == 'synth6'


def test_synthesize_applies_the_prediction_over_the_target_factor():
    h = numpy.ones((4, 3), numpy.float32)
    synth = _Table(numpy.full((4, 3), 8., numpy.float32))
    prediction, applied = split_step.synthesize(synth, h, None)
    numpy.testing.assert_array_equal(applied, 8.)
    prediction, applied = split_step.synthesize(synth, h, None,
                                                'per-example')
    numpy.testing.assert_array_equal(prediction.array, 8.)
    numpy.testing.assert_array_equal(applied, 2.)    # 8 / B


def test_synthesize_refuses_a_gradient_of_another_shape():
    synth = _Table(numpy.zeros((4, 2), numpy.float32))
    with pytest.raises(ValueError, match=r'synthesizer synth1 returned a '
                       r'gradient of shape \(4, 2\) for an activation of '
                       r'shape \(4, 3\)'):
        split_step.synthesize(synth, numpy.zeros((4, 3), numpy.float32),
                              None, name='synth1')


def test_agreement_closed_forms():
    d = numpy.array([[1., 0.]], numpy.float32)
    s = numpy.array([[1., 1.]], numpy.float32)
    v = split_step.agreement(d, s)
    assert float(v['cos']) == pytest.approx(2 ** -0.5)
    assert float(v['relerr']) == pytest.approx(1.)
    assert float(v['norm_ratio']) == pytest.approx(2 ** 0.5)
    zero = split_step.agreement(numpy.zeros_like(d), numpy.zeros_like(s))
    assert all(float(x) == 0 for x in zero.values())


@pytest.mark.parametrize('scale,factor', [('batch-mean', 1),
                                          ('per-example', 2)])
def test_regress_is_one_step_of_eq3(scale, factor):
    """SGD on ||factor·δ - b||²: b <- b - lr · 2 (b - factor·δ)."""
    b = numpy.array([[1., 2.], [3., 4.]], numpy.float32)
    grad_true = numpy.array([[0.5, 0.], [1., -1.]], numpy.float32)
    synth = _Table(b)
    opt = chainer.optimizers.SGD(lr=0.1)
    opt.setup(synth)
    prediction, _ = split_step.synthesize(synth, numpy.zeros_like(b), None,
                                          scale)
    values = split_step.regress(synth, opt, prediction, grad_true, scale)
    target = factor * grad_true
    assert float(values['loss']) == pytest.approx(((b - target) ** 2).sum())
    numpy.testing.assert_allclose(synth.b.array,
                                  b - 0.1 * 2 * (b - target), rtol=1e-6)
    expected = split_step.agreement(grad_true, b / factor)
    for key in ('cos', 'relerr', 'norm_ratio'):
        assert float(values[key]) == pytest.approx(float(expected[key]))


def test_backward_from_and_top_backward():
    """δ̂ into a linear module: ∂W = δ̂ᵀ x; the top leaves δ on its input."""
    rng = numpy.random.RandomState(0)
    x = rng.standard_normal((3, 4)).astype(numpy.float32)
    bottom = L.Linear(4, 5, nobias=True)
    h = bottom(x)
    grad = rng.standard_normal((3, 5)).astype(numpy.float32)
    split_step.backward_from(bottom, h, grad)
    numpy.testing.assert_allclose(bottom.W.grad, grad.T @ x, rtol=1e-5)
    assert h.creator is None      # the graph is cut

    top = L.Linear(5, 2)
    inp = chainer.Variable(h.array)
    t = numpy.array([0, 1, 1], numpy.int32)
    y, loss = split_step.top_backward(
        top, inp, t, chainer.functions.softmax_cross_entropy)
    p = chainer.functions.softmax(y).array
    p[numpy.arange(3), t] -= 1
    numpy.testing.assert_allclose(inp.grad, p @ top.W.array / 3, rtol=1e-5,
                                  atol=1e-7)
