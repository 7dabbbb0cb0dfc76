"""Moved to :mod:`chainer_vfbn.runs` (issue #20); these names stay only
until ``train/reproduce.py``, :mod:`chainer_vfbn.protocol` and
``benchmarks/`` import them from there. New code: import from
``chainer_vfbn.runs``."""
from chainer_vfbn.runs.config import EXIT_DIVERGED  # NOQA
from chainer_vfbn.runs.config import UserError  # NOQA
from chainer_vfbn.runs.folder import release_out  # NOQA
from chainer_vfbn.runs.record import environment  # NOQA
from chainer_vfbn.runs.record import pct  # NOQA
from chainer_vfbn.runs.record import write_json  # NOQA
from chainer_vfbn.runs.setup import setup_data  # NOQA
