"""The numbers of a results table: paired tests, comparisons, per-row
figures and replays; their Markdown is
:mod:`chainer_vfbn.experiments.reporting`'s."""
