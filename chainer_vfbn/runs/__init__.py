"""The run layer: what a command-line run needs around the science.

The science (:mod:`chainer_vfbn.models`, :mod:`chainer_vfbn.synthesizers`,
:mod:`chainer_vfbn.functions`, :mod:`chainer_vfbn.split_step`,
:mod:`chainer_vfbn.updaters`, the decoupled worker and transport) never
sees the command line; this package turns the options that
``train/train_cifar.py`` parsed into a run:

* :mod:`~chainer_vfbn.runs.config`: :class:`RunConfig`, the options
  resolved once, which both runners receive;
* :mod:`~chainer_vfbn.runs.user_model`: ``--model module:factory``, a
  user's network, taken by both runners as the ResNet is;
* :mod:`~chainer_vfbn.runs.folder`: ``--out``, its lock, its identity (the
  one check of both runners) and its snapshots;
* :mod:`~chainer_vfbn.runs.setup`: the device, the seeds, the network and
  its method (built the same way by both runners) and the data;
* :mod:`~chainer_vfbn.runs.record`: ``args.json`` and ``summary.json``;
* :mod:`~chainer_vfbn.runs.provenance`: a run's identity and provenance,
  defined once: its code (commit, dirty flag, diff), its machine (CPU,
  BLAS library and kernel), reading ``args.json`` and ``summary.json``,
  and the differences of two configurations;
* :mod:`~chainer_vfbn.runs.trainer`: the synchronous run (a Chainer
  ``Trainer``);
* :mod:`~chainer_vfbn.runs.decoupled`: ``train_cifar.py --decoupled``, one
  MPI rank per module, with its snapshot sets
  (:mod:`~chainer_vfbn.runs.snapshot_sets`) and rank 0's report trainer
  (:mod:`~chainer_vfbn.runs.relay`);
* the plumbing both runners share: :mod:`~chainer_vfbn.runs.evaluation`
  (the evaluator and the per-image predictions),
  :mod:`~chainer_vfbn.runs.triggers` (when to evaluate and snapshot),
  :mod:`~chainer_vfbn.runs.run_log` (the log, printout and plots),
  :mod:`~chainer_vfbn.runs.interrupt` (Ctrl-C and SIGTERM),
  :mod:`~chainer_vfbn.runs.strict_json` (NaN-free, atomic JSON) and
  :mod:`~chainer_vfbn.runs.cuda_status` (whether CuPy can run here).
"""
from chainer_vfbn.runs.config import RunConfig  # NOQA
from chainer_vfbn.runs.config import UserError  # NOQA
