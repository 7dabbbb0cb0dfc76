#!/usr/bin/env python
"""Reproduce the paper's Table 1 and Figure 3: every method, one command.

Each row of Table 1 is trained by ``train/train_cifar.py`` in its own
subprocess, with the same seed, data and schedule, into
``<out>/<row>/seed<seed>``; then ``<out>/table.md``, ``<out>/table.json`` and
the Figure 3 plots are written from each run's ``summary.json`` and ``log``.

Rows (the paper's test error, Table 1, beside each)::

    bp            back-propagation                          5.15%
    bottom-bp     bottom half alone, GAP + linear head      5.76%
    layerwise     layer-wise supervised loss                5.71%
    dni-resnet    Jaderberg's small-ResNet synthesizer     20.45%
    dni-linear    Jaderberg's linear synthesizer           15.56%
    vfbn-alpha0   VFBN, --alpha-gs 0 (untrained v_f)        5.73%
    vfbn          VFBN, --alpha-gs 1e-3                     5.51%
    vfbn-linear   VFBN, linear v_f (Eq. 8)                  (not in the paper)
    vfbn-mlp      VFBN, one-hidden-layer v_f (Eq. 9)        (not in the paper)

Schedules (``--schedule``):

``paper``  the full recipe: ResNet-110 ``paper`` preset on CIFAR-10, 432
           standard epochs (12 paper epochs), lr x0.1 every 180; centre-view
           test error every 6 epochs, 36-view TTA every 36 (once per paper
           epoch, as the 2016 code evaluated). Days of GPU time per row.
``short``  a reduced schedule meant to finish all nine rows on one GPU in
           under 20 minutes: ResNet-20 ``paper`` preset (n = 3, the same
           24x24 pipeline and 32/64/64 maps; the split after stage2_unit2),
           10 standard epochs, lr x0.1 after epochs 4 and 8, centre view
           every 2 epochs, 36-view TTA at the end. NOT TIMED: no GPU was lent
           when it was written, so the 20-minute budget is an estimate, and
           its errors are far from the paper's (it compares methods only).
``smoke``  a CPU check of minutes: the bundled real sample (500 training,
           150 test images), ResNet-8 ``paper`` preset, batch 50, 20
           iterations, 36-view TTA at the end. Compares nothing; it shows
           that every row runs and the report is written.

Resuming: a row whose ``summary.json`` exists is not run again if its
folder records the same schedule and arguments (``reproduce-row.json``);
a folder that holds another schedule's or other arguments' row is refused
in one line, before anything runs. A row that was interrupted resumes from
its newest snapshot (train_cifar.py autoloads from its ``--out``). Ctrl-C
or SIGTERM stops the running row at a snapshot, writes the table of the
finished rows and exits 130/143. ``--report-only`` only rewrites the table
and plots. While a reproduction runs it holds a lock on ``--out`` (removed
at its end): a second one on the same folder is refused in one line.
Options that the schedule does not read (``--jobs``, ``--phase``,
``--untuned`` and the other mini ones for smoke, short and paper;
``--seeds``, ``--dataset`` and ``--report-only`` for mini) are refused.

Examples::

    python train/reproduce.py --schedule smoke --out result/table1-smoke
    python train/reproduce.py --schedule short --device 0 --out result/short
    python train/reproduce.py --schedule paper --device 0 --rows bp,vfbn \\
        --seeds 0,1,2 --data-dir ~/data/cifar10
    # extra options for every row go after "--"
    python train/reproduce.py --schedule smoke -- --test-batchsize 150
"""
import argparse
import collections
import datetime
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TRAIN_SCRIPT = os.path.join(HERE, 'train_cifar.py')
if REPO not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, REPO)

from chainer_vfbn import evaluation  # NOQA
from chainer_vfbn import protocol  # NOQA
from chainer_vfbn.datasets import augment  # NOQA
from chainer_vfbn import run_dir  # NOQA
from chainer_vfbn import runtime  # NOQA
from chainer_vfbn.interrupt import Interrupt  # NOQA
from chainer_vfbn.interrupt import Interrupted  # NOQA

