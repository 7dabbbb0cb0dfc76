"""chainer_vfbn.sequential on models of the ecosystem: nested chains cut by a
dotted path, an order learned from one forward pass, chainercv's pick."""
import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest
from chainer import optimizers

import chainer_vfbn
from chainer_vfbn.datasets import get_cifar10

chainercv2 = pytest.importorskip('chainercv2.model_provider')

IN_SHAPE = (3, 32, 32)


def cifar_resnet(name='resnet20_cifar10'):
    """chainercv2's CIFAR ResNet: ``features`` (init_block, stage1..3,
    final_pool) then ``output``, a forward without layer_names."""
    return chainercv2.get_model(name, pretrained=False)


def images(n=4, seed=0):
    rng = numpy.random.RandomState(seed)
    return rng.randn(n, *IN_SHAPE).astype(numpy.float32), \
        (numpy.arange(n) % 10).astype(numpy.int32)


@pytest.mark.parametrize('train', [True, False])
def test_a_dotted_path_cuts_every_level_and_composes_exactly(train):
    model = cifar_resnet()
    bottom, top = chainer_vfbn.split(model, 'features.stage2.unit2',
                                     in_shape=IN_SHAPE)
    # The model's nesting is kept: features > stage2 > unit1, unit2 below.
    assert bottom.layer_names == ['features']
    assert bottom.features.layer_names == ['init_block', 'stage1', 'stage2']
    assert bottom.features.stage2.layer_names == ['unit1', 'unit2']
    assert top.layer_names == ['features', 'output']
    assert top.features.layer_names == ['stage2', 'stage3', 'final_pool']
    assert top.features.stage2.layer_names == ['unit3']
    x, _ = images()
    with chainer.using_config('train', train):
        want = model(x).array
        got = top(bottom(x)).array
    numpy.testing.assert_array_equal(got, want)
    # The same parameters, under the model's own names.
    names = {n for part in (bottom, top) for n, _ in part.namedparams()}
    assert names == {n for n, _ in model.namedparams()}
    assert {id(p) for part in (bottom, top) for p in part.params()} == \
        {id(p) for p in model.params()}


def test_the_shapes_and_points_of_a_nested_cut():
    model = cifar_resnet()
    assert chainer_vfbn.split_points(model, IN_SHAPE) == ['features']
    cut = chainer_vfbn.Cut(model, ['features.stage1', 'features.stage2.unit2'],
                           IN_SHAPE)
    assert cut.points == ('features.stage1', 'features.stage2.unit2')
    assert cut.shapes['features.stage1'] == (16, 32, 32)
    assert cut.shapes['features.stage2.unit2'] == (32, 16, 16)
    assert list(cut.shapes)[-1] == 'output' and cut.output.shape == (2, 10)
    assert len(cut.parts()) == 3


def test_the_paper_cut_of_resnet110_builds():
    """chainercv2's ResNet-110: 18 units a stage; the paper cuts in the
    middle of stage 2, after unit 9 (its 16x16 maps of 32 channels)."""
    model = cifar_resnet('resnet110_cifar10')
    assert model.features.stage2.layer_names[8] == 'unit9'
    method = chainer_vfbn.build_method(
        'vfbn', model, split_at='features.stage2.unit9', in_shape=IN_SHAPE)
    assert method.split_at == ('features.stage2.unit9',)
    bottom, top = method.modules
    assert bottom.features.stage2.layer_names[-1] == 'unit9'
    assert top.features.stage2.layer_names[0] == 'unit10'
    x, t = images(2)
    with chainer.using_config('train', False):
        h = bottom(x)
        numpy.testing.assert_array_equal(top(h).array, model(x).array)
    assert h.shape == (2, 32, 16, 16)
    assert method.synthesizers[0](h, t).shape == h.shape


