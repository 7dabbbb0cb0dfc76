"""chainer_vfbn._compat: exactly the intended shims, on either stack."""
import importlib.util
import sys
import warnings

import numpy
import pytest

from chainer_vfbn import _compat

CUPY_MESSAGE = '''
--------------------------------------------------------------------------------
CuPy (cupy-cuda12x) version 13.6.0 may not be compatible with this version of Chainer.
Please consider installing the supported version by running:
  $ pip install 'cupy-cuda12x>=7.7.0,<8.0.0'
'''

# CuPy 14's, from cupy._environment._preload_warning: it begins with a newline.
CUPY14_NCCL_MESSAGE = '''
nccl library could not be loaded.

Reason: ImportError (libnccl.so.2: cannot open shared object file: No such file or directory)

You can install the library by:
  $ pip install "nvidia-nccl-cu13>=2.25.1,<3"
'''


# chainer.backends.cuda's, where CuPy has no cuDNN.
CUDNN_MESSAGE = (
    'cuDNN is not enabled.\nPlease reinstall CuPy after you install cudnn\n'
    '(see https://docs-cupy.chainer.org/en/stable/install.html'
    '#install-cudnn).')


def _emitted(message, category=UserWarning, cupy_version=None):
    with warnings.catch_warnings(record=True) as caught:
        # Start from Python's own filters (the package's are re-added below).
        warnings.resetwarnings()
        warnings.simplefilter('always')
        _compat.silence_known_warnings(cupy_version)
        warnings.warn(message, category)
    return [str(w.message) for w in caught]


def test_cudnn_warning_silenced_only_where_cupy_has_no_cudnn():
    assert _emitted(CUDNN_MESSAGE, cupy_version=14) == []
    assert _emitted(CUDNN_MESSAGE, cupy_version=13) == [CUDNN_MESSAGE]


def test_cupy_version_and_nccl_warnings_are_silenced():
    assert _emitted(CUPY_MESSAGE) == []
    assert _emitted('NCCL library is not available') == []
    assert _emitted(CUPY14_NCCL_MESSAGE) == []


@pytest.mark.parametrize('message', [
    'CuPy is slow today',                      # no version-mismatch text
    'some other warning',
    'Multiple installations of CuPy package has been detected.',
])
def test_other_warnings_still_shown(message):
    assert _emitted(message) == [message]


def test_sctypes_available_and_consistent():
    import chainer.functions  # NOQA  (as_strided reads numpy.sctypes)
    ints = numpy.sctypes['int']
    assert numpy.int32 in ints and numpy.int64 in ints


def test_environment_check_replaced_only_where_it_cannot_import():
    import chainer  # NOQA
    module = sys.modules['chainer._environment_check']
    replaced = getattr(module, '__file__', None) is None
    assert replaced == (not _compat._environment_check_importable())
    # Where numpy.distutils cannot import, the stand-in must be there:
    # Python >= 3.12 (no stdlib distutils) or a NumPy without it. (NumPy 2.x
    # on Python 3.11 still ships it: the README's `python3` on this machine.)
    if sys.version_info >= (3, 12) or \
            importlib.util.find_spec('numpy.distutils') is None:
        assert replaced
    module.check()  # the stand-in, or Chainer's own, runs without error


def test_apply_is_idempotent():
    before = list(warnings.filters)
    _compat.apply()
    _compat.apply()
    assert numpy.sctypes['float'][-1] is numpy.longdouble or \
        numpy.longdouble in numpy.sctypes['float']
    new = [f for f in warnings.filters if f not in before]
    assert len(new) <= 2
    # The multi-node iterator patch: one import hook at most, or the module
    # (if some test imported chainermn already) patched in place.
    hooks = [f for f in sys.meta_path
             if isinstance(f, _compat._MultiNodeIteratorHook)]
    module = sys.modules.get(_compat.MULTI_NODE_ITERATOR)
    if module is None:
        assert len(hooks) == 1
    else:
        assert module._MultiNodeIteratorSlave._chainer_vfbn_patched


@pytest.mark.parametrize('version, major', [('14.2.0', 14), ('13.6.0', 13)])
def test_cupy_major_read_without_importing_cupy(tmp_path, monkeypatch,
                                                version, major):
    package = tmp_path / 'cupy'
    package.mkdir()
    (package / '__init__.py').write_text('raise ImportError("not imported")\n')
    (package / '_version.py').write_text("__version__ = '%s'\n" % version)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, 'cupy', raising=False)
    # (Importing this fake CuPy would raise.)
    assert _compat.cupy_major() == major
