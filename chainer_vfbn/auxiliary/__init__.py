"""Local learning with auxiliary networks: the peers DGL and InfoPro.

Each method trains the layers below a split on a local loss through an
auxiliary network built from the shape of ``h``, and the layers above on
their own loss of the detached ``h``, so no gradient crosses the split (as
the paper's "layer-wise supervised loss" baseline, whose updater they use).

:mod:`~chainer_vfbn.auxiliary.dgl`
    DGL's "MLP-SR" auxiliary classifier (Belilovsky et al., ICML 2020).
:mod:`~chainer_vfbn.auxiliary.infopro`
    InfoPro's classifier and decoder, softmax variant (Wang et al., ICLR
    2021).
:mod:`~chainer_vfbn.auxiliary.registry`
    The methods by name, with their builders and tunable weight.
:mod:`~chainer_vfbn.auxiliary.resampling`
    Adaptive average pooling and bilinear resizing, as fixed linear maps.
"""
from chainer_vfbn.auxiliary.dgl import DGLAuxiliary  # NOQA
from chainer_vfbn.auxiliary.infopro import InfoProAuxiliary  # NOQA
from chainer_vfbn.auxiliary.registry import build_auxiliary  # NOQA
from chainer_vfbn.auxiliary.registry import KINDS  # NOQA
from chainer_vfbn.auxiliary.resampling import adaptive_average_pooling_2d  # NOQA
from chainer_vfbn.auxiliary.resampling import resize_bilinear  # NOQA
