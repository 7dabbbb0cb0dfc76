"""A run's process: its environment (BLAS threads and kernel, Chainer's
type checks) and its death with the process that started it."""
import ctypes
import ctypes.util
import os
import signal


def thread_env(threads=1, blas_kernel=None):
    """The environment of a run: ``threads`` BLAS threads, Chainer's
    type checks off, and OpenBLAS's kernel pinned to ``blas_kernel``
    (``OPENBLAS_CORETYPE``; None: OpenBLAS picks the CPU's). Type checks
    only validate shapes and dtypes: off, a short run's every logged number
    was bit-identical, and a VFBN run took about 7% less CPU time, a BP run
    the same (docs/benchmarks/type_check_cpu_2026-12-03.json). One kernel
    repeats a run bit for bit on any CPU that has it; two kernels drift
    apart (docs/RESULTS.md, "Machines"): OpenBLAS's Haswell kernel runs on
    every AVX2 CPU.

    Example:
        >>> thread_env(2)['OMP_NUM_THREADS']
        '2'
        >>> thread_env(1, 'Haswell')['OPENBLAS_CORETYPE']
        'Haswell'
    """
    env = dict(os.environ, CHAINER_TYPE_CHECK='0')
    for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        env[var] = str(threads)
    if blas_kernel:
        env['OPENBLAS_CORETYPE'] = blas_kernel
    return env


# prctl(2)'s option that sends a signal to a process when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with_parent(signum=signal.SIGTERM):
    """A ``preexec_fn`` that makes the child get ``signum`` when this
    process dies (Linux's ``prctl(PR_SET_PDEATHSIG)``), or None where
    there is no ``prctl`` (the child then outlives a killed parent; its
    session, of its own, still gets the pool's signals).

    The C library is loaded here, before the fork: the child only calls
    it. A parent that died before the call is caught by its pid.
    """
    name = ctypes.util.find_library('c')
    try:
        prctl = ctypes.CDLL(name, use_errno=True).prctl
    except (OSError, AttributeError, TypeError):
        return None
    parent = os.getpid()

    def preexec():
        prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signum)
    return preexec
