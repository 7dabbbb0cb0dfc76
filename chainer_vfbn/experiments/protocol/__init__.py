"""What a schedule runs: its rows, its settings, its runs and what its
records choose (:mod:`chainer_vfbn.experiments`)."""
