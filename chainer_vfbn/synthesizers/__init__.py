"""Gradient synthesizers: every one a Link called as ``synth(h, t) -> δ̂``.

``h`` is the activation at a split (cut from the bottom's graph), ``t`` the
integer labels; ``δ̂`` (``grad_synth``) is a Variable shaped like ``h``, on
the scale and sign of the true gradient ``δ = ∂ℓ/∂h`` of the mean softmax
cross-entropy ``ℓ``, and differentiable w.r.t. the synthesizer's own
parameters, which are trained on ``||δ - δ̂||^2`` (Eq. 3).

The kinds, with their builders and defaults, are the entries of one registry,
:data:`~chainer_vfbn.synthesizers.registry.KINDS` (also named
``SYNTHESIZERS`` here and in :mod:`chainer_vfbn`); :func:`build_synthesizer`
builds any of them, and :func:`register` adds one from outside the package.
"""
from chainer_vfbn.synthesizers.dni import concat_label_maps  # NOQA
from chainer_vfbn.synthesizers.dni import DNILinear  # NOQA
from chainer_vfbn.synthesizers.dni import DNIResNet  # NOQA
from chainer_vfbn.synthesizers.registry import build_synthesizer  # NOQA
from chainer_vfbn.synthesizers.registry import Kind  # NOQA
from chainer_vfbn.synthesizers.registry import KINDS  # NOQA
from chainer_vfbn.synthesizers.registry import register  # NOQA
from chainer_vfbn.synthesizers.vfbn import VFBN  # NOQA
from chainer_vfbn.synthesizers.vfbn import VFBNLinear  # NOQA
from chainer_vfbn.synthesizers.vfbn import VFBNMLP  # NOQA
from chainer_vfbn.synthesizers.vfbn import VFBNResNet  # NOQA

# The registry itself, ``{name: Kind}`` (the same object as
# ``chainer_vfbn.SYNTHESIZERS``): one meaning of the name.
SYNTHESIZERS = KINDS
