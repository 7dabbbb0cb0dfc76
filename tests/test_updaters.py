"""Tests of chainer_vfbn.updaters: gradients checked against hand computations.

The hand computations re-run the modules and synthesizers from deep copies
taken before the update, on the same batch, and compare the gradients,
reports and parameter updates the updater produced.
"""
import copy
import importlib.util

import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest
from chainer import optimizers
from chainer.training import extensions

import chainer_vfbn
from chainer_vfbn.models import resnet_cifar
from chainer_vfbn.models.resnet import Head
from chainer_vfbn.updaters import LayerwiseUpdater
from chainer_vfbn.updaters import SyntheticGradientUpdater
from support import update
from support import optimizer_states

ARCH = 'resnet8-paper'   # n = 1: stem, stage{1,2,3}_unit1, head; 24x24 input
BATCH = 4
N_CLASS = 10
ADAM_BETA1, ADAM_BETA2, ADAM_EPS = 0.9, 0.999, 1e-8   # chainer's defaults


# -- tiny synthesizers (the synth(h, t) -> grad_synth interface) -----------

class TinyDNI(chainer.Chain):
    """Jaderberg-style δ̂ = W [h, y] with a 1x1 convolution (cf. Eq. 7)."""

    def __init__(self, channels, n_class=N_CLASS):
        super().__init__()
        self.n_class = n_class
        with self.init_scope():
            self.conv = L.Convolution2D(channels + n_class, channels, 1)

    def forward(self, h, t):
        xp = chainer.backend.get_array_module(h)
        b, _, height, width = h.shape
        y = xp.eye(self.n_class, dtype=h.dtype)[t][:, :, None, None]
        y = xp.broadcast_to(y, (b, self.n_class, height, width))
        return self.conv(F.concat((h, y), axis=1))


class TinyVFBN(chainer.Chain):
    """VFBN with v_f = GAP + linear: δ̂ = ∂ℓ(t, v_f(h))/∂h (Eq. 6)."""

    def __init__(self, channels, n_class=N_CLASS):
        super().__init__()
        with self.init_scope():
            self.fc = L.Linear(channels, n_class)

    def forward(self, h, t):
        with chainer.force_backprop_mode():
            y = self.fc(F.average(h, axis=(2, 3)))
            loss = F.softmax_cross_entropy(y, t, enable_double_backprop=True)
            grad, = chainer.grad([loss], [h], enable_double_backprop=True)
        return grad


SYNTHS = {'dni': TinyDNI, 'vfbn': TinyVFBN}


# -- helpers ----------------------------------------------------------------

def make_batch(seed=0, batch=BATCH, insize=24):
    rng = numpy.random.RandomState(seed)
    x = rng.randn(batch, 3, insize, insize).astype(numpy.float32)
    t = rng.randint(0, N_CLASS, size=batch).astype(numpy.int32)
    return x, t


def make_iterator(x, t):
    dataset = chainer.datasets.TupleDataset(x, t)
    return chainer.iterators.SerialIterator(dataset, len(x), shuffle=False)


def momentum_sgd(link, lr=0.1):
    opt = optimizers.MomentumSGD(lr=lr, momentum=0.9)
    opt.setup(link)
    return opt


def adam(link, alpha):
    opt = optimizers.Adam(alpha=alpha)
    opt.setup(link)
    return opt


def make_synthetic(splits, synth='vfbn', alpha_gs=1e-3, lr=0.1, seed=0,
                   loss_func=F.softmax_cross_entropy, synth_factory=None,
                   data_seed=None, target_scale='batch-mean'):
    """Net cut at ``splits``, one synthesizer per split, and their updater.

    ``seed`` seeds the initialization and, unless ``data_seed`` is given,
    the random batch.
    """
    numpy.random.seed(seed)
    net = resnet_cifar(ARCH)
    modules = chainer_vfbn.split(net, splits)
    shapes = chainer_vfbn.forward_shapes(net, net.in_shape)
    if synth_factory is None:
        synth_factory = lambda name: SYNTHS[synth](shapes[name][0])  # NOQA
    synths = [synth_factory(name) for name in splits]
    names = (['synth'] if len(synths) == 1 else
             ['synth%d' % k for k in range(len(synths))])
    opts = {'module%d' % k: momentum_sgd(m, lr) for k, m in enumerate(modules)}
    opts.update({name: adam(s, alpha_gs) for name, s in zip(names, synths)})
    x, t = make_batch(seed if data_seed is None else data_seed)
    updater = SyntheticGradientUpdater(make_iterator(x, t), modules, synths,
                                       opts, loss_func=loss_func,
                                       target_scale=target_scale)
    return dict(net=net, modules=modules, synths=synths, names=names,
                opts=opts, x=x, t=t, updater=updater)