# The committed records of the mini protocol: read or updated only when
# named with --records (and --pilot-records).
COMMITTED_RECORDS = os.path.join('docs', 'results', 'mini')
# The real CIFAR-10 subset beside the checkout (the project's shared/).
MINI_DATA = os.path.join(os.path.dirname(REPO), 'shared', 'data',
                         'cifar-10-mini')
MINI_DATA_COMMAND = ('python data/make_mini.py --source '
                     'cifar-10-python.tar.gz --out DIR')

# row -> (label, train_cifar.py arguments, the paper's Table 1 test error %)
ROWS = protocol.ROWS

SCHEDULES = collections.OrderedDict([
    ('paper', dict(
        dataset='cifar10',
        args=['--arch', 'resnet110-paper', '--batchsize', '128',
              '--epoch', '432', '--lr-step', '180',      # 12 / 5 paper epochs
              '--eval-interval', '6', '--tta-interval', '6'],
        about='the full recipe: ResNet-110 paper preset, 432 standard epochs '
              '(12 paper epochs), lr x0.1 every 180')),
    ('short', dict(
        dataset='cifar10',
        args=['--arch', 'resnet20-paper', '--batchsize', '128',
              '--epoch', '10', '--lr-step', '4',
              '--eval-interval', '2', '--tta-interval', '5'],
        about='ResNet-20 paper preset, 10 standard epochs, lr x0.1 after '
              'epochs 4 and 8; meant for under 20 min for all rows on one '
              'GPU, NOT timed (no GPU was lent when it was written)')),
    ('mini', dict(
        dataset='cifar10', args=[],
        about='the evidence protocol on the real cifar-10-mini subset: '
              'validation split, equal alpha_gs tuning for every synthetic '
              'row, seeds (chainer_vfbn/protocol.py)')),
    ('smoke', dict(
        dataset='sample',
        args=['--arch', 'resnet8-paper', '--batchsize', '50',
              '--iterations', '20', '--lr-step', '100',
              '--eval-interval', '1', '--tta-interval', '2',
              '--test-batchsize', '150', '--no-progress'],
        about='CPU minutes: the bundled 500/150-image sample, ResNet-8 paper '
              'preset, batch 50, 20 iterations')),
])


# ------------------------------------------------------------- running rows


def row_dir(out, row, seed):
    return os.path.join(out, row, 'seed%d' % seed)


def row_command(row, schedule, seed, out, device=None, dataset=None,
                data_dir=None, extra=()):
    """The ``train_cifar.py`` argument list of one row (no interpreter).

    Args:
        row (str): A key of :data:`ROWS`.
        schedule (str): A key of :data:`SCHEDULES`.
        seed (int): ``--seed``.
        out (str): The reproduction's output folder (the row's own folder
            is ``<out>/<row>/seed<seed>``).
        device (str): ``--device`` for every row, or None for the CLI's
            default.
        dataset (str): Overrides the schedule's ``--dataset``.
        data_dir (str): ``--data-dir``.
        extra (list): More options, appended last (they win).

    Returns:
        list of str
    """
    sched = SCHEDULES[schedule]
    args = list(ROWS[row][1]) + list(sched['args'])
    args += ['--dataset', dataset or sched['dataset'], '--seed', str(seed),
             '--out', row_dir(out, row, seed)]
    if device is not None:
        args += ['--device', str(device)]
    if data_dir is not None:
        args += ['--data-dir', data_dir]
    return args + list(extra)


ROW_RECORD = 'reproduce-row.json'
# Options that do not change a row's numbers: where it runs and reads, and
# the evaluation batch (the test-mode forward is per image).
_PLACE_OPTIONS = ('--out', '--device', '--data-dir', '--test-batchsize')


def row_identity(schedule, argv):
    """What a row's numbers depend on: the schedule and its arguments."""
    args, i = [], 0
    while i < len(argv):
        if argv[i] in _PLACE_OPTIONS:
            i += 2
            continue
        args.append(argv[i])
        i += 1
    return {'schedule': schedule, 'args': args}


