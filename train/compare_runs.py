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

Where they did, each run after the first is checked against the first for
sampling error, in each view both report (the centre view; the 36-view TTA).
With both runs' per-image predictions (``predictions.json``, written by
every run since 2026-12-03), the test is the exact McNemar test on the
images that exactly one of the two runs gets wrong; the difference is within
sampling error when its p-value is 0.05 or more. Otherwise, with the number
of test images ``n`` from either run's predictions, it is a standard error
from the two error rates alone, ``SE = sqrt((e1 (1 - e1) + e2 (1 - e2)) /
n)``, which treats the runs as independent; the difference is within
sampling error when it is under 1.96 SE (a two-sided 95% normal interval).
On the bundled sample's 150 test images, two runs at errors near 80% have
SE = 4.6 points. Either way one warning line says so. A difference beyond
sampling error is still one run each: it says nothing of seed-to-seed
variation.
"""
import argparse
import json
import os
import statistics
import sys

from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments.statistics.paired import mcnemar_exact
from chainer_vfbn.runs import provenance
from chainer_vfbn.runs.evaluation import PREDICTIONS_FILE
from chainer_vfbn.runs.evaluation import decode_classes

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
#: A paired test's p-value below which two runs' difference counts as more
#: than the sampling error of their test images.
ALPHA = 0.05
#: Without per-image predictions: a difference under this many standard
#: errors is within sampling error (two-sided 95% normal interval, 1.96).
Z_CRITICAL = statistics.NormalDist().inv_cdf(1 - ALPHA / 2)
#: The views checked: (name in the warning, summary.json key, predictions
#: key).
VIEWS = (('centre view', 'test_error', 'centre'),
         ('36-view TTA', 'tta_error', 'tta'))


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


def read_predictions(folder):
    """The run's per-image predictions (``predictions.json``), or None for
    a run without them."""
    try:
        with open(os.path.join(folder, PREDICTIONS_FILE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _wrong(pred, view):
    """0/1 per image: where the run's ``view`` prediction is wrong."""
    return decode_classes(pred[view]) != decode_classes(pred['labels'])


def sampling_check(names, runs, preds, view):
    """One warning line if run 1's ``view`` error differs from run 0's by
    no more than the sampling error of the test images, else None.

    Args:
        names (list): The two runs' folder names.
        runs (list): Their summaries (:func:`read_run`).
        preds (list): Their predictions (:func:`read_predictions`, or None).
        view (tuple): One of :data:`VIEWS`.

    Returns:
        str or None: The warning, which says how it was computed; also a
        line when no test-set size is known, saying that nothing was
        checked.

    Example:
        >>> sampling_check(['a', 'b'], [{'test_error': 0.84},
        ...                             {'test_error': 0.7733}],
        ...                [{'n_images': 150}, None], VIEWS[0])[:54]
        'warning: a and b differ by 6.67 points in the centre v'
    """
    label, key, pkey = view
    errors = [r.get(key) for r in runs]
    if None in errors:
        return None
    diff = 100. * (errors[1] - errors[0])
    head = 'warning: %s and %s differ by %.2f points in the %s' % (
        names[0], names[1], abs(diff), label)
    if all(p and p.get(pkey) and p.get('labels') for p in preds) and \
            preds[0]['labels'] == preds[1]['labels']:
        test = mcnemar_exact(_wrong(preds[0], pkey), _wrong(preds[1], pkey))
        if test['p'] < ALPHA:
            return None
        return ('%s on %d test images, within their sampling error: exact '
                'McNemar p = %.2g (%d images only %s gets wrong, %d only %s); '
                'a difference counts at p < %g' % (
                    head, len(preds[0]['labels']), test['p'], test['only_a'],
                    names[0], test['only_b'], names[1], ALPHA))
    n = next((p['n_images'] for p in preds if p and p.get('n_images')), None)
    if n is None:
        return ('note: %s; neither run has per-image predictions (%s) or a '
                'test-set size, so its sampling error is not checked' % (
                    head[len('warning: '):], PREDICTIONS_FILE))
    se = 100. * ((errors[0] * (1 - errors[0]) + errors[1] * (1 - errors[1]))
                 / n) ** 0.5
    if abs(diff) >= Z_CRITICAL * se:
        return None
    return ('%s on %d test images, within their sampling error: under %.2f '
            'standard errors, SE = sqrt((e1(1-e1) + e2(1-e2))/n) = %.2f points '
            '(no per-image predictions in both runs, so the runs are taken as '
            'independent)' % (head, n, Z_CRITICAL, se))


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
    comparable = True
    for key, what in (('data_sha256', 'data sets'),
                      ('evaluated_on', 'evaluation sets')):
        if len({r.get(key) for r in runs}) > 1:
            comparable = False
            print('warning: the runs have different %s (%s): their errors '
                  'do not compare' % (what, key))
    if comparable:
        names = [os.path.basename(os.path.normpath(f)) for f in args.folders]
        preds = [read_predictions(f) for f in args.folders]
        for i in range(1, len(runs)):
            for view in VIEWS:
                try:
                    line = sampling_check([names[0], names[i]],
                                          [runs[0], runs[i]],
                                          [preds[0], preds[i]], view)
                except ExperimentError as e:    # no scipy for McNemar's p
                    parser.exit(2, 'compare_runs.py: error: %s\n' % e)
                if line:
                    print(line)
    return 0


if __name__ == '__main__':
    sys.exit(main())
