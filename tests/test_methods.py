"""chainer_vfbn's public API on any sequential model: split, build_method,
the synthesizer registry, and their one-line errors."""
import copy

import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest
from chainer import optimizers

import chainer_vfbn
from chainer_vfbn import methods
from chainer_vfbn import split_step
from chainer_vfbn.models import resnet_cifar
from chainer_vfbn.synthesizers import registry
from support import load_script
from support import OneBatch

K = 10
IN_SHAPE = (3, 8, 8)


def sequential():
    """A small CNN as a chainer.Sequential, links and functions mixed."""
    return chainer.Sequential(
        L.Convolution2D(3, 4, 3, pad=1), L.BatchNormalization(4), F.relu,
        L.Convolution2D(4, 6, 3, pad=1, stride=2), F.relu,
        L.Linear(6 * 4 * 4, K))


class Named(chainer.Chain):
    """Children in ``layer_names`` order, as chainercv's
    PickableSequentialChain; ``act`` is a plain function."""

    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.conv = L.Convolution2D(3, 4, 3, pad=1)
            self.act = F.relu
            self.fc = L.Linear(4 * 8 * 8, K)
        self.layer_names = ['conv', 'act', 'fc']

    def forward(self, x):
        return self.fc(F.relu(self.conv(x)))


def batch(n=4, seed=0, dtype=numpy.float32):
    rng = numpy.random.RandomState(seed)
    return (rng.randn(n, *IN_SHAPE).astype(dtype),
            (numpy.arange(n) % K).astype(numpy.int32))


def one_step(method, x, t):
    updater = method.make_updater(OneBatch(x, t),
                                  chainer.dataset.concat_examples, None)
    reporter = chainer.Reporter()
    for name, opt in updater.get_all_optimizers().items():
        reporter.add_observer(name, opt.target)
    with reporter.scope({}):
        updater.update()
    return updater


# -- split ------------------------------------------------------------------

@pytest.mark.parametrize('make,at', [(sequential, 2), (sequential, [0, 4]),
                                     (Named, 'act'), (Named, ['conv'])])
@pytest.mark.parametrize('train', [True, False])
def test_split_composes_to_the_forward_pass(make, at, train):
    model = make()
    x, _ = batch()
    parts = chainer_vfbn.split(model, at)
    assert len(parts) == (len(at) if isinstance(at, list) else 1) + 1
    with chainer.using_config('train', train):
        y = model(x).array
        h = x
        for part in parts:
            h = part(h)
    numpy.testing.assert_array_equal(h.array, y)


@pytest.mark.parametrize('make,at', [(sequential, 2), (Named, 'conv')])
def test_split_shares_parameters(make, at):
    model = make()
    before = {name: p.array.copy() for name, p in model.namedparams()}
    bottom, top = chainer_vfbn.split(model, at)
    assert {id(p) for m in (bottom, top) for p in m.params()} == \
        {id(p) for p in model.params()}
    # An update through the parts changes the model itself.
    x, t = batch()
    for part in (bottom, top):
        opt = optimizers.SGD(lr=0.1)
        opt.setup(part)
    F.softmax_cross_entropy(top(bottom(x)), t).backward()
    for part in (bottom, top):
        for p in part.params():
            p.array -= 0.1 * p.grad
    changed = [name for name, p in model.namedparams()
               if not numpy.array_equal(p.array, before[name])]
    assert len(changed) == len(before)


def test_a_dotted_path_cuts_inside_a_nested_sequential():
    """A step of a chainer.Sequential is named by its index at every
    level: '0.2' cuts inside the first step, after its third."""
    model = chainer.Sequential(
        chainer.Sequential(L.Convolution2D(3, 4, 3, pad=1),
                           L.BatchNormalization(4), F.relu),
        L.Convolution2D(4, 6, 3, pad=1, stride=2), F.relu,
        L.Linear(6 * 4 * 4, K))
    bottom, top = chainer_vfbn.split(model, '0.1')
    assert bottom.layer_names == ['0'] and top.layer_names[0] == '0'
    assert getattr(bottom, '0').layer_names == ['0', '1']
    assert getattr(top, '0').layer_names == ['step2']
    x, _ = batch()
    with chainer.using_config('train', True):
        numpy.testing.assert_array_equal(top(bottom(x)).array,
                                         model(x).array)
    built = methods.build_method('vfbn', model, split_at='0.1',
                                 in_shape=IN_SHAPE)
    assert built.split_at == ('0.1',)
    assert built.synthesizers[0](chainer.Variable(
        bottom(x).array), numpy.zeros(4, numpy.int32)).shape == (4, 4, 8, 8)


