"""A user's network for a run: ``--model module:factory``.

``train_cifar.py --model mymodels:small_cnn`` trains ``small_cnn()`` from
``mymodels`` (an importable module, or a path to a ``.py`` file) exactly as
the project's ResNet: the same checks, folder, snapshots, log, plots,
records and resume, synchronous or ``--decoupled``. The factory returns a
sequential chain (:mod:`chainer_vfbn.sequential`) whose output is class
scores. The module may define ``RUN_DEFAULTS``, a dict of the script's
option defaults for this network (e.g. its ``split_at`` and learning rate),
and may register synthesizer kinds of its own
(:func:`chainer_vfbn.synthesizers.register`); it is loaded before the
command line is parsed, so that both are in the options and in ``--help``.
"""
import collections
import importlib
import importlib.util
import os

from chainer_vfbn.runs.config import UserError

UserModel = collections.namedtuple('UserModel', [
    'factory',   # factory() -> net
    'defaults',  # the module's RUN_DEFAULTS ({} if none)
    'where',     # 'factory() in path/to/module.py', for the help
])


def _module(name):
    if name.endswith('.py'):
        if not os.path.isfile(name):
            raise UserError('--model %s: no such file' % name)
        spec = importlib.util.spec_from_file_location(
            os.path.splitext(os.path.basename(name))[0], name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise UserError('--model: cannot import %s (%s); give an importable '
                        'module or a path to a .py file' % (name, e))


def load(spec):
    """The factory and run defaults named by ``module:factory``.

    Args:
        spec (str): ``module:factory``, the module importable or a path to
            a ``.py`` file.

    Returns:
        UserModel

    Raises:
        UserError: One line: a malformed spec, a module that cannot be
            imported, no such callable, or a ``RUN_DEFAULTS`` that is not a
            dict.

    Example:
        >>> load('train/train_own_model.py:vgg').where
        'vgg() in train/train_own_model.py'
    """
    name, sep, attr = spec.rpartition(':')
    if not sep or not name or not attr:
        raise UserError('--model %s: expected module:factory, e.g. '
                        'mymodels:small_cnn or path/to/file.py:small_cnn'
                        % spec)
    module = _module(name)
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UserError('--model %s: %s has no callable %r'
                        % (spec, name, attr))
    defaults = getattr(module, 'RUN_DEFAULTS', {})
    if not isinstance(defaults, dict):
        raise UserError('--model %s: RUN_DEFAULTS must be a dict of option '
                        'defaults, got %s' % (spec, type(defaults).__name__))
    return UserModel(factory, dict(defaults), '%s() in %s' % (attr, name))
