#!/usr/bin/env python
"""Print the summaries of two or more runs side by side.

Each argument is a run's ``--out`` folder (its ``summary.json`` and
``args.json``)::

    .venv/bin/python train/compare_runs.py result/sample-bp result/sample-vfbn

Errors are in percent, on the set each run was evaluated on (the test set,
or a validation split: the ``evaluated on`` row). A warning line follows
where the runs did not see the same data (``data sha256``) or were not
evaluated on the same set. Exits with status 1 and one line on a folder
without a summary.
"""
import argparse
import json
import os
import sys

# (row label, key in summary.json or args.json's args, format)
ROWS = (
    ('method', 'method', '%s'),
    ('arch', 'arch', '%s'),
    ('alpha_gs', 'alpha_gs', '%g'),
    ('seed', 'seed', '%d'),
    ('data sha256', 'data_sha256', '%.12s'),
    ('evaluated on', 'evaluated_on', '%s'),
    ('status', 'status', '%s'),
    ('epochs', 'epochs', '%g'),
    ('iterations', 'iterations', '%d'),
    ('error (%), centre view', 'test_error', 'pct'),
    ('error (%), 36-view TTA', 'tta_error', 'pct'),
    ('training loss', 'train_loss', '%.4f'),
    ('synth cos', 'synth_cos', '%.3f'),
    ('synth relerr', 'synth_relerr', '%.3f'),
    ('synth norm_ratio', 'synth_norm_ratio', '%.3f'),
    ('wall time (s)', 'wall_time_s', '%.1f'),
    ('images/s', 'images_per_sec', '%.1f'),
    ('device', 'device', '%s'),
)


def read_run(folder):
    """``summary.json`` with ``args.json``'s options under it, one dict."""
    path = os.path.join(folder, 'summary.json')
    try:
        with open(path) as f:
            run = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit('compare_runs.py: error: %s: no readable '
                         'summary.json (%s); is it a finished run\'s --out?'
                         % (folder, getattr(e, 'strerror', None) or e))
    try:
        with open(os.path.join(folder, 'args.json')) as f:
            args = json.load(f).get('args', {})
    except (OSError, ValueError):
        args = {}
    for key, value in args.items():
        run.setdefault(key, value)
    return run


def cell(run, key, fmt):
    value = run.get(key)
    if value is None:
        return '-'
    if fmt == 'pct':
        return '%.2f' % (100 * value)
    return fmt % value


def table(folders, runs):
    """The side-by-side lines."""
    names = [os.path.basename(os.path.normpath(f)) for f in folders]
    rows = [('run', names)] + [(label, [cell(r, key, fmt) for r in runs])
                               for label, key, fmt in ROWS]
    first = max(len(label) for label, _ in rows)
    widths = [max(len(values[i]) for _, values in rows)
              for i in range(len(runs))]
    return ['  '.join([label.ljust(first)] + [v.rjust(w) for v, w in
                                              zip(values, widths)])
            for label, values in rows]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='compare_runs.py', description=__doc__.splitlines()[0])
    parser.add_argument('folders', nargs='+', metavar='DIR',
                        help="a run's --out folder")
    args = parser.parse_args(argv)
    if len(args.folders) < 2:
        parser.error('give at least two run folders')
    runs = [read_run(f) for f in args.folders]
    print('\n'.join(table(args.folders, runs)))
    for key, what in (('data_sha256', 'data sets'),
                      ('evaluated_on', 'evaluation sets')):
        if len({r.get(key) for r in runs}) > 1:
            print('warning: the runs have different %s (%s): their errors '
                  'do not compare' % (what, key))
    return 0


if __name__ == '__main__':
    sys.exit(main())
