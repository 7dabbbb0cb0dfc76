#!/usr/bin/env python
"""Reproduce the paper's Table 1 and Figure 3: every method, one command.

Each row of Table 1 is trained by ``train/train_cifar.py`` in its own
subprocess, with the same seed, data and schedule, into
``<out>/<row>/seed<seed>``; then ``<out>/table.md``, ``<out>/table.json`` and
the Figure 3 plots are written from the runs' records (one harness,
:mod:`chainer_vfbn.experiments`, runs every schedule).

``--help`` ends with the rows (with the paper's test error) and the
schedules, as :mod:`chainer_vfbn.experiments` defines them.

Resuming: a finished row leaves its record (its configuration, summary
and curve) in ``<out>/records``; a row whose record has the same
configuration is not run again, and a folder that holds another
schedule's or other arguments' row is refused in one line, before
anything runs. A finished run folder whose record is missing (deleted, or
never written: a full disk, a killed reproduce.py) is adopted as its
record; a damaged record is one line that says what to do. A row that was
interrupted resumes from its newest snapshot (train_cifar.py autoloads
from its ``--out``): "resumed", not "started". While runs train, a line
says each one's epoch of its total, the time left and where its log is.
Ctrl-C or SIGTERM stops the running row at a snapshot, writes the table of
the finished rows and exits 130/143; a killed reproduce.py takes its runs
with it (each gets SIGTERM, snapshots and exits; Linux). ``--phase
report`` (or ``--report-only``) only rewrites the table and plots.

Many processes may share one --out (and one --records): each run trains
under a lock beside its record (a dead holder's lock is taken over, with a
line), its record is looked at again just before it starts, and records
are written atomically: every run trains once, and a process that finds a
run taken says so and moves on. In a mini round the runs with the most
left to train start first (a halving rung's new seeds before the
survivors it continues from the rung before), so that processes or
``--jobs`` slots end together. Options that the schedule does not read
(``--jobs``, ``--untuned`` and the other mini ones for smoke, short and
paper; ``--seeds``, ``--dataset`` and ``--report-only`` for mini) are
refused.

A run list and a run of one (for job arrays): ``--list`` prints the
schedule's runs, one a line, tab-separated: its index, phase, row, seed
and key, in the order the phases need (with --phase: that phase's only).
``--run-index I`` (0-based, e.g. ``$SLURM_ARRAY_TASK_ID``) runs the I-th
line of the ``--list`` of the same options, ``--only KEY`` the run of that
key; either skips a run whose record is done, and writes no report. A
run whose earlier phase has no records yet (a tuned row's final run,
before its tuning) prints "KEY waits for ..." and exits 75. On Slurm,
``tools/slurm/submit.sh -- OPTIONS`` submits one job array per phase of
the ``--list``, each after the one before (``afterok``: a phase's runs
are known from the records of the one before), then the ``--phase
report`` job after them all (docs/cluster.md).
Exit statuses: 0 done (trained,
adopted, already recorded, or taken by another live process), 1 a run
failed, 2 refused input, 75 waits for an earlier phase (also a whole mini
table that another process's runs keep from completing: the later rungs
and finals are planned from their records, so run it again), 130/143
interrupted.

Examples::

    python train/reproduce.py --schedule smoke --out result/table1-smoke
    python train/reproduce.py --schedule short --device 0 --out result/short
    python train/reproduce.py --schedule paper --device 0 --rows bp,vfbn \\
        --seeds 0,1,2 --data-dir ~/data/cifar10
    # extra options for every row go after "--"
    python train/reproduce.py --schedule smoke -- --test-batchsize 150
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import textwrap

from chainer_vfbn import split_points
from chainer_vfbn.datasets import DatasetError
from chainer_vfbn.datasets import subset
from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments import execute
from chainer_vfbn.experiments.protocol import plan
from chainer_vfbn.experiments.protocol import schedules
from chainer_vfbn.experiments.protocol.choices import pilot
from chainer_vfbn.experiments.protocol.choices import protocol_of
from chainer_vfbn.experiments.protocol.rows import MINI_ROWS
from chainer_vfbn.experiments.protocol.rows import ROWS
from chainer_vfbn.experiments.protocol.rows import default_rows
from chainer_vfbn.experiments.protocol.run import command
from chainer_vfbn.experiments.protocol.slots import phase_slots
from chainer_vfbn.experiments.protocol.slots import slots_of
from chainer_vfbn.experiments.reporting.results_doc import check_page
from chainer_vfbn.experiments.reporting.table_report import write_table_report
from chainer_vfbn.experiments.running.process import thread_env
from chainer_vfbn.experiments.running.progress import measured_durations
from chainer_vfbn.models import resnet_cifar
from chainer_vfbn.runs import provenance
from chainer_vfbn.runs.interrupt import Interrupted

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN_SCRIPT = os.path.join(HERE, 'train_cifar.py')
# The records whose curves say how long a row takes (--help).
TIMED_RECORDS = os.path.join('docs', 'results', 'mini-stage1_unit1')
#: The exit status of a run whose earlier phase has no records yet
#: (sysexits' EX_TEMPFAIL: try again later).
EXIT_WAITING = 75
# The committed records of the mini schedule: read or updated only when
# named with --records (and --pilot-records).
COMMITTED_RECORDS = os.path.join('docs', 'results', 'mini')
# The real CIFAR-10 subset beside the checkout (the project's shared/).
MINI_DATA = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'shared',
                         'data', 'cifar-10-mini')
MINI_DATA_COMMAND = ('python data/make_mini.py --source '
                     'cifar-10-python.tar.gz --out DIR')

# Options that only one kind of schedule reads; given to the other, each
# is refused in one line rather than silently ignored. The mini schedule
# has its own seeds and data, and --phase report instead of --report-only.
MINI_ONLY = ('jobs', 'records', 'pilot_records', 'arch',
             'split_at', 'rerun_without_predictions', 'untuned', 'deadline',
             'results_doc', 'protocol', 'allow_dirty')
ROWS_ONLY = ('seeds', 'dataset', 'report_only')


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, '%s: error: %s (see --help)\n' % (self.prog, message))


def ignored_options(args):
    """The options given that ``args.schedule`` would not read.

    Example:
        >>> ignored_options(argparse.Namespace(
        ...     schedule='smoke', jobs=2, records=None,
        ...     arch=None, split_at=None, untuned=True, deadline=None,
        ...     results_doc=None))
        ['--jobs', '--untuned']
    """
    unread = ROWS_ONLY if args.schedule == 'mini' else MINI_ONLY
    return ['--' + k.replace('_', '-') for k in unread
            if getattr(args, k, None) not in (None, False)]


def row_times(records=None):
    """``--help``'s lines on how long a row takes, measured from the final
    runs' records in ``records`` (default: :data:`TIMED_RECORDS` of this
    checkout)."""
    records = records or os.path.relpath(os.path.join(
        os.path.dirname(HERE), TIMED_RECORDS))
    found = measured_durations(records)
    if not found['rows']:
        return ['How long a row takes: not measured here (no records in '
                '%s).' % records]
    head = textwrap.fill(
        'How long a row of --schedule mini takes (measured: the last '
        'elapsed_time of the %d final runs of %s epochs in %s, on %s, two '
        'runs at once with one BLAS thread each, as docs/RESULTS.md says; '
        'a GPU is another matter)::' % (
            found['runs'], '/'.join(map(str, found['epochs'])), records,
            ', '.join(found['machines'])), 75, break_on_hyphens=False,
        break_long_words=False)
    lines = [head, '']
    for row, secs in found['rows'].items():
        lo, hi = min(secs) / 60., max(secs) / 60.
        lines.append('    %-17s %3.0f-%.0f min a seed, %.1f h for its %d '
                     'seed(s)' % (row, lo, hi, sum(secs) / 3600., len(secs)))
    return lines


def _epilog():
    """``--help``'s end: this docstring, the rows, the schedules and how
    long a row takes."""
    rows = ['    %-17s %-46s %s' % (row, label, '(not in the paper)'
                                     if paper is None else '%6.2f%%' % paper)
            for row, (label, _, paper) in MINI_ROWS.items()]
    scheds = [textwrap.fill('%-11s%s.' % ('``%s``' % name, s['about']), 75,
                            subsequent_indent=' ' * 11,
                            break_on_hyphens=False)
              for name, s in schedules.SCHEDULES.items()]
    return '\n'.join([__doc__.split('\n', 2)[2], "Rows (the paper's test "
                      'error, Table 1; vfbn-paper-alpha: mini only)::', '']
                     + rows + ['', 'Schedules (--schedule):', ''] + scheds
                     + [''] + row_times())


def build_parser():
    p = _Parser(prog='reproduce.py', description=__doc__.split('\n')[0],
                epilog=_epilog(),
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--schedule', default='smoke',
                   choices=list(schedules.SCHEDULES),
                   help='paper: the full recipe, ResNet-110, 432 epochs '
                        '(its GPU-hours, from the measured step: below); short: a '
                        'reduced GPU schedule (not timed; estimated < 20 min '
                        'for all rows); mini: the evidence schedule on the '
                        'cifar-10-mini subset, CPU (a row\'s final run: '
                        'see the times below; Evidence III tunes each tuned '
                        'row with six final-length runs); smoke: the '
                        'bundled sample, CPU (measured by a trial: about 18 '
                        'min on a loaded 2-core machine, 2026-12-02)')
    p.add_argument('--rows', default=None,
                   help="comma-separated rows (default: Table 1's; mini "
                        'under --protocol evidence3: every mini row): %s'
                        % ', '.join(MINI_ROWS))
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
                   help='train nothing; rewrite the table and plots (the '
                        'same as --phase report)')
    p.add_argument('--phase', default=None,
                   help="all (the default): every phase, then the report; "
                        "one phase (mini: %s; a Table 1 schedule: its "
                        "own name); or report" % ', '.join(schedules.PHASES))
    one = p.add_mutually_exclusive_group()
    one.add_argument('--list', action='store_true',
                     help='print the runs, one a line (index, phase, row, '
                          'seed, key); run nothing')
    one.add_argument('--run-index', type=int, default=None, metavar='I',
                     help="run the I-th (0-based) line of --list's only")
    one.add_argument('--only', default=None, metavar='KEY',
                     help="run the run of this key (--list's last column) "
                          "only")
    mini = p.add_argument_group(
        '--schedule mini (chainer_vfbn/experiments/protocol/schedules.py)')
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
    mini.add_argument('--protocol', default=None,
                      choices=list(schedules.PROTOCOLS),
                      help='evidence3: tuning by successive halving to the '
                           "finals' length, five seeds; evidence2: the "
                           '4-epoch grid and three seeds of the committed '
                           'docs/results/mini* records (default: the '
                           "protocol of --records' records; %s for a new "
                           'folder)' % schedules.CURRENT_PROTOCOL)
    mini.add_argument('--arch', default=None,
                      help="another network than the schedule's %s"
                           % schedules.MINI['arch'])
    mini.add_argument('--split-at', default=None,
                      help="the cut of every split row, instead of the "
                           "schedule's (mid stage 2); 'pilot': the one the "
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
    mini.add_argument('--allow-dirty', action='store_true',
                      help='run from a checkout whose tracked files differ '
                           'from its commit (refused otherwise): each record '
                           "then names the diff's sha256, and the diff is "
                           'kept in <records>/diffs/')
    mini.add_argument('--results-doc', default=None,
                      help='also write the table and comparisons into this '
                           'page, between its "mini report" markers (e.g. '
                           'docs/RESULTS.md), and the results at a glance '
                           'between its "results at a glance" markers (e.g. '
                           'README.md)')
    p.add_argument('extra', nargs='*',
                   help='after "--": more train_cifar.py options for every '
                        'row')
    return p


def _check_rows_and_seeds(p, args):
    if args.rows is not None:
        rows = [r for r in args.rows.split(',') if r]
        known = MINI_ROWS if args.schedule == 'mini' else ROWS
        unknown = [r for r in rows if r not in known]
        if unknown or not rows:
            p.error('unknown row(s) %s; choose from %s'
                    % (', '.join(unknown) or '(none)', ', '.join(known)))
        args.rows = rows
    elif args.schedule != 'mini':   # mini's depend on its protocol
        args.rows = list(ROWS)
    ignored = ignored_options(args)
    if ignored:
        p.error('%s %s for %s' % (
            ', '.join(ignored), 'is' if len(ignored) == 1 else 'are',
            'the Table 1 schedules (smoke, short, paper), not mini'
            if args.schedule == 'mini' else '--schedule mini'))
    seeds = '0' if args.seeds is None else args.seeds
    try:
        args.seeds = [int(s) for s in seeds.split(',') if s.strip()]
    except ValueError:
        p.error('--seeds must be comma-separated integers, got %r' % seeds)
    if not args.seeds or len(set(args.seeds)) != len(args.seeds):
        p.error('--seeds must name distinct integers, got %r' % seeds)


def phases_of(schedule):
    """The phases of a schedule: the mini ones, or a Table 1 schedule's
    own name.

    Example:
        >>> phases_of('smoke')
        ('smoke',)
    """
    return schedules.PHASES if schedule == 'mini' else (schedule,)


def _check_phase(p, args):
    """``--phase`` (default all) is one of the schedule's phases, all or
    report; ``--report-only`` is ``--phase report``."""
    phase = 'all' if args.phase is None else args.phase
    known = ('all',) + phases_of(args.schedule) + ('report',)
    if phase not in known:
        p.error('--phase %s is not a phase of --schedule %s; choose from %s'
                % (phase, args.schedule, ', '.join(known)))
    if args.report_only:
        phase = 'report'
    if phase == 'report' and (args.run_index is not None or args.only):
        p.error('--run-index and --only run a run; --phase report runs none')
    if args.run_index is not None and args.run_index < 0:
        p.error('--run-index must be >= 0, got %d' % args.run_index)
    args.phase = phase
    args.report_only = phase == 'report'


def parse_args(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    _check_rows_and_seeds(p, args)
    _check_phase(p, args)
    args.jobs = 1 if args.jobs is None else args.jobs
    if args.jobs < 1:
        p.error('--jobs must be >= 1')
    if args.out is None:
        args.out = os.path.join('result', 'table1-%s' % args.schedule)
    if args.schedule == 'mini':
        _resolve_mini(p, args)
    return args


def _resolve_mini(p, args):
    """The mini schedule's cut, folders, data and results-page block,
    checked before anything runs."""
    if args.extra:
        p.error('--schedule mini takes no extra train_cifar.py options: '
                "every setting is the schedule's")
    arch = args.arch or schedules.MINI['arch']
    if args.split_at not in (None, 'pilot'):
        points = split_points(resnet_cifar(arch))
        if args.split_at not in points:
            p.error('--split-at %s is not a cut of %s; choose from %s, or '
                    'pilot' % (args.split_at, arch, ', '.join(points)))
    default = os.path.join(args.out, 'records') + (
        '-' + args.arch if args.arch else '')
    if args.split_at == 'pilot':
        pilot_records = args.pilot_records or default
        try:
            pilot_protocol = protocol_of(pilot_records)
        except ExperimentError as e:
            p.error(str(e))
        args.split_at = (pilot(schedules.settings(
            args.arch, protocol=pilot_protocol or 'evidence2'),
            pilot_records) or {}).get('chosen')
        if args.split_at is None:
            p.error("--split-at pilot: the pilot in %s has not chosen a cut "
                    "(run --phase pilot first, or name its records with "
                    "--pilot-records)" % pilot_records)
    if args.records is None:
        args.records = default + ('-' + args.split_at if args.split_at
                                  else '')
    try:
        found = protocol_of(args.records)
    except ExperimentError as e:
        p.error(str(e))
    if args.protocol is None:
        args.protocol = found or schedules.CURRENT_PROTOCOL
    elif found not in (None, args.protocol):
        p.error('%s holds records of the %s protocol, not %s; use another '
                '--records' % (args.records, found, args.protocol))
    if args.rows is None:
        args.rows = list(default_rows(schedules.settings(
            protocol=args.protocol)))
    if args.data_dir is None:
        args.data_dir = MINI_DATA
    archive = os.path.join(args.data_dir, 'cifar-10-python.tar.gz')
    if args.phase != 'report' and not args.list and \
            not os.path.isfile(archive):
        p.error('the mini schedule needs the cifar-10-mini archive at %s; '
                'cut it from the official CIFAR-10 archive with %s, then pass '
                '--data-dir' % (archive, MINI_DATA_COMMAND))
    if args.phase != 'report' and not args.list:
        _check_provenance(p, args, archive)
    if args.results_doc:
        try:
            check_page(args.results_doc, schedules.settings(
                args.arch, args.split_at, args.protocol))
        except (OSError, ExperimentError) as e:
            p.error(str(e))


def _check_provenance(p, args, archive):
    """Before any mini run: the data is the mini set, the checkout is its
    commit (unless ``--allow-dirty``), and OpenBLAS runs the schedule's
    kernel here."""
    try:
        subset.check_content(archive, subset.MINI_SHA256,
                             'the cifar-10-mini set')
    except DatasetError as e:
        p.error('%s; cut it again with %s' % (e, MINI_DATA_COMMAND))
    state = provenance.code_state()
    if state['dirty'] and not args.allow_dirty:
        p.error('the checkout %s differs from its commit in tracked files '
                '(git diff HEAD), and a mini record must name the code it '
                'ran: commit or stash the changes, or pass --allow-dirty '
                "(each record then names the diff's sha256, the diff kept "
                'in <records>/diffs/)' % provenance.REPO)
    if state['dirty']:
        print('--allow-dirty: the checkout differs from %s; the records '
              "name each run's diff" % state['code_version'], flush=True)
    pin = schedules.settings(args.arch, args.split_at,
                             args.protocol).get('blas_kernel')
    if not pin:
        return
    machine = provenance.machine_under(thread_env(1, pin))
    runs = {b.get('architecture') for b in (machine or {}).get('blas') or []
            if b.get('internal_api') == 'openblas'}
    if machine is None or runs - {pin}:
        p.error("this machine cannot run the schedule's BLAS kernel: with "
                'OPENBLAS_CORETYPE=%s, OpenBLAS %s; one kernel makes a table '
                '(OpenBLAS\'s Haswell runs on every AVX2 CPU)' % (
                    pin, 'runs %s' % ', '.join(sorted(runs - {pin}))
                    if machine else 'failed to start'))


def _fail(message, code=2):
    sys.stderr.write('reproduce.py: %s\n' % message)
    return code


def main_mini(args, popen=subprocess.Popen):
    """``--schedule mini``: :func:`.experiments.execute.run_mini`."""
    try:
        failed, held = execute.run_mini(
            schedules.settings(args.arch, args.split_at, args.protocol),
            args.rows,
            execute.mini_phases(args.phase), args.records, args.out,
            untuned=args.untuned, results_doc=args.results_doc,
            train_script=TRAIN_SCRIPT, jobs=args.jobs, device=args.device,
            data_dir=args.data_dir, deadline=args.deadline, popen=popen,
            need_predictions=args.rerun_without_predictions)
    except ExperimentError as e:
        return _fail('error: %s' % e)
    except Interrupted as e:
        return _fail('%s; the running runs took a snapshot; the same command '
                     'resumes them' % e, e.exit_code)
    if failed:
        return _fail('%d run(s) failed: %s' % (len(failed), ', '.join(failed)),
                     1)
    if held:
        return _fail('the table is not complete: %d run(s) that other '
                     'processes train have no record yet (%s); the same '
                     'command goes on once they end' % (
                         len(held), ', '.join(held)), EXIT_WAITING)
    return 0


def _write_invocation(args, argv, runs):
    """``<out>/reproduce.json``: when, how and each row's command."""
    with open(os.path.join(args.out, 'reproduce.json'), 'w') as f:
        json.dump(dict(
            started=datetime.datetime.now().astimezone().isoformat(
                timespec='seconds'),
            argv=sys.argv[1:] if argv is None else list(argv),
            schedule=args.schedule, rows=args.rows, seeds=args.seeds,
            commands={'%s/seed%d' % (r.row, r.seed): command(
                r, args.out, args.device, args.data_dir) for r in runs}),
            f, indent=2)