def test_resnet_is_a_case_of_the_rule():
    net = resnet_cifar('resnet8-paper')
    assert chainer_vfbn.split_points(net) == net.layer_names[:-1]
    shapes = chainer_vfbn.forward_shapes(net, net.in_shape)
    assert shapes['stage2_unit1'] == (64, 11, 11) and shapes['head'] == (K,)
    bottom, top = chainer_vfbn.split(net)             # its default_split
    assert bottom.layer_names[-1] == net.default_split == 'stage2_unit1'


def test_forward_shapes_leaves_the_model_as_it_was():
    model = sequential()
    bn = model[1]
    mean, state = bn.avg_mean.copy(), numpy.random.get_state()[1].copy()
    shapes = chainer_vfbn.forward_shapes(model, IN_SHAPE)
    assert list(shapes.values()) == [(4, 8, 8), (4, 8, 8), (4, 8, 8),
                                     (6, 4, 4), (6, 4, 4), (K,)]
    numpy.testing.assert_array_equal(bn.avg_mean, mean)
    numpy.testing.assert_array_equal(numpy.random.get_state()[1], state)


# -- build_method on a user's model -----------------------------------------

@pytest.mark.parametrize('method', methods.BACKPROP_METHODS +
                         registry.names())
@pytest.mark.parametrize('make,at', [(sequential, 2), (Named, 'act')])
def test_every_method_trains_a_users_model(method, make, at):
    numpy.random.seed(0)
    model = make()
    built = chainer_vfbn.build_method(method, model, split_at=at,
                                      in_shape=IN_SHAPE, n_hidden=8)
    bottom, top = chainer_vfbn.split(model, at)
    before = {id(p): p.array.copy() for p in model.params()}
    x, t = batch()
    one_step(built, x, t)

    def moved(part):
        return [not numpy.array_equal(before[id(p)], p.array)
                for p in part.params()]
    # bottom-bp trains the bottom alone; a DNI synthesizer starts at δ̂ = 0,
    # so only weight decay moves the bottom's weights (its biases stay).
    assert all(moved(top)) != (method == 'bottom-bp')
    assert all(moved(bottom)) != method.startswith('dni')
    assert any(moved(bottom))
    assert built.predictor(x).shape == (4, K)


def test_bp_takes_a_split_point_as_a_string():
    # It used to iterate the string's letters and reject a valid name.
    net = resnet_cifar('resnet8-paper')
    assert methods.build_method('bp', net, split_at='stage2_unit1').name \
        == 'bp'
    with pytest.raises(ValueError, match="after 'stage2_unit9': no such"):
        methods.build_method('bp', net, split_at='stage2_unit9')


def test_exact_synthetic_gradient_when_vf_is_the_top():
    """Top = one Linear layer and the linear v_f set to its weights: δ̂ is
    the top's own gradient (Eq. 8), so it equals δ."""
    with chainer.using_config('dtype', numpy.float64):
        model = chainer.Sequential(L.Convolution2D(3, 2, 3, pad=1), F.tanh,
                                   L.Linear(2 * 8 * 8, K))
        built = methods.build_method('vfbn-linear', model, split_at=1,
                                     in_shape=IN_SHAPE)
    (synth,), top = built.synthesizers, model[2]
    synth.fc.W.array[...] = top.W.array
    synth.fc.b.array[...] = top.b.array + 0.5   # a softmax ignores a shift
    x, t = batch(6, dtype=numpy.float64)
    bottom, upper = built.modules
    h = bottom(x).array
    inp = chainer.Variable(h)
    split_step.top_backward(upper, inp, t, F.softmax_cross_entropy)
    _, grad_synth = split_step.synthesize(synth, h, t)
    assert numpy.abs(inp.grad).max() > 1e-4
    numpy.testing.assert_allclose(grad_synth, inp.grad, rtol=1e-12,
                                  atol=1e-15)
    synth.fc.W.array[0] += 1e-3                 # another v_f: not exact
    _, other = split_step.synthesize(synth, h, t)
    assert numpy.abs(other - inp.grad).max() > 1e-9


