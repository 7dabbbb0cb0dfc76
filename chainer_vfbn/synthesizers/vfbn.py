"""VFBN gradient synthesizers, ``δ̂ = v_f'(h) ∂ℓ(y, v_f(h))/∂v_f(h)`` (Eq. 6).

A *virtual forward network* ``v_f`` maps the activation ``h`` to class
scores; the synthetic gradient is the gradient, w.r.t. ``h``, of the task
loss ``ℓ`` (the mean softmax cross-entropy over the batch, as the network's
own loss) computed through ``v_f`` instead of through the layers above.
Training ``v_f`` on ``||δ - δ̂||^2`` (Eq. 3) differentiates ``δ̂`` w.r.t.
``v_f``'s parameters: a double back-propagation.

:class:`VFBN`
    Any chain ``v_f``; ``δ̂`` by double backprop (``chainer.grad``).
:class:`VFBNResNet`
    :class:`VFBN` with the paper's ``v_f`` (Appendix B.1).
:class:`VFBNLinear`, :class:`VFBNMLP`
    Linear (Eq. 8) and one-hidden-layer (Eq. 9) ``v_f`` on the flattened
    ``h``, with the closed forms of :mod:`chainer_vfbn.functions.vfbn_grad`
    (no double-backprop graph).

Every synthesizer is called as ``synth(h, t) -> δ̂``, a Variable shaped like
``h`` and differentiable w.r.t. the synthesizer's parameters; ``δ̂`` has the
sign and scale of ``δ = ∂ℓ/∂h`` (each example's gradient carries ``1/B``).
"""
import chainer
import chainer.functions as F
import chainer.links as L
import numpy

from chainer_vfbn.functions import vfbn_linear_grad
from chainer_vfbn.functions import vfbn_mlp_grad
from chainer_vfbn.models.resnet import Head
from chainer_vfbn.models.resnet import ResidualUnit
from chainer_vfbn.sequential import Sequence


def _labels(t):
    return t.array if isinstance(t, chainer.Variable) else t


class VFBN(chainer.Chain):

    """VFBN synthesizer for any virtual forward network ``v_f`` (Eq. 6).

    ``δ̂ = ∂ℓ(t, v_f(h)) / ∂h`` with ``ℓ`` the mean softmax cross-entropy,
    computed by ``chainer.grad`` with ``enable_double_backprop=True``, so
    ``δ̂`` is differentiable w.r.t. ``v_f``'s parameters (and ``h``).
    ``chainer.grad`` leaves the parameters' ``.grad`` untouched.

    With ``v_f`` an exact copy of the layers above the split (same weights,
    same BN mode), ``δ̂`` equals the true gradient ``δ``.

    ``v_f``'s BN layers follow ``chainer.config.train`` as any link: batch
    statistics (and running averages updated) in training mode.

    Args:
        vf (~chainer.Link): The virtual forward network, ``vf(h) -> scores``
            of shape ``(B, n_class)``.
        loss_func: The loss ``ℓ(y, t)`` whose gradient δ̂ is, which must be
            the network's own (the updater refuses another,
            :func:`chainer_vfbn.split_step.check_loss`); ``None`` for the mean
            softmax cross-entropy. Another loss must support double
            back-propagation.

    Attributes:
        loss_func: The loss δ̂ is the gradient of
            (``F.softmax_cross_entropy`` by default).

    Call ``synth(h, t)``: ``h`` a Variable (or array) of any shape ``vf``
    accepts; if it does not require a gradient it is wrapped in a fresh
    Variable that does (its value is kept). ``t`` ``(B,)`` integer labels.
    Returns ``δ̂``, a Variable shaped like ``h``.
    """

    def __init__(self, vf, loss_func=None):
        super().__init__()
        self.loss_func = loss_func or F.softmax_cross_entropy
        with self.init_scope():
            self.vf = vf

    def _loss(self, y, t):
        if y.ndim != 2 or y.shape[0] != t.shape[0]:
            raise ValueError(
                'v_f must give class scores of shape (B, n_class) = (%d, ..), '
                'got %s' % (t.shape[0], y.shape))
        if self.loss_func is F.softmax_cross_entropy:
            xp = chainer.backend.get_array_module(t)
            # Checked on the CPU only: on a GPU it would wait for the device.
            if xp is numpy and t.size and int(t.max()) >= y.shape[1]:
                raise ValueError(
                    'v_f gives %d class scores but a label is %d: its output '
                    'does not fit the labels' % (y.shape[1], int(t.max())))
            return F.softmax_cross_entropy(y, t, enable_double_backprop=True)
        return self.loss_func(y, t)

    def forward(self, h, t):
        if not isinstance(h, chainer.Variable) or not h.requires_grad:
            h = chainer.Variable(h.array if isinstance(h, chainer.Variable)
                                 else h)
        if not chainer.config.enable_backprop:
            raise RuntimeError('VFBN needs back-propagation enabled: it '
                               'differentiates v_f; do not call it under '
                               'chainer.no_backprop_mode()')
        loss = self._loss(self.vf(h), _labels(t))
        # Eq. (6): δ̂ = v_f'(h) ∂ℓ/∂v_f(h), kept differentiable (Eq. 3).
        grad_synth, = chainer.grad([loss], [h], enable_double_backprop=True)
        if grad_synth is None:
            raise ValueError('v_f(h) does not depend on h: no gradient')
        return grad_synth


