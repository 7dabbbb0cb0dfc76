"""A schedule's runs as static slots, for a job array.

A phase's runs may depend on earlier phases' records (a tuned row's final
run needs its tuning's choice), so a job array lists a schedule as SLOTS
(:class:`Slot`, :func:`phase_slots`): one per run that the phase will have,
known before any record; a slot becomes a :class:`~.run.Run` when the
records it needs are there
(:func:`chainer_vfbn.experiments.execute.resolve`).
"""
import collections

from chainer_vfbn.experiments.protocol.plan import plan
from chainer_vfbn.experiments.protocol.plan import rung_seeds
from chainer_vfbn.experiments.protocol.rows import ROWS
from chainer_vfbn.experiments.protocol.rows import TUNE_ORDER
from chainer_vfbn.experiments.protocol.schedules import TUNE_PHASES
from chainer_vfbn.experiments.protocol.schedules import default_choices
from chainer_vfbn.experiments.protocol.schedules import halving


class Slot(collections.namedtuple('Slot', 'phase row seed index name')):
    """One entry of a schedule's run list, known before any record: the
    ``index``-th run of ``row`` and ``seed`` in ``phase``.

    ``name`` is the run's name where the slot alone fixes it, else
    ``<row>_seed<seed>_slot<index>``: a run chosen from earlier records
    (a later rung's ``index``-th best candidate; :func:`.execute.resolve`).
    """

    @property
    def key(self):
        """``<phase>/<name>``: the run's key where the slot fixes it."""
        return '%s/%s' % (self.phase, self.name)


def slots_of(runs):
    """The slots of a list of runs that the settings alone fix, in its
    order: the ``index`` counts the runs of one phase, row and seed.

    Example:
        >>> from chainer_vfbn.experiments.protocol.plan import table_runs
        >>> [s.key for s in slots_of(table_runs('smoke', ['bp'], [0, 1]))]
        ['smoke/bp_seed0', 'smoke/bp_seed1']
    """
    seen = collections.Counter()
    out = []
    for run in runs:
        index = seen[run.phase, run.row, run.seed]
        seen[run.phase, run.row, run.seed] += 1
        out.append(Slot(run.phase, run.row, run.seed, index, run.name))
    return out


def phase_slots(phase, s, rows=None):
    """The slots of one mini phase, in the order its runs start.

    ``final``'s runs are named by row and seed whatever the tuning
    chooses: its slots are those of the plan at any choice. A later rung
    of successive halving has, per row, as many candidates as it keeps,
    each with the rung's seeds; which candidates, the rung before's
    records say.

    Example:
        >>> from chainer_vfbn.experiments.protocol.schedules import settings
        >>> s = settings()
        >>> [x.key for x in phase_slots('final', s, ['bp', 'vfbn'])][:3]
        ['final/bp_seed0', 'final/vfbn_seed0', 'final/bp_seed1']
        >>> [x.key for x in phase_slots('tune3', s, ['vfbn'])][:2]
        ['tune3/vfbn_seed0_slot0', 'tune3/vfbn_seed1_slot0']
    """
    if phase == 'final':
        return slots_of(plan(phase, s, chosen=default_choices(), rows=rows))
    if phase in TUNE_PHASES[1:] and halving(s):
        rung = TUNE_PHASES.index(phase)
        rows = list(rows or ROWS)
        return [Slot(phase, row, seed, i, '%s_seed%d_slot%d' % (row, seed, i))
                for row in TUNE_ORDER if row in rows
                for i in range(s['rungs'][rung][1])
                for seed in rung_seeds(s, rung)]
    return slots_of(plan(phase, s, rows=rows))
