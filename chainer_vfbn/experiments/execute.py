"""One call per kind of schedule: run what has no record yet, then write
the report from the records.

``train/reproduce.py`` is the command line over these two calls:
:func:`run_table` for the Table 1 schedules (``smoke``, ``short``,
``paper``) and :func:`run_mini` for the mini schedule.
"""
import collections
import os

from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments.protocol.choices import chosen_settings
from chainer_vfbn.experiments.protocol.plan import plan
from chainer_vfbn.experiments.protocol.plan import rung_candidates
from chainer_vfbn.experiments.protocol.rows import TUNE_ORDER
from chainer_vfbn.experiments.protocol.schedules import PHASES
from chainer_vfbn.experiments.protocol.schedules import TUNE_PHASES
from chainer_vfbn.experiments.protocol.schedules import default_choices
from chainer_vfbn.experiments.protocol.schedules import halving
from chainer_vfbn.experiments.protocol.schedules import tuned_rows
from chainer_vfbn.experiments.records.adoption import finished_folder
from chainer_vfbn.experiments.records.store import status
from chainer_vfbn.experiments.reporting.mini_report import write_report
from chainer_vfbn.experiments.reporting.table_report import write_table_report
from chainer_vfbn.experiments.running.pool import run_pool
from chainer_vfbn.runs.interrupt import Interrupted


def table_records(out):
    """Where a Table 1 schedule keeps its records: ``<out>/records``."""
    return os.path.join(out, 'records')


def check_table_runs(runs, records, out):
    """Refuse, before anything runs, a training folder that holds another
    run's result: a ``summary.json`` whose ``args.json`` names other
    arguments (a record of another configuration is refused by
    :func:`.store.status`). A folder that holds this very run finished
    is adopted later (:func:`.adoption.adopt`).

    Raises:
        ExperimentError: One line naming the folder and why.
    """
    for run in runs:
        if status(run, records) == 'done':
            continue
        found = finished_folder(run, out)
        if found is not None and found[1] != 'ours':
            raise ExperimentError(
                '%s holds another run: its args.json names other arguments '
                'than %s (or none); move it away or use another --out'
                % (found[0], run.key))


def run_table(runs, s, out, log=print, **pool):
    """Train the Table 1 runs that have no record, one at a time, their
    output in ours; then write the table (:mod:`.table_report`).

    Args:
        runs (list): :func:`.plan.table_runs`.
        s (dict): The schedule's settings, kept in each record.
        out (str): The output folder (its records in
            :func:`table_records`).
        pool: :func:`.pool.run_pool`'s ``train_script``, ``device``,
            ``data_dir``, ``popen``.

    Returns:
        dict: ``result`` (:func:`.pool.run_pool`'s, or None when
        interrupted), ``report`` (the table) and ``interrupted`` (the
        :class:`~chainer_vfbn.runs.interrupt.Interrupted`, or None).
    """
    records = table_records(out)
    check_table_runs(runs, records, out)
    result, interrupted = None, None
    try:
        result = run_pool(runs, s, records, out, jobs=1, log=log,
                          threads=None, capture=False, **pool)
    except Interrupted as e:   # the running row snapshotted
        interrupted = e
    report = write_table_report(runs, records, out, log=log)
    return dict(result=result, report=report, interrupted=interrupted)


def mini_phases(phase):
    """The phases that ``--phase`` runs (``all``: every one; ``report``:
    none).

    Example:
        >>> mini_phases('tune'), mini_phases('report')
        (('tune',), ())
    """
    return {'all': PHASES, 'report': ()}.get(phase, (phase,))


class Waiting(ExperimentError):
    """A run whose earlier phases' records are not all there yet."""


def _tuning_missing(s, row, records, rungs=TUNE_PHASES):
    """What a row's tuning (its ``rungs``, in order) still lacks: the
    first rung with runs that have no record (a later rung's runs are
    planned once the rung before is complete)."""
    for phase in rungs:
        runs = plan(phase, s, rows=[row], records=records)
        missing = sum(status(r, records) != 'done' for r in runs)
        if missing:
            return 'the tuning of %s: %d of its %d %s runs have no record' \
                % (row, missing, len(runs), phase)
    return 'the tuning of %s' % row


