"""The runs of a schedule (:class:`~.run.Run`), each planned as
``train_cifar.py``'s typed options.

The mini schedule's four phases (:data:`~.schedules.PHASES`):

``length``  back-prop on the validation split, evaluated every epoch: the
            curve that shows whether ``epochs`` is long enough (the last fifth
            of the epochs should gain less than one point).
``pilot``   (at the default cut only) back-prop and the bottom half alone at
            each earlier candidate cut, on the validation split: where the
            layers above the cut matter (:func:`.choices.pilot`).
``tune``    every synthetic row, every ``alpha_gs`` of one grid (and, for the
            free-form DNI rows, both target scales), on the validation split.
            Evidence II: short runs; the lowest final validation error picks
            the row's setting. Evidence III (successive halving): the first
            rung, the first epochs of the finals' own schedule.
``tune2``,  Evidence III only: the later rungs. Each continues the best runs
``tune3``   of the rung before from their snapshots (their folder is the
            same), the last to the finals' length, where the survivors also
            run with a second seed (:func:`rung_candidates`).
            ``vfbn-alpha0`` is the paper's untrained row and is not tuned.
``final``   every row on all the training images, evaluated on the test
            images (centre view every epoch, 36 views at the end), several
            seeds, with the settings chosen in ``tune``.

A Table 1 schedule (``smoke``, ``short``, ``paper``) is one phase named
after it: every row, once per seed, with the schedule's options
(:func:`table_runs`).

A phase's runs may depend on earlier phases' records (a tuned row's final
run needs its tuning's choice), so a job array lists a schedule as static
slots (:mod:`.slots`). A new phase needs its plan function here, its slots
there (and, if its runs depend on records, a line in
:func:`chainer_vfbn.experiments.execute.plan_now`).
"""
import os

from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments.protocol.rows import FINAL_ORDER
from chainer_vfbn.experiments.protocol.rows import MINI_ROWS
from chainer_vfbn.experiments.protocol.rows import ONE_SEED_ROWS
from chainer_vfbn.experiments.protocol.rows import ROWS
from chainer_vfbn.experiments.protocol.rows import TUNED_OPTIONS
from chainer_vfbn.experiments.protocol.rows import TUNE_ORDER
from chainer_vfbn.experiments.protocol.rows import UNSPLIT_ROWS
from chainer_vfbn.experiments.protocol.run import Run
from chainer_vfbn.experiments.protocol.run import joined
from chainer_vfbn.experiments.protocol.schedules import PHASES
from chainer_vfbn.experiments.protocol.schedules import SCHEDULES
from chainer_vfbn.experiments.protocol.schedules import TUNE_PHASES
from chainer_vfbn.experiments.protocol.schedules import choice_name
from chainer_vfbn.experiments.protocol.schedules import halving
from chainer_vfbn.experiments.protocol.schedules import tuned_rows
from chainer_vfbn.experiments.protocol.schedules import tuning_grid
from chainer_vfbn.experiments.records.store import read_record
from chainer_vfbn.experiments.records.store import record_path
from chainer_vfbn.experiments.records.store import status
from chainer_vfbn.runs.record import is_diverged


def table_runs(schedule, rows, seeds, dataset=None, extra=()):
    """The runs of a Table 1 schedule: each row once per seed, seed-major,
    in ``<row>/seed<seed>``; ``extra`` arguments (as a user wrote them)
    come last (they win).

    Example:
        >>> [(r.key, r.folder) for r in table_runs('smoke', ['bp'], [0, 1])]
        [('smoke/bp_seed0', 'bp/seed0'), ('smoke/bp_seed1', 'bp/seed1')]
    """
    sched = SCHEDULES[schedule]
    runs = []
    for seed in seeds:
        for row in rows:
            options = joined(ROWS[row].options, sched['options'],
                             {'dataset': dataset or sched['dataset'],
                              'seed': seed})
            runs.append(Run(schedule, '%s_seed%d' % (row, seed), row, seed,
                            options, schedule=schedule,
                            folder=os.path.join(row, 'seed%d' % seed),
                            extra=extra))
    return runs


def _schedule_options(s, epochs):
    """``epochs`` long, on the learning-rate steps of ``lr_steps_at``."""
    step = s['lr_steps_at'][0] * epochs
    if any(abs(f * epochs - (k + 1) * step) > 1e-9
           for k, f in enumerate(s['lr_steps_at'])):
        raise ValueError('lr_steps_at must be evenly spaced multiples')
    return {'epoch': epochs, 'lr_step': step}


