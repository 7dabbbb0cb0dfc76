"""The ``mini`` protocol: Table 1 on the real cifar-10-mini subset, tuned fairly.

Every setting is in :data:`MINI` and is written into each run's record. Four
phases, each a list of runs of ``train/train_cifar.py``:

``length``  back-prop on the validation split, evaluated every epoch: the
            curve that shows whether ``epochs`` is long enough (the last fifth
            of the epochs should gain less than one point).
``pilot``   (at the default cut only) back-prop and the bottom half alone at
            each earlier candidate cut, on the validation split: where the
            layers above the cut matter (:func:`pilot_choice`).
``tune``    every synthetic row, every ``alpha_gs`` of one grid (and, for the
            free-form DNI rows, both target scales), in short runs on the
            validation split; the lowest final validation error picks the
            row's setting. ``vfbn-alpha0`` is the paper's untrained row and is
            not tuned.
``final``   every row on all the training images, evaluated on the test
            images (centre view every epoch, 36 views at the end), several
            seeds, with the settings chosen in ``tune``.

Each finished run leaves a small JSON record (its configuration, the code
version, its summary and its curve) in the records folder, which the
repository keeps. A run whose record exists with the same configuration is
skipped; a record with another configuration is refused, never mixed in.
Unfinished runs resume from their newest snapshot in the run folder.
"""
import collections
import datetime
import json
import math
import os
import subprocess
import sys
import time

from chainer_vfbn import methods
from chainer_vfbn import runtime
from chainer_vfbn import strict_json
from chainer_vfbn.evaluation import PREDICTIONS_FILE
from chainer_vfbn.experiments import comparisons
from chainer_vfbn.runtime import EXIT_DIVERGED
from chainer_vfbn.interrupt import Interrupt
from chainer_vfbn.interrupt import Interrupted
from chainer_vfbn import split_step
from chainer_vfbn.synthesizers import registry

PROTOCOL_VERSION = 1

# Every setting of the protocol, in one place (also in each record).
MINI = collections.OrderedDict([
    ('data', 'cifar-10-mini: 4,660 training and 846 test images of real '
             'CIFAR-10 (../shared/data/cifar-10-mini)'),
    ('validation_split', 0.1),      # stratified, fixed; for every choice
    ('arch', 'resnet8-paper'),
    ('split_at', None),             # None: the paper's, mid stage 2
    ('batchsize', 128),
    ('learnrate', 0.1),
    # Final runs and the length check. 16 failed the length check (BP gained
    # 1.9 points on the validation split over the last fifth, 2026-11-30).
    ('epochs', 24),
    ('lr_steps_at', (5 / 12., 10 / 12.)),   # x0.1, the paper's recipe scaled
    ('tune_epochs', 4),
    # Seven decades, the same for every tuned row. 1e-1 was added after
    # vfbn chose 1e-2, the grid's edge (2026-11-30).
    ('alpha_grid', (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)),
    ('dni_target_scales', ('batch-mean', 'per-example')),
    ('seeds', (0, 1, 2)),
    ('closed_form_seeds', (0,)),
    ('tune_seed', 0),
    # The pilot: the bottom half alone at each of these cuts, on the
    # validation split, against BP (Evidence II, 2026-12-03).
    ('pilot_cuts', ('stage1_unit1', 'stem')),
])

# Table rows: label, train_cifar.py arguments, the paper's test error (%).
ROWS = collections.OrderedDict([
    ('bp', ('Back prop', ['--method', 'bp'], 5.15)),
    ('bottom-bp', ('Bottom half with back prop', ['--method', 'bottom-bp'],
                   5.76)),
    ('layerwise', ('Layer-wise supervised loss', ['--method', 'layerwise'],
                   5.71)),
    ('dni-resnet', ("Jaderberg's small-ResNet", ['--method', 'dni-resnet'],
                    20.45)),
    ('dni-linear', ("Jaderberg's Linear", ['--method', 'dni-linear'], 15.56)),
    ('vfbn-alpha0', ('VFBN, alpha_gs = 0',
                     ['--method', 'vfbn', '--alpha-gs', '0'], 5.73)),
    ('vfbn', ('VFBN, alpha_gs = 1e-3',
              ['--method', 'vfbn', '--alpha-gs', '1e-3'], 5.51)),
    ('vfbn-linear', ('VFBN, linear v_f (Eq. 8)', ['--method', 'vfbn-linear'],
                     None)),
    ('vfbn-mlp', ('VFBN, MLP v_f (Eq. 9)', ['--method', 'vfbn-mlp'], None)),
])
# Rows of the mini protocol only: VFBN at the paper's alpha_gs, untuned,
# where the tuning chose another value.
MINI_EXTRA_ROWS = collections.OrderedDict([
    ('vfbn-paper-alpha', ("VFBN, alpha_gs = 1e-3 (the paper's, untuned)",
                          ['--method', 'vfbn', '--alpha-gs', '1e-3'], 5.51)),
])
MINI_ROWS = collections.OrderedDict(list(ROWS.items())
                                    + list(MINI_EXTRA_ROWS.items()))
