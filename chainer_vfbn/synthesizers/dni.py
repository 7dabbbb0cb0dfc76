"""Jaderberg et al.'s gradient synthesizers, ``δ̂ = g([h, y])`` (Eq. 4).

Both models read the activation ``h`` concatenated with the label ``y`` as
``n_class`` constant maps (one-hot: the map of class ``t`` is all ones, the
others all zeros), so a 64-map ``h`` at 11x11 becomes 74 maps (the paper,
Appendix B.1). A flat ``h`` of shape ``(B, D)`` is read as ``D`` maps of
1x1; a convolution with resolution-preserving padding is then a linear map
of ``[h, y]`` (only its centre tap sees data).

As in Jaderberg et al. (2016, Section 3 and Appendix A), the output layer
of each synthesizer is initialised to zero, so both start by predicting a
zero gradient; training (Eq. 3) moves them from there.
"""
import chainer
import chainer.functions as F
import chainer.links as L
from chainer import initializers

from chainer_vfbn.models.resnet import ResidualUnit


def _as_maps(h):
    """``(B, D)`` -> ``(B, D, 1, 1)``; 4-d ``h`` unchanged."""
    if h.ndim == 2:
        return F.reshape(h, h.shape + (1, 1))
    if h.ndim != 4:
        raise ValueError('h must be (B, C, H, W) or (B, D), got shape %s'
                         % (h.shape,))
    return h


def concat_label_maps(h, t, n_class):
    """``[h, y]``: ``h`` and the one-hot labels as constant maps.

    Args:
        h (~chainer.Variable): Activation, ``(B, C, H, W)``.
        t (array): Integer labels in ``[0, n_class)``, ``(B,)``.
        n_class (int): Number of classes.

    Returns:
        ~chainer.Variable: ``(B, C + n_class, H, W)``; channel ``C + t[n]``
        of example ``n`` is ones, the other label channels zeros.
    """
    xp = chainer.backend.get_array_module(h)
    if isinstance(t, chainer.Variable):
        t = t.array
    onehot = xp.eye(n_class, dtype=h.dtype)[t]             # (B, K)
    maps = xp.broadcast_to(onehot[:, :, None, None],
                           (h.shape[0], n_class) + h.shape[2:])
    return F.concat((h, maps), axis=1)


def _zero_conv(in_channels, out_channels, ksize):
    # DNI: the synthesizer's output layer starts at zero (weights and bias).
    return L.Convolution2D(in_channels, out_channels, ksize, pad=ksize // 2,
                           initialW=initializers.Zero(),
                           initial_bias=initializers.Zero())


class DNILinear(chainer.Chain):

    """Jaderberg's linear synthesizer, ``δ̂ = W [h, y]`` (Eq. 7).

    One 5x5 convolution with padding 2 (resolution preserving) from
    ``in_channels + n_class`` maps to ``in_channels`` maps (Appendix B.1:
    74 maps in for a 64-map ``h``). The convolution has a bias (Chainer's
    default; inside the image the label maps already give a class-dependent
    offset). Weights and bias are initialised to zero, following the DNI
    paper, so ``δ̂ = 0`` before training.

    Args:
        in_channels (int): Maps of ``h`` (``D`` for a flat ``h``).
        n_class (int): Number of classes.

    Call ``synth(h, t)``: ``h`` ``(B, C, H, W)`` or ``(B, D)``, ``t``
    ``(B,)`` integer labels; returns ``δ̂``, a Variable shaped like ``h``.
    """

    def __init__(self, in_channels, n_class=10):
        super().__init__()
        self.in_channels = in_channels
        self.n_class = n_class
        with self.init_scope():
            self.conv = _zero_conv(in_channels + n_class, in_channels, 5)

    def forward(self, h, t):
        x = concat_label_maps(_as_maps(h), t, self.n_class)
        return F.reshape(self.conv(x), h.shape)


class DNIResNet(chainer.Chain):

    """Jaderberg's "small-ResNet" synthesizer (the paper's Appendix B.1).

    A 3x3 convolution from ``[h, y]`` to ``width`` maps, two residual units
    of two 3x3 convolutions each (skip every 2 layers,
    :class:`~chainer_vfbn.models.resnet.ResidualUnit`), and a last 3x3
    convolution to ``in_channels`` maps. Every convolution but the last is
    followed by BN and ReLU; all preserve the resolution. The last layer
    (weights and bias) is initialised to zero, following the DNI paper, so
    ``δ̂ = 0`` before training.

    Args:
        in_channels (int): Maps of ``h`` (``D`` for a flat ``h``).
        n_class (int): Number of classes.
        width (int): Maps inside the synthesizer (64 in the paper).

    Call ``synth(h, t)`` as :class:`DNILinear`.
    """

    def __init__(self, in_channels, n_class=10, width=64):
        super().__init__()
        self.in_channels = in_channels
        self.n_class = n_class
        with self.init_scope():
            self.conv_in = L.Convolution2D(
                in_channels + n_class, width, 3, pad=1, nobias=True,
                initialW=initializers.HeNormal())
            self.bn_in = L.BatchNormalization(width)
            self.unit1 = ResidualUnit(width, width)
            self.unit2 = ResidualUnit(width, width)
            self.conv_out = _zero_conv(width, in_channels, 3)

    def forward(self, h, t):
        x = concat_label_maps(_as_maps(h), t, self.n_class)
        x = F.relu(self.bn_in(self.conv_in(x)))
        x = self.unit2(self.unit1(x))
        return F.reshape(self.conv_out(x), h.shape)