def row_mismatch(folder, identity):
    """Why the row in ``folder`` is another row than ``identity``, or None.

    A folder without a record (or without anything) is not another row
    unless it holds a result, which then cannot be told apart.
    """
    path = os.path.join(folder, ROW_RECORD)
    recorded = _read_json(path)
    if recorded is None:
        if os.path.isfile(os.path.join(folder, 'summary.json')):
            return 'it holds a result without a record of its arguments'
        return None
    if recorded.get('schedule') != identity['schedule']:
        return 'it was run with --schedule %s' % recorded.get('schedule')
    if recorded.get('args') != identity['args']:
        return 'it was run with other arguments (%s)' % ' '.join(
            recorded.get('args') or [])
    return None


def plan_rows(rows, seeds, schedule, out, device=None, dataset=None,
              data_dir=None, extra=()):
    """Each (row, seed)'s command, folder and identity; reads only.

    Returns:
        list: ``(row, seed, argv, folder, identity)`` tuples.

    Raises:
        ValueError: A row's folder holds another row (one line).
    """
    plan = []
    for seed in seeds:
        for row in rows:
            argv = row_command(row, schedule, seed, out, device, dataset,
                               data_dir, extra)
            folder = row_dir(out, row, seed)
            identity = row_identity(schedule, argv)
            why = row_mismatch(folder, identity)
            if why:
                raise ValueError(
                    '%s holds another run of %s seed %d: %s; use another '
                    '--out' % (folder, row, seed, why))
            plan.append((row, seed, argv, folder, identity))
    return plan


def run_rows(rows, seeds, schedule, out, runner, device=None, dataset=None,
             data_dir=None, extra=(), log=print, stop=lambda: False):
    """Train every (row, seed) that has no ``summary.json`` yet.

    Each row's folder records its schedule and arguments
    (:data:`ROW_RECORD`); a row recorded with others is neither skipped nor
    mixed in: the whole call is refused first.

    Args:
        runner (callable): ``runner(argv) -> exit status``; argv is the
            :func:`row_command` list.
        stop (callable): Checked before each row; True stops the rows
            (an interrupt).

    Returns:
        dict: ``(row, seed) -> 'done' | 'skipped' | 'failed (exit N)' |
        'not run (interrupted)'``.

    Raises:
        ValueError: A row's folder holds another row (one line).
    """
    plan = plan_rows(rows, seeds, schedule, out, device, dataset, data_dir,
                     extra)
    status = collections.OrderedDict()
    for row, seed, argv, folder, identity in plan:
        if stop():
            status[(row, seed)] = 'not run (interrupted)'
            continue
        if os.path.isfile(os.path.join(folder, 'summary.json')):
            log('reproduce: %s seed %d: done with the same arguments, skipped'
                % (row, seed))
            status[(row, seed)] = 'skipped'
            continue
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, ROW_RECORD), 'w') as f:
            json.dump(identity, f, indent=2)
        log('reproduce: %s seed %d: train_cifar.py %s'
            % (row, seed, ' '.join(argv)))
        rc = runner(argv)
        if rc in (130, 143):  # the row snapshotted at the interrupt
            status[(row, seed)] = 'interrupted'
            continue
        status[(row, seed)] = 'done' if rc == 0 else 'failed (exit %d)' % rc
        if rc != 0:
            log('reproduce: %s seed %d failed with exit status %d; going '
                'on with the other rows' % (row, seed, rc))
    return status


