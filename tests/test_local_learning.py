"""The local-learning peers `dgl` and `infopro` as methods: built by
build_method on a user's chainer.Sequential, one step checked against finite
differences, snapshots, and the command line on the bundled sample."""
import argparse
import copy
import json
import os

import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest
from chainer.training import extensions

import chainer_vfbn
from chainer_vfbn import methods
from chainer_vfbn.auxiliary import DGLAuxiliary
from chainer_vfbn.auxiliary import InfoProAuxiliary
from support import load_script
from support import run_cli
from support import TINY
from support import OneBatch
from support import update
from support import optimizer_states

K = 10
IN_SHAPE = (3, 8, 8)
LR = 0.1
LOCAL = ('dgl', 'infopro')


def sequential():
    """A user's small CNN: conv-BN-ReLU | conv(stride 2)-ReLU-linear."""
    return chainer.Sequential(
        L.Convolution2D(3, 4, 3, pad=1), L.BatchNormalization(4), F.relu,
        L.Convolution2D(4, 6, 3, pad=1, stride=2), F.relu,
        L.Linear(6 * 4 * 4, K))


def batch(n=6, seed=0):
    rng = numpy.random.RandomState(seed)
    return (rng.randn(n, *IN_SHAPE), (numpy.arange(n) % K).astype(numpy.int32))


def build(method, seed=0, lr=LR, **kwargs):
    numpy.random.seed(seed)
    with chainer.using_config('dtype', numpy.float64):
        model = sequential()
        return model, methods.build_method(method, model, split_at=2,
                                           in_shape=IN_SHAPE, lr=lr,
                                           **kwargs)


def params(link):
    return {name: p.array.copy() for name, p in link.namedparams()}


def entries(p, n=6):
    """A few flat indices of a parameter, first and last included."""
    return sorted(set(numpy.linspace(0, p.size - 1, n).astype(int)))


def finite_difference(f, p, index, eps=1e-6):
    """(f(p + eps) - f(p - eps)) / 2 eps at one flat entry of p."""
    flat = p.array.reshape(-1)
    old = flat[index]
    flat[index] = old + eps
    up = f()
    flat[index] = old - eps
    down = f()
    flat[index] = old
    return (up - down) / (2 * eps)


# -- one step against finite differences -------------------------------------

@pytest.mark.parametrize('method', LOCAL)
def test_one_step_gradients_by_finite_differences(method):
    """The bottom and the auxiliary net get the gradient of the local loss
    alone, the top that of the task loss on the detached h; each takes its
    MomentumSGD step with it."""
    model, built = build(method, weight_decay=0.)
    bottom, top = built.modules
    aux = built.links[1]
    assert isinstance(aux, {'dgl': DGLAuxiliary,
                            'infopro': InfoProAuxiliary}[method])
    assert sorted(built.optimizers) == ['bottom', 'head', 'top']
    assert built.predictor is model and built.split_at == (2,)
    b0, a0, t0 = (copy.deepcopy(link) for link in (bottom, aux, top))
    before = [params(link) for link in (bottom, aux, top)]
    x, t = batch()
    updater = built.make_updater(OneBatch(x, t),
                                 chainer.dataset.concat_examples, None)
    report = update(updater)

    def local():
        return float(a0.local_loss(b0(x), x, t)[0].array)

    h = b0(x).array   # what the top saw: h before the bottom's step

    def task():
        return float(F.softmax_cross_entropy(t0(h), t).array)

    def through_top():   # the task loss as a function of the bottom
        return float(F.softmax_cross_entropy(t0(b0(x)), t).array)

    leak = []
    for link, copied, loss in ((bottom, b0, local), (aux, a0, local),
                               (top, t0, task)):
        mine = dict(copied.namedparams())
        for name, p in link.namedparams():
            for i in entries(p):
                want = finite_difference(loss, mine[name], i)
                assert p.grad.reshape(-1)[i] == pytest.approx(
                    want, rel=1e-5, abs=1e-8), (method, name, i)
                if link is bottom:
                    leak.append(abs(finite_difference(through_top,
                                                      mine[name], i)))
    # The task loss does depend on the bottom, so a gradient of it leaking
    # into the bottom would have failed the comparison above.
    assert max(leak) > 1e-3
    for link, old in zip((bottom, aux, top), before):
        for name, p in link.namedparams():   # MomentumSGD's first step
            numpy.testing.assert_allclose(p.array, old[name] - LR * p.grad,
                                          rtol=1e-12, atol=1e-14)
    assert report['local/loss'] == pytest.approx(local(), rel=1e-10)
    assert report['main/loss'] == pytest.approx(task(), rel=1e-10)
    extra = {'dgl': set(), 'infopro': {'local/reconstruction',
                                       'local/classification'}}[method]
    assert set(report) == {'main/loss', 'main/accuracy', 'local/loss',
                           'local/accuracy'} | extra


