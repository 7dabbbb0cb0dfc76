"""The CIFAR ResNet of ``chainer_vfbn.models.resnet``, written in PyTorch eager.

A speed anchor for ``benchmarks/bench_vs_pytorch.py``: the same network as
``resnet_cifar(arch)``, layer for layer and parameter for parameter. It
imports PyTorch, which is no dependency of the package: only the benchmarks
import this module, and nothing else in the package does.

* ``paper`` preset (the VFBN paper, Appendix B.1): 24x24 input, 3x3
  convolution without padding *with* a bias to 16 maps, stages of 32, 64 and
  64 maps at 22x22, 11x11 and 6x6; ``he`` preset: 32x32 input, padded stem
  without bias, 16/32/64 maps.
* Post-activation basic units (conv-BN-ReLU-conv-BN, add, ReLU) with
  option-A shortcuts: stride-2 subsampling and zero maps appended.
* Global average pooling and a linear layer to the classes.
* Chainer's initialisation: convolutions He-normal (std ``sqrt(2 / fan_in)``),
  the linear layer LeCun-normal (std ``sqrt(1 / fan_in)``), biases 0;
  BatchNorm with Chainer's ``eps = 2e-5`` and ``decay = 0.9`` (PyTorch's
  ``momentum = 0.1``).

Module names follow the Chainer model (``stem``, ``stage{s}_unit{u}``,
``head``; ``conv1``/``bn1``/... inside), so ``load_chainer_params`` can copy
a Chainer model's weights in and the two can be compared output for output
(tests/test_bench_torch_resnet.py).
"""
import collections
import math
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    # name: (input size, stem padding, stem has bias, stage widths)
    'paper': dict(insize=24, stem_pad=0, stem_bias=True, widths=(32, 64, 64)),
    'he': dict(insize=32, stem_pad=1, stem_bias=False, widths=(16, 32, 64)),
}
STEM_WIDTH = 16
BN_EPS = 2e-5        # chainer.links.BatchNormalization's default
BN_MOMENTUM = 0.1    # = 1 - Chainer's decay 0.9


def parse_arch(arch):
    """``'resnet110-paper'`` -> ``(18, 'paper')``."""
    m = re.match(r'^resnet(\d+)-(paper|he)$', arch)
    if m is None or (int(m.group(1)) - 2) % 6 or int(m.group(1)) < 8:
        raise ValueError('unknown arch %r: expected resnet<6n+2>-{paper,he}'
                         % (arch,))
    return (int(m.group(1)) - 2) // 6, m.group(2)


def conv3x3(in_channels, out_channels, stride=1, pad=1, bias=False):
    conv = nn.Conv2d(in_channels, out_channels, 3, stride, pad, bias=bias)
    # Chainer's HeNormal: N(0, 2 / fan_in), fan_in = in_channels * 3 * 3.
    nn.init.normal_(conv.weight, 0., math.sqrt(2. / (in_channels * 9)))
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


def batch_norm(channels):
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class Stem(nn.Module):
    def __init__(self, out_channels, pad, bias):
        super().__init__()
        self.conv = conv3x3(3, out_channels, pad=pad, bias=bias)
        self.bn = batch_norm(out_channels)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class ResidualUnit(nn.Module):
    """conv-BN-ReLU-conv-BN, plus the option-A shortcut, then ReLU."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.extra = out_channels - in_channels
        self.stride = stride
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = batch_norm(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = batch_norm(out_channels)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        s = x
        if self.stride != 1:
            s = s[:, :, ::self.stride, ::self.stride]
        if self.extra:
            # zero maps appended after the input's maps
            s = F.pad(s, (0, 0, 0, 0, 0, self.extra))
        return F.relu(h + s)


class Head(nn.Module):
    def __init__(self, in_channels, n_class):
        super().__init__()
        self.fc = nn.Linear(in_channels, n_class)
        nn.init.normal_(self.fc.weight, 0., math.sqrt(1. / in_channels))
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))


class TorchResNetCIFAR(nn.Sequential):
    """ResNet of depth ``6n + 2``, the twin of ``ResNetCIFAR(n, preset)``.

    Args:
        n (int): Residual units per stage (18 for ResNet-110).
        preset (str): ``'paper'`` or ``'he'``.
        n_class (int): Number of classes.
    """

    def __init__(self, n=18, preset='paper', n_class=10):
        cfg = PRESETS[preset]
        layers = collections.OrderedDict()
        layers['stem'] = Stem(STEM_WIDTH, cfg['stem_pad'], cfg['stem_bias'])
        channels = STEM_WIDTH
        for s, width in enumerate(cfg['widths'], 1):
            for u in range(1, n + 1):
                stride = 2 if (s > 1 and u == 1) else 1
                layers['stage%d_unit%d' % (s, u)] = ResidualUnit(
                    channels, width, stride)
                channels = width
        layers['head'] = Head(channels, n_class)
        super().__init__(layers)
        self.insize = cfg['insize']
        self.preset = preset
        self.n = n


def torch_resnet_cifar(arch='resnet110-paper', n_class=10):
    """Build the PyTorch twin of ``chainer_vfbn.models.resnet_cifar(arch)``."""
    n, preset = parse_arch(arch)
    return TorchResNetCIFAR(n, preset, n_class)


def count_parameters(model):
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


_CHAINER_TO_TORCH = {'W': 'weight', 'b': 'bias', 'gamma': 'weight',
                     'beta': 'bias', 'avg_mean': 'running_mean',
                     'avg_var': 'running_var'}


def chainer_name_to_torch(path):
    """``'/stage1_unit1/bn1/gamma'`` -> ``'stage1_unit1.bn1.weight'``."""
    parts = path.strip('/').split('/')
    return '.'.join(parts[:-1] + [_CHAINER_TO_TORCH[parts[-1]]])


def load_chainer_params(model, chainer_net):
    """Copy a Chainer ``ResNetCIFAR``'s parameters and BN statistics in.

    Args:
        model (TorchResNetCIFAR): The twin, same arch.
        chainer_net (chainer_vfbn.models.ResNetCIFAR): The source (on CPU).

    Returns:
        int: The number of tensors copied (every entry of the state dict
        except BN's ``num_batches_tracked``).
    """
    state = model.state_dict()
    arrays = {}
    for path, param in chainer_net.namedparams():
        arrays[chainer_name_to_torch(path)] = param.array
    for link_path, link in chainer_net.namedlinks():
        for name in ('avg_mean', 'avg_var'):
            if hasattr(link, name) and name in link._persistent:
                arrays[chainer_name_to_torch(link_path + '/' + name)] = \
                    getattr(link, name)
    wanted = {k for k in state if not k.endswith('num_batches_tracked')}
    if set(arrays) != wanted:
        raise ValueError('parameter names differ: only in chainer %s, only in '
                         'torch %s' % (sorted(set(arrays) - wanted),
                                       sorted(wanted - set(arrays))))
    with torch.no_grad():
        for key, array in arrays.items():
            if tuple(state[key].shape) != tuple(array.shape):
                raise ValueError('%s: shape %s in chainer, %s in torch'
                                 % (key, array.shape, tuple(state[key].shape)))
            state[key].copy_(torch.as_tensor(array))
    return len(arrays)
