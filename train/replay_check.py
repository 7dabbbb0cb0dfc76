#!/usr/bin/env python
"""Is a re-run the same run? Compare run records image by image.

Give two records, or pairs of them, or two folders of records (each file
of the first folder with the file of the same name in the second)::

    python train/replay_check.py docs/results/mini-stage1_unit1/final/bp_seed0.json \\
        docs/results/mini/final/bp_seed0.json
    python train/replay_check.py old/final new/final

For each pair it prints a Markdown table: what their configurations differ
in ("nothing" for a replay), the machines they ran on, whether their curves
are equal in every logged figure (a bit-for-bit replay), their test errors,
the share of images on which they predict the same class, and the exact
McNemar p (those two need per-image predictions, which records hold since
2026-12-03). A replay on the same kind of machine repeats its curve; with
another BLAS kernel it drifts. Comparing two seeds of one configuration gives the
yardstick (:mod:`chainer_vfbn.experiments.statistics.replay`). Exits 1 with one
line on a missing record, or on records scored on different images.
"""
import argparse
import os
import sys

from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments.records.store import read_record
from chainer_vfbn.experiments.reporting.comparison_tables import md_replays
from chainer_vfbn.experiments.statistics import replay


def pairs_of(paths):
    """``(a, b)`` paths: two folders' files of the same name, or the
    paths taken two by two."""
    if len(paths) == 2 and all(os.path.isdir(p) for p in paths):
        names = sorted(set(os.listdir(paths[0])) & set(os.listdir(paths[1])))
        names = [n for n in names if n.endswith('.json')]
        if not names:
            raise ExperimentError('%s and %s share no record name' % tuple(
                paths))
        return [tuple(os.path.join(p, n) for p in paths) for n in names]
    if len(paths) % 2 or any(os.path.isdir(p) for p in paths):
        raise ExperimentError('give two folders, or record files two by two '
                              '(got %d paths)' % len(paths))
    return list(zip(paths[::2], paths[1::2]))


def _read(path):
    rec = read_record(path)
    if rec is None:
        raise ExperimentError('no record at %s' % path)
    return rec


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('paths', nargs='+', metavar='RECORD_OR_FOLDER')
    args = parser.parse_args(argv)
    try:
        results = [(a, b, replay.compare_records(_read(a), _read(b), (a, b)))
                   for a, b in pairs_of(args.paths)]
    except ExperimentError as e:
        print('replay_check.py: %s' % e, file=sys.stderr)
        return 1
    print('\n'.join(md_replays(results)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