@pytest.mark.parametrize('method', LOCAL)
def test_both_losses_fall_on_one_batch(method):
    _, built = build(method)
    x, t = batch(10)
    updater = built.make_updater(OneBatch(x, t),
                                 chainer.dataset.concat_examples, None)
    first, *_, last = [update(updater) for _ in range(15)]
    assert last['main/loss'] < 0.7 * first['main/loss']
    # InfoPro's reconstruction has a floor (the targets' own entropy) and
    # its classifier learns at lambda2 = 0.5: each part falls, slower.
    keys = {'dgl': ['local/loss'],
            'infopro': ['local/loss', 'local/classification',
                        'local/reconstruction']}[method]
    for key in keys:
        assert last[key] < first[key], (key, first, last)
    if method == 'dgl':
        assert last['local/loss'] < 0.7 * first['local/loss']


def test_infopro_local_weight_reaches_the_loss():
    x, t = batch()
    losses = {}
    for weight in (0., 0.5, 3.):
        _, built = build('infopro', local_weight=weight)
        assert built.links[1].weight == weight
        r = update(built.make_updater(OneBatch(x, t),
                                      chainer.dataset.concat_examples, None))
        losses[weight] = r
        assert r['local/loss'] == pytest.approx(
            5 * r['local/reconstruction'] + weight
            * r['local/classification'], rel=1e-10)
    # Same initialization, so the parts agree across weights.
    assert losses[0.]['local/classification'] == pytest.approx(
        losses[3.]['local/classification'], rel=1e-10)
    with pytest.raises(ValueError, match='applies to infopro only, not to '
                       'dgl'):
        build('dgl', local_weight=1.)
    with pytest.raises(ValueError, match='applies to infopro only, not to '
                       'layerwise'):
        build('layerwise', local_weight=1.)


@pytest.mark.parametrize('method', LOCAL)
def test_a_flat_split_and_a_named_chain(method):
    """A cut after the flattening layer of an MLP: h is (D,)."""
    numpy.random.seed(0)
    model = chainer.Sequential(L.Linear(3 * 8 * 8, 16), F.relu,
                               L.Linear(16, K))
    built = chainer_vfbn.build_method(method, model, split_at=1,
                                      in_shape=IN_SHAPE)
    x, t = batch()
    x = x.astype(numpy.float32)
    before = params(model)
    update(built.make_updater(OneBatch(x, t),
                              chainer.dataset.concat_examples, None))
    assert all(not numpy.array_equal(before[n], p.array)
               for n, p in model.namedparams())
    net = chainer_vfbn.models.resnet_cifar('resnet8-paper')
    built = chainer_vfbn.build_method(method, net, split_at='stage1_unit1')
    assert built.modules[0].layer_names[-1] == 'stage1_unit1'


# -- snapshots ---------------------------------------------------------------

def persistents(link):
    return {name + '/' + key: numpy.array(getattr(sub, key))
            for name, sub in link.namedlinks() for key in sub._persistent}


