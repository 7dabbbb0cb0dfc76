"""Running a schedule's runs as subprocesses of ``train_cifar.py``, and
following their progress (:mod:`chainer_vfbn.experiments`)."""
