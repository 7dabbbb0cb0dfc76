"""One call per kind of schedule: run what has no record yet, then write
the report from the records.

``train/reproduce.py`` is the command line over these two calls:
:func:`run_table` for the Table 1 schedules (``smoke``, ``short``,
``paper``) and :func:`run_mini` for the mini schedule.
"""
import json
import os

from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments.choices import chosen_settings
from chainer_vfbn.experiments.plan import plan
from chainer_vfbn.experiments.pool import run_pool
from chainer_vfbn.experiments.records import record_run
from chainer_vfbn.experiments.records import status
from chainer_vfbn.experiments.report import write_report
from chainer_vfbn.experiments.schedules import PHASES
from chainer_vfbn.experiments.schedules import default_alphas
from chainer_vfbn.experiments.schedules import tuned_rows
from chainer_vfbn.experiments.table_report import write_table_report
from chainer_vfbn.runs.interrupt import Interrupted


def table_records(out):
    """Where a Table 1 schedule keeps its records: ``<out>/records``."""
    return os.path.join(out, 'records')


#: What reproduce.py wrote into a Table 1 row's folder before the rows had
#: records (until 2026-12-04): ``{'schedule', 'args'}``, the same identity
#: as a record's ``protocol`` and ``train_args``.
LEGACY_ROW_RECORD = 'reproduce-row.json'


def _unrecorded_result(run, records, out):
    """``(folder, whether reproduce.py's legacy file names this run)`` of
    a finished run without a record, or None."""
    folder = os.path.join(out, run.folder)
    if status(run, records) == 'done' or not os.path.isfile(
            os.path.join(folder, 'summary.json')):
        return None
    try:
        with open(os.path.join(folder, LEGACY_ROW_RECORD)) as f:
            legacy = json.load(f)
    except (OSError, ValueError):
        legacy = None
    return folder, legacy == {'schedule': run.schedule, 'args': run.args}


def check_table_runs(runs, records, out):
    """Refuse, before anything runs, a training folder that holds another
    run: a record of another configuration, or a result without a record
    (unless :data:`LEGACY_ROW_RECORD` says it is this run's).

    Raises:
        ExperimentError: One line naming the folder and why.
    """
    for run in runs:
        found = _unrecorded_result(run, records, out)
        if found is not None and not found[1]:
            raise ExperimentError(
                '%s holds another run: a result without a record of its '
                'configuration; use another --out' % found[0])


def adopt_legacy_rows(runs, s, records, out):
    """Write the record of each finished row that an older reproduce.py
    ran (its folder's :data:`LEGACY_ROW_RECORD` names the same schedule
    and arguments), so that it counts as done; returns their keys."""
    adopted = []
    for run in runs:
        found = _unrecorded_result(run, records, out)
        if found is not None and found[1]:
            record_run(records, run, s, found[0])
            adopted.append(run.key)
    return adopted


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
    for key in adopt_legacy_rows(runs, s, records, out):
        log('%s: recorded the finished %s of an older reproduce.py' % (
            runs[0].schedule, key))
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


def _mini_round(s, rows, phases, records, untuned):
    """The runs that can start now (a tuned row's final runs only once its
    grid is complete), and the tuned rows whose final runs wait."""
    runs = [r for ph in phases if ph != 'final'
            for r in plan(ph, s, rows=rows, records=records)]
    waiting = []
    if 'final' in phases:
        chosen = default_alphas() if untuned else \
            chosen_settings(s, records)
        waiting = [r for r in rows if r in tuned_rows(s) and r not in chosen]
        runs += plan('final', s, chosen=chosen,
                     rows=[r for r in rows if r not in waiting])
    return runs, waiting


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
        list: The keys of the runs that failed.
    """
    failed, started, waiting = [], set(), []
    try:
        while True:
            runs, waiting = _mini_round(s, rows, phases, records, untuned)
            runs = [r for r in runs if r.key not in started]
            if not runs:
                break
            started.update(r.key for r in runs)
            result = run_pool(runs, s, records, out, log=log, **pool)
            failed += [k for k, v in result.items() if v.startswith('failed')]
    except Interrupted:
        # The running runs snapshotted; the report holds the finished ones.
        os.makedirs(records, exist_ok=True)
        write_report(s, records, log=log, results_doc=results_doc)
        raise
    if waiting:
        log('mini: no final runs yet for %s: their tuning is not complete'
            % ', '.join(waiting))
    os.makedirs(records, exist_ok=True)
    write_report(s, records, log=log, results_doc=results_doc)
    return failed
