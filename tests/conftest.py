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

from support import MINI_ARCHIVE
from support import REPO

# The scripts and MPI ranks that the tests start import this checkout's
# package too (pytest.ini's pythonpath reaches only this process), not one
# installed elsewhere.
os.environ['PYTHONPATH'] = os.pathsep.join(
    [REPO] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep)
              if p])

# Set to 1 on a machine that must have a usable GPU: the GPU tests then fail,
# with the reason, where they would skip.
REQUIRE_GPU = 'CHAINER_VFBN_REQUIRE_GPU'

_reason = []


def _gpu_unavailable_reason():
    """Why CuPy/CUDA cannot be used here (None if it can), asked once."""
    if not _reason:
        from chainer_vfbn.runs.cuda_status import unavailable_reason
        _reason.append(unavailable_reason())
    return _reason[0]


def pytest_report_header(config):
    reason = _gpu_unavailable_reason()
    return 'GPU: %s%s' % ('usable' if reason is None else
                          'not usable (%s)' % reason,
                          '; %s=1' % REQUIRE_GPU
                          if os.environ.get(REQUIRE_GPU) == '1' else '')


def pytest_runtest_setup(item):
    reason = _gpu_unavailable_reason() if 'gpu' in item.keywords else None
    if reason is not None and os.environ.get(REQUIRE_GPU) != '1':
        pytest.skip('no usable CUDA GPU/CuPy: %s' % reason)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    # Under CHAINER_VFBN_REQUIRE_GPU=1 a GPU test fails (in its call, so it
    # is counted as failed) before its body runs.
    reason = _gpu_unavailable_reason() if 'gpu' in item.keywords else None
    if reason is not None:
        pytest.fail('%s=1, but CuPy/CUDA cannot be used: %s'
                    % (REQUIRE_GPU, reason), pytrace=False)


@pytest.fixture
def mini_archive():
    """Path of the real CIFAR-10 subset (see MINI_ARCHIVE)."""
    if not os.path.exists(MINI_ARCHIVE):
        pytest.skip('the real CIFAR-10 subset %s is absent (it lives in the '
                    "project's shared/ folder, beside the checkout, or where "
                    '$CHAINER_VFBN_MINI says)' % MINI_ARCHIVE)
    return MINI_ARCHIVE