# -- the registry ------------------------------------------------------------

@pytest.mark.parametrize('name', registry.names())
def test_every_kind_builds_and_has_a_default_alpha(name):
    kind = registry.kind(name)
    assert 0 < kind.alpha_gs <= 1
    assert methods.resolve_alpha_gs(name, None) == kind.alpha_gs
    assert kind.target_scales[0] == 'batch-mean'
    assert set(kind.target_scales) <= set(split_step.TARGET_SCALES)
    assert kind.description and '\n' not in kind.description
    synth = registry.build_synthesizer(name, (4, 3, 3), K, n_hidden=5)
    h = numpy.random.RandomState(0).randn(2, 4, 3, 3).astype(numpy.float32)
    assert synth(chainer.Variable(h), numpy.array([1, 7], numpy.int32)
                 ).shape == h.shape


def test_the_derived_lists_are_the_registry():
    assert methods.names() == methods.BACKPROP_METHODS + registry.names()
    assert methods.pipeline_names() == ('bp',) + registry.names()
    assert [m for m in methods.names() if methods.synthetic(m)] == \
        list(registry.names())
    assert registry.scale_free() == ('vfbn', 'vfbn-linear', 'vfbn-mlp')
    # One meaning of SYNTHESIZERS: the registry itself, {name: Kind}.
    assert chainer_vfbn.SYNTHESIZERS is registry.KINDS
    assert chainer_vfbn.synthesizers.SYNTHESIZERS is registry.KINDS
    from chainer_vfbn.experiments.protocol import rows
    # The experiment's rows, which its run records are matched on.
    # (InfoPro's tuned weight, Evidence III)
    assert rows.TUNED_ROWS == ('dni-linear', 'dni-resnet', 'vfbn',
                               'vfbn-linear', 'vfbn-mlp', 'infopro')
    assert [r for r, o in rows.TUNED_OPTIONS.items()
            if o == 'alpha_gs'] == list(registry.names())
    assert set(rows.ONE_SEED_ROWS) <= set(registry.closed_forms())


def test_the_public_face():
    from chainer_vfbn import updaters
    assert chainer_vfbn.SyntheticGradientUpdater is \
        updaters.SyntheticGradientUpdater
    assert chainer_vfbn.LayerwiseUpdater is updaters.LayerwiseUpdater
    assert chainer_vfbn.register_synthesizer is registry.register
    assert chainer_vfbn.build_pipeline is methods.build_pipeline


def test_no_module_getattr_names():
    """The package's names are real attributes, visible to dir()."""
    for module in (methods, split_step, chainer_vfbn.synthesizers):
        assert not hasattr(module, '__getattr__'), module.__name__


class HalfGradient(chainer.Chain):
    """A new kind, as its own file would define it: δ̂ = w * h."""

    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.w = chainer.Parameter(numpy.zeros((), numpy.float32))

    def forward(self, h, t):
        return F.broadcast_to(self.w, h.shape) * h


@pytest.fixture
def half_kind():
    """The kind ``half``, registered from here as a user's module would,
    and removed after the test."""
    chainer_vfbn.register_synthesizer('half', chainer_vfbn.Kind(
        lambda h_shape, n_class, n_hidden, loss_func: HalfGradient(),
        alpha_gs=0.25, target_scales=registry.BATCH_MEAN,
        description='w * h, for the test'))
    yield 'half'
    del registry.KINDS['half']


def test_a_kind_registered_from_outside_trains(half_kind):
    # Every list of kinds has it, with its defaults.
    assert 'half' in methods.names() and 'half' in methods.pipeline_names()
    assert methods.resolve_alpha_gs('half', None) == 0.25
    assert 'half' in registry.scale_free()
    train_cifar = load_script()
    assert 'w * h, for the test' in train_cifar.build_parser().format_help()
    with pytest.raises(ValueError, match='fixed'):
        methods.build_method('half', sequential(), split_at=2,
                             in_shape=IN_SHAPE, target_scale='per-example')
    # And it trains through build_method, its default alpha_gs resolved.
    built = methods.build_method('half', sequential(), split_at=2,
                                 in_shape=IN_SHAPE)
    assert built.alpha_gs == 0.25
    assert built.optimizers['synth'].alpha == 0.25
    x, t = batch()
    one_step(built, x, t)
    assert built.synthesizers[0].w.array != 0