def main_table(args, argv, runs, popen=subprocess.Popen):
    """The Table 1 schedules (smoke, short, paper): rows, then report."""
    if args.report_only:
        write_table_report(runs, execute.table_records(args.out), args.out)
        return 0
    _write_invocation(args, argv, runs)
    s = schedules.table_settings(args.schedule)
    done = execute.run_table(runs, s, args.out, train_script=TRAIN_SCRIPT,
                             device=args.device, data_dir=args.data_dir,
                             popen=popen)
    if done['interrupted'] is not None:
        finished = sum(x['status'] == 'complete'
                       for xs in done['report']['runs'].values() for x in xs)
        return _fail('interrupted by %s; the table holds the %d finished '
                     'row(s); the same command resumes the others' % (
                         done['interrupted'].name, finished),
                     done['interrupted'].exit_code)
    failed = [k for k, v in done['result'].items() if v.startswith('failed')]
    if failed:
        return _fail('%d run(s) failed: %s' % (len(failed), ', '.join(failed)),
                     1)
    return 0


def _slots(args, runs):
    """``[(slot, mini settings or None)]`` of ``--list``, in its order."""
    if runs is not None:
        return slots_of(runs), None
    s = schedules.settings(args.arch, args.split_at, args.protocol)
    return [x for phase in execute.mini_phases(args.phase)
            for x in phase_slots(phase, s, args.rows)], s


