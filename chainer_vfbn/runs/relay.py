"""Rank 0's Trainer: Chainer's report extensions fed from every rank.

A decoupled run has no single updater: each rank trains its own module,
and rank 0 decides before an iteration which ranks log, evaluate or save
(the event bits of :mod:`chainer_vfbn.decoupled.worker`). What a Trainer
extension needs from a training loop is small: an ``observation`` dict, an
updater's ``iteration`` and ``epoch``, ``elapsed_time`` and ``out``.
:class:`RelayTrainer` provides exactly that, with the figures every rank
gathered to rank 0 as the observation, so the log, the printout and the
plots are Chainer's own ``LogReport``, ``PrintReport`` and ``PlotReport``
(:func:`chainer_vfbn.runs.run_log.extend_reports`), as in the synchronous run.

What stays the runner's own: the loop (:meth:`DecoupledWorker.run
<chainer_vfbn.decoupled.worker.DecoupledWorker.run>`), the evaluation
(it is relayed through every rank) and the snapshots (one file per rank
at the same iteration, :mod:`chainer_vfbn.runs.snapshot_sets`), since a
Trainer's ``snapshot`` saves one process's state.
"""
from chainer import training


class RelayUpdater(training.Updater):
    """The progress of rank 0's worker, seen as an updater.

    Args:
        worker (~chainer_vfbn.decoupled.worker.DecoupledWorker): Rank 0's.
    """

    def __init__(self, worker):
        self.worker = worker

    @property
    def iteration(self):
        return self.worker.iteration

    @property
    def epoch(self):
        return self.worker.epoch_info.epoch

    @property
    def epoch_detail(self):
        return self.worker.epoch_info.epoch_detail

    @property
    def is_new_epoch(self):
        return self.worker.epoch_info.is_new_epoch

    def get_all_optimizers(self):
        return {}  # the figures come through the observation, not a link

    def update(self):
        raise RuntimeError('a decoupled run is trained by its ranks '
                           '(DecoupledWorker.run), not by the relay')

    def serialize(self, serializer):
        pass  # the worker is in the rank's snapshot file


class RelayTrainer(training.Trainer):
    """A Trainer whose extensions run when rank 0 calls :meth:`report`.

    Args:
        worker: Rank 0's :class:`~chainer_vfbn.decoupled.worker.
            DecoupledWorker`.
        out (str): Output folder of the extensions.
        clock (callable): ``clock() -> seconds`` of training so far, over
            every session (the run's ``elapsed_time``).
    """

    def __init__(self, worker, out, clock):
        super(RelayTrainer, self).__init__(
            RelayUpdater(worker), stop_trigger=lambda trainer: False,
            out=out)
        self.clock = clock
        self.relayed = []    # (-priority, order, name, extension)

    @property
    def elapsed_time(self):
        return self.clock()

    def extend(self, extension, name=None, trigger=None, priority=None,
               **kwargs):
        """As :meth:`Trainer.extend <chainer.training.Trainer.extend>`.

        ``trigger`` is ignored: every extension runs on each
        :meth:`report` (rank 0 chose the iteration), highest priority
        first, in registration order within one priority.
        """
        base = name or getattr(extension, 'name', None) or \
            getattr(extension, 'default_name', None) or extension.__name__
        name, ordinal = base, 0
        while name in self.relayed_names():   # as Trainer: _1, _2, ...
            ordinal += 1
            name = '%s_%d' % (base, ordinal)
        super(RelayTrainer, self).extend(extension, name=name,
                                         priority=priority, **kwargs)
        if priority is None:
            priority = getattr(extension, 'priority',
                               training.extension.PRIORITY_READER)
        self.relayed.append((-priority, len(self.relayed), name, extension))
        self.relayed.sort(key=lambda entry: entry[:2])

    def relayed_names(self):
        """The registered extensions' names, in the order they run."""
        return [entry[2] for entry in self.relayed]

    def report(self, observation):
        """One log entry: run every extension on ``observation``.

        Args:
            observation (dict): ``key -> float``, the ranks' figures merged.
        """
        self.observation = observation
        for _, _, _, extension in self.relayed:
            extension(self)

    def serialize(self, serializer):
        """The extensions' state (the log, the plots' data)."""
        s = serializer['extensions']
        for _, _, name, extension in self.relayed:
            if hasattr(extension, 'serialize'):
                extension.serialize(s[name])
