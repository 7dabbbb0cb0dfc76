"""What the MPI tests share: the launcher, its environment, the skips.

Imported by the tests that run ``mpiexec`` (and by their ``__main__``
workers, which find this folder first on ``sys.path`` as pytest does).
"""
import os
import shutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPIEXEC = ['mpiexec', '--allow-run-as-root', '--oversubscribe']


def require_mpi():
    """Skip, with the reason, where ``mpiexec`` or ``mpi4py`` is missing."""
    import pytest
    if shutil.which('mpiexec') is None:
        pytest.skip('mpiexec is not installed (apt-get install openmpi-bin '
                    'libopenmpi-dev)')
    try:
        import mpi4py  # NOQA
    except ImportError:
        pytest.skip('mpi4py is not installed in this environment '
                    "(pip install mpi4py, or the 'mpi' extra)")


def env():
    """The ranks' environment: one BLAS thread, this checkout importable."""
    out = dict(os.environ)
    out['OMP_NUM_THREADS'] = '1'
    out['PYTHONPATH'] = REPO + os.pathsep + out.get('PYTHONPATH', '')
    return out
