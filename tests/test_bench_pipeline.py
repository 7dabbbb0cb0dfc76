"""chainer_vfbn.experiments.bench.pipeline: each rank's piece is split_step's science,
and the bounds of a 2-rank pipeline."""
import numpy
import pytest

from chainer_vfbn import split_step
from chainer_vfbn.experiments.bench import pipeline
from chainer_vfbn.models import resnet_cifar


def test_pieces_run_the_split_step_functions(monkeypatch):
    """The benchmark times the trainers' own step (STYLE rule 11), not a
    copy: each piece calls split_step's functions, and Eq. 3's piece trains
    the synthesizer on the true gradient."""
    calls = []
    for name in ('synthesize', 'backward_from', 'top_backward', 'regress'):
        def spy(*args, _f=getattr(split_step, name), _name=name, **kw):
            calls.append(_name)
            return _f(*args, **kw)
        monkeypatch.setattr(split_step, name, spy)
    numpy.random.seed(0)
    net = resnet_cifar('resnet8-paper')
    h_shape, steps = pipeline.rank_steps(net, 'stage2_unit1', 'vfbn-linear',
                                         batchsize=2)
    assert h_shape == (2, 64, 11, 11)
    expected = {'bottom': ['backward_from'], 'top': ['top_backward'],
                'dhat': ['synthesize'],
                'dhat_train': ['synthesize', 'regress']}
    for name, want in expected.items():
        del calls[:]
        steps[name]()
        assert calls == want, name


def test_bounds_of_known_costs():
    b = pipeline.pipeline_bounds({'bottom': 3., 'top': 1., 'dhat': 1.,
                                  'dhat_train': 2.})
    assert b == {'free': pytest.approx(4 / 3), 'above': pytest.approx(1.),
                 'below': pytest.approx(4 / 6)}


def test_rank_costs_time_every_piece_at_every_split(monkeypatch):
    ticks = iter(range(1000))
    monkeypatch.setattr(pipeline.time, 'perf_counter',
                        lambda: float(next(ticks)))
    numpy.random.seed(0)
    net = resnet_cifar('resnet8-paper')
    cost = pipeline.rank_costs(net, ['stage1_unit1', 'stage2_unit1'], 'vfbn',
                               batchsize=2)
    assert list(cost) == ['stage1_unit1', 'stage2_unit1']
    for split, shape in (('stage1_unit1', [2, 32, 22, 22]),
                         ('stage2_unit1', [2, 64, 11, 11])):
        # Each of the 3 timed calls reads the clock twice: 1 s apiece.
        assert cost[split] == {'bottom': 1., 'top': 1., 'dhat': 1.,
                               'dhat_train': 1., 'h': shape}


def test_print_costs_prints_the_bounds(capsys):
    pipeline.print_costs({'stage2_unit1': {
        'bottom': 3., 'top': 1., 'dhat': 1., 'dhat_train': 2.,
        'h': [2, 64, 11, 11]}}, 'vfbn')
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ['split', 'after', 'h', 'bottom', 'top', 'δ̂',
                                'δ̂+train', 'bound', 'above', 'bound',
                                'below']
    assert lines[1].split() == ['stage2_unit1', '64x11x11', '3.000', '1.000',
                                '1.000', '2.000', '1.00x', '0.67x']
    assert lines[2].startswith('(seconds per step at 1 thread, best of 3, '
                               'updates included; vfbn synthesizer;')
