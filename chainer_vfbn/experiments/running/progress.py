"""How far a running run has come, and how long a run takes.

A run started by :mod:`.pool` writes its progress only into its own
folder: the log (``log``, one entry per evaluation) and a snapshot every
epoch (``snapshot_iter_<iteration>``). :class:`Tracker` reads them while
the run trains, for :mod:`.pool`'s one-line progress report;
:func:`measured_durations` reads how long finished runs took from their
records' curves (``elapsed_time``: the trainer's clock, resumes included).
"""
import collections
import glob
import json
import os
import time
import zipfile

import numpy

from chainer_vfbn.experiments.records.adoption import planned_length
from chainer_vfbn.experiments.records.machines import machine_of
from chainer_vfbn.experiments.records.store import read_record
from chainer_vfbn.runs import folder

#: The snapshot entry that holds the training iterator's epoch (Chainer's
#: ``StandardUpdater`` serializes its iterator ``main`` there).
SNAPSHOT_EPOCH = 'updater/iterator:main/epoch'


def _log_value(run_dir, unit):
    try:
        with open(os.path.join(run_dir, 'log')) as f:
            log = json.load(f)
        return int(log[-1][unit]) if log else 0
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return 0


def _snapshot_epoch(path):
    try:
        with numpy.load(path, allow_pickle=False) as f:
            return int(f[SNAPSHOT_EPOCH])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return 0    # being replaced, damaged, or not a Trainer's


class Tracker(object):
    """The progress of one running run, from its folder.

    Args:
        run_dir (str): Its training folder.
        args (list of str): Its arguments
            (:func:`~.adoption.planned_length`).
        clock (callable): The time (tests pass their own).
    """

    def __init__(self, run_dir, args, clock=time.time):
        self.run_dir = run_dir
        self.length = planned_length(args)
        self.clock = clock
        self._snapshot = (None, 0)       # (path, its value)
        self.at_start = self.done()
        self.started = clock()

    def done(self):
        """Epochs (or iterations) done: the newest of the log and the
        newest snapshot (a resumed run's start included)."""
        if self.length is None:
            return 0
        unit = self.length[0]
        value = _log_value(self.run_dir, unit)
        snaps = folder.snapshots(self.run_dir)
        if snaps:
            path = snaps[0]
            if path != self._snapshot[0]:
                iteration = int(path.rsplit('_', 1)[1])
                self._snapshot = (path, iteration if unit == 'iteration'
                                  else _snapshot_epoch(path))
            value = max(value, self._snapshot[1])
        return value

    def state(self):
        """``(done, total, unit, seconds left or None)``; None without a
        planned length. The time left is this session's pace so far."""
        if self.length is None:
            return None
        unit, total = self.length
        done = min(self.done(), total)
        left = None
        if done > self.at_start:
            pace = (self.clock() - self.started) / (done - self.at_start)
            left = pace * (total - done)
        return done, total, unit, left


def left_to_train(run_dir, args):
    """What a run has left to train, in the unit of its planned length:
    that length less what its folder already holds (a resumed run's
    progress, or the rung before's, which a halving rung continues); None
    where its arguments plan no length.

    Example:
        >>> left_to_train('no/such/folder', ['--epoch', '24'])
        24
    """
    tracker = Tracker(run_dir, args)
    if tracker.length is None:
        return None
    return max(0, tracker.length[1] - tracker.at_start)


def duration(seconds):
    """A duration in words, rounded for a progress line.

    Example:
        >>> duration(40), duration(754), duration(7300)
        ('1 min', '13 min', '2.0 h')
    """
    if seconds >= 6000:
        return '%.1f h' % (seconds / 3600.)
    return '%d min' % max(1, int(round(seconds / 60.)))


def progress_text(state):
    """The progress of one run in words (:meth:`Tracker.state`).

    Example:
        >>> progress_text((3, 24, 'epoch', 900.))
        'epoch 3/24, about 15 min left'
        >>> progress_text((0, 24, 'epoch', None))
        'epoch 0/24, time left not known yet'
        >>> progress_text((24, 24, 'epoch', 0.))
        'epoch 24/24, finishing (its last evaluation and summary)'
    """
    if state is None:
        return 'length not known'
    done, total, unit, left = state
    if done >= total:
        then = 'finishing (its last evaluation and summary)'
    elif left is None:
        then = 'time left not known yet'
    else:
        then = 'about %s left' % duration(left)
    return '%s %d/%d, %s' % (unit, done, total, then)


def measured_durations(records, phase='final'):
    """How long each row's runs of ``phase`` took, from the records' curves
    (the last ``elapsed_time``: the run's own clock, resumes included),
    and the machines they name.

    Args:
        records (str): A records folder (e.g. ``docs/results/mini``).

    Returns:
        dict: ``rows`` (``row -> [seconds, ...]``, in file order),
        ``epochs`` (the runs' lengths), ``machines`` (the CPU models and
        core counts named) and ``runs``; empty ``rows`` where there are no
        records.
    """
    rows = collections.OrderedDict()
    machines, epochs, runs = set(), set(), 0
    for path in sorted(glob.glob(os.path.join(records, phase, '*.json'))):
        rec = read_record(path) or {}
        curve = [e for e in rec.get('curve') or []
                 if e.get('elapsed_time') is not None]
        row = (rec.get('config') or {}).get('row')
        if not curve or row is None:
            continue
        runs += 1
        rows.setdefault(row, []).append(curve[-1]['elapsed_time'])
        epochs.add(curve[-1].get('epoch'))
        machine = machine_of(rec) or {}
        machines.add('%s (%s cores)' % (machine.get('cpu'),
                                        machine.get('cpu_count')))
    return dict(rows=rows, epochs=sorted(epochs), machines=sorted(machines),
                runs=runs)
