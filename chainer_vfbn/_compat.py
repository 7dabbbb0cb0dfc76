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
   NCCL is unavailable. Where the installed CuPy is 14 or newer, which has no
   cuDNN at all, Chainer's "cuDNN is not enabled" warning is silenced too
   (it asks to reinstall CuPy with cuDNN, which that CuPy cannot have; seen
   on a GPU machine with cupy-cuda13x 14.2, where it failed every test module
   at import under warnings-as-errors). Every other warning is left alone
   (the tests run with warnings as errors).
4. ChainerMN's multi-node iterator: on every rank but the master,
   ``_MultiNodeIteratorSlave.__init__`` calls ``int()`` on the dataset size
   the master broadcasts as a 1-element array, which NumPy >= 2.4 rejects
   (``TypeError: only 0-dimensional arrays can be converted to Python
   scalars``; NumPy 1.25-2.3 warn). We hand that one broadcast value over as
   a scalar; nothing else changes. ``chainermn`` imports ``mpi4py.MPI``
   (which initialises MPI), so this module never imports it: the patch is
   applied when something else imports
   ``chainermn.iterators.multi_node_iterator`` (an import hook), or at once
   if it is already loaded. The decoupled runner does not use this iterator
   (only rank 0 reads data; labels travel with ``h``); the patch is for
   scripts that do.

``F.resize_images`` is also broken on NumPy >= 1.24 (``numpy.float``); this
package never calls it (resizing is done with Pillow), so it is not patched.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import types
import warnings

import numpy

NUMPY_MAJOR = int(numpy.__version__.split('.')[0])

# Regular expressions of the only warnings silenced (matched at the start of
# the message, case-insensitively, as :func:`warnings.filterwarnings` does).
CUPY_VERSION_WARNING = r'\s*-+\s*CuPy \(cupy[^)]*\) version \S+ may not be compatible'
# (?s): CuPy 14's NCCL message begins with a newline, which '.' alone
# does not match.
NCCL_WARNING = r'(?s).*\bNCCL\b'
# chainer.backends.cuda, where CuPy has no cuDNN.
CUDNN_WARNING = r'cuDNN is not enabled'


def _environment_check_importable():
    # Import what chainer._environment_check imports, quietly. numpy.distutils
    # is gone in NumPy 2 and Python 3.12, and on NumPy 1.26 it breaks with
    # setuptools 74-80 (no distutils.msvccompiler); pkg_resources is gone in
    # setuptools >= 81. Where both import, Chainer's own check runs as is
    # (importing them here first only spares their deprecation warnings).
    # Imported here: whether they import is this function's question.
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


def cupy_major():
    """Major version of the installed CuPy, or None where there is none.

    Read from the package's ``_version.py`` without importing CuPy (which
    would load CUDA at start-up).
    """
    try:
        spec = importlib.util.find_spec('cupy')
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    path = os.path.join(os.path.dirname(spec.origin), '_version.py')
    try:
        with open(path) as f:
            found = re.search(r"__version__\s*=\s*['\"](\d+)\.", f.read())
    except OSError:
        return None
    return int(found.group(1)) if found else None


def silence_known_warnings(cupy_version=None):
    """Silence Chainer's CuPy-version warning, the NCCL warnings and, with
    CuPy >= 14 (``cupy_version``: its major version, default the installed
    one), the cuDNN warning; nothing else."""
    warnings.filterwarnings('ignore', message=CUPY_VERSION_WARNING,
                            category=UserWarning)
    warnings.filterwarnings('ignore', message=NCCL_WARNING)
    if cupy_version is None:
        cupy_version = cupy_major()
    if cupy_version is not None and cupy_version >= 14:
        warnings.filterwarnings('ignore', message=CUDNN_WARNING,
                                category=UserWarning)


MULTI_NODE_ITERATOR = 'chainermn.iterators.multi_node_iterator'


class _ScalarSizeCommunicator(object):
    """A communicator whose first ``bcast`` returns a scalar, not an array.

    Used only while ``_MultiNodeIteratorSlave.__init__`` runs: its first
    broadcast is the dataset size, sent by the master as a 1-element array.
    Everything else is the real communicator's.
    """

    def __init__(self, communicator):
        self._communicator = communicator
        self._first = True

    def bcast(self, x, root=0):
        y = self._communicator.bcast(x, root=root)
        if self._first:
            self._first = False
            y = y.reshape(-1)[0]
        return y

    def __getattr__(self, name):
        return getattr(self._communicator, name)


def patch_multi_node_iterator(module):
    """Let ChainerMN's slave iterator read the master's dataset size.

    ``module`` is ``chainermn.iterators.multi_node_iterator``. Returns True
    when it patched, False when the module was patched already.
    """
    cls = module._MultiNodeIteratorSlave
    if getattr(cls, '_chainer_vfbn_patched', False):
        return False
    original = cls.__init__

    def __init__(self, communicator, rank_master):
        original(self, _ScalarSizeCommunicator(communicator), rank_master)
        self.communicator = communicator

    __init__.__wrapped__ = original
    cls.__init__ = __init__
    cls._chainer_vfbn_patched = True
    return True


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then patches the module it loaded."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        patch_multi_node_iterator(module)

    def __getattr__(self, name):  # get_source etc., for tracebacks
        return getattr(self._loader, name)


class _MultiNodeIteratorHook(importlib.abc.MetaPathFinder):
    """Patches ChainerMN's multi-node iterator module when it is imported."""

    def find_spec(self, name, path, target=None):
        if name != MULTI_NODE_ITERATOR:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader)
        return spec


def install_multi_node_iterator_patch():
    """Patch the multi-node iterator now if loaded, else once imported."""
    module = sys.modules.get(MULTI_NODE_ITERATOR)
    if module is not None:
        patch_multi_node_iterator(module)
        return
    if not any(isinstance(f, _MultiNodeIteratorHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _MultiNodeIteratorHook())


def apply():
    """Apply every import-time shim; safe to call more than once."""
    silence_known_warnings()
    restore_numpy_sctypes()
    replace_environment_check()
    install_multi_node_iterator_patch()


apply()
