"""Gradient synthesizers: every one a Link called as ``synth(h, t) -> δ̂``.

``h`` is the activation at a split (cut from the bottom's graph), ``t`` the
integer labels; ``δ̂`` (``grad_synth``) is a Variable shaped like ``h``, on
the scale and sign of the true gradient ``δ = ∂ℓ/∂h`` of the mean softmax
cross-entropy ``ℓ``, and differentiable w.r.t. the synthesizer's own
parameters, which are trained on ``||δ - δ̂||^2`` (Eq. 3).

Methods (names as on the command line, see :func:`build_synthesizer`):

=============  ========================================================
``dni-linear``  :class:`DNILinear`, Jaderberg's linear model (Eq. 7)
``dni-resnet``  :class:`DNIResNet`, Jaderberg's small-ResNet (App. B.1)
``vfbn``        :class:`VFBNResNet`, VFBN with the paper's ``v_f``
``vfbn-linear`` :class:`VFBNLinear`, linear ``v_f`` in closed form (Eq. 8)
``vfbn-mlp``    :class:`VFBNMLP`, one-hidden-layer ``v_f`` (Eq. 9)
=============  ========================================================
"""
import numpy

from chainer_vfbn.synthesizers.dni import concat_label_maps  # NOQA
from chainer_vfbn.synthesizers.dni import DNILinear
from chainer_vfbn.synthesizers.dni import DNIResNet
from chainer_vfbn.synthesizers.vfbn import VFBN  # NOQA
from chainer_vfbn.synthesizers.vfbn import VFBNLinear
from chainer_vfbn.synthesizers.vfbn import VFBNMLP
from chainer_vfbn.synthesizers.vfbn import VFBNResNet

SYNTHESIZERS = ('dni-linear', 'dni-resnet', 'vfbn', 'vfbn-linear', 'vfbn-mlp')


def build_synthesizer(method, h_shape, n_class=10, n_hidden=256):
    """The gradient synthesizer of a method, for activations of one shape.

    Args:
        method (str): One of :data:`SYNTHESIZERS`.
        h_shape (tuple of int): Shape of one example's ``h``, ``(C, H, W)``
            (e.g. ``net.shapes['stage2_unit9'] == (64, 11, 11)``); the DNI
            models and the linear/MLP VFBNs also accept a flat ``(D,)``.
        n_class (int): Number of classes.
        n_hidden (int): Hidden units of ``vfbn-mlp`` (ignored otherwise).

    Returns:
        ~chainer.Link: ``synth(h, t) -> δ̂``.

    Raises:
        ValueError: Unknown method, or a shape the method cannot take.
    """
    if method not in SYNTHESIZERS:
        raise ValueError('unknown synthesizer %r; choose from %s'
                         % (method, ', '.join(SYNTHESIZERS)))
    h_shape = tuple(int(d) for d in h_shape)
    if len(h_shape) not in (1, 3) or min(h_shape) < 1:
        raise ValueError('h_shape must be (C, H, W) or (D,) with positive '
                         'sizes, got %s' % (h_shape,))
    if method == 'dni-linear':
        return DNILinear(h_shape[0], n_class)
    if method == 'dni-resnet':
        return DNIResNet(h_shape[0], n_class)
    if method == 'vfbn':
        if len(h_shape) != 3:
            raise ValueError("'vfbn' (a convolutional v_f) needs h_shape "
                             '(C, H, W), got %s' % (h_shape,))
        return VFBNResNet(h_shape[0], n_class)
    in_size = int(numpy.prod(h_shape))
    if method == 'vfbn-linear':
        return VFBNLinear(in_size, n_class)
    return VFBNMLP(in_size, n_hidden, n_class)