def grads(link):
    return {name: p.grad.copy() for name, p in link.namedparams()}


def params(link):
    return {name: p.array.copy() for name, p in link.namedparams()}


def assert_dicts_close(actual, expected, **kwargs):
    assert sorted(actual) == sorted(expected)
    for name in expected:
        numpy.testing.assert_allclose(actual[name], expected[name],
                                      err_msg=name, **kwargs)


def backward_from(h, grad):
    """Back-propagate ``grad`` from ``h``, after clearing the links' grads."""
    h.grad = grad
    h.backward()


def momentum_first_step(before, grad, lr):
    # MomentumSGD's first step: v = -lr * g, p += v.
    return {name: before[name] - lr * grad[name] for name in before}


def adam_first_step(before, grad, alpha):
    alpha_t = alpha * numpy.sqrt(1 - ADAM_BETA2) / (1 - ADAM_BETA1)
    out = {}
    for name, p in before.items():
        g = grad[name].astype(numpy.float64)
        m = (1 - ADAM_BETA1) * g
        v = (1 - ADAM_BETA2) * g * g
        out[name] = p - alpha_t * m / (numpy.sqrt(v) + ADAM_EPS)
    return out


def agreement(grad_true, grad_synth):
    """Hand Eq. 3 loss, cosine, relative error and norm ratio in float64."""
    d = grad_true.astype(numpy.float64).ravel()
    s = grad_synth.astype(numpy.float64).ravel()
    loss = numpy.sum((d - s) ** 2)
    # Floored like the updater's, so a zero δ̂ (a zero-initialized DNI
    # output layer) gives cos 0 rather than NaN.
    tiny = numpy.finfo(grad_true.dtype).tiny
    cos = d.dot(s) / max(numpy.linalg.norm(d) * numpy.linalg.norm(s), tiny)
    norm_d = max(numpy.linalg.norm(d), tiny)
    return loss, cos, numpy.sqrt(loss) / norm_d, numpy.linalg.norm(s) / norm_d


def hand_two_modules(bottom, top, synth, x, t):
    """Hand computation of one K = 2 step on copies; returns what it saw."""
    h = bottom(x)
    grad_synth = synth(chainer.Variable(h.array), t)
    bottom.cleargrads()
    backward_from(h, grad_synth.array)
    h_top = chainer.Variable(h.array)
    loss = F.softmax_cross_entropy(top(h_top), t)
    top.cleargrads()
    loss.backward()
    grad_true = h_top.grad
    synth_loss = F.sum(F.squared_difference(grad_synth, grad_true))
    synth.cleargrads()
    synth_loss.backward()
    return dict(h=h.array, grad_synth=grad_synth.array, grad_true=grad_true,
                loss=float(loss.array), bottom=grads(bottom), top=grads(top),
                synth=grads(synth))


def walk_graph(variable):
    """All variable nodes reachable backwards from ``variable``."""
    seen, stack = {}, [variable.node]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        if node.creator_node is not None:
            stack.extend(node.creator_node.inputs)
    return list(seen.values())


# -- SyntheticGradientUpdater, K = 2 -----------------------------------------