def plan_now(phase, s, rows, records, untuned=False):
    """The runs of one mini phase that the records let run now, and the
    rows that wait for an earlier phase.

    A phase whose runs depend on records has its case here: a later rung
    of successive halving needs the rung before complete
    (:func:`.plan.rung_candidates`), ``final``'s tuned rows their tuning's
    choice (:func:`.choices.chosen_settings`; ``untuned``: each method's
    default ``alpha_gs`` instead).

    Returns:
        tuple: ``(runs, waiting)``, ``waiting`` being ``row -> what it
        waits for``.
    """
    if phase in TUNE_PHASES[1:] and halving(s):
        rung = TUNE_PHASES.index(phase)
        waiting = {r: _tuning_missing(s, r, records, TUNE_PHASES[:rung])
                   for r in rows if r in TUNE_ORDER and
                   rung_candidates(r, s, records, rung) is None}
        return plan(phase, s, rows=rows, records=records), waiting
    if phase != 'final':
        return plan(phase, s, rows=rows, records=records), {}
    chosen = default_choices() if untuned else chosen_settings(s, records)
    waiting = {r: _tuning_missing(s, r, records) for r in rows
               if r in tuned_rows(s) and r not in chosen}
    ready = [r for r in rows if r not in waiting]
    # (plan reads no rows as every row)
    return (plan('final', s, chosen=chosen, rows=ready) if ready
            else []), waiting


def resolve(slot, s, records, untuned=False, runs=None):
    """The run of ``slot`` (:func:`.slots.phase_slots`), from the records now.

    Args:
        slot (~.plan.Slot): The slot.
        s (dict): The mini settings.
        records (str): The records' folder.
        untuned (bool): As :func:`plan_now`.
        runs (list): A Table 1 schedule's runs, all fixed by its settings
            (then the records are not read).

    Returns:
        Run or None: None for a slot that the records leave empty (a rung
        that keeps fewer candidates than a row's grid has).

    Raises:
        Waiting: One line: the run waits for an earlier phase's records.
    """
    if runs is not None:
        return {r.key: r for r in runs}[slot.key]
    planned, waiting = plan_now(slot.phase, s, [slot.row], records, untuned)
    if slot.row in waiting:
        raise Waiting('%s waits for %s' % (slot.key, waiting[slot.row]))
    same = [r for r in planned if r.row == slot.row and r.seed == slot.seed]
    return same[slot.index] if slot.index < len(same) else None


def run_one(run, s, records, out, **pool):
    """Train ``run`` alone unless its record is done (no report: the
    report job writes it); its :func:`.pool.run_pool` result."""
    return run_pool([run], s, records, out, jobs=1, **pool)[run.key]


def _mini_round(s, rows, phases, records, untuned):
    """The runs that can start now (a tuned row's final runs only once its
    grid is complete), and the tuned rows whose final runs wait."""
    runs, waiting = [], {}
    for phase in phases:
        planned, waits = plan_now(phase, s, rows, records, untuned)
        runs += planned
        waiting.update(waits)
    return runs, sorted(waiting)


#: What :func:`run_mini` leaves: the keys of the runs that ``failed``, and
#: of those ``held`` by another live process, still without a record.
MiniOutcome = collections.namedtuple('MiniOutcome', 'failed held')


def run_mini(s, rows, phases, records, out, untuned=False, results_doc=None,
             log=print, **pool):
    """Run the mini schedule's ``phases`` in rounds, each what can run now,
    until a round adds nothing new; then write the report (also after an
    interrupt, which is raised again).

    Args:
        s (dict): :func:`.schedules.settings`.
        rows (list): The rows to run.
        phases (tuple): :func:`mini_phases`.
        records (str): The records' folder (the report is written there).
        out (str): Where the runs train.
        untuned (bool): Final runs at each method's default ``alpha_gs``.
        results_doc (str): Also write the report's block of this page.
        pool: :func:`.pool.run_pool`'s other options.

    Returns:
        MiniOutcome: ``failed``, the keys of the runs that failed, and
        ``held``, those of the runs that another live process was training
        and that have no record yet: the phases after them could not be
        planned, so the table is not complete until they end.
    """
    failed, started, waiting, taken = [], set(), [], []
    try:
        while True:
            runs, waiting = _mini_round(s, rows, phases, records, untuned)
            runs = [r for r in runs if r.key not in started]
            if not runs:
                break
            started.update(r.key for r in runs)
            result = run_pool(runs, s, records, out, log=log,
                              longest_first=True, **pool)
            failed += [k for k, v in result.items() if v.startswith('failed')]
            taken += [r for r in runs if result.get(r.key) == 'taken']
    except Interrupted:
        # The running runs snapshotted; the report holds the finished ones.
        os.makedirs(records, exist_ok=True)
        write_report(s, records, log=log, results_doc=results_doc)
        raise
    held = [r.key for r in taken if status(r, records) != 'done']
    if waiting:
        log('mini: no final runs yet for %s: their tuning is not complete'
            % ', '.join(waiting))
    os.makedirs(records, exist_ok=True)
    write_report(s, records, log=log, results_doc=results_doc)
    return MiniOutcome(failed, held)
