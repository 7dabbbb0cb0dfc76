#!/usr/bin/env python
"""Does turning Chainer's type checks off make a run faster, bit for bit?

Runs ``train/train_cifar.py`` on the bundled sample with the same options
and seed, with ``CHAINER_TYPE_CHECK=1`` (Chainer's default) and ``=0``,
alternating, ``--repeats`` times each, one BLAS thread. It compares every
logged value of the two settings (they must be identical: the checks only
validate shapes and dtypes) and the time each run took: the CPU time of the
whole process (user + system, start-up included), which other work on the
machine hardly changes, and the training time the trainer measured
(``summary.json``'s ``wall_time_s``), which it does. It prints one JSON
object: the median times, their ratios and whether the numbers were
bit-identical.

Example::

    python benchmarks/bench_type_check.py --methods bp,vfbn --iterations 30
"""
import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile

import chainer_vfbn
from chainer_vfbn.runs import provenance
from chainer_vfbn.runs import record

TRAIN = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(chainer_vfbn.__file__))), 'train', 'train_cifar.py')


def one_run(method, args, type_check, out):
    """The log, the process's CPU time and the trainer's wall time of one
    short run."""
    env = dict(os.environ, CHAINER_TYPE_CHECK=type_check, OMP_NUM_THREADS='1',
               OPENBLAS_NUM_THREADS='1', MKL_NUM_THREADS='1')
    cmd = [sys.executable, TRAIN, '--method', method, '--dataset', 'sample',
           '--arch', args.arch, '--batchsize', str(args.batchsize),
           '--iterations', str(args.iterations), '--seed', '0',
           '--eval-interval', '1000', '--tta-interval', '0',
           '--no-progress', '--device', '@numpy', '--out', out]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime +
                                                before.ru_stime)
    with open(os.path.join(out, 'log')) as f:
        log = json.load(f)
    with open(os.path.join(out, 'summary.json')) as f:
        wall = json.load(f)['wall_time_s']
    # Everything but the clock must match.
    numbers = [{k: v for k, v in e.items() if k != 'elapsed_time'}
               for e in log]
    return numbers, cpu, wall


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
              'environment': provenance.environment(), 'methods': {}}
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(','):
            times = {(k, tc): [] for k in ('cpu', 'wall') for tc in '10'}
            logs = {}
            for r in range(args.repeats):
                for tc in ('1', '0'):
                    out = os.path.join(tmp, '%s_%s_%d' % (method, tc, r))
                    logs[tc], cpu, wall = one_run(method, args, tc, out)
                    times['cpu', tc].append(cpu)
                    times['wall', tc].append(wall)
            fig = {'bit_identical': logs['1'] == logs['0']}
            for k in ('cpu', 'wall'):
                on, off = (statistics.median(times[k, tc]) for tc in '10')
                fig.update({'%s_s_type_check_on' % k: times[k, '1'],
                            '%s_s_type_check_off' % k: times[k, '0'],
                            '%s_off_over_on' % k: off / on})
            result['methods'][method] = fig
            print('%s: off/on, process CPU time x%.3f, trainer wall time '
                  'x%.3f; numbers bit-identical: %s' % (
                      method, fig['cpu_off_over_on'],
                      fig['wall_off_over_on'], fig['bit_identical']),
                  flush=True)
    print(json.dumps(result, indent=1))
    if args.json:
        record.write_json(args.json, result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
