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
    images listed: the same in every seed, or ``{seed: images}``."""
    labels = numpy.zeros(N_IMAGES, int)
    predictions, errors = {}, {}
    for view, wrong in (('centre', wrong_centre), ('tta', wrong_tta)):
        errors[view] = []
        for seed in seeds:
            predicted = labels.copy()
            predicted[list(wrong[seed] if isinstance(wrong, dict)
                           else wrong)] = 1
            errors[view].append(100. * predicted.mean())
            predictions.setdefault(seed, {'labels': encode_classes(labels)})
            predictions[seed][view] = encode_classes(predicted)
    label, _, paper = rows.MINI_ROWS[name]
    return dict(row=name, label=label, paper=paper, seeds=list(seeds),
                choice=((0.5, None) if name == 'infopro' else
                        (1e-6, 'batch-mean')) if name in rows.TUNED_ROWS
                else None, predictions=predictions, machines={},
                centre=stats(errors['centre']), tta=stats(errors['tta']))


def _table():
    """BP errs on 40 images; VFBN on 100; the bottom half alone on 100
    other ones in the centre view (no difference: 50 each way), and on 140
    with TTA; the linear DNI on VFBN's images plus one; DGL on 60 more
    than VFBN in seed 0 and 56 more in seed 1: the t-test over the two
    seeds gives p = 0.022, which the Holm adjustment over the verdict's
    three t-tests with a p (DGL's two views and the bottom half's centre
    view, p = 1) makes 3 x 0.022 = 0.066. The other five differ alike in
    both seeds: no spread, so no t-test."""
    dgl = {0: range(160), 1: range(156)}
    return [_row('bp', range(40), range(40)),
            _row('bottom-bp', range(50, 150), range(140)),
            _row('dni-linear', range(101), range(101)),
            _row('vfbn', range(100), range(100)),
            _row('vfbn-linear', range(60), range(60)),
            _row('dgl', dgl, dgl)]


def test_the_verdict_says_only_what_the_intervals_and_the_seeds_resolve():
    lines = results_doc.glance_lines(S1, _table(), n_boot=500)
    start = [i for i, l in enumerate(lines) if l.startswith('**Verdict**')]
    assert len(start) == 1 and lines[start[0]].endswith('VFBN (`vfbn`):')
    # the family of the adjustment, counted: three t-tests with a p
    assert "Holm-adjusted over the verdict's 3 t-tests" in lines[start[0]]
    assert 'The answers in docs/RESULTS.md adjust each p over all of ' \
        'their tests' in lines[start[0]]
    assert 'only where the interval excludes 0 and p < 0.05' \
        in lines[start[0]]
    verdict = [l for l in lines[start[0]:] if l.startswith('- ')]
    # resolved by the interval; equal in both seeds, so no t-test (its
    # textbook p of 0 had made it resolved over the seeds too)
    assert verdict[0].startswith('- errs more than BP on these test images, '
                                 'not resolved over the seeds (+30.00 [')
    assert verdict[0].endswith(', no t-test: the same difference in every '
                               'seed, so no spread to test against);')
    # against the bottom half: unresolved in the centre view (0 points),
    # resolved by the interval with TTA (-20 points, alike in both seeds)
    assert verdict[1].startswith('- cannot be told from the bottom half '
                                 'trained alone in the centre view (+0.00 [')
    assert ' and errs less than it with the 36-view average on these test ' \
        'images, not resolved over the seeds (−20.00 [' in verdict[1]
    assert verdict[2].startswith('- cannot be told from the linear DNI '
                                 '(−0.50 [')
    # DGL: the interval excludes 0, and so would the two seeds' t-test
    # alone (p = 0.022), but not once adjusted with the verdict's others
    assert verdict[3].startswith('- errs less than DGL on these test images, '
                                 'not resolved over the seeds (−29.00 [')
    assert verdict[3].endswith(', p = 0.066 over 2 seeds).')
    assert len(verdict) == 4
    assert lines[-1] == ('Every comparison, with its tests: '
                         '[docs/RESULTS.md](docs/RESULTS.md).')
    # the rows with a published figure (vfbn-linear has none), both sides
    # named, the tuned row's choice given, the shares beside the published
    table = [l for l in lines if l.startswith('| ')]
    assert table[0] == (
        '| method (`--method`) | paper (%): ResNet-110, full CIFAR-10 | '
        'ours (%): ResNet-8 on cifar-10-mini, 36-view average | ours (%): '
        'centre view | share of the gap recovered, ours: 36-view [95% CI] | '
        'share of the gap recovered, published | seeds |')
    cells = [[c.strip() for c in l.split('|')[1:-1]] for l in table[1:]]
    assert [c[0] for c in cells] == [
        'Back prop (`bp`)', 'Bottom half with back prop (`bottom-bp`)',
        "Jaderberg's Linear, alpha_gs chosen: 1e-6 (`dni-linear`)",
        'VFBN, alpha_gs = 1e-3, alpha_gs chosen: 1e-6 (`vfbn`)',
        'DGL, MLP-SR auxiliary net (Belilovsky et al.) (`dgl`)']
    assert cells[0][1:] == ['5.15', '20.00 ± 0.00', '20.00 ± 0.00',
                            '1 (by definition)', '1.00', '2']
    assert cells[1][4:6] == ['0 (by definition)', '0.00']
    # VFBN: (70 - 50) / (70 - 20) of the gap with TTA, the paper's 0.41
    assert cells[3][1:4] == ['5.51', '50.00 ± 0.00', '50.00 ± 0.00']
    assert cells[3][4].startswith('+0.40 [') and cells[3][5] == '0.41'
    # DGL: no paper figure; InfoPro's table's share, labelled as theirs
    assert cells[4][1:3] == ['—', '79.00 ± 1.41']
    assert cells[4][5] == "0.30 (InfoPro's table)"
    caption = [l for l in lines if l.startswith('Test error')][0]
    assert ('ResNet-110 on the full CIFAR-10 (50,000 training and 10,000 '
            'test images)') in caption
    assert ('Ours is ResNet-8 (`resnet8-paper`) on cifar-10-mini: 4,660 '
            'training and 846 test images of real CIFAR-10, cut after '
            '`stage1_unit1`') in caption
    assert "The peers' published shares are of InfoPro's table" in caption
    assert '"B·δ"' not in caption       # no row chose the per-example scale
    table = _table()
    table[2]['choice'] = (1e-6, 'per-example')
    lines = results_doc.glance_lines(S1, table, n_boot=100)
    assert "| Jaderberg's Linear, alpha_gs chosen: 1e-6, B·δ (`dni-linear`) |" \
        in lines[5]
    caption = [l for l in lines if l.startswith('Test error')][0]
    assert '"B·δ" after a chosen α_gs: the synthesizer predicts B·δ' in caption


def test_a_verdict_of_one_seed_says_so():
    table = [_row('bp', range(40), range(40), seeds=(3,)),
             _row('vfbn', range(100), range(100), seeds=(3,))]
    verdict = [l for l in results_doc.glance_lines(S1, table, n_boot=200)
               if l.startswith('- ')]
    assert len(verdict) == 1
    assert verdict[0].startswith('- errs more than BP on these test images, '
                                 'in one seed (+30.00 [')
    assert verdict[0].endswith('], one seed).')
    assert 'p =' not in verdict[0] and 'p <' not in verdict[0]


def test_infopro_s_choice_is_its_lambda2():
    lines = results_doc.glance_lines(
        S1, [_row('infopro', range(9), range(9))], n_boot=100)
    assert ('| InfoPro, softmax, lambda2 = 0.5 (Wang et al.), lambda2 '
            'chosen: 0.5 (`infopro`) | — |') in '\n'.join(lines)


def test_a_row_not_run_yet_and_no_pairs():
    table = [_row('bp', range(40), range(40)), dict(
        _row('vfbn', range(9), range(9)), seeds=[], predictions={},
        centre=None, tta=None)]
    lines = results_doc.glance_lines(S1, table, n_boot=100)
    assert '| VFBN, alpha_gs = 1e-3, alpha_gs chosen: 1e-6 (`vfbn`) | 5.51 | not run yet '\
        '| not run yet | — | 0.41 | 0 |' in lines
    assert 'No verdict yet: the rows have no paired runs.' in lines
    assert not [l for l in lines if l.startswith(('**Verdict**', '- '))]


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


def test_the_report_answers_each_paired_comparison_in_one_sentence():
    """The mini report's answers: one sentence per comparison with paired
    runs, worded as the verdict, that names the seeds whose two runs ran
    on two kinds of machine; a comparison of a missing row says nothing."""
    from chainer_vfbn.experiments.reporting import mini_report
    from chainer_vfbn.experiments.statistics import comparisons
    haswell = {'cpu': 'x', 'blas': [{'architecture': 'Haswell'}],
               'pinned_kernel': 'Haswell'}
    table = _table()
    for r in table:
        r['machines'] = {0: haswell, 1: haswell}
    # BP's seed 1 ran on another kernel
    table[0]['machines'][1] = dict(haswell, blas=[{'architecture':
                                                   'SkylakeX'}])
    results = comparisons.compare_all(table, mini_report.COMPARISONS,
                                      n_boot=300)
    lines = mini_report._md_answers(results, '##')
    assert lines[1] == '## The answers, worded by the statistics'
    said = [l for l in lines if l.startswith('- ')]
    assert said[0].startswith('- (a) VFBN against BP: `vfbn` errs more than '
                              '`bp` on these test images, not resolved over '
                              'the seeds (+30.00 [')
    assert said[0].endswith('no spread to test against); seed 1 paired runs '
                            'of two machine kinds.')
    assert said[2].startswith('- (a) VFBN against the bottom half alone: '
                              '`vfbn` cannot be told from `bottom-bp` in the '
                              'centre view (+0.00 [')
    assert said[2].endswith('no spread to test against).')
    # dgl, vfbn-linear and dni-linear are compared; layerwise, the DNI
    # small-ResNet, InfoPro and the other rows are absent from the table
    assert [l.split(':')[0] for l in said] == [
        '- (a) VFBN against BP', '- (a) bottom half alone against BP',
        '- (a) VFBN against the bottom half alone',
        '- (b) DNI linear against BP', '- (b) DNI linear against VFBN',
        '- (d) VFBN linear v_f against VFBN',
        '- (d) VFBN linear v_f against BP', '- (e) DGL against VFBN',
        '- (e) DGL against BP']
    assert mini_report._md_answers(comparisons.compare_all(
        table[:1], mini_report.COMPARISONS, n_boot=10), '##') == []