@pytest.mark.parametrize('method', LOCAL)
def test_snapshot_resumes_exactly(tmp_path, method):
    x, t = batch(12)

    def make(seed):
        model, built = build(method, seed=seed)
        it = chainer.iterators.SerialIterator(
            chainer.datasets.TupleDataset(x, t), 4, shuffle=True)
        return built.make_updater(it, chainer.dataset.concat_examples,
                                  None), built.links

    numpy.random.seed(5)
    updater, links = make(0)
    trainer = chainer.training.Trainer(updater, (2, 'iteration'),
                                       out=str(tmp_path))
    trainer.extend(extensions.snapshot(filename='snapshot'),
                   trigger=(2, 'iteration'))
    trainer.run()
    resumed, links2 = make(1)           # another initialization
    trainer2 = chainer.training.Trainer(resumed, (3, 'iteration'),
                                        out=str(tmp_path))
    chainer.serializers.load_npz(str(tmp_path / 'snapshot'), trainer2)
    assert resumed.iteration == 2
    for link, link2 in zip(links, links2):     # the net and the aux net
        for d, d2 in ((params(link), params(link2)),
                      (persistents(link), persistents(link2))):
            assert d.keys() == d2.keys() and d
            for k in d:
                numpy.testing.assert_array_equal(d2[k], d[k], err_msg=k)
    states, states2 = optimizer_states(updater), optimizer_states(resumed)
    assert states.keys() == states2.keys()
    assert any(k.startswith('head') and k.endswith('/v') for k in states)
    for k in states:
        numpy.testing.assert_array_equal(states2[k], states[k], err_msg=k)
    assert update(resumed) == update(updater)
    for link, link2 in zip(links, links2):
        for k, v in params(link).items():
            numpy.testing.assert_array_equal(params(link2)[k], v)


# -- the command line, on the bundled sample ----------------------------------

def read_json(out, name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)


@pytest.mark.parametrize('method', LOCAL)
def test_the_command_line_trains_and_resumes(tmp_path, method):
    out = str(tmp_path / method)
    args = TINY + ['--method', method, '--batchsize', '10', '--split-at',
                   'stage1_unit1', '--out', out]
    r = run_cli(args + ['--iterations', '2'])
    assert r.returncode == 0, r.stderr[-3000:]
    recorded = read_json(out, 'args.json')['args']
    if method == 'infopro':
        assert recorded['local_weight'] == 0.5
    else:
        assert 'local_weight' not in recorded
    r = run_cli(args + ['--iterations', '3'])   # resumes from iteration 2
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'resumed from' in r.stdout and 'at iteration 2' in r.stdout
    log = read_json(out, 'log')
    assert [e['iteration'] for e in log] == [2, 3]
    for e in log:
        assert numpy.isfinite(e['local/loss'])
        if method == 'infopro':
            assert e['local/loss'] == pytest.approx(
                5 * e['local/reconstruction'] + 0.5
                * e['local/classification'], rel=1e-5)
    summary = read_json(out, 'summary.json')
    assert summary['method'] == method


def test_local_weight_on_the_command_line(tmp_path):
    script = load_script()
    config = script.parse_config(['--method', 'infopro', '--local-weight',
                                  '2'])
    assert config.local_weight == 2. and config.options['local_weight'] == 2.
    # The default is the method's, resolved where it is built, once.
    config = script.parse_config(['--method', 'infopro'])
    assert config.local_weight is None
    config = config.resolved(argparse.Namespace(alpha_gs=None,
                                                local_weight=0.5))
    assert config.local_weight == config.options['local_weight'] == 0.5
    for method in ('dgl', 'vfbn', 'bp'):
        config = script.parse_config(['--method', method])
        assert config.local_weight is None
        assert 'local_weight' not in config.options
    assert 'infopro: lambda2' in ' '.join(
        script.build_parser().format_help().split())
    # Its bounds are checked where it is resolved (build_method), still
    # before --out is touched.
    r = run_cli(TINY + ['--method', 'infopro', '--local-weight', '-1',
                        '--split-at', 'stage1_unit1', '--out',
                        str(tmp_path / 'o')], timeout=120)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        'train_cifar.py: error: local_weight must be finite and >= 0, got '
        '-1.0']
    r = run_cli(['--method', 'dgl', '--local-weight', '1', '--out',
                 str(tmp_path / 'o')], timeout=60)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        'train_cifar.py: error: --local-weight applies to infopro only, not '
        'to --method dgl']
    assert not os.path.exists(str(tmp_path / 'o'))
