"""The results pages' generated blocks
(chainer_vfbn.experiments.reporting.results_doc):
the README's results at a glance, its verdict's wording, and its markers."""
import os
import re

import numpy
import pytest

from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments import execute
from chainer_vfbn.experiments.reporting import results_doc
from chainer_vfbn.experiments.protocol import rows
from chainer_vfbn.experiments.protocol import schedules
from chainer_vfbn.experiments.protocol.choices import protocol_of
from chainer_vfbn.experiments.statistics.summary import stats
from chainer_vfbn.experiments.statistics.summary import summarize
from chainer_vfbn.runs.evaluation import encode_classes
from fake_train import FakeProcess
from support import REPO

S1 = schedules.settings(split_at='stage1_unit1')
N_IMAGES = 200


def _row(name, wrong_centre, wrong_tta, seeds=(0, 1)):
    """A table row (as :func:`summarize` gives) whose runs err on the
    images listed, the same in every seed."""
    labels = numpy.zeros(N_IMAGES, int)
    predictions, errors = {}, {}
    for view, wrong in (('centre', wrong_centre), ('tta', wrong_tta)):
        predicted = labels.copy()
        predicted[list(wrong)] = 1
        errors[view] = 100. * len(wrong) / N_IMAGES
        for seed in seeds:
            predictions.setdefault(seed, {'labels': encode_classes(labels)})
            predictions[seed][view] = encode_classes(predicted)
    label, _, paper = rows.MINI_ROWS[name]
    return dict(row=name, label=label, paper=paper, seeds=list(seeds),
                choice=(1e-6, 'batch-mean') if name in rows.TUNED_ROWS
                else None, predictions=predictions, machines={},
                centre=stats([errors['centre']] * len(seeds)),
                tta=stats([errors['tta']] * len(seeds)))


def _table():
    """BP errs on 40 images; VFBN on 100; the bottom half alone on 100
    other ones in the centre view (no difference: 50 each way), and on 140
    with TTA; the linear DNI on VFBN's images plus one."""
    return [_row('bp', range(40), range(40)),
            _row('bottom-bp', range(50, 150), range(140)),
            _row('dni-linear', range(101), range(101)),
            _row('vfbn', range(100), range(100)),
            _row('vfbn-linear', range(60), range(60))]


def test_the_verdict_says_only_what_the_intervals_resolve():
    lines = results_doc.glance_lines(S1, _table(), n_boot=500)
    verdict = lines[-1]
    assert verdict.startswith('**Verdict** (paired by image and seed; ')
    assert '): VFBN (`vfbn`) errs more than BP (+30.00 [' in verdict
    # against the bottom half: unresolved in the centre view (0 points),
    # resolved with TTA (-20 points)
    assert ('; it cannot be told from the bottom half trained alone in the '
            'centre view (+0.00 [') in verdict
    assert ' and errs less than it with the 36-view average (−20.00 [' \
        in verdict
    assert '; it cannot be told from the linear DNI (−0.50 [' in verdict
    assert verdict.endswith('[docs/RESULTS.md](docs/RESULTS.md).')
    # the paper's rows only (vfbn-linear has no paper figure), both sides
    # named, the tuned row's choice given
    table = [l for l in lines if l.startswith('| ')]
    assert table[0] == (
        '| method (`--method`) | paper (%): ResNet-110, full CIFAR-10 | '
        'ours (%): ResNet-8 on cifar-10-mini, 36-view average | ours (%): '
        'centre view | seeds |')
    assert table[1:] == [
        '| Back prop (`bp`) | 5.15 | 20.00 ± 0.00 | 20.00 ± 0.00 | 2 |',
        '| Bottom half with back prop (`bottom-bp`) | 5.76 | 70.00 ± 0.00 | '
        '50.00 ± 0.00 | 2 |',
        "| Jaderberg's Linear, alpha_gs chosen: 1e-6 (`dni-linear`) | 15.56 | "
        '50.50 ± 0.00 | 50.50 ± 0.00 | 2 |',
        '| VFBN, alpha_gs = 1e-3, alpha_gs chosen: 1e-6 (`vfbn`) | 5.51 | 50.00 ± 0.00 '
        '| 50.00 ± 0.00 | 2 |']
    caption = [l for l in lines if l.startswith('Test error')][0]
    assert ('ResNet-110 on the full CIFAR-10 (50,000 training and 10,000 '
            'test images)') in caption
    assert ('Ours is ResNet-8 (`resnet8-paper`) on cifar-10-mini: 4,660 '
            'training and 846 test images of real CIFAR-10, cut after '
            '`stage1_unit1`') in caption