@pytest.mark.parametrize('synth', ['dni', 'vfbn'])
@pytest.mark.parametrize('alpha_gs', [0.0, 1e-3])
def test_two_modules_gradients_updates_and_reports(synth, alpha_gs):
    lr = 0.1
    s = make_synthetic(['stage2_unit1'], synth, alpha_gs=alpha_gs, lr=lr)
    bottom, top = s['modules']
    synth_link = s['synths'][0]
    copies = [copy.deepcopy(link) for link in (bottom, top, synth_link)]
    before = [params(link) for link in (bottom, top, synth_link)]

    report = update(s['updater'])
    hand = hand_two_modules(*copies, s['x'], s['t'])

    # The bottom got exactly the gradients implied by grad_synth ...
    assert_dicts_close(grads(bottom), hand['bottom'], rtol=1e-6, atol=1e-9)
    # ... the top exactly the back-propagated ones on the same h ...
    assert_dicts_close(grads(top), hand['top'], rtol=1e-6, atol=1e-9)
    # ... and each took one MomentumSGD step with them.
    assert_dicts_close(params(bottom),
                       momentum_first_step(before[0], hand['bottom'], lr),
                       rtol=1e-6, atol=1e-7)
    assert_dicts_close(params(top),
                       momentum_first_step(before[1], hand['top'], lr),
                       rtol=1e-6, atol=1e-7)
    # The synthesizer was trained on Eq. 3 against grad_true by Adam; with
    # alpha_gs = 0 it stays bit-identical to its initialization.
    assert_dicts_close(grads(synth_link), hand['synth'], rtol=1e-5, atol=1e-9)
    if alpha_gs == 0:
        for name, p in synth_link.namedparams():
            numpy.testing.assert_array_equal(p.array, before[2][name])
    else:
        expected = adam_first_step(before[2], hand['synth'], alpha_gs)
        assert_dicts_close(params(synth_link), expected, rtol=1e-5, atol=1e-8)
        for name, p in synth_link.namedparams():
            assert not numpy.array_equal(p.array, before[2][name]), name

    loss, cos, relerr, norm_ratio = agreement(hand['grad_true'],
                                              hand['grad_synth'])
    assert sorted(report) == ['main/accuracy', 'main/loss', 'synth/cos',
                              'synth/loss', 'synth/norm_ratio',
                              'synth/relerr']
    assert report['synth/norm_ratio'] == pytest.approx(norm_ratio, rel=1e-5,
                                                       abs=1e-7)
    assert report['main/loss'] == pytest.approx(hand['loss'], rel=1e-6)
    assert report['synth/loss'] == pytest.approx(loss, rel=1e-5)
    assert report['synth/cos'] == pytest.approx(cos, rel=1e-5, abs=1e-6)
    assert report['synth/relerr'] == pytest.approx(relerr, rel=1e-5)
    assert -1 <= report['synth/cos'] <= 1 and report['synth/relerr'] > 0


def test_top_loss_graph_stops_at_a_fresh_variable():
    captured = {}

    def loss_func(y, t):
        captured['loss'] = F.softmax_cross_entropy(y, t)
        return captured['loss']

    s = make_synthetic(['stage2_unit1'], loss_func=loss_func)
    bottom, top = s['modules']
    h_ref = copy.deepcopy(bottom)(s['x']).array
    update(s['updater'])

    nodes = walk_graph(captured['loss'])
    node_ids = {id(n) for n in nodes}
    assert not node_ids & {id(p.node) for p in bottom.params()}
    top_ids = {id(p.node) for p in top.params()}
    assert top_ids <= node_ids
    # Apart from the top's parameters, the only leaf that takes a gradient
    # is the fresh copy of h.
    leaves = [n for n in nodes if n.creator_node is None and n.requires_grad
              and id(n) not in top_ids]
    assert len(leaves) == 1
    assert leaves[0].shape == h_ref.shape
    numpy.testing.assert_allclose(leaves[0].data, h_ref, rtol=1e-6, atol=1e-7)


# -- SyntheticGradientUpdater, K = 3 -----------------------------------------

