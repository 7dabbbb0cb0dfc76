"""A results page's report blocks: the lines between two markers, which
the mini report rewrites (``reproduce.py --results-doc``).

Each mini schedule has its own block, so that one page can hold the
reports of several cuts: the default schedule (:data:`.schedules.MINI`)
writes between :data:`DOC_BEGIN` and :data:`DOC_END`; one with another
network or cut names them in its markers (:func:`markers`).
"""
from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments import schedules

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


def results_doc_block(path, s=None):
    """The page at ``path`` and where the content of the block of schedule
    ``s`` starts and ends; :class:`ExperimentError` if it has no such
    block."""
    begin_marker, end_marker = markers(s)
    with open(path) as f:
        text = f.read()
    begin, end = text.find(begin_marker), text.find(end_marker)
    if begin < 0 or end < begin:
        raise ExperimentError('%s has no %r ... %r block to write the table '
                              'into' % (path, begin_marker, end_marker))
    return text, begin + len(begin_marker), end


def update_results_doc(path, lines, s=None):
    """Replace the block of schedule ``s`` (:func:`markers`) in the page at
    ``path`` with ``lines``; the rest of the page is kept as it is."""
    text, begin, end = results_doc_block(path, s)
    with open(path, 'w') as f:
        f.write(text[:begin] + '\n'.join(lines) + '\n\n' + text[end:])
