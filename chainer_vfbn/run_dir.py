"""Moved to :mod:`chainer_vfbn.runs.folder` (issue #20); these names stay
only until ``train/reproduce.py`` and its tests import them from there."""
from chainer_vfbn.runs.folder import Busy  # NOQA
from chainer_vfbn.runs.folder import lock  # NOQA
from chainer_vfbn.runs.folder import LOCK_NAME  # NOQA