def test_three_modules_bootstrapped_target():
    alpha_gs = 1e-3
    s = make_synthetic(['stage1_unit1', 'stage2_unit1'], 'vfbn',
                       alpha_gs=alpha_gs, lr=0.0)
    modules, synths = s['modules'], s['synths']
    m0, m1, m2 = [copy.deepcopy(m) for m in modules]
    s0, s1 = [copy.deepcopy(x) for x in synths]
    before_modules = [params(m) for m in modules]
    before_synths = [params(x) for x in synths]
    x, t = s['x'], s['t']

    report = update(s['updater'])

    # Hand: module 1 back-propagates synth1's output; what reaches its input
    # is synth0's target (the bootstrapped δ of Jaderberg et al.).
    h0 = m0(x)
    grad_synth0 = s0(chainer.Variable(h0.array), t)
    m0.cleargrads()
    backward_from(h0, grad_synth0.array)
    h0_in = chainer.Variable(h0.array)
    h1 = m1(h0_in)
    grad_synth1 = s1(chainer.Variable(h1.array), t)
    m1.cleargrads()
    backward_from(h1, grad_synth1.array)
    target0 = h0_in.grad
    h1_in = chainer.Variable(h1.array)
    loss = F.softmax_cross_entropy(m2(h1_in), t)
    m2.cleargrads()
    loss.backward()
    target1 = h1_in.grad
    assert target0.shape == (BATCH, 32, 22, 22)
    assert target1.shape == (BATCH, 64, 11, 11)

    for module, hand in zip(modules, (m0, m1, m2)):
        assert_dicts_close(grads(module), grads(hand), rtol=1e-6, atol=1e-9)
    # lr = 0: the modules do not move.
    for module, before in zip(modules, before_modules):
        for name, p in module.namedparams():
            numpy.testing.assert_array_equal(p.array, before[name])

    assert 'synth/loss' not in report
    for k, (target, grad_synth, hand_synth) in enumerate(
            [(target0, grad_synth0, s0), (target1, grad_synth1, s1)]):
        loss_k, cos_k, relerr_k, _ = agreement(target, grad_synth.array)
        assert report['synth%d/loss' % k] == pytest.approx(loss_k, rel=1e-5)
        assert report['synth%d/cos' % k] == pytest.approx(cos_k, rel=1e-5,
                                                          abs=1e-6)
        assert report['synth%d/relerr' % k] == pytest.approx(relerr_k,
                                                             rel=1e-5)
        # Each synthesizer took its Adam step on its own Eq. 3 loss.
        synth_loss = F.sum(F.squared_difference(grad_synth, target))
        hand_synth.cleargrads()
        synth_loss.backward()
        expected = adam_first_step(before_synths[k], grads(hand_synth),
                                   alpha_gs)
        assert_dicts_close(params(synths[k]), expected, rtol=1e-5, atol=1e-8)
    assert report['main/loss'] == pytest.approx(float(loss.array), rel=1e-6)


# -- construction errors and the 'main' alias --------------------------------

def test_optimizer_names_and_validation():
    s = make_synthetic(['stage1_unit1', 'stage2_unit1'])
    modules, synths, opts = s['modules'], s['synths'], s['opts']
    it = make_iterator(s['x'], s['t'])
    updater = s['updater']
    assert sorted(updater.get_all_optimizers()) == [
        'main', 'module0', 'module1', 'module2', 'synth0', 'synth1']
    assert updater.get_optimizer('main') is opts['module2']
    # One batch is the whole dataset, so this step ends an epoch: every
    # optimizer counts it once, the aliased 'main' included.
    update(updater)
    assert [opts[name].epoch for name in sorted(opts)] == [1] * 5

    synths[0].forward = lambda h, t: h[:, :1]
    with pytest.raises(ValueError, match=r'synth0 returned a gradient of '
                       r'shape \(4, 1, 22, 22\) for an activation of shape '
                       r'\(4, 32, 22, 22\)'):
        updater.update()

    with pytest.raises(ValueError, match='at least 2 modules'):
        SyntheticGradientUpdater(it, modules[:1], [], {})
    with pytest.raises(ValueError, match='3 modules need 2 synthesizers'):
        SyntheticGradientUpdater(it, modules, synths[:1], opts)
    with pytest.raises(ValueError, match='must be a dict'):
        SyntheticGradientUpdater(it, modules, synths, opts['module0'])
    bad = dict(opts)
    bad['synth'] = bad.pop('synth0')
    with pytest.raises(ValueError, match='missing: synth0; unexpected: synth'):
        SyntheticGradientUpdater(it, modules, synths, bad)
    bad = dict(opts, main=opts['module2'])
    with pytest.raises(ValueError, match='unexpected: main'):
        SyntheticGradientUpdater(it, modules, synths, bad)
    bad = dict(opts, module1=opts['module0'])
    with pytest.raises(ValueError, match="optimizer 'module1' must be set up"):
        SyntheticGradientUpdater(it, modules, synths, bad)

    head = Head(64)
    with pytest.raises(ValueError, match='missing: head'):
        LayerwiseUpdater(it, modules[0], head, modules[1],
                         {'bottom': opts['module0'], 'top': opts['module1']})


