"""A results page's report blocks: the lines between two markers, which
the mini report rewrites (``reproduce.py --results-doc``).

Each mini schedule has its own block, so that one page can hold the
reports of several cuts: the default schedule (:data:`.schedules.MINI`)
writes between :data:`DOC_BEGIN` and :data:`DOC_END`; one with another
network or cut names them in its markers (:func:`markers`).

A page may instead (or also) hold a schedule's *glance* block
(:func:`glance_markers`), as the README does: a small table of the paper's
rows, the paper's test error beside this schedule's, a caption that names
both data sets and networks, and a one-line verdict whose wording follows
the paired statistics (:func:`glance_lines`).
"""
import re

from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments.protocol import schedules
from chainer_vfbn.experiments.protocol.rows import TUNED_ROWS
from chainer_vfbn.experiments.statistics import comparisons

#: The lines of a results page between which the default mini schedule's
#: report writes its table and comparisons (``--results-doc``).
DOC_BEGIN = '<!-- mini report: begin (written by reproduce.py) -->'
DOC_END = '<!-- mini report: end -->'


def markers(s=None):
    """The begin and end markers of the block of the schedule ``s``
    (None: the default).

    Example:
        >>> markers(schedules.settings(split_at='stage1_unit1',
        ...                            protocol='evidence2'))[1]
        '<!-- mini report, split at stage1_unit1: end -->'
        >>> markers(schedules.settings(split_at='stage1_unit1'))[1]
        '<!-- mini report, evidence3, split at stage1_unit1: end -->'
    """
    if s is None:
        return DOC_BEGIN, DOC_END
    differs = ([s['protocol']] if s.get('protocol') else []) + [
        '%s %s' % (label, s[key]) for key, label in
        (('arch', 'arch'), ('split_at', 'split at'))
        if s[key] != schedules.MINI[key]]
    if not differs:
        return DOC_BEGIN, DOC_END
    tag = 'mini report, ' + ', '.join(differs)
    return ('<!-- %s: begin (written by reproduce.py) -->' % tag,
            '<!-- %s: end -->' % tag)


def glance_markers(s=None):
    """The begin and end markers of the glance block of the schedule ``s``
    (None: the default), named like :func:`markers` but for the network and
    the cut alone: a later protocol's report rewrites the same block.

    Example:
        >>> glance_markers(schedules.settings(split_at='stage1_unit1'))[1]
        '<!-- results at a glance, mini report, split at stage1_unit1: end -->'
    """
    if s is not None:
        s = dict(s)
        s.pop('protocol', None)
    return tuple(m.replace('<!-- ', '<!-- results at a glance, ', 1)
                 for m in markers(s))


def _find_block(text, begin_marker, end_marker):
    """Where the content between the markers starts and ends, or None."""
    begin, end = text.find(begin_marker), text.find(end_marker)
    if begin < 0 or end < begin:
        return None
    return begin + len(begin_marker), end


def results_doc_block(path, s=None):
    """The page at ``path`` and where the content of the block of schedule
    ``s`` starts and ends; :class:`ExperimentError` if it has no such
    block."""
    begin_marker, end_marker = markers(s)
    with open(path) as f:
        text = f.read()
    where = _find_block(text, begin_marker, end_marker)
    if where is None:
        raise ExperimentError('%s has no %r ... %r block to write the table '
                              'into' % (path, begin_marker, end_marker))
    return (text,) + where


def check_page(path, s=None):
    """Refuse (:class:`ExperimentError`, one line) a page that holds neither
    the report block nor the glance block of schedule ``s``, before any
    run starts; an unreadable page raises ``OSError``."""
    with open(path) as f:
        text = f.read()
    if _find_block(text, *markers(s)) is None and \
            _find_block(text, *glance_markers(s)) is None:
        raise ExperimentError(
            '%s has no %r ... %r block to write the table into, nor a %r '
            'block' % ((path,) + markers(s) + glance_markers(s)[:1]))


def update_results_doc(path, lines, s=None, table=None, records=None):
    """Replace the block of schedule ``s`` (:func:`markers`) in the page at
    ``path`` with ``lines``, and its glance block (:func:`glance_markers`),
    if it has one, with :func:`glance_lines` of ``table`` (whose records
    are in the folder ``records``); the rest of the page is kept as it is.
    A page with neither block is refused."""
    with open(path) as f:
        text = f.read()
    blocks = [(markers(s), lambda: lines)]
    if table is not None:
        blocks.append((glance_markers(s),
                       lambda: glance_lines(s, table, records=records)))
    found = False
    for (begin_marker, end_marker), content in blocks:
        where = _find_block(text, begin_marker, end_marker)
        if where is None:
            continue
        found = True
        text = (text[:where[0]] + '\n'.join(content()) + '\n\n'
                + text[where[1]:])
    if not found:
        results_doc_block(path, s)      # raises, naming the markers
    with open(path, 'w') as f:
        f.write(text)


#: The setting of the paper's Table 1, which the glance names beside ours.
PAPER_SETTING = ('ResNet-110 on the full CIFAR-10 (50,000 training and '
                 '10,000 test images)')
#: The same, in a table's header.
PAPER_SHORT = 'ResNet-110, full CIFAR-10'
#: The glance's verdict: (row, the row it is compared with, what the other
#: row is called), in this order.
VERDICT = (('bp', 'BP'), ('bottom-bp', 'the bottom half trained alone'),
           ('dni-linear', 'the linear DNI'))
