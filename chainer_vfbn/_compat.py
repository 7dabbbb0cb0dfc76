"""Compatibility shims that let Chainer 7.8.1 run on today's Python/NumPy.

Chainer 7.8.1 (the last release, 2020) predates NumPy 2 and Python 3.12.
This module is imported by :mod:`chainer_vfbn` *before* Chainer, and makes the
smallest changes that let ``import chainer`` succeed there. On the faithful
stack (Python 3.11, NumPy 1.26) every shim below is a no-op except the two
warning filters, so behaviour is exactly Chainer's.

What it changes, and why:

1. ``numpy.sctypes`` was removed in NumPy 2.0, and
   ``chainer/functions/array/as_strided.py`` reads ``np.sctypes['int']`` at
   import time. We restore the dictionary with NumPy 1.x's contents, only
   when it is missing.
2. ``chainer._environment_check`` imports ``numpy.distutils`` (gone in NumPy 2
   and in Python 3.12, broken on NumPy 1.26 with setuptools 74-80) and
   ``pkg_resources``, only to *warn* about optional dependency versions.
   When either cannot be imported we
   register a no-op module under that name before Chainer imports it.
3. Chainer warns at import that CuPy >= 8 "may not be compatible" (CuPy 13/14
   work for everything this package uses), and CuPy/ChainerMN may warn that
   NCCL is unavailable. Exactly those two warnings are silenced; every other
   warning is left alone (the tests run with warnings as errors).
ChainerMN's multi-node iterator (``int()`` of a 1-element array, rejected by
NumPy >= 2.4 on non-master ranks) is not patched: the decoupled runner does
not use it (only rank 0 reads data; labels travel with ``h``).

``F.resize_images`` is also broken on NumPy >= 1.24 (``numpy.float``); this
package never calls it (resizing is done with Pillow), so it is not patched.
"""
import sys
import types
import warnings

import numpy

NUMPY_MAJOR = int(numpy.__version__.split('.')[0])

# Regular expressions of the only warnings silenced (matched at the start of
# the message, case-insensitively, as :func:`warnings.filterwarnings` does).
CUPY_VERSION_WARNING = r'\s*-+\s*CuPy \(cupy[^)]*\) version \S+ may not be compatible'
NCCL_WARNING = r'.*\bNCCL\b'


def _environment_check_importable():
    # Import what chainer._environment_check imports, quietly. numpy.distutils
    # is gone in NumPy 2 and Python 3.12, and on NumPy 1.26 it breaks with
    # setuptools 74-80 (no distutils.msvccompiler); pkg_resources is gone in
    # setuptools >= 81. Where both import, Chainer's own check runs as is
    # (importing them here first only spares their deprecation warnings).
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try:
            import numpy.distutils.system_info  # NOQA
            import pkg_resources  # NOQA
        except Exception:
            return False
    return True


def restore_numpy_sctypes():
    """Put back ``numpy.sctypes`` (removed in NumPy 2) if it is missing."""
    try:
        numpy.sctypes
        return False
    except AttributeError:
        pass
    numpy.sctypes = {
        'int': [numpy.int8, numpy.int16, numpy.int32, numpy.int64],
        'uint': [numpy.uint8, numpy.uint16, numpy.uint32, numpy.uint64],
        'float': [numpy.float16, numpy.float32, numpy.float64,
                  numpy.longdouble],
        'complex': [numpy.complex64, numpy.complex128, numpy.clongdouble],
        'others': [bool, object, bytes, str, numpy.void],
    }
    return True


def replace_environment_check():
    """Register a no-op ``chainer._environment_check`` where it cannot import.

    The original only warns (about optional dependency versions and macOS
    BLAS), so replacing it loses no check that affects results.
    """
    name = 'chainer._environment_check'
    if name in sys.modules or _environment_check_importable():
        return False
    module = types.ModuleType(name)
    module.__doc__ = ('No-op stand-in installed by chainer_vfbn._compat: the '
                      'original needs numpy.distutils and pkg_resources.')
    module.check = lambda: None
    sys.modules[name] = module
    return True


def silence_known_warnings():
    """Silence Chainer's CuPy-version warning and the NCCL warnings only."""
    warnings.filterwarnings('ignore', message=CUPY_VERSION_WARNING,
                            category=UserWarning)
    warnings.filterwarnings('ignore', message=NCCL_WARNING)


def apply():
    """Apply every import-time shim; safe to call more than once."""
    silence_known_warnings()
    restore_numpy_sctypes()
    replace_environment_check()


apply()