# The mini table's label where the row's own says what the tuning changes.
MINI_LABELS = {'vfbn': 'VFBN, alpha_gs tuned (paper: 1e-3)'}
# The synthesizer kinds of the registry that have a row.
TUNED_ROWS = tuple(k for k in registry.names() if k in ROWS)
# The order in which the tuning runs start: the cheapest rows first, so that a
# chunk stopped early has complete grids for as many rows as it could.
TUNE_ORDER = ('vfbn-linear', 'vfbn-mlp', 'vfbn', 'dni-linear', 'dni-resnet')
# The final runs start seed by seed, and within a seed first the rows that
# the questions of docs/RESULTS.md compare: a stopped protocol has the
# most-needed seeds.
FINAL_ORDER = ('bp', 'vfbn', 'vfbn-alpha0', 'dni-resnet', 'dni-linear',
               'bottom-bp', 'layerwise', 'vfbn-paper-alpha', 'vfbn-linear',
               'vfbn-mlp')
CLOSED_FORM_ROWS = tuple(k for k in registry.closed_forms() if k in ROWS)
PHASES = ('length', 'pilot', 'tune', 'final')
# Rows whose network has no split: their runs never name the cut, so that
# one BP run serves every cut.
UNSPLIT_ROWS = ('bp',)


class ProtocolError(Exception):
    """A refused run or an incomplete prerequisite: one line for the user."""


def settings(arch=None, split_at=None):
    """:data:`MINI`, with the network and the cut replaced where asked."""
    s = collections.OrderedDict(MINI)
    if arch:
        s['arch'] = arch
    if split_at:
        s['split_at'] = split_at
    return s


def tuning_grid(row, s):
    """``[(alpha_gs, target_scale)]`` of one tuned row: the same α grid for
    every row; the DNI rows also try the per-example target scale."""
    scales = ('batch-mean',) if row in split_step.SCALE_FREE else \
        s['dni_target_scales']
    return [(a, sc) for sc in scales for a in s['alpha_grid']]


def _schedule_args(s, epochs):
    step = s['lr_steps_at'][0] * epochs
    if any(abs(f * epochs - (k + 1) * step) > 1e-9
           for k, f in enumerate(s['lr_steps_at'])):
        raise ValueError('lr_steps_at must be evenly spaced multiples')
    return ['--epoch', str(epochs), '--lr-step', repr(step)]


def _common_args(s):
    return ['--arch', s['arch'], '--batchsize', str(s['batchsize']),
            '--learnrate', repr(s['learnrate']), '--dataset', 'cifar10',
            '--no-download', '--no-progress']


def _row_args(row, s):
    """A row's train_cifar.py arguments; a tuned row's own --alpha-gs (the
    paper's, for the other schedules) is left out: the tuning sets it."""
    args = list(MINI_ROWS[row][1])
    if row in TUNED_ROWS and '--alpha-gs' in args:
        i = args.index('--alpha-gs')
        del args[i:i + 2]
    if s['split_at'] and row not in UNSPLIT_ROWS:
        args += ['--split-at', s['split_at']]
    return args


def _alpha_name(alpha):
    return '0' if alpha == 0 else ('%.0e' % alpha).replace('e-0', 'e-')


class Run(object):
    """One run of the protocol: its name, phase and train_cifar.py args."""

    def __init__(self, phase, name, row, seed, args, choice=None):
        self.phase = phase
        self.name = name
        self.row = row
        self.seed = seed
        self.args = list(args)
        self.choice = choice

    @property
    def key(self):
        return '%s/%s' % (self.phase, self.name)

    def config(self):
        """What must match for a record to count for this run: the run's
        own arguments (every setting that shapes it is among them)."""
        return collections.OrderedDict([
            ('protocol', 'mini'), ('protocol_version', PROTOCOL_VERSION),
            ('phase', self.phase), ('row', self.row), ('seed', self.seed),
            ('train_args', self.args)])


def _jsonable(obj):
    return json.loads(json.dumps(obj))


def _plan_length(s, rows, common, val):
    # BP's curve does not depend on the cut: the default cut's check holds.
    if 'bp' not in rows or s['split_at']:
        return []
    return [Run('length', 'bp', 'bp', s['tune_seed'],
                ROWS['bp'][1] + common + val + _schedule_args(s, s['epochs'])
                + ['--seed', str(s['tune_seed']), '--eval-interval', '1',
                   '--tta-interval', '0'])]


def _plan_pilot(s, common, val):
    """BP and the bottom half alone at each candidate cut, on the
    validation split, with the final runs' length and 36-view end."""
    if s['split_at']:
        return []
    tail = common + val + _schedule_args(s, s['epochs']) + [
        '--seed', str(s['tune_seed']), '--eval-interval', '1',
        '--tta-interval', str(s['epochs'] + 1)]
    runs = [Run('pilot', 'bp', 'bp', s['tune_seed'], ROWS['bp'][1] + tail)]
    for cut in s['pilot_cuts']:
        runs.append(Run('pilot', 'bottom-bp_' + cut, 'bottom-bp',
                        s['tune_seed'], ROWS['bottom-bp'][1]
                        + ['--split-at', cut] + tail, choice=(cut,)))
    return runs


