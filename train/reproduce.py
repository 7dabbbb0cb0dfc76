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
anything runs (a finished row of an older reproduce.py, whose
``reproduce-row.json`` names the same arguments, gets its record). A row that was interrupted resumes from
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
import datetime
import json
import os
import subprocess
import sys
import textwrap

from chainer_vfbn import split_points
from chainer_vfbn.datasets import DatasetError
from chainer_vfbn.datasets import subset
from chainer_vfbn.runs import folder
from chainer_vfbn.runs import provenance
from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments import execute
from chainer_vfbn.experiments import plan
from chainer_vfbn.experiments import pool
from chainer_vfbn.experiments import schedules
from chainer_vfbn.experiments.choices import pilot
from chainer_vfbn.experiments.choices import protocol_of
from chainer_vfbn.experiments.results_doc import results_doc_block
from chainer_vfbn.experiments.rows import MINI_ROWS
from chainer_vfbn.experiments.rows import ROWS
from chainer_vfbn.experiments.table_report import write_table_report
from chainer_vfbn.models import resnet_cifar
from chainer_vfbn.runs.interrupt import Interrupted

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN_SCRIPT = os.path.join(HERE, 'train_cifar.py')
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
MINI_ONLY = ('phase', 'jobs', 'records', 'pilot_records', 'arch',
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
        ...     schedule='smoke', phase=None, jobs=2, records=None,
        ...     arch=None, split_at=None, untuned=True, deadline=None,
        ...     results_doc=None))
        ['--jobs', '--untuned']
    """
    unread = ROWS_ONLY if args.schedule == 'mini' else MINI_ONLY
    return ['--' + k.replace('_', '-') for k in unread
            if getattr(args, k, None) not in (None, False)]


def _epilog():
    """``--help``'s end: this docstring, the rows and the schedules."""
    rows = ['    %-17s %-46s %s' % (row, label, '(not in the paper)'
                                     if paper is None else '%6.2f%%' % paper)
            for row, (label, _, paper) in MINI_ROWS.items()]
    scheds = [textwrap.fill('%-11s%s.' % ('``%s``' % name, s['about']), 75,
                            subsequent_indent=' ' * 11,
                            break_on_hyphens=False)
              for name, s in schedules.SCHEDULES.items()]
    return '\n'.join([__doc__.split('\n', 2)[2], "Rows (the paper's test "
                      'error, Table 1; vfbn-paper-alpha: mini only)::', '']
                     + rows + ['', 'Schedules (--schedule):', ''] + scheds)


def build_parser():
    p = _Parser(prog='reproduce.py', description=__doc__.split('\n')[0],
                epilog=_epilog(),
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--schedule', default='smoke',
                   choices=list(schedules.SCHEDULES),
                   help='paper: the full recipe, ResNet-110, 432 epochs '
                        '(not timed; days of GPU time per row); short: a '
                        'reduced GPU schedule (not timed; estimated < 20 min '
                        'for all rows); mini: the evidence schedule on the '
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
    mini = p.add_argument_group(
        '--schedule mini (chainer_vfbn/experiments/schedules.py)')
    mini.add_argument('--phase', default=None,
                      choices=('all',) + schedules.PHASES + ('report',),
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
                           'docs/RESULTS.md)')
    p.add_argument('extra', nargs='*',
                   help='after "--": more train_cifar.py options for every '
                        'row')
    return p


def _check_rows_and_seeds(p, args):
    rows = [r for r in args.rows.split(',') if r]
    known = MINI_ROWS if args.schedule == 'mini' else ROWS
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
    seeds = '0' if args.seeds is None else args.seeds
    try:
        args.seeds = [int(s) for s in seeds.split(',') if s.strip()]
    except ValueError:
        p.error('--seeds must be comma-separated integers, got %r' % seeds)
    if not args.seeds or len(set(args.seeds)) != len(args.seeds):
        p.error('--seeds must name distinct integers, got %r' % seeds)
    args.rows = rows


def parse_args(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    _check_rows_and_seeds(p, args)
    args.phase = 'all' if args.phase is None else args.phase
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
    if args.data_dir is None:
        args.data_dir = MINI_DATA
    archive = os.path.join(args.data_dir, 'cifar-10-python.tar.gz')
    if args.phase != 'report' and not os.path.isfile(archive):
        p.error('the mini schedule needs the cifar-10-mini archive at %s; '
                'cut it from the official CIFAR-10 archive with %s, then pass '
                '--data-dir' % (archive, MINI_DATA_COMMAND))
    if args.phase != 'report':
        _check_provenance(p, args, archive)
    if args.results_doc:
        try:
            results_doc_block(args.results_doc, schedules.settings(
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
    machine = provenance.machine_under(pool.thread_env(1, pin))
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
        failed = execute.run_mini(
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
    return 0


def _write_invocation(args, argv, runs):
    """``<out>/reproduce.json``: when, how and each row's command."""
    with open(os.path.join(args.out, 'reproduce.json'), 'w') as f:
        json.dump(dict(
            started=datetime.datetime.now().astimezone().isoformat(
                timespec='seconds'),
            argv=sys.argv[1:] if argv is None else list(argv),
            schedule=args.schedule, rows=args.rows, seeds=args.seeds,
            commands={'%s/seed%d' % (r.row, r.seed): plan.command(
                r, args.out, args.device, args.data_dir) for r in runs}),
            f, indent=2)


def main_table(args, argv, runs, popen=subprocess.Popen):
    """The Table 1 schedules (smoke, short, paper): rows, then report."""
    if args.report_only:
        write_table_report(runs, execute.table_records(args.out), args.out)
        return 0
    _write_invocation(args, argv, runs)
    s = dict(schedules.SCHEDULES[args.schedule], schedule=args.schedule)
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


def main(argv=None, popen=subprocess.Popen):
    args = parse_args(argv)
    runs = None
    if args.schedule != 'mini':
        runs = plan.table_runs(args.schedule, args.rows, args.seeds,
                               args.dataset, args.extra)
    try:
        if runs and not args.report_only:   # before anything is written
            execute.check_table_runs(runs, execute.table_records(args.out),
                                     args.out)
        os.makedirs(args.out, exist_ok=True)
        # One live reproduction per --out (a --report-only one only reads):
        # a second would train the first one's rows over it.
        held = None if args.report_only else folder.lock(args.out)
    except (ExperimentError, folder.Busy) as e:
        return _fail('error: %s' % e)
    except OSError as e:
        return _fail('error: cannot create --out %s: %s'
                     % (args.out, e.strerror or e))
    try:
        if args.schedule == 'mini':
            return main_mini(args, popen)
        return main_table(args, argv, runs, popen)
    except ExperimentError as e:
        return _fail('error: %s' % e)
    finally:
        folder.release_out(held, args.out)


if __name__ == '__main__':
    sys.exit(main())