def test_register_refuses_a_taken_name_or_a_bad_entry():
    with pytest.raises(ValueError, match="a method named 'vfbn' exists"):
        chainer_vfbn.register_synthesizer('vfbn', registry.KINDS['vfbn'])
    with pytest.raises(ValueError, match="a method named 'bp' exists"):
        chainer_vfbn.register_synthesizer('bp', registry.KINDS['vfbn'])
    with pytest.raises(ValueError, match='entry must be a '):
        chainer_vfbn.register_synthesizer('new', lambda *a: None)
    assert 'new' not in registry.KINDS


def test_an_unknown_kind_raises_instead_of_a_frozen_synthesizer():
    with pytest.raises(ValueError, match="unknown method 'vfbn-lin'"):
        methods.resolve_alpha_gs('vfbn-lin', None)
    with pytest.raises(ValueError, match="unknown synthesizer 'nope'"):
        registry.build_synthesizer('nope', (4, 3, 3))
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        methods.build_method('nope', sequential(), split_at=2,
                             in_shape=IN_SHAPE)
    assert methods.resolve_alpha_gs('bp', None) is None


# -- the loss agrees -------------------------------------------------------

def test_vfbn_differentiates_the_networks_own_loss():
    def squared(y, t):
        onehot = numpy.eye(K, dtype=y.dtype)[t]
        return F.mean_squared_error(y, onehot)

    numpy.random.seed(0)
    model = sequential()
    built = methods.build_method('vfbn', model, split_at=2,
                                 in_shape=IN_SHAPE, loss_func=squared)
    synth = built.synthesizers[0]
    assert synth.loss_func is squared
    # δ̂ with v_f a copy of the layers above is δ of that same loss.
    synth.vf = copy.deepcopy(built.modules[1])
    x, t = batch()
    h = built.modules[0](x).array
    inp = chainer.Variable(h)
    split_step.top_backward(built.modules[1], inp, t, squared)
    numpy.testing.assert_allclose(synth(h, t).array, inp.grad, rtol=1e-5,
                                  atol=1e-8)
    one_step(built, x, t)


def test_a_loss_mismatch_is_refused():
    def other(y, t):
        return F.softmax_cross_entropy(y, t) * 2

    model = sequential()
    built = methods.build_method('vfbn', model, split_at=2,
                                 in_shape=IN_SHAPE)
    from chainer_vfbn.updaters import SyntheticGradientUpdater
    with pytest.raises(ValueError) as e:
        SyntheticGradientUpdater(OneBatch(*batch()), built.modules,
                                 built.synthesizers, built.optimizers,
                                 loss_func=other)
    assert str(e.value) == (
        'synth synthesizes the gradient of softmax_cross_entropy but the '
        'network is trained on other: build the synthesizer with the same '
        'loss_func')
    for closed in ('vfbn-linear', 'vfbn-mlp'):
        with pytest.raises(ValueError, match='cannot synthesize the '
                           'gradient of other'):
            methods.build_method(closed, sequential(), split_at=2,
                                 in_shape=IN_SHAPE, loss_func=other)


# -- one line for what cannot be split ---------------------------------------

class NotSequential(chainer.Chain):
    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.fc = L.Linear(3 * 8 * 8, K)

    def forward(self, x):
        return self.fc(x)


class LyingNames(Named):
    def __init__(self):
        super().__init__()
        self.layer_names = ['conv', 'pool', 'fc']


