import chainer
import numpy
import pytest

from chainer_vfbn import forward_shapes, split
from chainer_vfbn.models import parse_arch, resnet_cifar, ResNetCIFAR


@pytest.mark.parametrize('arch,stage_shapes', [
    ('resnet110-paper', [(32, 22, 22), (64, 11, 11), (64, 6, 6)]),
    ('resnet20-paper', [(32, 22, 22), (64, 11, 11), (64, 6, 6)]),
    ('resnet20-he', [(16, 32, 32), (32, 16, 16), (64, 8, 8)]),
])
def test_shapes(arch, stage_shapes):
    net = resnet_cifar(arch)
    n, _ = parse_arch(arch)
    shapes = forward_shapes(net, net.in_shape)
    for s, shape in enumerate(stage_shapes, 1):
        assert shapes['stage%d_unit1' % s] == shape
        assert shapes['stage%d_unit%d' % (s, n)] == shape
    assert shapes['head'] == (10,)
    x = numpy.zeros((2, 3, net.insize, net.insize), numpy.float32)
    with chainer.using_config('train', False):
        modules = split(net, ['stage1_unit%d' % n, 'stage2_unit%d' % n])
        h = x
        for module, s in zip(modules, range(1, 3)):
            h = module(h)
            assert h.shape == (2,) + stage_shapes[s - 1]
        assert modules[-1](h).shape == (2, 10)


def test_resnet110_paper_depth_and_default_split():
    net = resnet_cifar('resnet110-paper')
    assert net.n == 18 and net.depth == 110
    # 1 stem conv + 3 stages x 18 units x 2 convs + 1 linear = 110 layers.
    convs = [l for l in net.links() if isinstance(l, chainer.links.Convolution2D)]
    linears = [l for l in net.links() if isinstance(l, chainer.links.Linear)]
    assert len(convs) + len(linears) == 110
    assert net.default_split == 'stage2_unit9'
    assert forward_shapes(net, net.in_shape)['stage2_unit9'] == (64, 11, 11)


@pytest.mark.parametrize('train', [True, False])
@pytest.mark.parametrize('names', ['stage2_unit2', 'stem', ['stage1_unit1', 'stage3_unit2']])
def test_split_is_exact_and_shares_parameters(train, names):
    net = resnet_cifar('resnet20-paper')
    x = numpy.random.RandomState(0).randn(3, 3, 24, 24).astype(numpy.float32)
    modules = split(net, names)
    with chainer.using_config('train', train):
        y = net(x).array
        h = x
        for module in modules:
            h = module(h)
    numpy.testing.assert_array_equal(h.array, y)
    ids = {id(p) for m in modules for p in m.params()}
    assert ids == {id(p) for p in net.params()}
    assert sum(len(list(m.params())) for m in modules) == len(list(net.params()))


def test_split_backward_matches_whole_network():
    net = resnet_cifar('resnet8-he')
    x = numpy.random.RandomState(1).randn(2, 3, 32, 32).astype(numpy.float32)
    t = numpy.array([1, 7], numpy.int32)
    net.cleargrads()  # Chainer starts every Parameter.grad as NaN.
    chainer.functions.softmax_cross_entropy(net(x), t).backward()
    whole = {name: p.grad.copy() for name, p in net.namedparams()}
    net.cleargrads()
    bottom, top = split(net, 'stage2_unit1')
    chainer.functions.softmax_cross_entropy(top(bottom(x)), t).backward()
    for name, p in net.namedparams():
        numpy.testing.assert_allclose(p.grad, whole[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('arch', ['resnet111-paper', 'resnet110-foo', 'vgg16', 'resnet2-he'])
def test_bad_arch(arch):
    with pytest.raises(ValueError, match='unknown arch'):
        resnet_cifar(arch)


def test_bad_split_at():
    net = resnet_cifar('resnet8-paper')
    with pytest.raises(ValueError, match="after 'stage2_unit9': no such "
                       "layer.*stem, stage1_unit1, stage2_unit1, stage3_unit1"):
        split(net, 'stage2_unit9')
    with pytest.raises(ValueError, match="after 'head', its last layer"):
        split(net, 'head')
    with pytest.raises(ValueError, match='forward order'):
        split(net, ['stage2_unit1', 'stage1_unit1'])
    with pytest.raises(ValueError, match='unknown preset'):
        ResNetCIFAR(1, 'imagenet')


def test_option_a_shortcut_values():
    unit = resnet_cifar('resnet8-paper')['stage2_unit1']
    x = numpy.arange(2 * 32 * 5 * 5, dtype=numpy.float32).reshape(2, 32, 5, 5)
    s = unit.shortcut(x).array
    assert s.shape == (2, 64, 3, 3)
    numpy.testing.assert_array_equal(s[:, :32], x[:, :, ::2, ::2])
    assert not s[:, 32:].any()