def _plan_tune(s, rows, common, val):
    runs = []
    for row in (r for r in TUNE_ORDER if r in rows):
        for alpha, scale in tuning_grid(row, s):
            runs.append(Run(
                'tune', '%s_a%s_%s' % (row, _alpha_name(alpha), scale), row,
                s['tune_seed'],
                _row_args(row, s) + common + val
                + _schedule_args(s, s['tune_epochs'])
                + ['--alpha-gs', repr(alpha), '--synth-target-scale', scale,
                   '--seed', str(s['tune_seed']),
                   '--eval-interval', str(s['tune_epochs']),
                   '--tta-interval', '0'],
                choice=(alpha, scale)))
    return runs


def _final_run(s, row, seed, common, chosen):
    extra, choice = [], None
    if row in TUNED_ROWS:
        if not chosen or row not in chosen:
            raise ProtocolError('final %s: its tuning is not complete (run '
                                'the tune phase first)' % row)
        choice = chosen[row]
        extra = ['--alpha-gs', repr(choice[0]), '--synth-target-scale',
                 choice[1]]
    return Run('final', '%s_seed%d' % (row, seed), row, seed,
               _row_args(row, s) + common + _schedule_args(s, s['epochs'])
               + extra + ['--seed', str(seed), '--eval-interval', '1',
                          # the 36 views once, at the end
                          '--tta-interval', str(s['epochs'] + 1)],
               choice=choice)


def _plan_final(s, rows, common, chosen):
    runs = []
    for seed_index in range(len(s['seeds'])):   # seed-major
        for row in sorted(rows, key=FINAL_ORDER.index):
            seeds = s['closed_form_seeds'] if row in CLOSED_FORM_ROWS \
                else s['seeds']
            if seed_index < len(seeds):
                runs.append(_final_run(s, row, seeds[seed_index], common,
                                       chosen))
    return runs


def plan(phase, s, chosen=None, rows=None):
    """The runs of one phase, in the order they should start.

    Args:
        phase (str): One of :data:`PHASES`.
        s (dict): :func:`settings`.
        chosen (dict): ``row -> (alpha_gs, target_scale)`` from the tuning
            (``final`` only); a tuned row missing from it raises
            :class:`ProtocolError`.
        rows (list): Restrict to these rows.
    """
    rows = list(rows or ROWS)
    common = _common_args(s)
    val = ['--validation-split', repr(s['validation_split'])]
    if phase == 'length':
        return _plan_length(s, rows, common, val)
    if phase == 'pilot':
        return _plan_pilot(s, common, val)
    if phase == 'tune':
        return _plan_tune(s, rows, common, val)
    if phase == 'final':
        return _plan_final(s, rows, common, chosen)
    raise ValueError('unknown phase %r; choose from %s'
                     % (phase, ', '.join(PHASES)))


# ------------------------------------------------------------------ records


def record_path(records, run):
    return os.path.join(records, run.phase, run.name + '.json')


