"""Paths and data that the tests share (not a test module, not a fixture).

Imported as ``import support`` (``pytest.ini`` puts ``tests/`` on the path,
and a test run as ``__main__``, an MPI worker, finds its own folder first).
Importing it loads nothing but :mod:`os`: ``conftest.py`` sets the BLAS
thread count before NumPy loads.
"""
import os

# The checkout the tests belong to.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The bundled CIFAR-10 sample, package data of chainer_vfbn.datasets.
SAMPLE = os.path.join(REPO, 'chainer_vfbn', 'datasets', 'sample',
                      'cifar-10-python.tar.gz')

# The real CIFAR-10 subset: $CHAINER_VFBN_MINI (the archive's path) where set,
# e.g. on a lent GPU machine, else ../shared/data/cifar-10-mini.
MINI_ARCHIVE = os.environ.get('CHAINER_VFBN_MINI') or os.path.join(
    os.path.dirname(REPO), 'shared', 'data', 'cifar-10-mini',
    'cifar-10-python.tar.gz')

# The toy run that the decoupled tests share, so that the MPI ranks
# (test_decoupled.py) and the threads over the loopback transport
# (test_decoupled_loopback.py) train the same thing: 20 random images in
# batches of 8 (2.5 batches per epoch: the runs cross epoch boundaries).
ARCH = 'resnet8-paper'
N_DATA, BATCH = 20, 8
LR, ALPHA_GS = 0.05, 1e-3