def _common_options(s):
    return {'arch': s['arch'], 'batchsize': s['batchsize'],
            'learnrate': s['learnrate'], 'dataset': 'cifar10',
            'download': False, 'progress': False}


def choice_options(row, choice):
    """The train_cifar.py options of a tuned row's choice.

    Example:
        >>> choice_options('infopro', (0.5, None))
        {'local_weight': 0.5}
        >>> choice_options('vfbn', (1e-05, 'batch-mean'))
        {'alpha_gs': 1e-05, 'synth_target_scale': 'batch-mean'}
    """
    if choice[1] is None:
        return {TUNED_OPTIONS[row]: choice[0]}
    return {TUNED_OPTIONS[row]: choice[0], 'synth_target_scale': choice[1]}


def _row_options(row, s):
    """A row's train_cifar.py options; a tuned row's own value of the
    tuned option (the paper's, for the other schedules) is left out: the
    tuning sets it."""
    options = dict(MINI_ROWS[row].options)
    if row in tuned_rows(s):
        options.pop(TUNED_OPTIONS[row], None)
    if s['split_at'] and row not in UNSPLIT_ROWS:
        options['split_at'] = s['split_at']
    return options


def _evaluated(seed, every, tta):
    """Seeded ``seed``, evaluated every ``every`` epochs, 36 views every
    ``tta`` evaluations (0: never)."""
    return {'seed': seed, 'eval_interval': every, 'tta_interval': tta}


def _plan_length(s, rows, common, val):
    # BP's curve does not depend on the cut: the default cut's check holds.
    if 'bp' not in rows or s['split_at']:
        return []
    return [Run('length', 'bp', 'bp', s['tune_seed'], joined(
        ROWS['bp'].options, common, val, _schedule_options(s, s['epochs']),
        _evaluated(s['tune_seed'], 1, 0)))]


def _plan_pilot(s, common, val):
    """BP and the bottom half alone at each candidate cut, on the
    validation split, with the final runs' length and 36-view end."""
    if s['split_at']:
        return []
    tail = joined(common, val, _schedule_options(s, s['epochs']),
                  _evaluated(s['tune_seed'], 1, s['epochs'] + 1))
    runs = [Run('pilot', 'bp', 'bp', s['tune_seed'],
                joined(ROWS['bp'].options, tail))]
    for cut in s['pilot_cuts']:
        runs.append(Run('pilot', 'bottom-bp_' + cut, 'bottom-bp',
                        s['tune_seed'], joined(ROWS['bottom-bp'].options,
                                               {'split_at': cut}, tail),
                        choice=(cut,)))
    return runs


def _plan_tune(s, rows, common, val):
    """Evidence II's tuning: every grid point, ``tune_epochs`` long."""
    runs = []
    for row in (r for r in TUNE_ORDER if r in rows):
        for choice in tuning_grid(row, s):
            runs.append(Run(
                'tune', '%s_%s' % (row, choice_name(choice)), row,
                s['tune_seed'], joined(
                    _row_options(row, s), common, val,
                    _schedule_options(s, s['tune_epochs']),
                    choice_options(row, choice),
                    _evaluated(s['tune_seed'], s['tune_epochs'], 0)),
                choice=choice))
    return runs


def rung_run(s, row, choice, seed, rung):
    """One run of successive halving: ``choice`` trained with ``seed`` to
    the end of rung ``rung`` (its epochs; the finals' learning-rate
    schedule), on the validation split, evaluated every epoch. Every rung
    of one candidate and seed trains in one folder: a later rung resumes
    from the snapshot that the one before left.

    Example:
        >>> from chainer_vfbn.experiments.protocol.schedules import settings
        >>> r = rung_run(settings(), 'vfbn', (1e-3, 'batch-mean'), 0, 1)
        >>> r.key, r.folder, r.record
        ('tune2/vfbn_a1e-3_batch-mean_seed0_e12', \
'tune/vfbn_a1e-3_batch-mean_seed0', 'tune/vfbn_a1e-3_batch-mean_seed0_e12')
    """
    epochs = s['rungs'][rung][0]
    folder = os.path.join('tune', '%s_%s_seed%d' % (
        row, choice_name(choice), seed))
    # The rung's length, on the schedule of the finals' length.
    lr = _schedule_options(s, s['epochs'])['lr_step']
    return Run(TUNE_PHASES[rung], '%s_e%d' % (os.path.basename(folder),
                                              epochs), row, seed,
               joined(_row_options(row, s), _common_options(s),
                      {'validation_split': s['validation_split'],
                       'epoch': epochs, 'lr_step': lr},
                      choice_options(row, choice), _evaluated(seed, 1, 0)),
               choice=choice, folder=folder,
               record='%s_e%d' % (folder, epochs))