class SubprocessRunner(object):
    """Run train_cifar.py with this interpreter; its output goes to ours.

    The child runs in its own session, so that a Ctrl-C reaches it once,
    through :meth:`forward`, and not a second time from the terminal (a
    second signal stops train_cifar.py without its snapshot).
    """

    def __init__(self):
        self.proc = None

    def __call__(self, argv):
        sys.stdout.flush()
        self.proc = subprocess.Popen(
            [sys.executable, TRAIN_SCRIPT] + list(argv),
            start_new_session=True)
        try:
            return self.proc.wait()
        finally:
            self.proc = None

    def forward(self, signum):
        """Pass a signal to the running row (it snapshots and exits)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signum)


subprocess_runner = SubprocessRunner()


# ----------------------------------------------------------------- report


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def collect(out, rows, seeds):
    """Read each row's ``summary.json`` and ``log``.

    Returns:
        list of dict: one per row, in ``rows`` order: ``row``, ``label``,
        ``flags``, ``paper_error_pct``, ``runs`` (per seed: ``seed``,
        ``status``, ``summary``, ``log``) and the aggregated figures
        ``test_error_pct``, ``tta_error_pct``, ``wall_time_s``,
        ``images_per_sec``, ``synth_cos``, ``epochs`` (each ``None`` or
        ``{'mean', 'std', 'n', 'values'}``; errors in %).
    """
    table = []
    for row in rows:
        label, flags, paper = ROWS[row]
        runs = []
        for seed in seeds:
            folder = row_dir(out, row, seed)
            summary = _read_json(os.path.join(folder, 'summary.json'))
            log = _read_json(os.path.join(folder, 'log'))
            if summary is not None:
                state = 'complete'
            elif log is not None or os.path.isdir(folder):
                state = 'incomplete'
            else:
                state = 'missing'
            # test/ or val/ figures under the records' names (validation/)
            runs.append(dict(seed=seed, status=state, summary=summary,
                             log=[evaluation.record_keys(e) for e in log]
                             if isinstance(log, list) else None))
        done = [r['summary'] for r in runs if r['summary'] is not None]

        def pct_stats(key):
            return protocol.stats([None if s.get(key) is None
                                   else 100. * s[key] for s in done])

        def plain(key):
            return protocol.stats([s.get(key) for s in done])

        table.append(dict(
            row=row, label=label, flags=' '.join(flags),
            paper_error_pct=paper, runs=runs,
            test_error_pct=pct_stats('test_error'),
            tta_error_pct=pct_stats('tta_error'),
            wall_time_s=plain('wall_time_s'),
            images_per_sec=plain('images_per_sec'),
            synth_cos=plain('synth_cos'), epochs=plain('epochs')))
    return table


def _fmt(stat, digits):
    if stat is None:
        return '—'
    text = '%.*f' % (digits, stat['mean'])
    if stat['n'] > 1:
        text += ' ± %.*f (n=%d)' % (digits, stat['std'], stat['n'])
    return text


def markdown(table, header):
    lines = header + [
        '',
        '| row | method | paper: test error (%) | test error, 1 view (%) | '
        '36-view TTA error (%) | wall time (s) | images/s | final synth/cos '
        '| epochs | runs |',
        '|---|---|---:|---:|---:|---:|---:|---:|---:|---|']
    for r in table:
        paper = '—' if r['paper_error_pct'] is None else \
            '%.2f' % r['paper_error_pct']
        runs = ', '.join('seed %d %s' % (x['seed'], x['status'])
                         for x in r['runs'])
        lines.append('| %s | %s (`%s`) | %s | %s | %s | %s | %s | %s | %s | %s |'
                     % (r['row'], r['label'], r['flags'], paper,
                        _fmt(r['test_error_pct'], 2),
                        _fmt(r['tta_error_pct'], 2),
                        _fmt(r['wall_time_s'], 0),
                        _fmt(r['images_per_sec'], 1),
                        _fmt(r['synth_cos'], 3), _fmt(r['epochs'], 1), runs))
    lines += ['', 'Errors are means over seeds (± sample standard deviation '
              'where n > 1), from each run\'s summary.json; "paper" is '
              'Table 1 of Miyato et al. (12 paper epochs of ResNet-110 on '
              'CIFAR-10, 36-view evaluation). "—": no figure.']
    return '\n'.join(lines) + '\n'


def _curves(log, key, x_key):
    points = [(e[x_key], e[key]) for e in (log or [])
              if e.get(key) is not None and e.get(x_key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def _synth_key(log):
    for key in ('synth/cos', 'synth0/cos'):
        if any(key in e for e in (log or [])):
            return key
    return None


def plot_figure3(table, out, title):
    """Write Figure 3's two PNGs; returns their paths, or a reason string."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return 'plots skipped: matplotlib is not installed ' \
               "(pip install -e '.[plot]')"
    paths = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = 0
    for i, r in enumerate(table):
        color = 'C%d' % (i % 10)
        for k, run in enumerate(r['runs']):
            x, y = _curves(run['log'], 'validation/main/error', 'epoch')
            if x:
                ax.plot(x, [100 * v for v in y], color=color, alpha=0.9,
                        label=r['row'] if k == 0 else None)
                drawn += 1
            x, y = _curves(run['log'], 'validation/main/tta_error', 'epoch')
            if x:
                ax.plot(x, [100 * v for v in y], 'x', color=color)
    ax.set_xlabel('epoch (standard; %d = one paper epoch)'
                  % augment.PAPER_EPOCH)
    ax.set_ylabel('test error (%): lines centre view, x 36-view TTA')
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    path = os.path.join(out, 'figure3_test_error.png')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = 0
    for i, r in enumerate(table):
        for k, run in enumerate(r['runs']):
            key = _synth_key(run['log'])
            if key is None:
                continue
            x, y = _curves(run['log'], key, 'iteration')
            ax.plot(x, y, color='C%d' % (i % 10),
                    label=r['row'] if k == 0 else None)
            drawn += 1
    ax.set_xlabel('iteration')
    ax.set_ylabel('cos(grad_synth, grad_true)')
    ax.set_title(title + ': synthetic gradient quality')
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    path = os.path.join(out, 'figure3_synth_cos.png')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
    return paths