def test_a_row_not_run_yet_and_no_pairs():
    table = [_row('bp', range(40), range(40)), dict(
        _row('vfbn', range(9), range(9)), seeds=[], predictions={},
        centre=None, tta=None)]
    lines = results_doc.glance_lines(S1, table, n_boot=100)
    assert '| VFBN, alpha_gs = 1e-3, alpha_gs chosen: 1e-6 (`vfbn`) | 5.51 | not run yet '\
        '| not run yet | 0 |' in lines
    assert lines[-1].startswith('No verdict yet: the rows have no paired runs.')


def test_the_report_writes_the_glance_into_a_page_with_its_markers(tmp_path):
    begin, end = results_doc.glance_markers(S1)
    assert 'stage1_unit1' in begin and begin != results_doc.markers(S1)[0]
    page = tmp_path / 'README.md'
    page.write_text('# Project\nabove\n%s\nSTALE\n%s\nbelow\n' % (begin, end))
    results_doc.check_page(str(page), S1)
    # the fake runs of every row, through the schedule's own report
    records, out = str(tmp_path / 'rec'), str(tmp_path / 'out')
    assert execute.run_mini(
        S1, list(rows.ROWS), execute.mini_phases('all'), records, out,
        results_doc=str(page), train_script='train.py', jobs=4,
        popen=FakeProcess, log=lambda line: None) == ([], [])
    text = page.read_text()
    assert text.startswith('# Project\nabove\n' + begin + '\n| method')
    assert text.endswith(end + '\nbelow\n') and 'STALE' not in text
    block = text[text.index(begin) + len(begin):text.index(end)]
    assert block == '\n'.join(results_doc.glance_lines(
        S1, summarize(S1, records), records=records)) + '\n\n'
    assert '(the records: [`%s`](%s))' % (records, records) in block
    # one glance block serves every protocol at a cut
    assert results_doc.glance_markers(schedules.settings(
        split_at='stage1_unit1', protocol='evidence2')) == (begin, end)
    # the default cut's glance block is another block: such a page does
    # not do for stage1_unit1, and one with no block at all is refused
    page.write_text('%s\n%s\n' % results_doc.glance_markers())
    with pytest.raises(ExperimentError, match='stage1_unit1'):
        results_doc.check_page(str(page), S1)
    page.write_text('no markers\n')
    with pytest.raises(ExperimentError, match='has no .* block'):
        results_doc.update_results_doc(str(page), ['x'], S1,
                                       table=_table())


def test_the_committed_readme_glance_regenerates_byte_for_byte():
    """README.md's glance block is what the committed records it names
    give, to the byte: the report writes it with ``--records <them>
    --results-doc README.md``, from the checkout's root."""
    with open(os.path.join(REPO, 'README.md')) as f:
        readme = f.read()
    begin = re.search(r'<!-- results at a glance, mini report, split at '
                      r'(\w+): begin \(written by reproduce\.py\) -->', readme)
    assert begin, 'README.md has no results-at-a-glance block'
    s = schedules.settings(split_at=begin.group(1))
    end = results_doc.glance_markers(s)[1]
    assert readme.count(begin.group(0)) == 1 and readme.count(end) == 1
    block = readme[begin.end():readme.index(end)]
    records = re.search(r'\(the records: \[`([^`]+)`\]', block).group(1)
    if not os.path.isdir(os.path.join(REPO, records)):
        pytest.skip('no committed records in this checkout')
    # the settings of the protocol the records were made under
    s = schedules.settings(split_at=begin.group(1), protocol=protocol_of(
        os.path.join(REPO, records)))
    assert block == '\n'.join(results_doc.glance_lines(
        s, summarize(s, os.path.join(REPO, records)), records=records)) \
        + '\n\n'