@pytest.mark.parametrize('name', ['vfbn', 'dni-linear', 'layerwise'])
def test_a_cut_chainercv2_resnet_trains(name):
    numpy.random.seed(0)
    model = cifar_resnet()
    method = chainer_vfbn.build_method(name, model,
                                       split_at='features.stage2.unit2',
                                       in_shape=IN_SHAPE, lr=0.05)
    ((x, t), _), _ = get_cifar10('sample')
    data = chainer.datasets.TupleDataset(
        (x[:24] / 255.).astype(numpy.float32), t[:24])
    before = {n: p.array.copy() for n, p in model.namedparams()}
    updater = method.make_updater(
        chainer.iterators.SerialIterator(data, 8),
        chainer.dataset.concat_examples, '@numpy')
    trainer = chainer.training.Trainer(updater, (3, 'iteration'))
    trainer.run()
    assert updater.iteration == 3
    assert numpy.isfinite(float(trainer.observation['main/loss'].array))
    changed = [n for n, p in model.namedparams()
               if not numpy.array_equal(p.array, before[n])]
    # Both sides of the cut learned (the bottom from δ̂ or its local loss).
    assert any(n.startswith('/features/stage1') for n in changed)
    assert any(n.startswith('/output') for n in changed)


class Residual(chainer.Chain):
    """Calls its children in a row, but adds its input: no sequence."""

    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.a = L.Linear(4, 4)
            self.b = L.Linear(4, 4)

    def forward(self, x):
        return self.b(self.a(x)) + x


class Twice(chainer.Chain):
    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.a = L.Linear(4, 4)

    def forward(self, x):
        return self.a(self.a(x))


def test_an_order_that_does_not_compose_is_refused():
    with pytest.raises(ValueError) as e:
        chainer_vfbn.split(Residual(), 'a', in_shape=(4,))
    assert str(e.value) == (
        'cannot split Residual: the order learned from one forward pass '
        'does not give its output; declare its order: give model a '
        'layer_names attribute, the names of its children (a, b) in forward '
        'order, or make it a chainer.Sequential')
    with pytest.raises(ValueError) as e:
        chainer_vfbn.split(Twice(), 'a', in_shape=(4,))
    assert str(e.value).startswith(
        'cannot split Twice: one forward pass calls its children a, a, not '
        'each once in a row; declare its order')


def test_learning_an_order_leaves_the_model_and_the_generators_alone():
    model = cifar_resnet()
    children = {name: getattr(model, name) for name in ('features', 'output')}
    state = numpy.random.get_state()[1].copy()
    bn = model.features.init_block.bn
    mean = bn.avg_mean.copy()
    chainer_vfbn.split(model, 'features.stage2', in_shape=IN_SHAPE)
    numpy.testing.assert_array_equal(numpy.random.get_state()[1], state)
    numpy.testing.assert_array_equal(bn.avg_mean, mean)
    # Its children are its own again (the recorders are gone).
    for name, child in children.items():
        assert getattr(model, name) is child


# -- chainercv: PickableSequentialChain and its pick ------------------------

class Pickable(chainer.Chain):
    """A stand-in with chainercv's PickableSequentialChain's behaviour: its
    layers run in ``layer_names`` order up to ``pick`` (all of them, ending
    in a softmax, when ``pick`` is None)."""

    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.conv = L.Convolution2D(3, 4, 3, pad=1)
            self.pool = lambda h: F.average(h, axis=(2, 3))
            self.fc = L.Linear(4, 10)
            self.prob = F.softmax
        self.layer_names = ['conv', 'pool', 'fc', 'prob']
        self.pick = None

    def forward(self, x):
        last = self.layer_names.index(self.pick or self.layer_names[-1])
        for name in self.layer_names[:last + 1]:
            x = getattr(self, name)(x)
        return x


def _pick_refusal(model, layer, last):
    with pytest.raises(ValueError) as e:
        chainer_vfbn.build_method('vfbn', model, split_at=layer,
                                  in_shape=IN_SHAPE)
    assert str(e.value) == (
        'the network gives probabilities (each row non-negative, summing to '
        '1), not class scores: the methods train on logits through the loss; '
        "cut off its last layer %r (a chainercv model: set model.pick = %r)"
        % last)