def write_report(out, rows=None, seeds=(0,), schedule=None, log=print):
    """Write ``table.md``, ``table.json`` and Figure 3 from the row folders.

    Nothing is trained: every number comes from ``<out>/<row>/seed<s>/``
    ``summary.json`` (the table) and ``log`` (the curves).

    Args:
        out (str): The reproduction's output folder.
        rows (list of str): Rows, in table order (default: all).
        seeds (list of int): Seeds to aggregate.
        schedule (str): Named in the header, if given.

    Returns:
        dict: What ``table.json`` holds.
    """
    rows = list(rows or ROWS)
    seeds = list(seeds)
    table = collect(out, rows, seeds)
    title = 'Table 1 reproduction' + (', schedule %s' % schedule
                                      if schedule else '')
    header = ['# ' + title, '']
    if schedule:
        header.append('Schedule `%s`: %s.' % (schedule,
                                              SCHEDULES[schedule]['about']))
    header.append('Seeds: %s. Rows from `%s`.' % (
        ', '.join(str(s) for s in seeds), os.path.abspath(out)))
    figures = plot_figure3(table, out, title)
    report = dict(
        schedule=schedule, seeds=seeds,
        rows=[{k: v for k, v in r.items() if k != 'runs'} for r in table],
        runs={r['row']: [{k: x[k] for k in ('seed', 'status', 'summary')}
                         for x in r['runs']] for r in table},
        figures=[os.path.basename(p) for p in figures]
        if isinstance(figures, list) else [],
        figures_skipped=None if isinstance(figures, list) else figures)
    with open(os.path.join(out, 'table.md'), 'w') as f:
        f.write(markdown(table, header))
    with open(os.path.join(out, 'table.json'), 'w') as f:
        json.dump(report, f, indent=2, sort_keys=True)
    if not isinstance(figures, list):
        log(figures)
    log('reproduce: wrote %s, %s%s' % (
        os.path.join(out, 'table.md'), os.path.join(out, 'table.json'),
        ''.join(', ' + p for p in figures) if isinstance(figures, list)
        else ''))
    return report


# -------------------------------------------------------------------- CLI


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, '%s: error: %s (see --help)\n' % (self.prog, message))


# Options that only one kind of schedule reads; given to the other, each
# is refused in one line rather than silently ignored. The mini protocol
# has its own seeds and data, and --phase report instead of --report-only.
MINI_ONLY = ('phase', 'jobs', 'records', 'pilot_records', 'arch',
             'split_at', 'rerun_without_predictions', 'untuned', 'deadline',
             'results_doc')
ROWS_ONLY = ('seeds', 'dataset', 'report_only')


def ignored_options(args):
    """The options given that ``args.schedule`` would not read.

    Example:
        >>> ignored_options(argparse.Namespace(
        ...     schedule='smoke', phase=None, jobs=2, records=None,
        ...     arch=None, split_at=None, untuned=True, deadline=None,
        ...     results_doc=None))
        ['--jobs', '--untuned']
    """
    unread = ROWS_ONLY if args.schedule == 'mini' else MINI_ONLY
    return ['--' + k.replace('_', '-') for k in unread
            if getattr(args, k, None) not in (None, False)]


