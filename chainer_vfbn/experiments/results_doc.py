"""A results page's report block: the lines between two markers, which
the mini report rewrites (``reproduce.py --results-doc``)."""
from chainer_vfbn.experiments import ExperimentError

#: The lines of a results page between which the report writes its table
#: and comparisons (``--results-doc``).
DOC_BEGIN = '<!-- mini report: begin (written by reproduce.py) -->'
DOC_END = '<!-- mini report: end -->'


def results_doc_block(path):
    """The page at ``path`` and where its report block's content starts
    and ends; :class:`ExperimentError` if it has no such block."""
    with open(path) as f:
        text = f.read()
    begin, end = text.find(DOC_BEGIN), text.find(DOC_END)
    if begin < 0 or end < begin:
        raise ExperimentError('%s has no %r ... %r block to write the table '
                              'into' % (path, DOC_BEGIN, DOC_END))
    return text, begin + len(DOC_BEGIN), end


def update_results_doc(path, lines):
    """Replace the block between :data:`DOC_BEGIN` and :data:`DOC_END` in
    the page at ``path`` with ``lines``; the rest of the page is kept as
    it is."""
    text, begin, end = results_doc_block(path)
    with open(path, 'w') as f:
        f.write(text[:begin] + '\n'.join(lines) + '\n\n' + text[end:])
