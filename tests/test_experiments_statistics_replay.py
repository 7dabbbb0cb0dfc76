"""Tests of the replay check (chainer_vfbn/experiments/statistics/replay.py,
its table in reporting/comparison_tables.py, and train/replay_check.py)."""
import json

import numpy
import pytest

from chainer_vfbn.runs.evaluation import predictions_record
from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments.statistics import replay
from chainer_vfbn.experiments.reporting.comparison_tables import md_replays
import replay_check

LABELS = numpy.arange(100) % 10
HASWELL = {'cpu': 'AMD EPYC', 'blas': [{'internal_api': 'openblas',
                                        'architecture': 'Haswell'}]}
SKYLAKEX = dict(HASWELL, blas=[{'internal_api': 'openblas',
                                'architecture': 'SkylakeX'}])


def _record(wrong, seed=0, machine=HASWELL, shifted=(), loss=2.0):
    """A record whose centre view errs on the images ``wrong`` and
    predicts another wrong class on ``shifted`` (a subset of them)."""
    centre = LABELS.copy()
    centre[list(wrong)] = (LABELS[list(wrong)] + 1) % 10
    centre[list(shifted)] = (LABELS[list(shifted)] + 2) % 10
    return {'config': {'row': 'bp', 'seed': seed},
            'summary': {'test_error': len(wrong) / 100., 'tta_error': None},
            'curve': [{'epoch': 1, 'main/loss': loss,
                       'elapsed_time': 10. * seed + 3.}],
            'environment': {'machine': machine},
            'predictions': predictions_record(
                dict(predictions=centre, tta_predictions=None), LABELS)}


def test_a_replay_on_one_machine_agrees_on_every_image():
    res = replay.compare_records(_record(range(30)), _record(range(30)))
    assert res['differences'] == [] and res['same_machine']
    assert res['same_curve']
    c = res['centre']
    assert (c['error_a'], c['diff'], c['agreement'], c['p']) == (
        30., 0., 1., 1.)
    assert res['tta'] is None            # no TTA predictions: no TTA line


def test_drift_across_machines_is_measured_image_by_image():
    # b errs on 10 more images, and on 5 shared ones names another class:
    # agreement 85%, McNemar on 10 discordant images all one way
    res = replay.compare_records(
        _record(range(30)), _record(range(40), machine=SKYLAKEX,
                                    shifted=range(5)))
    assert not res['same_machine'] and res['same_curve']
    assert res['machines'] == ('AMD EPYC, openblas Haswell',
                               'AMD EPYC, openblas SkylakeX')
    c = res['centre']
    assert c['diff'] == pytest.approx(-10.)
    assert c['agreement'] == pytest.approx(0.85)
    assert c['p'] == pytest.approx(2. / 2 ** 10)
    # two seeds: the configuration difference is named
    assert replay.compare_records(_record(range(3)), _record(
        range(3), seed=1))['differences'] == ['seed']


def test_a_curve_differs_in_any_figure_but_the_elapsed_time():
    # elapsed times differ (seeds 0 and 1), the figures do not
    a, b = _record(range(3)), _record(range(3), seed=1)
    assert replay.same_curve(a, b)
    assert not replay.same_curve(a, _record(range(3), loss=2.0000001))
    assert not replay.same_curve(dict(a, curve=[]), dict(b, curve=[]))


def test_records_without_predictions_compare_their_summaries():
    # an old record: the curves and the summaries' errors, no image test
    old = dict(_record(range(3), loss=2.5), predictions=None)
    res = replay.compare_records(_record(range(4)), old, ('new', 'old'))
    assert not res['same_curve'] and res['tta'] is None
    assert res['centre'] == dict(error_a=4., error_b=3., diff=pytest.approx(
        1.), agreement=None, p=None)
    md = '\n'.join(md_replays([('new', 'old', res)]))
    assert '| no | centre | 4.00 | 3.00 | +1.00 | — | — |' in md


def test_records_on_other_images_are_refused():
    other = _record(range(3))
    other['predictions'] = dict(other['predictions'], labels='0' * 100)
    with pytest.raises(ExperimentError, match='different test images'):
        replay.compare_records(_record(range(3)), other)


def test_cli_pairs_two_folders_by_name(tmp_path, capsys):
    for folder, machine in (('a', HASWELL), ('b', SKYLAKEX)):
        (tmp_path / folder).mkdir()
        for seed in (0, 1):
            (tmp_path / folder / ('bp_seed%d.json' % seed)).write_text(
                json.dumps(_record(range(30 + seed), seed, machine)))
    (tmp_path / 'a' / 'only_here.json').write_text('{}')
    assert replay_check.main([str(tmp_path / 'a'), str(tmp_path / 'b')]) == 0
    out = capsys.readouterr().out
    lines = [l for l in out.splitlines() if '| centre |' in l]
    assert len(lines) == 2 and all('| nothing |' in l for l in lines)
    assert all('| yes | centre |' in l for l in lines)
    assert 'AMD EPYC, openblas Haswell; AMD EPYC, openblas SkylakeX' in out


def test_cli_refuses_in_one_line(tmp_path, capsys):
    path = tmp_path / 'a.json'
    path.write_text(json.dumps(_record(range(3))))
    assert replay_check.main([str(path), str(tmp_path / 'none.json')]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'no record at' in err[0]
    assert replay_check.main([str(path)]) == 1      # an odd number of paths
    assert 'two by two' in capsys.readouterr().err
