"""Test configuration: chainer_vfbn (and so its compat shims) before chainer."""
import os

# One BLAS thread, set before NumPy loads its BLAS: several tests compare a
# computation in this process with the same one in MPI ranks (which run one
# thread each) to 1e-5, and a different thread count changes the summation
# order enough to flip a ReLU/BN kink now and then. The suite is small; one
# thread costs it little. An explicit setting in the environment wins.
for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

import chainer_vfbn  # NOQA  (must precede any `import chainer`)

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINI_ARCHIVE = os.path.join(os.path.dirname(REPO), 'shared', 'data',
                            'cifar-10-mini', 'cifar-10-python.tar.gz')


def _gpu_available():
    try:
        from chainer.backends import cuda
        return cuda.available and cuda.cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if _gpu_available():
        return
    skip = pytest.mark.skip(reason='no CUDA GPU/CuPy on this machine')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def mini_archive():
    """Path of ../shared/data/cifar-10-mini (real CIFAR-10 subset)."""
    if not os.path.exists(MINI_ARCHIVE):
        pytest.skip('the real CIFAR-10 subset %s is absent (it lives in the '
                    "project's shared/ folder, beside the checkout)" % MINI_ARCHIVE)
    return MINI_ARCHIVE