# -- LayerwiseUpdater -------------------------------------------------------

def test_layerwise_gradients_and_reports():
    lr = 0.1
    numpy.random.seed(0)
    net = resnet_cifar(ARCH)
    bottom, top = chainer_vfbn.split(net, 'stage2_unit1')
    head = Head(64, N_CLASS)
    opts = {'bottom': momentum_sgd(bottom, lr), 'head': momentum_sgd(head, lr),
            'top': momentum_sgd(top, lr)}
    x, t = make_batch(0)
    updater = LayerwiseUpdater(make_iterator(x, t), bottom, head, top, opts)
    assert updater.get_optimizer('main') is opts['top']
    b0, hd0, top0 = [copy.deepcopy(link) for link in (bottom, head, top)]
    before = [params(link) for link in (bottom, head, top)]

    report = update(updater)

    h = b0(x)
    y_local = hd0(h)
    local_loss = F.softmax_cross_entropy(y_local, t)
    b0.cleargrads()
    hd0.cleargrads()
    local_loss.backward()
    y = top0(chainer.Variable(h.array))
    loss = F.softmax_cross_entropy(y, t)
    top0.cleargrads()
    loss.backward()

    for link, hand, old in zip((bottom, head, top), (b0, hd0, top0), before):
        assert_dicts_close(grads(link), grads(hand), rtol=1e-6, atol=1e-9)
        assert_dicts_close(params(link),
                           momentum_first_step(old, grads(hand), lr),
                           rtol=1e-6, atol=1e-7)
    assert report == pytest.approx({
        'main/loss': float(loss.array),
        'main/accuracy': float(F.accuracy(y, t).array),
        'local/loss': float(local_loss.array),
        'local/accuracy': float(F.accuracy(y_local, t).array)}, rel=1e-6)


# -- reproducibility and snapshots ------------------------------------------

def run_numbers(seed, iterations=2):
    s = make_synthetic(['stage1_unit1', 'stage2_unit1'], 'dni', seed=seed)
    reports = [update(s['updater']) for _ in range(iterations)]
    state = [params(link) for link in s['modules'] + s['synths']]
    return reports, state


def test_same_seed_gives_bit_identical_runs():
    reports_a, state_a = run_numbers(3)
    reports_b, state_b = run_numbers(3)
    reports_c, _ = run_numbers(4)
    assert reports_a == reports_b     # exact float equality
    for a, b in zip(state_a, state_b):
        for name in a:
            numpy.testing.assert_array_equal(a[name], b[name])
    assert reports_a != reports_c


@pytest.mark.parametrize('kind', ['synthetic', 'layerwise'])
def test_snapshot_round_trip_resumes_exactly(tmp_path, kind):
    def build(seed):
        if kind == 'synthetic':
            s = make_synthetic(['stage2_unit1'], 'vfbn', seed=seed,
                               data_seed=0)
            return s['updater'], s['modules'] + s['synths']
        numpy.random.seed(seed)
        net = resnet_cifar(ARCH)
        bottom, top = chainer_vfbn.split(net, 'stage2_unit1')
        head = Head(64, N_CLASS)
        opts = {'bottom': momentum_sgd(bottom), 'head': adam(head, 1e-3),
                'top': momentum_sgd(top)}
        x, t = make_batch(0, batch=2 * BATCH)
        it = chainer.iterators.SerialIterator(
            chainer.datasets.TupleDataset(x, t), BATCH, shuffle=False)
        return LayerwiseUpdater(it, bottom, head, top, opts), [net, head]

    updater, links = build(0)
    trainer = chainer.training.Trainer(updater, (3, 'iteration'),
                                       out=str(tmp_path))
    trainer.extend(extensions.snapshot(filename='snapshot'),
                   trigger=(3, 'iteration'))
    trainer.run()
    assert updater.iteration == 3

    resumed, resumed_links = build(1)   # different initialization
    trainer2 = chainer.training.Trainer(resumed, (4, 'iteration'),
                                        out=str(tmp_path))
    chainer.serializers.load_npz(str(tmp_path / 'snapshot'), trainer2)
    assert resumed.iteration == 3
    for link, link2 in zip(links, resumed_links):
        assert_dicts_close(params(link2), params(link), rtol=0, atol=0)
        for (name, sub), (_, sub2) in zip(link.namedlinks(),
                                          link2.namedlinks()):
            for key in sub._persistent:    # BN's running statistics
                numpy.testing.assert_array_equal(
                    getattr(sub2, key), getattr(sub, key), err_msg=name + key)
    states, states2 = optimizer_states(updater), optimizer_states(resumed)
    assert any(key.endswith('/v') for key in states)   # Adam's, or momentum's
    assert_dicts_close(states2, states, rtol=0, atol=0)
    # The iterator's position came back too: the next steps agree exactly.
    assert update(resumed) == update(updater)
    for link, link2 in zip(links, resumed_links):
        assert_dicts_close(params(link2), params(link), rtol=0, atol=0)