def parse_args(argv=None):
    p = _Parser(prog='reproduce.py', description=__doc__.split('\n')[0],
                epilog=__doc__.split('\n', 2)[2],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--schedule', default='smoke', choices=list(SCHEDULES),
                   help='paper: the full recipe, ResNet-110, 432 epochs '
                        '(not timed; days of GPU time per row); short: a '
                        'reduced GPU schedule (not timed; estimated < 20 min '
                        'for all rows); mini: the evidence protocol on the '
                        'cifar-10-mini subset, CPU (measured: about 7.2 h of '
                        'two cores for its 73 runs, 2026-12-01); smoke: the '
                        'bundled sample, CPU (measured by a trial: about 18 '
                        'min on a loaded 2-core machine, 2026-12-02)')
    p.add_argument('--rows', default=','.join(ROWS),
                   help='comma-separated rows (default: all): %s'
                        % ', '.join(ROWS))
    p.add_argument('--seeds', default=None,
                   help='comma-separated seeds; several give mean and spread '
                        '(default: 0)')
    p.add_argument('--device', '-d', default=None,
                   help="train_cifar.py's --device for every row (e.g. 0, "
                        "@cupy:0, @numpy; default: its own, the CPU)")
    p.add_argument('--out', '-o', default=None,
                   help='output folder (default: result/table1-<schedule>)')
    p.add_argument('--dataset', default=None, choices=('cifar10', 'sample'),
                   help="override the schedule's data set")
    p.add_argument('--data-dir', default=None,
                   help='where cifar-10-python.tar.gz is (passed on)')
    p.add_argument('--report-only', action='store_true',
                   help='train nothing; rewrite the table and plots')
    mini = p.add_argument_group('--schedule mini (chainer_vfbn/protocol.py)')
    mini.add_argument('--phase', default=None,
                      choices=('all',) + protocol.PHASES + ('report',),
                      help='all (the default): length and tune, then final, '
                           'then report')
    mini.add_argument('--jobs', '-j', type=int, default=None,
                      help='runs at once, one BLAS thread each (default: 1)')
    mini.add_argument('--records', default=None,
                      help='folder of the run records (default: '
                           '<out>/records, with -<arch> and -<cut> appended '
                           'for --arch and --split-at); the committed ones '
                           'are %s (and %s-<cut>)' % ((COMMITTED_RECORDS,) * 2))
    mini.add_argument('--pilot-records', default=None,
                      help="where --split-at pilot reads the pilot "
                           "(default: <out>/records, with -<arch>); the "
                           "committed pilot is in %s" % COMMITTED_RECORDS)
    mini.add_argument('--arch', default=None,
                      help='another network than the protocol\'s %s'
                           % protocol.MINI['arch'])
    mini.add_argument('--split-at', default=None,
                      help="the cut of every split row, instead of the "
                           "protocol's (mid stage 2); 'pilot': the one the "
                           "pilot chose (see --pilot-records)")
    mini.add_argument('--rerun-without-predictions', action='store_true',
                      help='also run again the runs whose record holds no '
                           'per-image predictions (made before 2026-12-03); '
                           'the new record replaces the old one')
    mini.add_argument('--untuned', action='store_true',
                      help='final phase without tuning records: the '
                           'default alpha_gs of each method')
    mini.add_argument('--deadline', type=float, default=None,
                      help='Unix time after which no run starts')
    mini.add_argument('--results-doc', default=None,
                      help='also write the table and comparisons into this '
                           'page, between its "mini report" markers (e.g. '
                           'docs/RESULTS.md)')
    p.add_argument('extra', nargs='*',
                   help='after "--": more train_cifar.py options for every '
                        'row')
    args = p.parse_args(argv)
    rows = [r for r in args.rows.split(',') if r]
    known = protocol.MINI_ROWS if args.schedule == 'mini' else ROWS
    unknown = [r for r in rows if r not in known]
    if unknown or not rows:
        p.error('unknown row(s) %s; choose from %s'
                % (', '.join(unknown) or '(none)', ', '.join(known)))
    ignored = ignored_options(args)
    if ignored:
        p.error('%s %s for %s' % (
            ', '.join(ignored), 'is' if len(ignored) == 1 else 'are',
            'the Table 1 schedules (smoke, short, paper), not mini'
            if args.schedule == 'mini' else '--schedule mini'))
    args.seeds = '0' if args.seeds is None else args.seeds
    args.phase = 'all' if args.phase is None else args.phase
    args.jobs = 1 if args.jobs is None else args.jobs
    try:
        seeds = [int(s) for s in args.seeds.split(',') if s.strip()]
    except ValueError:
        p.error('--seeds must be comma-separated integers, got %r'
                % args.seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        p.error('--seeds must name distinct integers, got %r' % args.seeds)
    args.rows, args.seeds = rows, seeds
    if args.jobs < 1:
        p.error('--jobs must be >= 1')
    if args.results_doc:
        try:
            protocol.results_doc_block(args.results_doc)
        except (OSError, protocol.ProtocolError) as e:
            p.error(str(e))
    if args.schedule == 'mini' and args.extra:
        p.error('--schedule mini takes no extra train_cifar.py options: '
                'every setting is the protocol\'s')
    if args.schedule == 'mini' and args.split_at not in (None, 'pilot'):
        from chainer_vfbn import split_points
        from chainer_vfbn.models import resnet_cifar
        points = split_points(resnet_cifar(args.arch or protocol.MINI['arch']))
        if args.split_at not in points:
            p.error('--split-at %s is not a cut of %s; choose from %s, or '
                    'pilot' % (args.split_at, args.arch or
                               protocol.MINI['arch'], ', '.join(points)))
    if args.out is None:
        args.out = os.path.join('result', 'table1-%s' % args.schedule)
    if args.schedule == 'mini':
        _resolve_mini(p, args)
    return args


def _resolve_mini(p, args):
    """The mini protocol's folders, its cut and its data, checked before
    anything runs."""
    default = os.path.join(args.out, 'records') + (
        '-' + args.arch if args.arch else '')
    if args.split_at == 'pilot':
        pilot_records = args.pilot_records or default
        chosen = (protocol.pilot(protocol.settings(args.arch), pilot_records)
                  or {}).get('chosen')
        if chosen is None:
            p.error("--split-at pilot: the pilot in %s has not chosen a cut "
                    "(run --phase pilot first, or name its records with "
                    "--pilot-records)" % pilot_records)
        args.split_at = chosen
    if args.records is None:
        args.records = default + ('-' + args.split_at if args.split_at
                                  else '')
    if args.data_dir is None:
        args.data_dir = MINI_DATA
    archive = os.path.join(args.data_dir, 'cifar-10-python.tar.gz')
    if args.phase != 'report' and not os.path.isfile(archive):
        p.error('the mini protocol needs the cifar-10-mini archive at %s; '
                'cut it from the official CIFAR-10 archive with %s, then pass '
                '--data-dir' % (archive, MINI_DATA_COMMAND))


def main_mini(args, popen=subprocess.Popen):
    """``--schedule mini``: the phases of :mod:`chainer_vfbn.protocol`."""
    s = protocol.settings(args.arch, args.split_at)
    rows = args.rows
    phases = {'all': ('length', 'pilot', 'tune', 'final'), 'report': ()}.get(
        args.phase, (args.phase,))
    failed = []
    try:
        # Rounds: each runs what can run now (the final runs of a tuned row
        # only once its grid is complete), until a round adds nothing new.
        started = set()
        while True:
            runs = [r for ph in phases if ph != 'final'
                    for r in protocol.plan(ph, s, rows=rows)]
            if 'final' in phases:
                chosen = protocol.default_alphas() if args.untuned else \
                    protocol.chosen_settings(s, args.records)
                waiting = [r for r in rows if r in protocol.TUNED_ROWS and
                           r not in chosen]
                runs += protocol.plan('final', s, chosen=chosen, rows=[
                    r for r in rows if r not in waiting])
            runs = [r for r in runs if r.key not in started]
            if not runs:
                break
            started.update(r.key for r in runs)
            result = protocol.run_pool(
                runs, s, args.records, args.out, TRAIN_SCRIPT, args.jobs,
                args.device, args.data_dir, args.deadline, popen=popen,
                need_predictions=args.rerun_without_predictions)
            failed += [k for k, v in result.items() if v.startswith('failed')]
        if 'final' in phases and waiting:
            print('mini: no final runs yet for %s: their tuning is not '
                  'complete' % ', '.join(waiting))
        os.makedirs(args.records, exist_ok=True)
        protocol.write_report(s, args.records, results_doc=args.results_doc)
    except protocol.ProtocolError as e:
        sys.stderr.write('reproduce.py: error: %s\n' % e)
        return 2
    except Interrupted as e:
        # The running rows snapshotted; the report holds the finished ones.
        os.makedirs(args.records, exist_ok=True)
        protocol.write_report(s, args.records, results_doc=args.results_doc)
        sys.stderr.write('reproduce.py: %s; the running runs took a '
                         'snapshot; the same command resumes them\n' % e)
        return e.exit_code
    if failed:
        sys.stderr.write('reproduce.py: %d run(s) failed: %s\n'
                         % (len(failed), ', '.join(failed)))
        return 1
    return 0


def main(argv=None, runner=subprocess_runner):
    args = parse_args(argv)
    if args.schedule != 'mini' and not args.report_only:
        try:  # before anything is written
            plan_rows(args.rows, args.seeds, args.schedule, args.out,
                      args.device, args.dataset, args.data_dir, args.extra)
        except ValueError as e:
            sys.stderr.write('reproduce.py: error: %s\n' % e)
            return 2
    # One live reproduction per --out (a --report-only one only reads the
    # rows): a second would train the first one's rows over it.
    held = None
    try:
        os.makedirs(args.out, exist_ok=True)
        if not args.report_only:
            held = run_dir.lock(args.out)
    except run_dir.Busy as e:
        sys.stderr.write('reproduce.py: error: %s\n' % e)
        return 2
    except OSError as e:
        sys.stderr.write('reproduce.py: error: cannot create --out %s: %s\n'
                         % (args.out, e.strerror or e))
        return 2
    try:
        if args.schedule == 'mini':
            return main_mini(args)
        return main_rows(args, argv, runner)
    finally:
        runtime.release_out(held, args.out)


def main_rows(args, argv, runner):
    """The Table 1 schedules (smoke, short, paper): rows, then report."""
    status, interrupt = {}, None
    if not args.report_only:
        started = datetime.datetime.now().astimezone().isoformat(
            timespec='seconds')
        with open(os.path.join(args.out, 'reproduce.json'), 'w') as f:
            json.dump(dict(started=started, argv=sys.argv[1:] if argv is None
                           else list(argv), schedule=args.schedule,
                           rows=args.rows, seeds=args.seeds,
                           commands={'%s/seed%d' % (r, s): row_command(
                               r, args.schedule, s, args.out, args.device,
                               args.dataset, args.data_dir, args.extra)
                               for s in args.seeds for r in args.rows}),
                      f, indent=2)
        with Interrupt(getattr(runner, 'forward', None)) as interrupt:
            try:
                status = run_rows(
                    args.rows, args.seeds, args.schedule, args.out, runner,
                    args.device, args.dataset, args.data_dir, args.extra,
                    stop=lambda: interrupt.signum is not None)
            except ValueError as e:
                sys.stderr.write('reproduce.py: error: %s\n' % e)
                return 2
    write_report(args.out, args.rows, args.seeds, args.schedule)
    if interrupt is not None and interrupt.signum is not None:
        finished = sum(v in ('done', 'skipped') for v in status.values())
        sys.stderr.write(
            'reproduce.py: interrupted by %s; the table holds the %d finished '
            'row(s); the same command resumes the others\n'
            % (interrupt.name, finished))
        return interrupt.exit_code
    failed = [k for k, v in status.items() if v.startswith('failed')]
    if failed:
        sys.stderr.write('reproduce.py: %d run(s) failed: %s\n' % (
            len(failed), ', '.join('%s seed %d' % k for k in failed)))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
