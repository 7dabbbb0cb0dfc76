#!/usr/bin/env python
"""Does turning Chainer's type checks off make a run faster, bit for bit?

Runs ``train/train_cifar.py`` on the bundled sample with the same options
and seed, with ``CHAINER_TYPE_CHECK=1`` (Chainer's default) and ``=0``,
alternating, ``--repeats`` times each, one BLAS thread. It compares every
logged value of the two settings (they must be identical: the checks only
validate shapes and dtypes) and the training time the trainer measured
(``summary.json``'s ``wall_time_s``, without start-up and data loading),
and prints one JSON object: the median times, their ratio and whether the
numbers were bit-identical.

Example::

    python benchmarks/bench_type_check.py --methods bp,vfbn --iterations 30
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile

import chainer_vfbn
from chainer_vfbn import runtime

TRAIN = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(chainer_vfbn.__file__))), 'train', 'train_cifar.py')


def one_run(method, args, type_check, out):
    """The log and the trainer's wall time of one short run."""
    env = dict(os.environ, CHAINER_TYPE_CHECK=type_check, OMP_NUM_THREADS='1',
               OPENBLAS_NUM_THREADS='1', MKL_NUM_THREADS='1')
    cmd = [sys.executable, TRAIN, '--method', method, '--dataset', 'sample',
           '--arch', args.arch, '--batchsize', str(args.batchsize),
           '--iterations', str(args.iterations), '--seed', '0',
           '--eval-interval', '1000', '--tta-interval', '0',
           '--no-progress', '--device', '@numpy', '--out', out]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(out, 'log')) as f:
        log = json.load(f)
    with open(os.path.join(out, 'summary.json')) as f:
        wall = json.load(f)['wall_time_s']
    # Everything but the clock must match.
    numbers = [{k: v for k, v in e.items() if k != 'elapsed_time'}
               for e in log]
    return numbers, wall


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--methods', default='bp,vfbn',
                   help='comma-separated --method values (default: bp,vfbn)')
    p.add_argument('--arch', default='resnet8-paper',
                   help='--arch of the runs (default: resnet8-paper)')
    p.add_argument('--batchsize', type=int, default=128,
                   help='training batch size (default: 128)')
    p.add_argument('--iterations', type=int, default=30,
                   help='training iterations per run (default: 30)')
    p.add_argument('--repeats', type=int, default=3,
                   help='runs per setting, alternating (default: 3)')
    p.add_argument('--json', default=None, help='also write the result here')
    args = p.parse_args(argv)
    result = {'command': ' '.join(['bench_type_check.py'] + sys.argv[1:]),
              'date': datetime.date.today().isoformat(),
              'environment': runtime.environment(), 'methods': {}}
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(','):
            walls = {'1': [], '0': []}
            logs = {}
            for r in range(args.repeats):
                for tc in ('1', '0'):
                    out = os.path.join(tmp, '%s_%s_%d' % (method, tc, r))
                    logs[tc], wall = one_run(method, args, tc, out)
                    walls[tc].append(wall)
            on, off = (statistics.median(walls[k]) for k in ('1', '0'))
            result['methods'][method] = {
                'wall_s_type_check_on': walls['1'],
                'wall_s_type_check_off': walls['0'],
                'median_on_s': on, 'median_off_s': off,
                'off_over_on': off / on,
                'bit_identical': logs['1'] == logs['0']}
            print('%s: type checks on %.2f s, off %.2f s (x%.3f), '
                  'numbers bit-identical: %s' % (
                      method, on, off, off / on, logs['1'] == logs['0']),
                  flush=True)
    print(json.dumps(result, indent=1))
    if args.json:
        runtime.write_json(args.json, result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
