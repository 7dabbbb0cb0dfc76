"""What the MPI tests share: the launcher, its environment, the skips.

Imported by the tests that run ``mpiexec`` (and by their ``__main__``
workers, which find this folder first on ``sys.path`` as pytest does).
"""
import os
import shutil
import subprocess

from support import REPO

OPEN_MPI_FLAGS = ['--allow-run-as-root', '--oversubscribe']


def launcher():
    """``mpiexec`` and the flags its flavour needs, as a list.

    Open MPI refuses to run as root, or more ranks than cores, unless told
    (``OPEN_MPI_FLAGS``); MPICH's Hydra (the ``mpich`` wheel of the offline
    kit, tools/make_kit.sh) needs neither and rejects both.
    """
    exe = shutil.which('mpiexec')
    if exe is None:
        return ['mpiexec'] + OPEN_MPI_FLAGS   # the tests skip (require_mpi)
    try:
        version = subprocess.run([exe, '--version'], capture_output=True,
                                 text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        version = ''
    if 'HYDRA' in version or 'MPICH' in version:
        return ['mpiexec']
    return ['mpiexec'] + OPEN_MPI_FLAGS


MPIEXEC = launcher()


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


if __name__ == '__main__':   # the launcher for shell scripts (gpu_check.sh)
    print(' '.join(MPIEXEC))