class VFBNResNet(VFBN):

    """VFBN with the paper's residual ``v_f`` (Appendix B.1).

    ``v_f``: two residual units of two 3x3 convolutions each (resolution
    preserving, skip every 2 layers, BN and ReLU,
    :class:`~chainer_vfbn.models.resnet.ResidualUnit`, width
    ``in_channels``), then global average pooling and a linear map to
    ``n_class`` scores (:class:`~chainer_vfbn.models.resnet.Head`); the
    softmax is in the loss. Parameters start at the network's own
    initialisation (He normal convolutions), not at zero: an untrained
    ``v_f`` (``alpha_gs = 0`` in Table 1) gives a non-zero ``δ̂``.

    Args:
        in_channels (int): Maps of ``h``, which is ``(B, C, H, W)``.
        n_class (int): Number of classes.
        loss_func: As :class:`VFBN`.
    """

    def __init__(self, in_channels, n_class=10, loss_func=None):
        vf = Sequence([('unit1', ResidualUnit(in_channels, in_channels)),
                       ('unit2', ResidualUnit(in_channels, in_channels)),
                       ('head', Head(in_channels, n_class))])
        super().__init__(vf, loss_func)
        self.in_channels = in_channels
        self.n_class = n_class


def _flatten(h):
    return F.reshape(h, (h.shape[0], -1))


class VFBNLinear(chainer.Chain):

    """VFBN with a linear ``v_f`` (Eq. 8), in closed form.

    ``v_f(h) = W vec(h) + b`` and ``δ̂ = (1/B) W^T (softmax(v_f(h)) - y)``
    per example (:func:`~chainer_vfbn.functions.vfbn_linear_grad`; the
    paper's Eq. 8 negated and scaled to the batch-mean loss). ``v_f`` keeps
    a bias, unlike the paper's formula ("for simplicity"); ``W`` starts at
    :class:`~chainer.links.Linear`'s default (LeCun normal), ``b`` at 0.

    Args:
        in_size (int): Features of the flattened ``h`` (``C * H * W``).
        n_class (int): Number of classes.

    Attributes:
        fc (~chainer.links.Linear): ``v_f`` itself; ``fc(h)`` gives its
            scores.
    """

    # The closed form is the gradient of the softmax cross-entropy only.
    loss_func = staticmethod(F.softmax_cross_entropy)

    def __init__(self, in_size, n_class=10):
        super().__init__()
        self.in_size = in_size
        self.n_class = n_class
        with self.init_scope():
            self.fc = L.Linear(in_size, n_class)

    def virtual_forward(self, h):
        """``v_f(h)``: class scores ``(B, n_class)``."""
        return self.fc(_flatten(h))

    def forward(self, h, t):
        grad_synth = vfbn_linear_grad(_flatten(h), self.fc.W, self.fc.b,
                                      _labels(t))
        return F.reshape(grad_synth, h.shape)


class VFBNMLP(chainer.Chain):

    """VFBN with a one-hidden-layer ``v_f`` (Eq. 9, ReLU), in closed form.

    ``v_f(h) = W2 f(W1 vec(h) + b1) + b2`` and
    ``δ̂ = (1/B) W1^T f'(a1) W2^T (softmax(v_f(h)) - y)`` per example
    (:func:`~chainer_vfbn.functions.vfbn_mlp_grad`). Both layers keep their
    bias (the paper omits them "for simplicity"); weights start at
    :class:`~chainer.links.Linear`'s default (LeCun normal), biases at 0.

    Args:
        in_size (int): Features of the flattened ``h`` (``C * H * W``).
        n_hidden (int): Hidden units.
        n_class (int): Number of classes.

    Attributes:
        l1, l2 (~chainer.links.Linear): The two layers of ``v_f``.
    """

    # The closed form is the gradient of the softmax cross-entropy only.
    loss_func = staticmethod(F.softmax_cross_entropy)

    def __init__(self, in_size, n_hidden, n_class=10):
        super().__init__()
        self.in_size = in_size
        self.n_hidden = n_hidden
        self.n_class = n_class
        with self.init_scope():
            self.l1 = L.Linear(in_size, n_hidden)
            self.l2 = L.Linear(n_hidden, n_class)

    def virtual_forward(self, h):
        """``v_f(h)``: class scores ``(B, n_class)``."""
        return self.l2(F.relu(self.l1(_flatten(h))))

    def forward(self, h, t):
        grad_synth = vfbn_mlp_grad(_flatten(h), self.l1.W, self.l1.b,
                                   self.l2.W, self.l2.b, _labels(t))
        return F.reshape(grad_synth, h.shape)

