#!/usr/bin/env python
"""Print the summaries of two or more runs side by side.

Each argument is a run's ``--out`` folder (its ``summary.json`` and
``args.json``)::

    .venv/bin/python train/compare_runs.py result/sample-bp result/sample-vfbn

Errors are in percent, on the set each run was evaluated on (the test set,
or a validation split: the ``evaluated on`` row). The last rows say what
made each run: its code (every session's, a modified checkout's with its
diff's sha256), its CPU and its BLAS kernel (runs repeat each other bit
for bit only on one kernel). A warning line follows
where the runs did not see the same data (``data sha256``) or were not
evaluated on the same set. Exits with status 1 and one line on a folder
without a summary.
"""
import argparse
import os
import sys

from chainer_vfbn.runs import provenance

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
    ('code', 'code_label', '%s'),
    ('CPU', 'cpu_label', '%s'),
    ('BLAS kernel', 'kernel_label', '%s'),
)


def code_label(written):
    """Every session's code version of a run's ``args.json`` (or
    ``summary.json``), ``' + '``-joined where they differ; a modified
    checkout's with its diff's sha256 (12 digits)."""
    sessions = written.get('code_versions') or (
        [{'code_version': written['code_version']}]
        if written.get('code_version') else [])
    labels = []
    for s in sessions:
        label = s.get('code_version') + (' diff %.12s' % s['diff_sha256']
                                         if s.get('diff_sha256') else '')
        if label not in labels:
            labels.append(label)
    return ' + '.join(labels) or None


def read_run(folder):
    """``summary.json`` with ``args.json``'s options under it, one dict,
    and what made the run (``code_label``, ``cpu_label``,
    ``kernel_label``)."""
    try:
        run = provenance.read_summary(folder)
    except provenance.Unreadable as e:
        run, why = None, str(e)
    else:
        why = 'no summary.json'
    if run is None:
        raise SystemExit('compare_runs.py: error: %s: %s; is it a finished '
                         'run\'s --out?' % (folder, why))
    try:
        written = provenance.read_args(folder) or {}
    except provenance.Unreadable:
        written = {}
    for key, value in (written.get('args') or {}).items():
        run.setdefault(key, value)
    machine = (written.get('environment') or {}).get('machine')
    run.update(code_label=code_label(run) or code_label(written),
               cpu_label=machine and machine.get('cpu'),
               kernel_label=machine and provenance.kernel_label(machine))
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
