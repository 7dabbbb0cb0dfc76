"""Is a re-run the same run? Two records compared curve by curve and image
by image.

A run repeats bit for bit on one kind of machine; with another BLAS kernel
it sums in another order and drifts (so far, another make of CPU with the
same kernel has repeated it). Whether it
repeated is whether every logged figure of its curve is equal (the
elapsed time aside). How far it drifted is measured by scoring the two
records on the same test images: their error rates, the share of images on
which they predict the same class, and the exact McNemar test
(:func:`.paired.mcnemar_exact`). Two seeds of one configuration on one
machine give the yardstick: the drift of a replay across machines is to be
compared with the difference between seeds.
"""
from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments.records.machines import machine_label
from chainer_vfbn.experiments.records.machines import machine_of
from chainer_vfbn.experiments.records.machines import same_machine
from chainer_vfbn.experiments.statistics import paired
from chainer_vfbn.experiments.statistics.comparisons import VIEWS
from chainer_vfbn.runs.evaluation import decode_classes
from chainer_vfbn.runs.provenance import differences

#: The summary's error of each view.
SUMMARY_KEYS = {'centre': 'test_error', 'tta': 'tta_error'}


def same_curve(a, b):
    """Whether two records' curves are equal in every logged figure but
    the elapsed time: a bit-for-bit replay."""
    def figures(record):
        return [{k: v for k, v in entry.items() if k != 'elapsed_time'}
                for entry in record.get('curve') or []]
    return bool(a.get('curve')) and figures(a) == figures(b)


def compare_records(a, b, names=('a', 'b')):
    """Two records of runs scored on the same test images.

    Args:
        a, b (dict): Records (:mod:`chainer_vfbn.experiments.records.store`).
        names: What to call them in an error.

    Returns:
        dict: ``differences`` (the configuration entries that differ, e.g.
        ``['seed']``; ``[]`` for a replay), ``machines`` (their labels),
        ``same_machine``, ``same_curve`` (:func:`same_curve`), and per view
        (``centre``, ``tta``) a dict of ``error_a``, ``error_b`` and
        ``diff`` (percent), ``agreement`` (the share of images with the
        same predicted class) and ``p`` (exact McNemar), or None where a
        record lacks that view. Where either record holds no per-image
        predictions (made before 2026-12-03), the errors come from the
        summaries and ``agreement`` and ``p`` are None.

    Raises:
        ExperimentError: Two records scored on different images.
    """
    out = dict(differences=differences(a.get('config'), b.get('config')),
               machines=(machine_label(machine_of(a)),
                         machine_label(machine_of(b))),
               same_machine=same_machine(machine_of(a), machine_of(b)),
               same_curve=same_curve(a, b))
    pa, pb = a.get('predictions'), b.get('predictions')
    if not pa or not pb:
        for view, key in SUMMARY_KEYS.items():
            ea, eb = [(r.get('summary') or {}).get(key) for r in (a, b)]
            out[view] = None if ea is None or eb is None else dict(
                error_a=100. * ea, error_b=100. * eb, diff=100. * (ea - eb),
                agreement=None, p=None)
        return out
    if pa['labels'] != pb['labels']:
        raise ExperimentError('%s and %s were scored on different test '
                              'images' % names)
    labels = decode_classes(pa['labels'])
    for view in VIEWS:
        if not pa.get(view) or not pb.get(view):
            out[view] = None
            continue
        ca, cb = decode_classes(pa[view]), decode_classes(pb[view])
        wrong_a, wrong_b = ca != labels, cb != labels
        out[view] = dict(
            error_a=100. * wrong_a.mean(), error_b=100. * wrong_b.mean(),
            diff=100. * (wrong_a.mean() - wrong_b.mean()),
            agreement=float((ca == cb).mean()),
            p=paired.mcnemar_exact(wrong_a, wrong_b)['p'])
    return out
