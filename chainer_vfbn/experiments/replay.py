"""Is a re-run the same run? Two records compared image by image.

A run repeats bit for bit on one kind of machine; on another (another CPU,
or another BLAS kernel) it sums in another order and drifts. How far is
measured by scoring the two records on the same test images: their error
rates, the share of images on which they predict the same class, and the
exact McNemar test (:func:`.paired.mcnemar_exact`). Two seeds of one
configuration on one machine give the yardstick: the drift of a replay
across machines is to be compared with the difference between seeds.
"""
from chainer_vfbn.evaluation import decode_classes
from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments import paired
from chainer_vfbn.experiments.records import config_differences
from chainer_vfbn.experiments.records import machine_label
from chainer_vfbn.experiments.records import machine_of
from chainer_vfbn.experiments.records import same_machine

#: The views a record is scored in.
VIEWS = ('centre', 'tta')


def _predicted(record, name):
    pred = record.get('predictions')
    if not pred:
        raise ExperimentError('%s holds no per-image predictions (a record '
                              'made before 2026-12-03)' % name)
    return pred


def compare_records(a, b, names=('a', 'b')):
    """Two records of runs scored on the same test images.

    Args:
        a, b (dict): Records (:mod:`chainer_vfbn.experiments.records`).
        names: What to call them in an error.

    Returns:
        dict: ``differences`` (the configuration entries that differ, e.g.
        ``['seed']``; ``[]`` for a replay), ``machines`` (their labels),
        ``same_machine``, and per view (``centre``, ``tta``) a dict of
        ``error_a``, ``error_b`` and ``diff`` (percent), ``agreement`` (the
        share of images with the same predicted class) and ``p`` (exact
        McNemar), or None where a record lacks that view.

    Raises:
        ExperimentError: A record without predictions, or two records
            scored on different images.
    """
    pa, pb = _predicted(a, names[0]), _predicted(b, names[1])
    if pa['labels'] != pb['labels']:
        raise ExperimentError('%s and %s were scored on different test '
                              'images' % names)
    labels = decode_classes(pa['labels'])
    out = dict(differences=config_differences(a.get('config'),
                                              b.get('config')),
               machines=(machine_label(machine_of(a)),
                         machine_label(machine_of(b))),
               same_machine=same_machine(machine_of(a), machine_of(b)))
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


def md_lines(pairs):
    """Markdown table of :func:`compare_records` results.

    Args:
        pairs: ``(name a, name b, result)`` triples.
    """
    lines = ['| a | b | configuration differs in | machines | view | a (%) | '
             'b (%) | a − b | same class | McNemar p |',
             '|---|---|---|---|---|---:|---:|---:|---:|---:|']
    for name_a, name_b, res in pairs:
        machines = ('same kind: %s' % res['machines'][0]
                    if res['same_machine'] else '%s; %s' % res['machines'])
        for view in VIEWS:
            v = res[view]
            if v is None:
                continue
            lines.append('| %s | %s | %s | %s | %s | %.2f | %.2f | %+.2f | '
                         '%.1f%% | %.2g |' % (
                             name_a, name_b,
                             ', '.join(res['differences']) or 'nothing',
                             machines, view, v['error_a'], v['error_b'],
                             v['diff'], 100. * v['agreement'], v['p']))
    return lines