#: The row the verdict is about.
VERDICT_ROW = 'vfbn'
_VIEW_NAMES = {'centre': 'in the centre view',
               'tta': 'with the 36-view average'}


def _mean_sd(st):
    if st is None:
        return 'not run yet'
    return '%.2f' % st['mean'] + (' ± %.2f' % st['std'] if st['n'] > 1
                                  else '')


def _ci(res):
    return ('%+.2f [%+.2f, %+.2f]' % (res['diff'], res['low'], res['high'])
            ).replace('-', '−')


def _direction(res):
    """'more', 'less' or None: whether the 95% interval excludes 0."""
    return ('more' if res['low'] > 0 else 'less' if res['high'] < 0
            else None)


def _say(direction, other):
    return ('errs %s than %s' % (direction, other) if direction
            else 'cannot be told from %s' % other)


def verdict_clause(res, other):
    """One clause of the verdict, worded by the paired statistics: "errs
    more (less) than" where the 95% interval of the difference excludes 0,
    "cannot be told from" where it does not, per view where they differ.

    Args:
        res (dict): ``{view: compare_rows result}`` (both views).
        other (str): What the compared row is called.

    Example:
        >>> r = {'centre': dict(diff=6.5, low=4.2, high=8.9),
        ...      'tta': dict(diff=-1.0, low=-2.5, high=0.5)}
        >>> for part in verdict_clause(r, 'BP').split(' and '):
        ...     print(part)
        errs more than BP in the centre view (+6.50 [+4.20, +8.90])
        cannot be told from it with the 36-view average (−1.00 [−2.50, +0.50])
    """
    ways = [_direction(res[v]) for v in comparisons.VIEWS]
    if ways[0] == ways[1]:
        return '%s (%s; %s)' % ((_say(ways[0], other),)
                                + tuple(_ci(res[v]) for v in comparisons.VIEWS))
    return ' and '.join('%s %s (%s)' % (_say(w, other if i == 0 else 'it'),
                                        _VIEW_NAMES[v], _ci(res[v]))
                        for i, (w, v) in enumerate(zip(ways,
                                                       comparisons.VIEWS)))


def _verdict(table, n_boot):
    by_row = {r['row']: r for r in table}
    row = by_row.get(VERDICT_ROW)
    clauses = []
    for other_row, other in VERDICT:
        if row is None or other_row not in by_row:
            continue
        res = {v: comparisons.compare_rows(row, by_row[other_row], v,
                                           n_boot)
               for v in comparisons.VIEWS}
        if None not in res.values():
            clauses.append(verdict_clause(res, other))
    if not clauses:
        return 'No verdict yet: the rows have no paired runs.'
    return ('**Verdict** (paired by image and seed; the difference in points '
            'of test error and its 95%% bootstrap interval, in the centre '
            'view; in the 36-view average): VFBN (`%s`) %s.'
            % (VERDICT_ROW, '; it '.join(clauses)))


def _label(r):
    if r['row'] in TUNED_ROWS and r.get('choice'):
        return '%s, alpha_gs chosen: %s' % (r['label'], schedules.alpha_name(
            r['choice'][0]))
    return r['label']


def glance_lines(s, table, n_boot=10000, records=None):
    """The glance block: the paper's rows (those with a paper figure), the
    paper's test error beside the schedule's in both views, a caption that
    names the data and the network of each, and the verdict.

    Args:
        s (dict): The schedule (:func:`.schedules.settings`).
        table (list): Its rows (:func:`.summary.summarize`).
        n_boot (int): Bootstrap replicates of the verdict's intervals.
        records (str): The folder of the records, which the caption links
            (relative to the page's folder, e.g.
            ``docs/results/mini-stage1_unit1`` from the README).

    Returns:
        list of str: Markdown lines.
    """
    cut = s['split_at']
    data = s['data'].split(' (')[0]
    depth = re.match(r'resnet(\d+)', s['arch'])
    short = 'ResNet-%s' % depth.group(1) if depth else s['arch']
    net = '%s (`%s`)' % (short, s['arch']) if depth else '`%s`' % s['arch']
    lines = ['', '| method (`--method`) | paper (%%): %s | ours (%%): %s on '
             '%s, 36-view average | ours (%%): centre view | seeds |' % (
                 PAPER_SHORT, short, data.split(':')[0]),
             '|---|---:|---:|---:|---:|']
    for r in table:
        if r['paper'] is None:
            continue
        lines.append('| %s (`%s`) | %.2f | %s | %s | %d |' % (
            _label(r), r['row'], r['paper'], _mean_sd(r['tta']),
            _mean_sd(r['centre']), len(r['seeds'])))
    source = ('' if records is None else
              ' (the records: [`%s`](%s))' % (records, records))
    lines += [
        '', 'Test error in %%. **The two sides are different experiments**: '
        "the paper's column is its Table 1, %s. Ours is %s on %s, cut after "
        '`%s`, %d epochs, mean ± standard deviation over the seeds%s. The '
        '36-view average is how the paper tests (the softmax averaged over 36 '
        'crops and flips of each test image), the centre view its central '
        'crop alone. Compare rows within a column, never a row across '
        'columns. The methods: [Methods](#methods).'
        % (PAPER_SETTING, net, data, cut, s['epochs'], source), '',
        _verdict(table, n_boot) + ' Every comparison, with its tests: '
        '[docs/RESULTS.md](docs/RESULTS.md).']
    return lines
