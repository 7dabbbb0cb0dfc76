"""Per-row figures of a schedule, from its records only."""
import os
import statistics

from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments.protocol.choices import chosen_settings
from chainer_vfbn.experiments.protocol.plan import plan
from chainer_vfbn.experiments.protocol.rows import MINI_EXTRA_ROWS
from chainer_vfbn.experiments.protocol.rows import MINI_LABELS
from chainer_vfbn.experiments.protocol.rows import MINI_ROWS
from chainer_vfbn.experiments.protocol.rows import ROWS
from chainer_vfbn.experiments.protocol.rows import default_rows
from chainer_vfbn.experiments.protocol.schedules import TUNE_PHASES
from chainer_vfbn.experiments.protocol.schedules import tuned_rows
from chainer_vfbn.experiments.records.machines import machine_of
from chainer_vfbn.experiments.records.store import read_record
from chainer_vfbn.experiments.records.store import record_path
from chainer_vfbn.experiments.records.store import records_of
from chainer_vfbn.experiments.records.store import status
from chainer_vfbn.runs.command_line import command_line
from chainer_vfbn.runs.record import is_diverged


def stats(values):
    """Mean, sample standard deviation (None for one value) and values.

    Example:
        >>> stats([1., None, 3.])['std']
        1.4142135623730951
    """
    values = [v for v in values if v is not None]
    if not values:
        return None
    std = statistics.stdev(values) if len(values) > 1 else None
    return dict(mean=statistics.fmean(values), std=std, n=len(values),
                values=values)


def _figures(summaries, pct, plain):
    """``{name: stats}`` of the summaries' ``pct`` keys (in %) and
    ``plain`` keys: ``{name: key}`` each."""
    out = {}
    for name, key in pct.items():
        out[name] = stats([None if x.get(key) is None else 100. * x[key]
                           for x in summaries])
    for name, key in plain.items():
        out[name] = stats([x.get(key) for x in summaries])
    return out


def _tuning(row, s, records):
    """Each recorded tuning run of a tuned row: its ``alpha`` and
    ``scale``, ``val_error``, ``diverged``, ``rung`` (0: the first, the
    only one of Evidence II), ``seed`` and ``epochs``."""
    if row not in tuned_rows(s):
        return []
    return [dict(alpha=run.choice[0], scale=run.choice[1],
                 val_error=rec['summary']['test_error'],
                 diverged=is_diverged(rec['summary']),
                 rung=TUNE_PHASES.index(run.phase), seed=run.seed,
                 epochs=run.options.get('epoch'))
            for run, rec in records_of(
                [run for phase in TUNE_PHASES
                 for run in plan(phase, s, rows=[row], records=records)],
                records)]


def _final_runs(row, s, chosen):
    """A row's planned final runs; none while its tuning is not
    complete."""
    try:
        return plan('final', s, chosen=chosen, rows=[row])
    except ExperimentError:
        return []


def _final_records(row, s, records, chosen):
    return records_of(_final_runs(row, s, chosen), records)


def _mini_row(row, s, records, chosen):
    runs = _final_runs(row, s, chosen)
    done = records_of(runs, records)
    out = dict(
        row=row, label=(MINI_LABELS[row] if row in MINI_LABELS
                        and row in tuned_rows(s) else MINI_ROWS[row].label),
        paper=MINI_ROWS[row].paper, seeds=[r.seed for r, _ in done],
        planned_seeds=[r.seed for r in runs], choice=chosen.get(row),
        tuning=_tuning(row, s, records),
        curves=[rec['curve'] for _, rec in done],
        predictions={r.seed: rec.get('predictions') for r, rec in done},
        machines={r.seed: machine_of(rec) for r, rec in done})
    out.update(_figures(
        [rec['summary'] for _, rec in done],
        dict(tta='tta_error', centre='test_error',
             train_accuracy='train_accuracy'),
        dict(cos='synth_cos', norm_ratio='synth_norm_ratio', epochs='epochs',
             images_per_sec='images_per_sec')))
    return out


def summarize(s, records, rows=None):
    """Per-row figures of the mini schedule's final runs and its tuning
    grid (by default the protocol's rows, :func:`.rows.default_rows`, and
    the mini schedule's other rows that have a record)."""
    chosen = chosen_settings(s, records)
    if rows is None:
        rows = list(default_rows(s))
        rows += [r for r in MINI_EXTRA_ROWS if r not in rows
                 and _final_records(r, s, records, chosen)]
    return [_mini_row(row, s, records, chosen) for row in rows]


def _run_state(run, records, out):
    """A Table 1 run's record (or None) and ``complete``, ``incomplete``
    (a training folder without a record) or ``missing``; a record of
    another run is refused (:func:`.store.status`)."""
    if status(run, records) == 'done':
        return read_record(record_path(records, run)), 'complete'
    if os.path.isdir(os.path.join(out, run.folder)):
        return None, 'incomplete'
    return None, 'missing'


def collect(runs, records, out):
    """Per-row figures of a Table 1 schedule's runs, from their records.

    Returns:
        list of dict: one per row, in the runs' order: ``row``, ``label``,
        ``flags``, ``paper_error_pct``, ``runs`` (per seed: ``seed``,
        ``status``, ``summary``, ``log``, the record's curve) and the
        aggregated figures ``test_error_pct``, ``tta_error_pct``,
        ``wall_time_s``, ``images_per_sec``, ``synth_cos``, ``epochs``
        (each ``None`` or ``{'mean', 'std', 'n', 'values'}``; errors in %).
    """
    table = {}
    for run in runs:
        label, options, paper = ROWS[run.row]
        row = table.setdefault(run.row, dict(
            row=run.row, label=label, flags=' '.join(command_line(options)),
            paper_error_pct=paper, runs=[]))
        rec, state = _run_state(run, records, out)
        row['runs'].append(dict(
            seed=run.seed, status=state, summary=rec and rec['summary'],
            log=rec and rec['curve']))
    for row in table.values():
        row.update(_figures(
            [x['summary'] for x in row['runs'] if x['summary'] is not None],
            dict(test_error_pct='test_error', tta_error_pct='tta_error'),
            dict(wall_time_s='wall_time_s', images_per_sec='images_per_sec',
                 synth_cos='synth_cos', epochs='epochs')))
    return list(table.values())