@pytest.mark.parametrize('call,message', [
    (lambda: chainer_vfbn.split(NotSequential(), 'fc'),
     "cannot split NotSequential: its forward pass does not declare the "
     "order of its layers; give in_shape to learn it from one forward pass, "
     "or declare its order: give model a layer_names attribute, the names "
     "of its children (fc) in forward order, or make it a "
     "chainer.Sequential"),
    (lambda: chainer_vfbn.split(L.Linear(3, 4), 0),
     "cannot split Linear: it is not a sequential chain (a "
     "chainer.Sequential, or a chain whose layer_names lists its layers in "
     "forward order, as chainercv's PickableSequentialChain)"),
    (lambda: chainer_vfbn.split(LyingNames(), 'conv'),
     "LyingNames.layer_names has 'pool', which is not a layer of it"),
    (lambda: chainer_vfbn.split(Named(), 'dense'),
     "cannot split Named after 'dense': no such layer (split points: conv, "
     "act)"),
    (lambda: chainer_vfbn.split(Named(), 'fc'),
     "cannot split Named after 'fc', its last layer: nothing would be above "
     "the cut"),
    (lambda: chainer_vfbn.split(sequential(), 5),
     "cannot split Sequential after 5, its last layer: nothing would be "
     "above the cut"),
    (lambda: chainer_vfbn.split(sequential(), 'conv'),
     "cannot split Sequential after 'conv': no such layer (split points: 0, "
     "1, 2, 3, 4)"),
    (lambda: chainer_vfbn.split(sequential(), [3, 1]),
     'split points must be distinct and in forward order, got 3, 1'),
    (lambda: chainer_vfbn.split(sequential()),
     'Sequential has no default split point: give split_at, one of 0, 1, 2, '
     '3, 4'),
    (lambda: methods.build_method('vfbn', sequential(), split_at=2),
     "give in_shape, the shape of one input example (e.g. (3, 32, 32)): h's "
     "shapes come from one forward pass"),
    (lambda: methods.build_method('vfbn', sequential(), split_at=2,
                                  in_shape=IN_SHAPE, n_class=5),
     'n_class is 5 but the network gives 10 class scores'),
    (lambda: methods.build_method(
        'vfbn', chainer.Sequential(L.Convolution2D(3, 4, 3, pad=1), F.relu),
        split_at=0, in_shape=IN_SHAPE),
     'the network gives an output of shape (4, 8, 8) per example; the '
     'methods need class scores (B, n_class)'),
    (lambda: chainer_vfbn.synthesizers.VFBN(L.Linear(4 * 3 * 3, 3))(
        numpy.ones((2, 4, 3, 3), numpy.float32), numpy.array([0, 9])),
     'v_f gives 3 class scores but a label is 9: its output does not fit '
     'the labels'),
    (lambda: chainer_vfbn.synthesizers.VFBN(F.relu)(
        numpy.ones((2, 4, 3, 3), numpy.float32), numpy.array([0, 9])),
     'v_f must give class scores of shape (B, n_class) = (2, ..), got '
     '(2, 4, 3, 3)'),
    (lambda: methods.build_method('bottom-bp', sequential(), split_at=[0, 2],
                                  in_shape=IN_SHAPE),
     'bottom-bp takes one split point, got 2'),
    (lambda: methods.build_method('vfbn', sequential(), split_at=2,
                                  in_shape=(8, 8, 3)),
     'in_shape (8, 8, 3) looks channels-last; Chainer takes (C, H, W), e.g. '
     '(3, 8, 8)'),
    (lambda: methods.build_method('vfbn', sequential(), split_at=2,
                                  in_shape=(4, 8, 8)),
     'one forward pass failed on a batch of shape (2, 4, 8, 8): '
     'InvalidType: Invalid operation is performed in: Convolution2DFunction '
     '(Forward)'),
    (lambda: methods.build_method('vfbn', chainer.Sequential(
        L.Linear(3 * 8 * 8, 6), F.relu, L.Linear(6, K)), split_at=1,
        in_shape=IN_SHAPE),
     "'vfbn' (a convolutional v_f) needs h_shape (C, H, W), got (6,): for a "
     "flat h use vfbn-linear or vfbn-mlp"),
    (lambda: methods.build_method('vfbn', sequential(), split_at=2,
                                  in_shape=IN_SHAPE, alpha_gs=2),
     'alpha_gs must be in [0, 1], got 2'),
    (lambda: methods.build_method('bp', chainer.Sequential(
        L.Linear(3 * 8 * 8, K), F.softmax), in_shape=IN_SHAPE),
     'the network gives probabilities (each row non-negative, summing to '
     '1), not class scores: the methods train on logits through the loss; '
     'cut off its last layer 1'),
])
def test_one_line_errors(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert str(e.value) == message
