"""The ResNet for CIFAR of He et al. (2016) and of the VFBN paper.

One definition serves every use: the whole network for back-propagation,
and consecutive slices of it that share its parameters, for the
synthetic-gradient methods that cut it into modules. It is a
:class:`~chainer_vfbn.sequential.Sequence` (its ``layer_names`` run in
order), so :func:`chainer_vfbn.split` cuts it by the rule that cuts any
sequential chain.

Two presets:

``paper``  (the VFBN paper, Appendix B.1; mitmul/chainer-cifar10 as of 2016)
    24x24 input; 3x3 convolution *without* padding to 16 maps (22x22);
    three stages of 32, 64 and 64 maps at 22x22, 11x11 and 6x6.
``he``     (He et al. 2016, Section 4.2)
    32x32 input; 3x3 convolution with padding to 16 maps; three stages of
    16, 32 and 64 maps at 32x32, 16x16 and 8x8.

Each stage has ``n`` post-activation basic units (conv-BN-ReLU-conv-BN, add,
ReLU) and the network has depth ``6n + 2`` (ResNet-110: ``n = 18``).
Shortcuts are option A: parameter-free, a stride-2 subsampling (the 2016
code's ``average_pooling_2d(x, 1, 2)``, a 1x1 average) where the resolution
halves, and zero maps appended where the width grows.
"""
import re

import chainer
import chainer.functions as F
import chainer.links as L
from chainer import initializers

from chainer_vfbn.sequential import Sequence

PRESETS = {
    # name: (input size, stem padding, stem has bias, stage widths)
    'paper': dict(insize=24, stem_pad=0, stem_bias=True, widths=(32, 64, 64)),
    'he': dict(insize=32, stem_pad=1, stem_bias=False, widths=(16, 32, 64)),
}
STEM_WIDTH = 16

_ARCH_RE = re.compile(r'^resnet(\d+)-(%s)$' % '|'.join(PRESETS))


def _conv3x3(in_channels, out_channels, stride=1, pad=1, nobias=True):
    # He et al.'s initialization, as the 2016 code's ``wscale=sqrt(2)``.
    return L.Convolution2D(in_channels, out_channels, 3, stride, pad,
                           nobias=nobias, initialW=initializers.HeNormal())


class Stem(chainer.Chain):
    """First convolution, BN and ReLU."""

    def __init__(self, out_channels, pad, nobias):
        super().__init__()
        with self.init_scope():
            self.conv = _conv3x3(3, out_channels, pad=pad, nobias=nobias)
            self.bn = L.BatchNormalization(out_channels)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class ResidualUnit(chainer.Chain):
    """Post-activation basic unit with an option-A (parameter-free) shortcut.

    Args:
        in_channels (int): Maps in.
        out_channels (int): Maps out (``>= in_channels``).
        stride (int): 1, or 2 to halve the resolution.
    """

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError('option-A shortcuts cannot reduce the width')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        with self.init_scope():
            self.conv1 = _conv3x3(in_channels, out_channels, stride)
            self.bn1 = L.BatchNormalization(out_channels)
            self.conv2 = _conv3x3(out_channels, out_channels)
            self.bn2 = L.BatchNormalization(out_channels)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + self.shortcut(x))

    def shortcut(self, x):
        if self.stride != 1:
            # Same values as average_pooling_2d(x, ksize=1, stride=2).
            x = x[:, :, ::self.stride, ::self.stride]
        extra = self.out_channels - self.in_channels
        if extra:
            xp = chainer.backend.get_array_module(x)
            zeros = xp.zeros((x.shape[0], extra) + x.shape[2:], x.dtype)
            x = F.concat((x, zeros), axis=1)
        return x