# -- the project's synthesizers, if present -----------------------------------

SYNTHESIZERS_PRESENT = importlib.util.find_spec(
    'chainer_vfbn.synthesizers') is not None


@pytest.mark.skipif(not SYNTHESIZERS_PRESENT,
                    reason='chainer_vfbn.synthesizers is not written yet')
@pytest.mark.parametrize('method', ['vfbn', 'dni-linear'])
def test_with_project_synthesizers(method):
    from chainer_vfbn.synthesizers import build_synthesizer

    s = make_synthetic(['stage2_unit1'], synth_factory=lambda name:
                       build_synthesizer(method, (64, 11, 11)))
    bottom, top = s['modules']
    synth = s['synths'][0]
    copies = [copy.deepcopy(link) for link in (bottom, top, synth)]
    report = update(s['updater'])
    hand = hand_two_modules(*copies, s['x'], s['t'])
    assert hand['grad_synth'].shape == (BATCH, 64, 11, 11)
    assert_dicts_close(grads(bottom), hand['bottom'], rtol=1e-5, atol=1e-8)
    assert_dicts_close(grads(top), hand['top'], rtol=1e-6, atol=1e-9)
    loss, cos, relerr, _ = agreement(hand['grad_true'], hand['grad_synth'])
    assert report['synth/loss'] == pytest.approx(loss, rel=1e-4)
    assert report['synth/cos'] == pytest.approx(cos, rel=1e-4, abs=1e-5)
    assert report['synth/relerr'] == pytest.approx(relerr, rel=1e-4)


def test_per_example_target_scale_applies_the_same_gradient():
    """A per-example synthesizer with B times the weights of a batch-mean one
    applies the same δ̂ to the bottom, and regresses onto B·δ."""
    ref = make_synthetic(['stage2_unit1'], synth='dni', alpha_gs=0.)
    per = make_synthetic(['stage2_unit1'], synth='dni', alpha_gs=0.,
                         target_scale='per-example')
    conv = per['synths'][0].conv
    assert numpy.abs(conv.W.array).max() > 0   # a non-zero prediction
    conv.W.array *= BATCH
    conv.b.array[...] = 0.01 * BATCH
    ref['synths'][0].conv.b.array[...] = 0.01
    rep_ref = update(ref['updater'])
    rep_per = update(per['updater'])
    assert_dicts_close(params(per['modules'][0]), params(ref['modules'][0]),
                       rtol=1e-5, atol=1e-8)
    for key in ('synth/cos', 'synth/relerr', 'synth/norm_ratio'):
        assert rep_per[key] == pytest.approx(rep_ref[key], rel=1e-4), key
    assert rep_ref['synth/norm_ratio'] > 0
    assert rep_per['synth/loss'] == pytest.approx(
        BATCH ** 2 * rep_ref['synth/loss'], rel=1e-4)


def test_target_scale_is_checked():
    with pytest.raises(ValueError, match='unknown target scale'):
        make_synthetic(['stage2_unit1'], target_scale='per-sample')
