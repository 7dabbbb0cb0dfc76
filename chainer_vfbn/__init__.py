"""chainer_vfbn: synthetic-gradient training with Virtual Forward-Backward Networks.

Reference implementation, in Chainer, of Miyato, Okanohara, Maeda and Koyama,
"Synthetic Gradient Methods with Virtual Forward-Backward Networks"
(ICLR 2017 workshop).
"""
from chainer_vfbn import _compat  # NOQA  (must run before chainer is imported)

__version__ = '0.1.0'