class Head(chainer.Chain):
    """Global average pooling and a linear map to class scores.

    The network's own classifier; also the auxiliary head of the paper's
    "bottom half with back prop" and "layer-wise supervised loss" baselines.
    A flat ``(B, D)`` input (``in_channels = D``) has nothing to pool and
    goes to the linear map as it is.
    """

    def __init__(self, in_channels, n_class=10):
        super().__init__()
        with self.init_scope():
            self.fc = L.Linear(in_channels, n_class)

    def forward(self, x):
        return self.fc(F.average(x, axis=(2, 3)) if x.ndim == 4 else x)


class ResNetCIFAR(Sequence):
    """ResNet of depth ``6n + 2`` for 10-class CIFAR images.

    Layers, in order: ``stem``, ``stage{s}_unit{u}`` for ``s`` in 1..3 and
    ``u`` in 1..n, and ``head``. Any layer but ``head`` is a split point.

    Args:
        n (int): Residual units per stage (18 for ResNet-110).
        preset (str): ``'paper'`` or ``'he'`` (see the module docstring).
        n_class (int): Number of classes.

    Attributes:
        insize (int): Side of the square input images.
        in_shape (tuple): One input example's shape, ``(3, insize,
            insize)``.
        default_split (str): The paper's cut (see the property).

    Example:
        >>> import chainer_vfbn
        >>> model = ResNetCIFAR(1)
        >>> model.layer_names
        ['stem', 'stage1_unit1', 'stage2_unit1', 'stage3_unit1', 'head']
        >>> bottom, top = chainer_vfbn.split(model, 'stage2_unit1')
        >>> bottom.layer_names, top.layer_names
        (['stem', 'stage1_unit1', 'stage2_unit1'], ['stage3_unit1', 'head'])
    """

    def __init__(self, n=18, preset='paper', n_class=10):
        if preset not in PRESETS:
            raise ValueError('unknown preset %r; choose from %s'
                             % (preset, ', '.join(sorted(PRESETS))))
        if n < 1:
            raise ValueError('n must be >= 1, got %d' % n)
        cfg = PRESETS[preset]
        self.n = n
        self.preset = preset
        self.n_class = n_class
        self.insize = cfg['insize']
        self.in_shape = (3, self.insize, self.insize)
        layers = [('stem', Stem(STEM_WIDTH, cfg['stem_pad'],
                                not cfg['stem_bias']))]
        channels = STEM_WIDTH
        for s, width in enumerate(cfg['widths'], 1):
            for u in range(1, n + 1):
                stride = 2 if (s > 1 and u == 1) else 1
                name = 'stage%d_unit%d' % (s, u)
                layers.append((name, ResidualUnit(channels, width, stride)))
                channels = width
        layers.append(('head', Head(channels, n_class)))
        super().__init__(layers)

    @property
    def depth(self):
        return 6 * self.n + 2

    @property
    def default_split(self):
        """The paper's cut, "the middle of ResBlock-2" (Appendix B.1).

        After unit ``ceil(n / 2)`` of stage 2: ``stage2_unit9`` for ResNet-110.
        """
        return 'stage2_unit%d' % ((self.n + 1) // 2)

    @property
    def arch(self):
        return 'resnet%d-%s' % (self.depth, self.preset)


def parse_arch(arch):
    """``'resnet110-paper'`` -> ``(18, 'paper')``; ValueError if malformed."""
    match = _ARCH_RE.match(arch)
    if match is None or (int(match.group(1)) - 2) % 6 or int(match.group(1)) < 8:
        raise ValueError(
            'unknown arch %r: expected resnet<depth>-<preset> with depth = '
            '6n+2 >= 8 and preset in {%s}, e.g. resnet110-paper, resnet20-he'
            % (arch, ', '.join(sorted(PRESETS))))
    return (int(match.group(1)) - 2) // 6, match.group(2)


def resnet_cifar(arch='resnet110-paper', n_class=10):
    """Build a :class:`ResNetCIFAR` from an arch name such as ``resnet110-paper``."""
    n, preset = parse_arch(arch)
    return ResNetCIFAR(n, preset, n_class)
