"""chainer_vfbn.divergence: the checks both trainers share."""

import numpy
import pytest

import chainer

from chainer_vfbn import split_step
from chainer_vfbn.divergence import check_finite
from chainer_vfbn.divergence import Diverged
from chainer_vfbn.divergence import GrowthWatch


@pytest.mark.parametrize('bad', [numpy.nan, numpy.inf, -numpy.inf])
def test_check_finite(bad):
    check_finite('x', numpy.ones(3, numpy.float32))
    value = numpy.ones(3, numpy.float32)
    value[1] = bad
    with pytest.raises(Diverged) as e:
        check_finite('synth/loss', chainer.Variable(value))
    assert e.value.what == 'synth/loss'
    e.value.iteration = 7
    assert str(e.value) == 'synth/loss is not finite (NaN or inf) at ' \
        'iteration 7'


def test_growth_watch_warns_once_past_the_factor():
    watch = GrowthWatch(['synth/loss'], factor=1e3)
    assert watch.check({'synth/loss': 2.0, 'iteration': 1}) == []
    assert watch.check({'synth/loss': 1.0, 'iteration': 2}) == []
    assert watch.check({'synth/loss': 999.0, 'iteration': 3}) == []
    lines = watch.check({'synth/loss': 1001.0, 'iteration': 4})
    assert len(lines) == 1
    assert 'synth/loss grew from 1 to 1e+03' in lines[0]
    assert 'iteration 4' in lines[0]
    assert watch.check({'synth/loss': 1e6, 'iteration': 5}) == []


class _Const(chainer.Link):
    def __init__(self, value):
        super(_Const, self).__init__()
        self.value = value
        with self.init_scope():
            self.w = chainer.Parameter(numpy.ones((), numpy.float32))

    def forward(self, h, t):
        return chainer.functions.broadcast_to(self.w * self.value, h.shape)


def test_split_step_refuses_non_finite_grad_synth_and_loss():
    h = numpy.ones((2, 3), numpy.float32)
    t = numpy.zeros(2, numpy.int32)
    with pytest.raises(Diverged) as e:
        split_step.synthesize(_Const(numpy.nan), h, t, name='synth0')
    assert e.value.what == 'synth0: the synthetic gradient'
    synth = _Const(1e30)
    opt = chainer.optimizers.SGD(lr=0.1)
    opt.setup(synth)
    prediction, _ = split_step.synthesize(synth, h, t)
    with pytest.raises(Diverged) as e, numpy.errstate(over='ignore'):
        split_step.regress(synth, opt, prediction, -h * 1e30, name='synth1')
    assert e.value.what == 'synth1/loss'
    assert synth.w.array == 1  # no step was taken on the non-finite loss
