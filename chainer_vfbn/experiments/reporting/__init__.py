"""A schedule's report from its records: the Markdown tables, the plots and
a results page's blocks; the numbers are
:mod:`chainer_vfbn.experiments.statistics`'s."""