def _one_step(method, x, t):
    updater = method.make_updater(
        chainer.iterators.SerialIterator(
            chainer.datasets.TupleDataset(x, t), len(x)),
        chainer.dataset.concat_examples, '@numpy')
    updater.update()
    return updater


@pytest.mark.parametrize('name', ['bp', 'vfbn', 'bottom-bp'])
def test_pick_gives_every_method_and_the_evaluation_the_logits(name):
    model = Pickable()
    _pick_refusal(model, 'conv', ('prob', 'fc'))
    model.pick = 'fc'
    method = chainer_vfbn.build_method(name, model, split_at='conv',
                                       in_shape=IN_SHAPE)
    x, t = images()
    _one_step(method, x, t)
    with chainer.using_config('train', False):
        scores = method.predictor(x).array
    assert scores.shape == (4, 10) and (scores < 0).any()   # not softmax
    if name != 'bp':
        with chainer.using_config('train', False):
            h = x
            for part in method.modules:
                h = part(h)
        assert 'prob' not in method.modules[-1].layer_names
        if name == 'vfbn':
            numpy.testing.assert_array_equal(h.array, scores)


def test_a_pick_of_several_layers_is_refused():
    model = Pickable()
    model.pick = ('conv', 'fc')
    with pytest.raises(ValueError, match=r"Pickable picks \('conv', 'fc'\): "
                       'a split needs one output, set its pick to the layer '
                       'of the class scores'):
        chainer_vfbn.split(model, 'conv')


def test_real_chainercv_resnet50_with_pick():
    """The same with chainercv itself (skipped where it is not installed:
    chainercv 0.13's sdist does not build on Python 3.11 and NumPy 2)."""
    links = pytest.importorskip('chainercv.links')
    numpy.random.seed(0)
    model = links.ResNet50(n_class=10, pretrained_model=None, arch='he')
    assert model.layer_names[-2:] == ['fc6', 'prob']
    _pick_refusal(model, 'res3', ('prob', 'fc6'))
    model.pick = 'fc6'
    method = chainer_vfbn.build_method('vfbn', model, split_at='res3',
                                       in_shape=IN_SHAPE)
    bottom, top = method.modules
    assert top.layer_names == ['res4', 'res5', 'pool5', 'fc6']
    x, t = images(2)
    with chainer.using_config('train', False):
        scores = method.predictor(x).array
        numpy.testing.assert_array_equal(scores, top(bottom(x)).array)
    assert scores.shape == (2, 10) and (scores < 0).any()   # logits
    before = model.res2.a.conv1.conv.W.array.copy()
    updater = _one_step(method, x, t)
    assert updater.iteration == 1
    assert not numpy.array_equal(model.res2.a.conv1.conv.W.array, before)


# -- the optimizer of each part ----------------------------------------------

def test_an_optimizer_factory_per_part():
    seen = []

    def make(name, link):
        seen.append(name)
        if name == 'module0':
            opt = optimizers.Adam(alpha=1e-4)
            opt.setup(link)
            return opt
        return None                        # the default for the others

    method = chainer_vfbn.build_method(
        'vfbn', cifar_resnet(), split_at='features.stage2.unit2',
        in_shape=IN_SHAPE, make_optimizer=make)
    assert seen == ['module0', 'module1', 'synth']
    opts = method.optimizers
    assert type(opts['module0']) is optimizers.Adam
    assert type(opts['module1']) is optimizers.MomentumSGD
    assert opts['module1'].lr == 0.1
    assert type(opts['synth']) is optimizers.Adam
    assert opts['synth'].alpha == 1e-3
    with pytest.raises(ValueError, match=r"make_optimizer\('main', link\) "
                       'must return an optimizer set up on link'):
        chainer_vfbn.build_method(
            'bp', cifar_resnet(), in_shape=IN_SHAPE,
            make_optimizer=lambda name, link: optimizers.SGD())