def read_record(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ProtocolError('unreadable record %s: %s' % (path, e))


def config_differences(a, b, prefix=''):
    """Names of the entries that differ between two configurations."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += config_differences(a.get(k), b.get(k),
                                      prefix + str(k) + '.')
        return out
    return [] if a == b else [prefix.rstrip('.')]


def status(run, s, records, need_predictions=False):
    """``'done'`` (a matching record) or ``'todo'``; refuses a mismatch.

    With ``need_predictions``, a matching record without per-image
    predictions (made before 2026-12-03) is ``'todo'`` too: the new run's
    record replaces it (the old one stays in the repository's history).
    """
    path = record_path(records, run)
    rec = read_record(path)
    if rec is None:
        return 'todo'
    diff = config_differences(rec.get('config'), _jsonable(run.config()))
    if diff:
        raise ProtocolError(
            '%s: the record %s was made with another configuration '
            '(differs in %s); move it away or use another --records folder'
            % (run.key, path, ', '.join(diff[:6])))
    if need_predictions and not rec.get('predictions'):
        return 'todo'
    return 'done'


# A record's curve keeps its key names: a run's log now names its
# evaluation figures test/main/... or val/main/..., which the record stores
# under the names it always had, validation/main/... (the record format is
# stable; evaluation.record_keys).
CURVE_KEYS = ('epoch', 'iteration', 'main/loss', 'main/accuracy',
              'validation/main/error', 'validation/main/tta_error',
              'elapsed_time')


def _curve(log):
    from chainer_vfbn.evaluation import record_keys
    keep = []
    for entry in log or []:
        entry = record_keys(entry)
        keep.append({k: v for k, v in entry.items()
                     if k in CURVE_KEYS or k.endswith(('/cos', '/relerr',
                                                       '/norm_ratio'))})
    return keep


_REQUIRED = object()


def make_record(run, s, run_dir):
    """The small JSON record of a finished run, from its folder."""
    def load(name, missing=_REQUIRED):
        path = os.path.join(run_dir, name)
        if missing is not _REQUIRED and not os.path.exists(path):
            return missing      # e.g. a run that diverged before its log
        with open(path) as f:
            return json.load(f)
    summary = load('summary.json')
    args = load('args.json')
    return collections.OrderedDict([
        ('config', run.config()),
        ('settings', _jsonable(s)),
        ('choice', list(run.choice) if run.choice else None),
        ('summary', summary),
        ('curve', _curve(load('log', missing=[]))),
        # Per-image predictions of the last evaluation, for paired tests
        # (None: a run that diverged before it, or a record made before
        # 2026-12-03).
        ('predictions', load(PREDICTIONS_FILE, missing=None)),
        ('code_version', args.get('code_version')),
        ('environment', args.get('environment')),
        ('command', args.get('command')),
        ('finished', datetime.datetime.now().astimezone().isoformat(
            timespec='seconds')),
    ])


# ------------------------------------------------------------------- tuning


def tuning_choice(row, s, records):
    """``(alpha_gs, target_scale)`` with the lowest validation error, or
    None while a grid point of the row has no record."""
    best = None
    for alpha, scale in tuning_grid(row, s):
        run = [r for r in plan('tune', s, rows=[row])
               if r.choice == (alpha, scale)][0]
        if status(run, s, records) != 'done':
            return None
        err = read_record(record_path(records, run))['summary']['test_error']
        if err is None or not math.isfinite(err):
            err = float('inf')
        if best is None or err < best[0]:
            best = (err, alpha, scale)
    return best[1], best[2]


def chosen_settings(s, records):
    out = {}
    for row in TUNED_ROWS:
        c = tuning_choice(row, s, records)
        if c is not None:
            out[row] = c
    return out


# ------------------------------------------------------------------ running


def thread_env(threads=1):
    """The environment of a run: ``threads`` BLAS threads, and Chainer's
    type checks off. They only validate shapes and dtypes: off, a short
    run's every logged number was bit-identical, and a VFBN run took about
    7% less CPU time, a BP run the same
    (docs/benchmarks/type_check_cpu_2026-12-03.json)."""
    env = dict(os.environ, CHAINER_TYPE_CHECK='0')
    for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        env[var] = str(threads)
    return env


def _diverged(run_dir):
    """Whether the run's summary.json says it diverged."""
    try:
        with open(os.path.join(run_dir, 'summary.json')) as f:
            return json.load(f).get('status') == 'diverged'
    except (OSError, ValueError):
        return False


class _Pool(object):
    """The runs in flight of :func:`run_pool`, and what became of them."""

    def __init__(self, s, records, out, argv_tail, popen, log):
        self.s, self.records, self.out = s, records, out
        self.argv_tail, self.popen, self.log = argv_tail, popen, log
        self.active = {}      # proc -> (run, run_dir, log file, start time)
        self.signalled = set()   # the runs the signal was passed on to
        self.result = collections.OrderedDict()
        self.finished = 0
        self.total = 0

    def start(self, run, train_script):
        run_dir = os.path.join(self.out, run.phase, run.name)
        os.makedirs(run_dir, exist_ok=True)
        argv = [sys.executable, train_script] + run.args + [
            '--out', run_dir] + self.argv_tail
        logf = open(os.path.join(run_dir, 'train.log'), 'ab')
        proc = self.popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                          env=thread_env(), start_new_session=True)
        self.active[proc] = (run, run_dir, logf, time.time())
        self.log('mini: started %s' % run.key)

    def pass_on(self, signum):
        """Pass a signal once to each running run; the handler itself
        touches nothing."""
        for proc in list(self.active):
            if proc not in self.signalled and proc.poll() is None:
                proc.send_signal(signum)
                self.signalled.add(proc)

    def reap(self):
        for proc in [p for p in self.active if p.poll() is not None]:
            run, run_dir, logf, started = self.active.pop(proc)
            logf.close()
            self.finished += 1
            self._finished(run, run_dir, proc.returncode, proc in
                           self.signalled, time.time() - started)

    def _finished(self, run, run_dir, rc, signalled, seconds):
        count = '[%d/%d]' % (self.finished, self.total)
        if signalled:
            self.result[run.key] = 'interrupted (exit %d)' % rc
            self.log('mini: %s interrupted (exit %d); the same command '
                     'resumes it' % (run.key, rc))
        elif rc == 0 or (rc == EXIT_DIVERGED and _diverged(run_dir)):
            # A diverged run is a result too (of its alpha_gs, say): its
            # record says so, and the tuning ranks it last.
            rec = make_record(run, self.s, run_dir)
            strict_json.write_json(record_path(self.records, run), rec,
                                   **strict_json.RECORD)
            summ = rec['summary']
            self.result[run.key] = 'done' if rc == 0 else 'diverged'
            self.log('mini: %s %s %s in %.0f s: %s error %s, train '
                     'accuracy %s' % (count, run.key, self.result[run.key],
                                      seconds,
                                      summ.get('evaluated_on', 'test'),
                                      runtime.pct(summ.get('test_error')),
                                      runtime.pct(
                                          summ.get('train_accuracy'))))
        else:
            self.result[run.key] = 'failed (exit %d)' % rc
            self.log('mini: %s %s FAILED with exit status %d; see %s' % (
                count, run.key, rc, os.path.join(run_dir, 'train.log')))

    def close(self):
        for proc, (run, _, logf, _) in self.active.items():
            if proc.poll() is None:
                proc.terminate()
            logf.close()


def run_pool(runs, s, records, out, train_script, jobs=1, device=None,
             data_dir=None, deadline=None, log=print, popen=subprocess.Popen,
             need_predictions=False):
    """Run every run without a matching record, ``jobs`` at a time
    (``need_predictions``: as :func:`status`).

    Each run trains in ``<out>/<phase>/<name>`` (resuming from its newest
    snapshot there) with one BLAS thread; when it exits 0 its record is
    written to ``records``. No run starts after ``deadline`` (Unix time).

    On SIGINT or SIGTERM no run starts any more, the signal is passed on
    to the running ones (each in its own session, so that a Ctrl-C reaches
    them once), which snapshot and exit; once they have,
    :class:`~chainer_vfbn.interrupt.Interrupted` is raised.

    Returns:
        dict: ``run.key -> 'done' | 'skipped' | 'failed (exit N)' |
        'not started (deadline)'``.

    Raises:
        Interrupted: After a signal, once every started run has exited.
    """
    tail = (['--device', str(device)] if device is not None else []) + \
        (['--data-dir', data_dir] if data_dir is not None else [])
    pool = _Pool(s, records, out, tail, popen, log)
    todo = []
    for run in runs:
        if status(run, s, records, need_predictions) == 'done':
            pool.result[run.key] = 'skipped'
        else:
            todo.append(run)
    if pool.result:
        log('mini: %d run(s) already recorded, skipped' % len(pool.result))
    pool.total = len(todo)

    def drop(why):
        for run in todo:
            pool.result[run.key] = 'not started (%s)' % why
        del todo[:]
    with Interrupt() as interrupt:
        try:
            while todo or pool.active:
                if interrupt.signum is not None:
                    drop('interrupted')
                    pool.pass_on(interrupt.signum)
                while todo and len(pool.active) < jobs:
                    if deadline is not None and time.time() > deadline:
                        drop('deadline')
                        break
                    pool.start(todo.pop(0), train_script)
                time.sleep(0.2 if popen is not subprocess.Popen else 2)
                pool.reap()
        finally:
            pool.close()
    if interrupt.signum is not None:
        raise Interrupted(interrupt)
    return pool.result


def default_alphas():
    """The untuned fall-back: :data:`methods.DEFAULT_ALPHA_GS`."""
    return {row: (methods.DEFAULT_ALPHA_GS[row], 'batch-mean')
            for row in TUNED_ROWS}


# ------------------------------------------------------------------- report


def stats(values):
    """Mean, sample standard deviation (None for one value) and values."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    mean = sum(values) / len(values)
    std = (math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
           if len(values) > 1 else None)
    return dict(mean=mean, std=std, n=len(values), values=values)


def _records_of(runs, s, records):
    out = []
    for run in runs:
        if status(run, s, records) == 'done':
            out.append((run, read_record(record_path(records, run))))
    return out


def _last(curve, key):
    vals = [e[key] for e in curve if e.get(key) is not None]
    return vals[-1] if vals else None


#: The pilot's rule for the cut: the deepest candidate where the bottom half
#: alone errs at least PILOT_GAP points more than BP on the validation split
#: (centre view), with an exact McNemar p below PILOT_P (Evidence II).
PILOT_GAP = 5.
PILOT_P = 0.01


def pilot(s, records):
    """The pilot's runs and the cut its rule chooses.

    Returns:
        dict or None: ``bp`` (BP's validation error, %, centre and TTA),
        ``cuts`` (per candidate, deepest first: its ``error`` and its
        paired ``gap`` to BP, :func:`comparisons.compare_rows`, per view;
        None while it has no record) and ``chosen`` (the cut, or None while
        a candidate has no record or if none meets the rule). None at a cut
        other than the default, or before BP's pilot run has a record.
    """
    done = {run.name: rec for run, rec in
            _records_of(plan('pilot', s), s, records)}
    if 'bp' not in done:
        return None

    def as_row(name):
        rec = done[name]
        return dict(row=name, predictions={0: rec.get('predictions')},
                    error={'centre': _pct_of(rec['summary']['test_error']),
                           'tta': _pct_of(rec['summary']['tta_error'])})
    bp = as_row('bp')
    cuts, chosen, complete = [], None, True
    for cut in s['pilot_cuts']:
        if 'bottom-bp_' + cut not in done:
            cuts.append(dict(cut=cut, error=None, gap=None))
            complete = False
            continue
        bottom = as_row('bottom-bp_' + cut)
        gap = {view: comparisons.compare_rows(bottom, bp, view)
               for view in comparisons.VIEWS}
        cuts.append(dict(cut=cut, error=bottom['error'], gap=gap))
        centre = gap['centre']
        if chosen is None and centre is not None and \
                centre['diff'] >= PILOT_GAP and centre['p'] < PILOT_P:
            chosen = cut
    return dict(bp=bp['error'], cuts=cuts, chosen=chosen if complete
                else None, complete=complete)


def _pct_of(x):
    return None if x is None else 100. * x


def _md_pilot(result):
    if result is None:
        return []
    lines = ['', '## Pilot: where do the layers above the cut matter? '
             '(validation split, one seed)', '',
             '| run | centre view (%) | TTA (%) | gap to BP, centre '
             '[95% CI], McNemar p | gap to BP, TTA [95% CI], McNemar p |',
             '|---|---:|---:|---:|---:|',
             '| `bp` | %s | %s | | |' % tuple(
                 _fmt1(result['bp'][v]) for v in comparisons.VIEWS)]
    for c in result['cuts']:
        err, gap = c['error'] or {}, c['gap'] or {}
        lines.append('| `bottom-bp` cut after `%s` | %s | %s | %s | %s |' % (
            c['cut'], _fmt1(err.get('centre')), _fmt1(err.get('tta')),
            *[_fmt_gap(gap.get(v)) for v in comparisons.VIEWS]))
    rule = ('The rule, fixed before the pilot ran: the deepest candidate cut '
            'where the bottom half alone errs at least %g points more than '
            'BP in the centre view, with an exact McNemar p below %g.'
            % (PILOT_GAP, PILOT_P))
    verdict = ('Chosen: `%s`.' % result['chosen'] if result['chosen'] else
               'Not every candidate has run yet.' if not result['complete']
               else 'No candidate meets the rule.')
    return lines + ['', rule + ' ' + verdict]


def _fmt1(x):
    return '—' if x is None else '%.2f' % x


def _fmt_gap(res):
    if res is None:
        return '—'
    return '%+.2f [%+.2f, %+.2f], p = %.2g' % (res['diff'], res['low'],
                                               res['high'], res['p'])


def length_check(s, records):
    """The BP validation curve and the gain over its last fifth (points)."""
    runs = plan('length', s)
    done = _records_of(runs, s, records)
    if not done:
        return None
    curve = done[0][1]['curve']
    pts = [(e['epoch'], e['validation/main/error']) for e in curve
           if e.get('validation/main/error') is not None]
    epochs = s['epochs']
    cut = epochs - epochs / 5.
    before = [err for ep, err in pts if ep <= cut]
    gain = None
    if before:
        gain = 100. * (before[-1] - pts[-1][1])
    return dict(curve=pts, gain_last_fifth_points=gain,
                train_accuracy=done[0][1]['summary'].get('train_accuracy'))


def summarize(s, records, rows=None):
    """Per-row figures of the final runs and the tuning grid (by default
    the rows of Table 1, and the mini protocol's own rows that have a
    record)."""
    chosen = chosen_settings(s, records)
    if rows is None:
        rows = list(ROWS) + [r for r in MINI_EXTRA_ROWS if _records_of(
            plan('final', s, chosen=chosen, rows=[r]), s, records)]
    table = []
    for row in rows:
        try:
            runs = plan('final', s, chosen=chosen, rows=[row])
        except ProtocolError:
            runs = []
        done = _records_of(runs, s, records)
        summ = [rec['summary'] for _, rec in done]

        def pct_stats(key):
            return stats([None if x.get(key) is None else 100. * x[key]
                          for x in summ])

        def plain(key):
            return stats([x.get(key) for x in summ])

        tuning = []
        if row in TUNED_ROWS:
            for run, rec in _records_of(plan('tune', s, rows=[row]), s,
                                        records):
                tuning.append(dict(
                    alpha=run.choice[0], scale=run.choice[1],
                    val_error=rec['summary']['test_error'],
                    diverged=rec['summary'].get('status') == 'diverged'))
        table.append(dict(
            row=row, label=MINI_LABELS.get(row, MINI_ROWS[row][0]),
            paper=MINI_ROWS[row][2],
            seeds=[r.seed for r, _ in done],
            planned_seeds=[r.seed for r in runs],
            choice=chosen.get(row), tta=pct_stats('tta_error'),
            centre=pct_stats('test_error'), cos=plain('synth_cos'),
            norm_ratio=plain('synth_norm_ratio'),
            train_accuracy=pct_stats('train_accuracy'),
            epochs=plain('epochs'),
            images_per_sec=plain('images_per_sec'), tuning=tuning,
            curves=[rec['curve'] for _, rec in done],
            predictions={r.seed: rec.get('predictions') for r, rec in done}))
    return table


def _fmt(st, digits=2, per_seed=True):
    if st is None:
        return '—'
    text = '%.*f' % (digits, st['mean'])
    if st['n'] > 1:
        text += ' ± %.*f' % (digits, st['std'])
        if per_seed:
            text += ' (%s)' % ', '.join('%.*f' % (digits, v)
                                        for v in st['values'])
    return text


def _fmt_choice(choice):
    if choice is None:
        return '—'
    return '%s%s' % (_alpha_name(choice[0]),
                     ', B·δ' if choice[1] == 'per-example' else '')


def _md_settings(s, records):
    lines = ['# Table 1 on cifar-10-mini (protocol `mini`)', '',
             'Written by `python train/reproduce.py --schedule mini --phase '
             'report` from the run records in `%s`; every number below comes '
             'from those files.' % records, '', '| setting | value |',
             '|---|---|']
    for k, v in s.items():
        lines.append('| %s | %s |' % (k, '—' if v is None else
                                      ', '.join(str(x) for x in v)
                                      if isinstance(v, (list, tuple)) else v))
    return lines


def _md_alpha(r):
    if r['row'] == 'vfbn-alpha0':
        return '0 (untrained)'
    return _fmt_choice(r['choice']) if r['row'] in TUNED_ROWS else 'n/a'


def _md_table(s, table, level):
    lines = ['', level + ' Test error', '',
             '| row | paper (%) | mini, 36-view TTA (%) | mini, centre view '
             '(%) | α_gs chosen | final cos | final ‖δ̂‖/‖δ‖ | train acc. '
             '(%) | epochs | images/s | seeds |',
             '|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|']
    for r in table:
        lines.append('| %s (`%s`) | %s | %s | %s | %s | %s | %s | %s | %s | '
                     '%s | %d of %d |' % (
                         r['label'], r['row'],
                         '—' if r['paper'] is None else '%.2f' % r['paper'],
                         _fmt(r['tta']), _fmt(r['centre']), _md_alpha(r),
                         _fmt(r['cos'], 3, False),
                         _fmt(r['norm_ratio'], 3, False),
                         _fmt(r['train_accuracy'], 1, False),
                         _fmt(r['epochs'], 0, False),
                         _fmt(r['images_per_sec'], 1, False),
                         len(r['seeds']), len(r['planned_seeds']) or
                         len(s['seeds'])))
    return lines + [
        '', 'Mean ± sample standard deviation over seeds, per-seed values in '
        'brackets. "B·δ": the per-example target scale. images/s: training '
        'images per second of wall time, one BLAS thread, with other runs on '
        'the same machine.']


def _md_tuning_and_length(s, table, length):
    lines = ['', '## Tuning (validation error %, final, short runs; '
             '"diverged": stopped on a non-finite value, ranked last; '
             '"—": not run yet)', '']
    grid = list(s['alpha_grid'])
    lines += ['| row | scale | ' + ' | '.join(_alpha_name(a) for a in grid)
              + ' |', '|---|---|' + '---:|' * len(grid)]
    for r in table:
        for scale in (s['dni_target_scales'] if r['row'] in TUNED_ROWS
                      else ()):
            cells = {t['alpha']: t for t in r['tuning']
                     if t['scale'] == scale}
            if not cells and scale != 'batch-mean':
                continue
            row_cells = []
            for a in grid:
                t = cells.get(a)
                txt = ('—' if t is None else 'diverged' if t['diverged']
                       else '%.1f' % (100 * t['val_error']))
                if r['choice'] == (a, scale):
                    txt = '**%s**' % txt
                row_cells.append(txt)
            lines.append('| %s | %s | %s |' % (r['row'], scale,
                                               ' | '.join(row_cells)))
    if length is not None:
        lines += ['', '## Length check (BP on the validation split)', '',
                  'Validation error (%%) by epoch: %s.' % ', '.join(
                      '%g: %.1f' % (ep, 100 * e) for ep, e in
                      length['curve']),
                  'Gain over the last fifth of the epochs: %s points '
                  '(the protocol asks for < 1); final training accuracy '
                  '%s.' % ('—' if length['gain_last_fifth_points'] is None
                           else '%.2f' % length['gain_last_fifth_points'],
                           runtime.pct(length['train_accuracy']))]
    return lines


#: The report's comparisons: (question, row, the row it is compared with).
COMPARISONS = (
    ('(a) VFBN against BP', 'vfbn', 'bp'),
    ('(a) bottom half alone against BP', 'bottom-bp', 'bp'),
    ('(a) VFBN against the bottom half alone', 'vfbn', 'bottom-bp'),
    ('(a) VFBN against the layer-wise loss', 'vfbn', 'layerwise'),
    ('(b) DNI small-ResNet against BP', 'dni-resnet', 'bp'),
    ('(b) DNI linear against BP', 'dni-linear', 'bp'),
    ('(b) DNI small-ResNet against VFBN', 'dni-resnet', 'vfbn'),
    ('(b) DNI linear against VFBN', 'dni-linear', 'vfbn'),
    ('(c) VFBN tuned α_gs against α_gs = 0', 'vfbn', 'vfbn-alpha0'),
    ("(c) VFBN α_gs = 1e-3 (the paper's) against α_gs = 0",
     'vfbn-paper-alpha', 'vfbn-alpha0'),
    ('(d) VFBN linear v_f against VFBN', 'vfbn-linear', 'vfbn'),
    ('(d) VFBN MLP v_f against VFBN', 'vfbn-mlp', 'vfbn'),
    ('(d) VFBN linear v_f against BP', 'vfbn-linear', 'bp'),
)


#: The rows whose recovered fraction of the bottom-vs-BP gap is reported.
RECOVERING_ROWS = ('layerwise', 'vfbn-alpha0', 'vfbn', 'vfbn-paper-alpha',
                   'dni-linear', 'dni-resnet', 'vfbn-linear', 'vfbn-mlp')


def _md_results(s, table, level):
    """The table, the paired comparisons and the recovered fractions,
    under headings of ``level``."""
    return (_md_table(s, table, level)
            + comparisons.md_comparisons(table, COMPARISONS, level)
            + comparisons.md_recovered(table, RECOVERING_ROWS, level))


def markdown(s, records, table, length):
    """The report's text: settings, the table, the comparisons, the
    tuning, the length and the pilot."""
    lines = (_md_settings(s, records) + _md_results(s, table, '##')
             + _md_tuning_and_length(s, table, length)
             + _md_pilot(pilot(s, records)))
    return '\n'.join(lines) + '\n'


def _seed_band(r):
    """Epochs and the per-seed centre-view errors (%) of a row's runs."""
    import numpy
    series = [[(e['epoch'], e['validation/main/error']) for e in curve
               if e.get('validation/main/error') is not None]
              for curve in r['curves']]
    if not series:
        return None, None
    n = min(len(p) for p in series)
    x = numpy.array([p[0] for p in series[0][:n]])
    return x, 100 * numpy.array([[p[1] for p in pts[:n]] for pts in series])


def _figure3(ax, table):
    for i, r in enumerate(table):
        x, y = _seed_band(r)
        if x is None:
            continue
        m = y.mean(axis=0)
        ax.plot(x, m, color='C%d' % (i % 10),
                label='%s (n=%d)' % (r['row'], len(y)))
        if len(y) > 1:
            sd = y.std(axis=0, ddof=1)
            ax.fill_between(x, m - sd, m + sd, color='C%d' % (i % 10),
                            alpha=0.2)
    ax.set_xlabel('epoch')
    ax.set_ylabel('test error, centre view (%)')
    ax.set_title('Figure 3 on cifar-10-mini: mean ± std over seeds')


def _synth_quality(axes, table):
    for i, r in enumerate(table):
        for ax, value in zip(axes, ('cos', 'relerr', 'norm_ratio')):
            key = 'synth/' + value
            pts = [(e['iteration'], e[key]) for e in
                   (r['curves'][0] if r['curves'] else []) if key in e]
            if pts:
                ax.plot(*zip(*pts), color='C%d' % (i % 10), label=r['row'])
    for ax, value in zip(axes, ('cos(δ̂, δ)', '‖δ − δ̂‖/‖δ‖', '‖δ̂‖/‖δ‖')):
        ax.set_xlabel('iteration')
        ax.set_title(value + ' (first seed)')
    axes[2].set_yscale('log')


def _tuning(ax, table):
    for i, r in enumerate(table):
        for scale, style in (('batch-mean', '-o'), ('per-example', '--x')):
            pts = sorted((t['alpha'], 100 * t['val_error']) for t in
                         r['tuning'] if t['scale'] == scale and
                         t['val_error'] is not None)
            if pts:
                ax.plot(*zip(*pts), style, color='C%d' % (i % 10),
                        label='%s, %s' % (r['row'], scale))
    ax.set_xscale('log')
    ax.set_xlabel('alpha_gs')
    ax.set_ylabel('validation error (%)')
    ax.set_title('Tuning on the validation split (short runs)')


def _length(ax, length):
    ax.plot([p[0] for p in length['curve']],
            [100 * p[1] for p in length['curve']], '-o')
    ax.set_xlabel('epoch')
    ax.set_ylabel('validation error (%)')
    ax.set_title('Length check: BP on the validation split')


def plot(table, length, folder):
    """Figure 3 with seed bands, δ̂ quality curves, the tuning curves and
    the length check; returns the paths written (none without matplotlib)."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    os.makedirs(folder, exist_ok=True)
    figures = [('figure3_test_error.png', (1, (8, 5)),
                lambda axes: _figure3(axes[0], table)),
               ('synth_quality.png', (3, (14, 4.2)),
                lambda axes: _synth_quality(axes, table)),
               ('tuning.png', (1, (7, 4.5)),
                lambda axes: _tuning(axes[0], table))]
    if length is not None:
        figures.append(('length_check.png', (1, (6, 4)),
                        lambda axes: _length(axes[0], length)))
    paths = []
    for name, (n, size), draw in figures:
        fig, axes = plt.subplots(1, n, figsize=size, squeeze=False)
        draw(list(axes[0]))
        for ax in fig.axes:
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        paths.append(os.path.join(folder, name))
        fig.tight_layout()
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


#: The lines of a results page between which the report writes its table
#: and comparisons (``--results-doc``).
DOC_BEGIN = '<!-- mini report: begin (written by reproduce.py) -->'
DOC_END = '<!-- mini report: end -->'


def results_doc_block(path):
    """The page at ``path`` and where its report block's content starts
    and ends; :class:`ProtocolError` if it has no such block."""
    with open(path) as f:
        text = f.read()
    begin, end = text.find(DOC_BEGIN), text.find(DOC_END)
    if begin < 0 or end < begin:
        raise ProtocolError('%s has no %r ... %r block to write the table '
                            'into' % (path, DOC_BEGIN, DOC_END))
    return text, begin + len(DOC_BEGIN), end


def update_results_doc(path, s, table):
    """Replace the block between :data:`DOC_BEGIN` and :data:`DOC_END` in
    the page at ``path`` with the table and the comparisons, two heading
    levels down; the rest of the page is kept as it is."""
    text, begin, end = results_doc_block(path)
    block = '\n'.join(_md_results(s, table, '####'))
    with open(path, 'w') as f:
        f.write(text[:begin] + block + '\n\n' + text[end:])


def write_report(s, records, log=print, results_doc=None):
    """Write ``table.md`` and its figures in ``records`` from the records;
    with ``results_doc``, also the table and comparisons block of that
    page (:func:`update_results_doc`)."""
    table = summarize(s, records)
    length = length_check(s, records)
    paths = plot(table, length, os.path.join(records, 'figures'))
    md = markdown(s, records, table, length)
    if paths:
        md += '\n' + '\n'.join('![%s](figures/%s)' % (
            os.path.basename(p)[:-4], os.path.basename(p)) for p in paths) \
            + '\n'
    with open(os.path.join(records, 'table.md'), 'w') as f:
        f.write(md)
    if results_doc:
        update_results_doc(results_doc, s, table)
        paths.append(results_doc)
    log('mini: wrote %s%s' % (os.path.join(records, 'table.md'),
                              ''.join(', ' + p for p in paths)))
    return table
