"""Test configuration: chainer_vfbn (and so its compat shims) before chainer."""
import os

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