def main_list(args, runs):
    """``--list``: one line per slot: index, phase, row, seed, key."""
    slots, _ = _slots(args, runs)
    for i, slot in enumerate(slots):
        print('%d\t%s\t%s\t%d\t%s' % (i, slot.phase, slot.row, slot.seed,
                                      slot.key))
    return 0


def _pick(args, runs, records):
    """The run that ``--run-index`` or ``--only`` names (raises Waiting,
    or ExperimentError for a name not on the list)."""
    slots, s = _slots(args, runs)
    if args.run_index is not None:
        if args.run_index >= len(slots):
            raise ExperimentError(
                '--run-index %d: the list has %d run(s) (see --list with the '
                'same options)' % (args.run_index, len(slots)))
        slot = slots[args.run_index]
    else:
        by_key = {x.key: x for x in slots}
        slot = by_key.get(args.only)
        if slot is None:    # a run's key where its slot names it otherwise
            for x in slots:
                try:
                    run = execute.resolve(x, s, records, args.untuned, runs)
                except execute.Waiting:
                    continue
                if run is not None and run.key == args.only:
                    return run
            raise ExperimentError('--only %s: no such run in this list (see '
                                  '--list with the same options)' % args.only)
    run = execute.resolve(slot, s, records, args.untuned, runs)
    if run is None:
        print('%s: the records leave this slot empty (its phase has fewer '
              'runs for %s); nothing to do' % (slot.key, slot.row))
    return run


