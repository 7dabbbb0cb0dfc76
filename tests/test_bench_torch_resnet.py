"""The PyTorch twin (chainer_vfbn.experiments.bench.torch_resnet) is the Chainer ResNet.

Skipped where PyTorch is not installed (it is no dependency of the package;
the benchmark runs where it is). Where it is: same parameter count, same
parameter shapes, and, with the Chainer weights copied in, the same outputs
in training mode (batch statistics) and in test mode, and the same gradients.
"""
import numpy
import pytest

torch = pytest.importorskip('torch', reason='PyTorch is not installed (the '
                            'twin is a benchmark anchor, not a dependency)')

import chainer  # NOQA
import chainer.functions as F  # NOQA

from chainer_vfbn.experiments.bench import torch_resnet  # NOQA
from chainer_vfbn.models import resnet_cifar  # NOQA


def chainer_count(net):
    return sum(p.size for _, p in net.namedparams())


def _unit(cin, cout):
    # two 3x3 convolutions without bias, two BNs (gamma, beta)
    return 9 * cin * cout + 9 * cout * cout + 4 * cout


def expected_count(n, preset):
    """Parameters of ResNet-(6n+2), counted by hand from the architecture."""
    if preset == 'paper':   # stem conv with bias; 32/64/64 maps
        stem, widths = 3 * 16 * 9 + 16 + 2 * 16, (32, 64, 64)
    else:                   # stem conv without bias; 16/32/64 maps
        stem, widths = 3 * 16 * 9 + 2 * 16, (16, 32, 64)
    total, cin = stem, 16
    for width in widths:
        total += _unit(cin, width) + (n - 1) * _unit(width, width)
        cin = width
    return total + 64 * 10 + 10   # head: linear 64 -> 10


@pytest.mark.parametrize('arch', ['resnet8-paper', 'resnet20-he',
                                  'resnet110-paper', 'resnet110-he'])
def test_parameter_count_and_shapes(arch):
    numpy.random.seed(0)
    net = resnet_cifar(arch)
    twin = torch_resnet.torch_resnet_cifar(arch)
    n = torch_resnet.count_parameters(twin)
    assert n == chainer_count(net) == expected_count(net.n, net.preset)
    shapes = {torch_resnet.chainer_name_to_torch(path): p.shape
              for path, p in net.namedparams()}
    assert shapes == {k: tuple(v.shape) for k, v in twin.named_parameters()}
    assert twin.insize == net.insize


def test_resnet110_counts():
    assert expected_count(18, 'paper') == 2975594
    assert expected_count(18, 'he') == 1727962
    assert expected_count(3, 'he') == 269722
    twin = torch_resnet.torch_resnet_cifar('resnet110-paper')
    assert torch_resnet.count_parameters(twin) == 2975594


@pytest.mark.parametrize('arch', ['resnet8-paper', 'resnet8-he'])
def test_same_outputs_and_gradients(arch):
    numpy.random.seed(1)
    net = resnet_cifar(arch)
    twin = torch_resnet.torch_resnet_cifar(arch)
    assert torch_resnet.load_chainer_params(twin, net) == len(
        [k for k in twin.state_dict() if not k.endswith('batches_tracked')])
    rng = numpy.random.RandomState(2)
    x = rng.randn(4, 3, net.insize, net.insize).astype(numpy.float32)
    t = numpy.array([0, 3, 9, 3], dtype=numpy.int32)

    # Training mode: batch statistics; the loss's gradients too.
    net.cleargrads()
    y = net(x)
    loss = F.softmax_cross_entropy(y, t)
    loss.backward()
    twin.train()
    yt = twin(torch.from_numpy(x))
    losst = torch.nn.functional.cross_entropy(yt, torch.from_numpy(t).long())
    losst.backward()
    assert yt.shape == (4, 10)
    numpy.testing.assert_allclose(yt.detach().numpy(), y.array, rtol=1e-4,
                                  atol=1e-4)
    for path, p in net.namedparams():
        g = dict(twin.named_parameters())[
            torch_resnet.chainer_name_to_torch(path)].grad.numpy()
        numpy.testing.assert_allclose(g, p.grad, rtol=1e-3, atol=1e-5,
                                      err_msg=path)
    # Both updated their running statistics the same way.
    bn = net['stem'].bn
    numpy.testing.assert_allclose(twin.stem.bn.running_var.numpy(),
                                  bn.avg_var, rtol=1e-5)

    # Test mode: running statistics.
    with chainer.using_config('train', False):
        y = net(x)
    twin.eval()
    with torch.no_grad():
        yt = twin(torch.from_numpy(x))
    numpy.testing.assert_allclose(yt.numpy(), y.array, rtol=1e-4, atol=1e-4)


def test_initialisation_scales():
    torch.manual_seed(0)
    twin = torch_resnet.torch_resnet_cifar('resnet110-paper')
    w = twin.stage3_unit5.conv2.weight.detach().numpy()   # fan_in 64 * 9
    assert abs(w.std() - numpy.sqrt(2. / 576)) < 0.02 * numpy.sqrt(2. / 576)
    fc = twin.head.fc.weight.detach().numpy()
    assert abs(fc.std() - numpy.sqrt(1. / 64)) < 0.15 * numpy.sqrt(1. / 64)
    assert not twin.head.fc.bias.detach().numpy().any()
    assert not twin.stem.conv.bias.detach().numpy().any()
    assert twin.stem.bn.eps == 2e-5 and twin.stem.bn.momentum == 0.1
