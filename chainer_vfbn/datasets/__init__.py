"""CIFAR-10: loading, augmentation and the augmenting iterator."""
from chainer_vfbn.datasets import augment  # NOQA
from chainer_vfbn.datasets.augment import CENTER_VIEW  # NOQA
from chainer_vfbn.datasets.augment import channel_mean_std  # NOQA
from chainer_vfbn.datasets.augment import describe_paper_view  # NOQA
from chainer_vfbn.datasets.augment import eval_view  # NOQA
from chainer_vfbn.datasets.augment import n_views  # NOQA
from chainer_vfbn.datasets.augment import normalization  # NOQA
from chainer_vfbn.datasets.augment import paper_all_views  # NOQA
from chainer_vfbn.datasets.augment import paper_views  # NOQA
from chainer_vfbn.datasets.augment import standard_crops  # NOQA
from chainer_vfbn.datasets.cifar10_format import CLASS_NAMES  # NOQA
from chainer_vfbn.datasets.cifar10_format import DatasetError  # NOQA
from chainer_vfbn.datasets.cifar10 import get_cifar10  # NOQA
from chainer_vfbn.datasets.cifar10 import load_cifar10  # NOQA
from chainer_vfbn.datasets.cifar10 import read_cifar10  # NOQA
from chainer_vfbn.datasets.iterator import AugmentedIterator  # NOQA
from chainer_vfbn.datasets.split import validation_split  # NOQA
