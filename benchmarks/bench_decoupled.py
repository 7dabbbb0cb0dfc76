#!/usr/bin/env python
"""Decoupled (one rank per module) training against the lock it removes.

Speed, on the same network, split and batch (images/s in steady state):

(a) decoupled VFBN: 2 MPI ranks of 1 thread each, the bottom never waits
    for the top (``chainer_vfbn.decoupled``, ``--max-staleness``), the
    synthesizer trained on the top rank, which sends its weights down
    (``--synth-placement above``, the default);
(a1) the same with the synthesizer trained on the bottom rank from the δ
    the top sends down (``--synth-placement below``);
(b) model-parallel back-prop: the same 2 ranks, the top sends δ down and
    the bottom waits for it before its update;
(c) plain back-prop in one process with 2 threads (``OMP_NUM_THREADS=2``);
(e) synchronous VFBN in one process with 2 threads (the
    ``SyntheticGradientUpdater``: the same maths as (a) without the ranks);
(a2) decoupled with the cheap closed-form VFBN-linear synthesizer (Eq. 8)
    at the paper's split, and (a3)/(b3) decoupled VFBN-linear against
    model-parallel BP at ``--alt-split``, where the two modules cost about
    the same: what the runtime gives when neither the synthesizer nor an
    unbalanced split is the bottleneck;
(a4)/(b4) decoupled VFBN (above) against model-parallel BP at
    ``--vfbn-split``, where bottom + δ̂ costs about what top + the
    synthesizer's training costs: the best split for the paper's
    synthesizer on this network.

Goal: (a) / (b) >= 1.7 (ideal 2). Accuracy (d): the same number of epochs
of the CLI on the real CIFAR-10 mini set, decoupled (2 ranks) against
synchronous VFBN (1 process), test error at the end.

Usage::

    python benchmarks/bench_decoupled.py                  # speed + accuracy
    python benchmarks/bench_decoupled.py --skip-accuracy  # speed only

Needs ``mpiexec`` (Open MPI) and ``mpi4py``; the whole run takes a few
minutes on 2 CPU cores. Prints one table with the device, date, load and
commands. The timed parts use random images (the speed does not depend on
the pixels); (d) uses the real images.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import chainer_vfbn  # NOQA  (its compat shims must precede chainer)

import chainer
import numpy

from chainer_vfbn.experiments.bench.decoupled_speed import time_one_process
from chainer_vfbn.experiments.bench.decoupled_speed import time_ranks
from chainer_vfbn.experiments.bench.machine import cpu_name
from chainer_vfbn.experiments.bench.pipeline import print_costs
from chainer_vfbn.experiments.bench.pipeline import rank_costs
from chainer_vfbn.models import resnet_cifar

# The checkout this script lies in: train/train_cifar.py for (d), and the
# mini set beside it (../shared/data).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MPIEXEC = ['mpiexec', '--allow-run-as-root', '--oversubscribe']
MINI = os.path.join(os.path.dirname(REPO), 'shared', 'data', 'cifar-10-mini')


def worker(opts):
    """MPI rank of (a) or (b): steady-state iterations timed on the top."""
    # Imported here: chainermn loads mpi4py (the optional `mpi` extra),
    # which starts MPI; only the ranks do, never the driver that launches
    # them.
    import chainermn
    comm = chainermn.create_communicator('naive')
    method = 'bp' if opts.mode == 'bp' else opts.method
    result = time_ranks(comm, opts.arch, method, opts.split, opts.batchsize,
                        opts.warmup, opts.iterations, opts.staleness,
                        opts.placement)
    if result is not None:
        with open(opts.result, 'w') as f:
            json.dump(result, f)


def single(opts):
    """(c) plain BP or (e) synchronous VFBN, in this process."""
    result = time_one_process(opts.mode, opts.arch, opts.split,
                              opts.batchsize, opts.warmup, opts.iterations)
    with open(opts.result, 'w') as f:
        json.dump(result, f)


def costs(opts):
    """Per-rank costs at one thread: what bounds any 2-rank pipeline.

    Seconds per step of each rank's piece of the training step, for the
    paper's split and each of ``--split`` (comma separated):
    :func:`chainer_vfbn.experiments.bench.pipeline.rank_costs`.
    """
    numpy.random.seed(0)
    net = resnet_cifar(opts.arch)
    extra = [s for s in (opts.split or '').split(',') if s]
    out = rank_costs(net, [net.default_split] + extra, opts.method,
                     opts.batchsize)
    with open(opts.result, 'w') as f:
        json.dump(out, f)


def _env(threads):
    env = dict(os.environ)
    env['OMP_NUM_THREADS'] = str(threads)
    env['OPENBLAS_NUM_THREADS'] = str(threads)
    env['MKL_NUM_THREADS'] = str(threads)
    return env


def _run(cmd, threads, timeout=600):
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env=_env(threads), timeout=timeout, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError('%s failed:\n%s' % (' '.join(cmd),
                                                proc.stderr[-3000:]))
    return proc


def _speed_runs(args):
    """``[(key, label, threads, command)]`` of every timed configuration."""
    me = [sys.executable, os.path.abspath(__file__)]
    synthetic = ['--worker', 'synthetic', '--staleness', str(args.staleness)]
    runs = [
        ('a', 'decoupled VFBN, 2 ranks x 1 thread, synth trained above',
         1, MPIEXEC + ['-n', '2'] + me + synthetic),
        ('a1', 'decoupled VFBN, 2 ranks x 1 thread, synth trained below',
         1, MPIEXEC + ['-n', '2'] + me + synthetic +
         ['--placement', 'below']),
        ('b', 'model-parallel BP, 2 ranks x 1 thread (bottom waits for δ)',
         1, MPIEXEC + ['-n', '2'] + me + ['--worker', 'bp']),
        ('c', 'plain BP, 1 process x 2 threads', 2,
         me + ['--single', 'bp']),
        ('e', 'synchronous VFBN, 1 process x 2 threads', 2,
         me + ['--single', 'vfbn']),
    ]
    if args.alt_split:
        # What the runtime gives with a cheap synthesizer (Eq. 8's closed
        # form), at the paper's split and where the two modules cost about
        # the same: the pipeline's ceiling on this machine.
        cheap = synthetic + ['--method', 'vfbn-linear']
        alt = ['--split', args.alt_split]
        runs += [
            ('a2', 'decoupled VFBN-linear (Eq. 8), paper split', 1,
             MPIEXEC + ['-n', '2'] + me + cheap),
            ('a3', 'decoupled VFBN-linear, split after %s' % args.alt_split,
             1, MPIEXEC + ['-n', '2'] + me + cheap + alt),
            ('b3', 'model-parallel BP, split after %s' % args.alt_split, 1,
             MPIEXEC + ['-n', '2'] + me + ['--worker', 'bp'] + alt)]
    if args.vfbn_split:
        alt = ['--split', args.vfbn_split]
        runs += [
            ('a4', 'decoupled VFBN (above), split after %s'
             % args.vfbn_split, 1, MPIEXEC + ['-n', '2'] + me + synthetic +
             alt),
            ('b4', 'model-parallel BP, split after %s' % args.vfbn_split, 1,
             MPIEXEC + ['-n', '2'] + me + ['--worker', 'bp'] + alt)]
    return runs


def _speed(args, tmp):
    """Run each configuration of :func:`_speed_runs`; its results, in
    order: ``[(key, label, result)]``."""
    common = ['--arch', args.arch, '--batchsize', str(args.batchsize),
              '--iterations', str(args.iterations), '--warmup',
              str(args.warmup)]
    rows = []
    for key, label, threads, cmd in _speed_runs(args):
        result = os.path.join(tmp, key + '.json')
        _run(cmd + common + ['--result', result], threads)
        with open(result) as f:
            rows.append((key, label, json.load(f)))
        print('  measured (%s) %s' % (key, label), flush=True)
    return rows


def _accuracy(args, tmp):
    """(d): the same epochs of the CLI, decoupled vs synchronous VFBN."""
    cli = [sys.executable, os.path.join(REPO, 'train', 'train_cifar.py'),
           '--method', 'vfbn', '--arch', args.arch, '--batchsize',
           str(args.batchsize), '--epoch', str(args.epochs), '--data-dir',
           args.data_dir, '--dataset', 'cifar10', '--tta-interval', '0',
           '--eval-interval', str(args.epochs), '--frequency',
           str(args.epochs), '--no-progress', '--lr-step', '1000',
           '--learnrate', str(args.learnrate)]
    out = {}
    runs = [('sync', 2, cli + ['--out', os.path.join(tmp, 'sync')]),
            ('decoupled', 1, MPIEXEC + ['-n', '2'] + cli +
             ['--decoupled', '--max-staleness', str(args.staleness),
              '--out', os.path.join(tmp, 'decoupled')])]
    for name, threads, cmd in runs:
        start = time.time()
        _run(cmd, threads)
        with open(os.path.join(tmp, name, 'summary.json')) as f:
            out[name] = json.load(f)
        out[name]['bench_wall_s'] = time.time() - start
        out[name]['command'] = ' '.join(
            (['OMP_NUM_THREADS=%d' % threads] + cmd)).replace(REPO + '/', '')
        print('  trained (%s)' % name, flush=True)
    return out


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--arch', default='resnet20-paper')
    p.add_argument('--batchsize', type=int, default=64)
    p.add_argument('--iterations', type=int, default=20,
                   help='timed iterations per configuration')
    p.add_argument('--warmup', type=int, default=4)
    p.add_argument('--staleness', type=int, default=1)
    p.add_argument('--alt-split', default='stage1_unit3',
                   help='also time decoupled VFBN-linear and BP cut after '
                        'this layer, where the two modules cost about the '
                        'same ("" = skip these rows)')
    p.add_argument('--vfbn-split', default='stage2_unit1',
                   help='also time decoupled VFBN and BP cut after this '
                        'layer ("" = skip these rows)')
    p.add_argument('--placement', choices=('above', 'below'),
                   default='above', help=argparse.SUPPRESS)
    p.add_argument('--method', default='vfbn', help=argparse.SUPPRESS)
    p.add_argument('--split', default=None, help=argparse.SUPPRESS)
    p.add_argument('--epochs', type=int, default=2,
                   help='(d): standard epochs on the mini set')
    p.add_argument('--learnrate', type=float, default=0.1)
    p.add_argument('--data-dir', default=MINI)
    p.add_argument('--skip-accuracy', action='store_true')
    p.add_argument('--skip-speed', action='store_true')
    # internal: one configuration, run by main() in a subprocess
    p.add_argument('--worker', choices=('synthetic', 'bp'))
    p.add_argument('--single', choices=('bp', 'vfbn', 'costs'))
    p.add_argument('--result')
    return p


def _measure_costs(args, tmp):
    """The per-rank costs, measured in a one-thread subprocess."""
    result = os.path.join(tmp, 'costs.json')
    _run([sys.executable, os.path.abspath(__file__), '--single', 'costs',
          '--arch', args.arch, '--batchsize', str(args.batchsize),
          '--split', args.vfbn_split or '', '--result', result], 1)
    with open(result) as f:
        cost = json.load(f)
    print('  measured the per-rank costs', flush=True)
    return cost


def _measure(args, loads):
    """Costs, speed rows and accuracy, as asked; appends the load average
    after the speed part to ``loads``."""
    with tempfile.TemporaryDirectory() as tmp:
        cost = None if args.skip_speed else _measure_costs(args, tmp)
        rows = [] if args.skip_speed else _speed(args, tmp)
        loads.append(os.getloadavg())
        acc = {} if args.skip_accuracy else _accuracy(args, tmp)
    return cost, rows, acc


def _print_setting(argv, loads):
    """Device, date, stack, command and load of the run."""
    print()
    print('device : %s (CPU only; each rank OMP_NUM_THREADS=1)' % cpu_name())
    print('date   : %s' % datetime.datetime.now().strftime('%Y-%m-%d %H:%M'))
    print('stack  : python %s, numpy %s, chainer %s'
          % (platform.python_version(), numpy.__version__,
             chainer.__version__))
    print('command: python benchmarks/bench_decoupled.py %s'
          % ' '.join(sys.argv[1:] if argv is None else argv))
    print('load   : 1-min load average %.2f before, %.2f after the speed '
          'part, %.2f at the end (2 cores)' % tuple(load[0] for load in loads))


def _print_speed(args, rows):
    """The speed table, each row against its model-parallel BP."""
    print()
    print('speed: %s, batch %d, %d timed iterations after %d warm-up'
          % (args.arch, args.batchsize, args.iterations, args.warmup))
    by = {key: res for key, _, res in rows}
    print('%-5s %-62s %9s %8s %s' % ('', 'configuration', 'images/s',
                                     'step s', 'vs BP'))
    for key, label, res in rows:
        extra = ''
        if 'wait_s' in res:
            extra = '  wait s/rank: %s' % ', '.join(
                '%s=%.2f' % (r, v) for r, v in sorted(res['wait_s']
                                                      .items()))
        ref = by[{'a3': 'b3', 'b3': 'b3', 'a4': 'b4',
                  'b4': 'b4'}.get(key, 'b')]
        print('(%s)%s %-62s %9.1f %8.3f %5.2fx%s'
              % (key, ' ' * (3 - len(key)), label,
                 res['images_per_sec'], res['step_s'],
                 res['images_per_sec'] / ref['images_per_sec'], extra))
    _print_ratios(args, {key: res['images_per_sec']
                         for key, res in by.items()})


def _print_ratios(args, ips):
    """The speed-ups that answer the goal, from images/s by row key."""
    print('(a)/(b) = %.2fx (goal >= 1.7x), (a1)/(b) = %.2fx, (a)/(c) = '
          '%.2fx, (a)/(e) = %.2fx'
          % (ips['a'] / ips['b'], ips['a1'] / ips['b'],
             ips['a'] / ips['c'], ips['a'] / ips['e']))
    if 'a4' in ips:
        print('VFBN after %s: (a4)/(b4) = %.2fx, (a4)/(c) = %.2fx'
              % (args.vfbn_split, ips['a4'] / ips['b4'],
                 ips['a4'] / ips['c']))
    if 'a3' in ips:
        print('VFBN-linear: (a2)/(b) = %.2fx at the paper split; after '
              '%s: (a3)/(b3) = %.2fx, (a3)/(c) = %.2fx'
              % (ips['a2'] / ips['b'], args.alt_split,
                 ips['a3'] / ips['b3'], ips['a3'] / ips['c']))


def _print_accuracy(args, acc):
    """(d): test error and speed of the synchronous and decoupled runs."""
    print()
    print('accuracy (d): %s on %s, %d epochs, batch %d, lr %g, no TTA'
          % (args.arch, acc['sync']['dataset'], args.epochs,
             args.batchsize, args.learnrate))
    print('%-30s %10s %10s %10s %8s' % ('run', 'test err', 'train loss',
                                        'images/s', 'wall s'))
    for name in ('sync', 'decoupled'):
        s = acc[name]
        print('%-30s %10.4f %10.4f %10.1f %8.1f'
              % ({'sync': 'synchronous VFBN (1 process)',
                  'decoupled': 'decoupled VFBN (2 ranks)'}[name],
                 s['test_error'], s['train_loss'], s['images_per_sec'],
                 s['wall_time_s']))
    for name in ('sync', 'decoupled'):
        print('  %s: %s' % (name, acc[name]['command']))


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.warmup < 1:   # the clock starts when step `warmup` ends
        parser.error('--warmup must be at least 1, got %d' % args.warmup)
    if args.worker:
        args.mode = args.worker
        return worker(args)
    if args.single == 'costs':
        return costs(args)
    if args.single:
        args.mode = args.single
        return single(args)

    start = time.time()
    loads = [os.getloadavg()]
    print('bench_decoupled: %s, batch %d, split at the paper\'s point '
          '(middle of stage 2), K = 2' % (args.arch, args.batchsize),
          flush=True)
    cost, rows, acc = _measure(args, loads)
    loads.append(os.getloadavg())
    _print_setting(argv, loads)
    if cost:
        print()
        print('costs: %s, batch %d' % (args.arch, args.batchsize))
        print_costs(cost, args.method)
    if rows:
        _print_speed(args, rows)
    if acc:
        _print_accuracy(args, acc)
    print()
    print('total benchmark time %.0f s' % (time.time() - start))
    return 0


if __name__ == '__main__':
    sys.exit(main())