def main_one(args, runs, popen=subprocess.Popen):
    """``--run-index`` or ``--only``: one run, unless its record is done;
    no report. Exit 0 (done, adopted, recorded, or taken), 1 (failed),
    :data:`EXIT_WAITING` (an earlier phase has no records yet)."""
    if runs is not None:
        records = execute.table_records(args.out)
        s = schedules.table_settings(args.schedule)
        pool = dict(threads=None, capture=False)
    else:
        records = args.records
        s = schedules.settings(args.arch, args.split_at, args.protocol)
        pool = dict(deadline=args.deadline,
                    need_predictions=args.rerun_without_predictions)
    try:
        run = _pick(args, runs, records)
    except execute.Waiting as e:
        return _fail(str(e), EXIT_WAITING)
    if run is None:
        return 0
    if runs is not None:
        execute.check_table_runs([run], records, args.out)
    try:
        result = execute.run_one(run, s, records, args.out,
                                 train_script=TRAIN_SCRIPT,
                                 device=args.device, data_dir=args.data_dir,
                                 popen=popen, **pool)
    except Interrupted as e:
        return _fail('%s; %s took a snapshot; the same command resumes it'
                     % (e, run.key), e.exit_code)
    if result.startswith(('failed', 'not started')):
        return _fail('%s %s' % (run.key, result), 1)
    if result == 'skipped':
        print('%s: %s is recorded already: nothing to do' % (run.schedule,
                                                            run.key))
    return 0


def main(argv=None, popen=subprocess.Popen):
    args = parse_args(argv)
    runs = None
    if args.schedule != 'mini':
        runs = plan.table_runs(args.schedule, args.rows, args.seeds,
                               args.dataset, args.extra)
    if args.list:
        return main_list(args, runs)
    try:
        if runs and not args.report_only and args.run_index is None and \
                args.only is None:   # before anything is written
            execute.check_table_runs(runs, execute.table_records(args.out),
                                     args.out)
        os.makedirs(args.out, exist_ok=True)
    except ExperimentError as e:
        return _fail('error: %s' % e)
    except OSError as e:
        return _fail('error: cannot create --out %s: %s'
                     % (args.out, e.strerror or e))
    try:
        if args.run_index is not None or args.only is not None:
            return main_one(args, runs, popen)
        if args.schedule == 'mini':
            return main_mini(args, popen)
        return main_table(args, argv, runs, popen)
    except ExperimentError as e:
        return _fail('error: %s' % e)


if __name__ == '__main__':
    sys.exit(main())
