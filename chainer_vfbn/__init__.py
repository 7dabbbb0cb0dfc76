"""chainer_vfbn: synthetic-gradient training with Virtual Forward-Backward Networks.

Reference implementation, in Chainer, of Miyato, Okanohara, Maeda and Koyama,
"Synthetic Gradient Methods with Virtual Forward-Backward Networks"
(ICLR 2017 workshop).

The public API, for any sequential Chainer model (a ``chainer.Sequential``,
a chain whose ``layer_names`` run in order, or one whose order one forward
pass shows), cut at a layer or at a dotted path into nested chains::

    import chainer_vfbn
    bottom, top = chainer_vfbn.split(model, at)        # shares parameters
    method = chainer_vfbn.build_method('vfbn', model, split_at=at,
                                       in_shape=(3, 32, 32))
    updater = method.make_updater(train_iter, converter, device)

``chainer_vfbn.SYNTHESIZERS`` is the registry of synthesizer kinds, ``{name:
Kind}``; :func:`register_synthesizer` adds one. The updaters are
:class:`SyntheticGradientUpdater` and :class:`LayerwiseUpdater`.
"""
from chainer_vfbn import _compat  # NOQA  (must run before chainer is imported)

__version__ = '0.1.0'

from chainer_vfbn.methods import build_method  # NOQA  (E402: after _compat)
from chainer_vfbn.methods import build_pipeline  # NOQA
from chainer_vfbn.methods import Method  # NOQA
from chainer_vfbn.sequential import Cut  # NOQA
from chainer_vfbn.sequential import forward_shapes  # NOQA
from chainer_vfbn.sequential import Sequence  # NOQA
from chainer_vfbn.sequential import split  # NOQA
from chainer_vfbn.sequential import split_points  # NOQA
from chainer_vfbn.synthesizers.registry import build_synthesizer  # NOQA
from chainer_vfbn.synthesizers.registry import Kind  # NOQA
from chainer_vfbn.synthesizers.registry import KINDS as SYNTHESIZERS  # NOQA
from chainer_vfbn.synthesizers.registry import \
    register as register_synthesizer  # NOQA
from chainer_vfbn.updaters import LayerwiseUpdater  # NOQA
from chainer_vfbn.updaters import SyntheticGradientUpdater  # NOQA