def run_error(run, records):
    """A finished run's validation error (centre view; ``inf`` for a run
    that diverged), or None while it has no record."""
    if records is None or status(run, records) != 'done':
        return None
    summary = read_record(record_path(records, run))['summary']
    err = summary['test_error']
    # a run that diverged after an evaluation keeps that evaluation's error
    if is_diverged(summary) or err is None or err != err:
        return float('inf')
    return err


def rung_candidates(row, s, records, rung):
    """The candidates of rung ``rung`` of a row's successive halving, best
    first: the whole grid for the first rung; for a later one, the best
    ``s['rungs'][rung][1]`` of the rung before by its validation error
    (seed ``tune_seed``; ties: grid order). None while the rung before has
    a run without a record.
    """
    if rung == 0:
        return tuning_grid(row, s)
    before = rung_candidates(row, s, records, rung - 1)
    if before is None:
        return None
    errors = [run_error(rung_run(s, row, c, s['tune_seed'], rung - 1),
                        records) for c in before]
    if None in errors:
        return None
    order = sorted(range(len(before)), key=lambda i: (errors[i], i))
    return [before[i] for i in order[:s['rungs'][rung][1]]]


def rung_seeds(s, rung):
    """The seeds of rung ``rung``: ``last_rung_seeds`` for the last one,
    else ``tune_seed``."""
    last = rung == len(s['rungs']) - 1
    return s['last_rung_seeds'] if last else (s['tune_seed'],)


def _plan_rung(s, rows, rung, records):
    """The runs of one rung, row by row, best candidate first; the last
    rung runs each candidate with every ``last_rung_seeds``."""
    seeds = rung_seeds(s, rung)
    runs = []
    for row in (r for r in TUNE_ORDER if r in rows):
        for choice in rung_candidates(row, s, records, rung) or ():
            runs += [rung_run(s, row, choice, seed, rung) for seed in seeds]
    return runs


def _final_run(s, row, seed, common, chosen):
    tuned, choice = {}, None
    if row in tuned_rows(s):
        if not chosen or row not in chosen:
            raise ExperimentError('final %s: its tuning is not complete (run '
                                  'the tune phase first)' % row)
        choice = chosen[row]
        tuned = choice_options(row, choice)
    return Run('final', '%s_seed%d' % (row, seed), row, seed, joined(
        _row_options(row, s), common, _schedule_options(s, s['epochs']),
        tuned,
        # the 36 views once, at the end
        _evaluated(seed, 1, s['epochs'] + 1)), choice=choice)


def _plan_final(s, rows, common, chosen):
    runs = []
    for seed_index in range(len(s['seeds'])):   # seed-major
        for row in sorted(rows, key=FINAL_ORDER.index):
            seeds = s['closed_form_seeds'] if row in ONE_SEED_ROWS \
                else s['seeds']
            if seed_index < len(seeds):
                runs.append(_final_run(s, row, seeds[seed_index], common,
                                       chosen))
    return runs


def plan(phase, s, chosen=None, rows=None, records=None):
    """The runs of one mini phase, in the order they should start.

    Args:
        phase (str): One of :data:`~.schedules.PHASES`.
        s (dict): :func:`~.schedules.settings`.
        chosen (dict): ``row -> (alpha_gs, target_scale)`` from the tuning
            (``final`` only); a tuned row missing from it raises
            :class:`~chainer_vfbn.experiments.ExperimentError`.
        rows (list): Restrict to these rows.
        records (str): The records folder, which a later rung of
            successive halving needs (its candidates are the best of the
            rung before); without it, or before the rung before is
            complete, that rung plans nothing for the row.

    Example:
        >>> from chainer_vfbn.experiments.protocol.schedules import settings
        >>> [r.key for r in plan('length', settings())]
        ['length/bp']
    """
    rows = list(rows or ROWS)
    common = _common_options(s)
    val = {'validation_split': s['validation_split']}
    if phase == 'length':
        return _plan_length(s, rows, common, val)
    if phase == 'pilot':
        return _plan_pilot(s, common, val)
    if phase in TUNE_PHASES:
        if halving(s):
            return _plan_rung(s, rows, TUNE_PHASES.index(phase), records)
        return _plan_tune(s, rows, common, val) if phase == 'tune' else []
    if phase == 'final':
        return _plan_final(s, rows, common, chosen)
    raise ValueError('unknown phase %r; choose from %s'
                     % (phase, ', '.join(PHASES)))
