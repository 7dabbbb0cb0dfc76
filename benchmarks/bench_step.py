#!/usr/bin/env python
"""Training-step time of every method, in one run on one device and batch.

Each method is built exactly as training builds it
(:func:`chainer_vfbn.methods.build_method`: MomentumSGD with weight decay on
the network, Adam on the synthesizers) and one step is one
``updater.update()``: forward, backward and every optimizer update,
reports included (as under a Trainer). The batch is fixed and already on
the device, so data loading and host-to-device copies are not timed. On a
GPU the device is synchronized before and after each step. The figure is the
median over ``--iters`` steps after ``--warmup`` untimed ones, and the ratio
is to ``bp`` (the whole network by back-prop) timed in the same run.

Goals (printed beside the figures, not enforced): a VFBN step at most 1.10x
a BP step, a Jaderberg-linear (dni-linear) step at most 1.05x.

Example::

    python benchmarks/bench_step.py --device @cupy:0 --json step.json
    python benchmarks/bench_step.py --arch resnet20-paper -b 32 --iters 5
"""
import argparse
import datetime
import json
import statistics
import sys
import time

import chainer_vfbn  # NOQA  (its compat shims must precede chainer)

import chainer
import numpy

from chainer_vfbn import methods as _methods
from chainer_vfbn.experiments.bench.machine import device_name
from chainer_vfbn.experiments.bench.machine import print_header
from chainer_vfbn.experiments.bench.machine import synchronize
from chainer_vfbn.experiments.bench.machine import versions
from chainer_vfbn.experiments.bench.steps import as_is
from chainer_vfbn.experiments.bench.steps import FixedBatchIterator
from chainer_vfbn.experiments.bench.steps import random_batch
from chainer_vfbn.models import resnet_cifar

ALL_METHODS = _methods.names()  # every method, from the registry
GOALS = {'vfbn': 1.10, 'dni-linear': 1.05}   # step time / BP step time


def time_method(method, args, device, batch):
    """Median step time (s) of ``method``, and every step's time."""
    numpy.random.seed(args.seed)
    net = resnet_cifar(args.arch)
    built = _methods.build_method(method, net, split_at=args.split,
                         alpha_gs=args.alpha_gs)
    built.to_device(device)
    updater = built.make_updater(FixedBatchIterator(batch), as_is, None)
    # A Trainer's reporter, so that every chainer.report costs what it does
    # in training.
    reporter = chainer.Reporter()
    for name, opt in updater.get_all_optimizers().items():
        reporter.add_observer(name, opt.target)
        reporter.add_observers(name, opt.target.namedlinks(skipself=True))

    times = []
    for i in range(args.warmup + args.iters):
        synchronize(device)
        start = time.perf_counter()
        with reporter.scope({}):
            updater.update()
        synchronize(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times), times


def markdown_table(results, bp_time):
    lines = ['| method | median step (ms) | min (ms) | ratio to bp | goal |',
             '|---|---:|---:|---:|---|']
    for method, res in results.items():
        if res.get('skipped'):
            lines.append('| %s | skipped: %s | | | |' % (method,
                                                       res['skipped']))
            continue
        ratio = res['median_s'] / bp_time if bp_time else None
        goal = GOALS.get(method)
        goal_text = ''
        if goal is not None:
            met = 'n/a' if ratio is None else ('met' if ratio <= goal
                                               else 'NOT met')
            goal_text = '<= %.2fx (%s)' % (goal, met)
        lines.append('| %s | %.1f | %.1f | %s | %s |' % (
            method, 1e3 * res['median_s'], 1e3 * min(res['times_s']),
            'n/a' if ratio is None else '%.3fx' % ratio, goal_text))
    return '\n'.join(lines)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='resnet110-paper',
                        help='network, e.g. resnet110-paper, resnet20-he')
    parser.add_argument('--batchsize', '-b', type=int, default=128,
                        help='examples per step')
    parser.add_argument('--device', '-d', default='@numpy',
                        help='device specifier: @numpy, @cupy:0, ...')
    parser.add_argument('--gpu', '-g', type=int, default=None,
                        help='(deprecated) GPU id; use --device @cupy:ID')
    parser.add_argument('--iters', type=int, default=20,
                        help='timed steps per method')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed steps first (allocations, autotune)')
    parser.add_argument('--methods', nargs='+', default=list(ALL_METHODS),
                        help='methods to time (space or comma separated); '
                        'choices: %s' % ', '.join(ALL_METHODS))
    parser.add_argument('--split', default=None,
                        help="split layer (default: the net's default_split)")
    parser.add_argument('--alpha-gs', type=float, default=None,
                        help="synthesizers' Adam step size")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None, metavar='PATH',
                        help='also write the configuration and figures here')
    return parser


def parse_args(argv=None):
    """The options, checked, and the methods to time, in order."""
    parser = build_parser()
    args = parser.parse_args(argv)
    methods = [m for arg in args.methods for m in arg.split(',') if m]
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        parser.error('unknown method(s) %s; choose from %s'
                     % (', '.join(unknown), ', '.join(ALL_METHODS)))
    if args.iters < 1 or args.warmup < 0:
        parser.error('--iters must be >= 1 and --warmup >= 0')
    if args.gpu is not None:
        print('--gpu is deprecated; use --device @cupy:%d' % args.gpu)
        args.device = '@cupy:%d' % args.gpu if args.gpu >= 0 else '@numpy'
    return args, methods


def time_methods(methods, args, device, batch):
    """``{method: {'median_s', 'times_s'} or {'skipped'}}``, each printed
    as it is measured."""
    results = {}
    for method in methods:
        try:
            median, times = time_method(method, args, device, batch)
        except ImportError as e:
            print('skipping %s: cannot import what it needs (%s)'
                  % (method, e))
            results[method] = {'skipped': 'import failed: %s' % e}
            continue
        results[method] = {'median_s': median, 'times_s': times}
        print('%-12s %8.1f ms' % (method, 1e3 * median))
        sys.stdout.flush()
    return results


def write_json(info, results, bp, path):
    """The run's ``info`` and ``results``, with ratios to ``bp`` and the
    goals, to ``path``."""
    info['results'] = results
    for method, res in results.items():
        if bp and 'median_s' in res:
            res['ratio_to_bp'] = res['median_s'] / bp
        if method in GOALS:
            res['goal_ratio'] = GOALS[method]
    with open(path, 'w') as f:
        json.dump(info, f, indent=2)
    print('wrote %s' % path)


def main(argv=None):
    args, methods = parse_args(argv)
    device = chainer.get_device(args.device)
    device.use()

    x, t = random_batch(args.arch, args.batchsize, args.seed)
    batch = (device.send(x), device.send(t))

    info = {'date': datetime.datetime.now().astimezone().isoformat(
                timespec='seconds'),
            'device': device_name(device), 'device_spec': str(device),
            'versions': versions(), 'config': vars(args)}
    print('# Training-step time, %s, batch %d, %d timed steps after %d '
          'warm-up' % (args.arch, args.batchsize, args.iters, args.warmup))
    print_header(info, device)
    results = time_methods(methods, args, device, batch)

    bp = results.get('bp', {}).get('median_s')
    print()
    print(markdown_table(results, bp))
    if bp is None:
        print('\n(no bp figure in this run, so no ratios)')
    if args.json:
        write_json(info, results, bp, args.json)


if __name__ == '__main__':
    main()
