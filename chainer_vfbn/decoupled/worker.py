"""One rank of a decoupled run: the protocol that orders its work.

The per-split science is :mod:`chainer_vfbn.split_step`'s, the same
functions as the synchronous
:class:`~chainer_vfbn.updaters.SyntheticGradientUpdater`.
:class:`DecoupledWorker` decides *when* each piece runs, on which message,
and keeps the rank's iteration, epoch and events; the pieces are its
collaborators:

* :class:`~chainer_vfbn.decoupled.steps.TrainStep`: one training iteration
  of the rank's module; :class:`~chainer_vfbn.decoupled.steps.EvalRelay`:
  the evaluation's test-mode forwards;
* :mod:`~chainer_vfbn.decoupled.placement`: the synthesizers (the staleness
  queue of ``'below'``, the replica and the master copy of ``'above'``);
* :class:`~chainer_vfbn.decoupled.channel.Channel`: the messages, through a
  transport of :mod:`chainer_vfbn.decoupled.transport`;
  :class:`~chainer_vfbn.decoupled.channel.Observations`: what the rank
  reports.

The protocol is in the package's docstring (:mod:`chainer_vfbn.decoupled`).
"""
import chainer
import chainer.functions as F

from chainer_vfbn import split_step
from chainer_vfbn.decoupled import placement as pl
from chainer_vfbn.decoupled import transport as tr
from chainer_vfbn.decoupled.channel import Channel
from chainer_vfbn.decoupled.channel import Observations
from chainer_vfbn.decoupled.steps import EvalRelay
from chainer_vfbn.decoupled.steps import TrainStep
from chainer_vfbn.decoupled.transport import DecoupledError
from chainer_vfbn.decoupled.transport import EpochInfo
from chainer_vfbn.divergence import Diverged

# Event bits, chosen by rank 0 for an iteration and carried in its header,
# so that every rank runs the same ``on_events`` after that iteration.
LOG = 1
EVALUATE = 2
SNAPSHOT = 4
LR_DECAY = 8
STOP = 16

MODES = ('synthetic', 'bp')
PLACEMENTS = ('below', 'above')


def _check_options(mode, max_staleness, synth_placement, size):
    if size < 2:
        raise DecoupledError(
            'a decoupled run needs one MPI rank per module (K >= 2), got '
            '%d rank(s): launch it with mpiexec -n K' % size)
    if mode not in MODES:
        raise ValueError("mode must be 'synthetic' or 'bp', got %r"
                         % (mode,))
    if max_staleness < 0:
        raise ValueError('max_staleness must be >= 0, got %d'
                         % max_staleness)
    if mode == 'synthetic' and synth_placement not in PLACEMENTS:
        raise ValueError('synth_placement must be one of %s, got %r'
                         % (', '.join(PLACEMENTS), synth_placement))


class DecoupledWorker(object):
    """One rank of a decoupled (or model-parallel BP) run.

    Rank ``k`` owns ``module`` (part ``k`` of ``chainer_vfbn.split(net)``), its
    ``optimizer`` and, below the top, the ``synthesizer`` at its output
    with ``synth_optimizer``.

    Drive it with :meth:`run` (every rank), or step by step: rank 0 calls
    :meth:`step` per batch; the other ranks call :meth:`receive` and
    :meth:`process` in a loop.

    Args:
        transport: A :class:`~chainer_vfbn.decoupled.transport.MPITransport`
            or :class:`~chainer_vfbn.decoupled.transport.LoopbackTransport`
            (its ``size`` is the number of modules ``K >= 2``); a ChainerMN
            communicator is wrapped in an ``MPITransport`` with ``timeout``.
        module (~chainer.Link): This rank's module.
        optimizer (~chainer.Optimizer): Set up on ``module``.
        synthesizer (~chainer.Link): ``synth(h, t) -> grad_synth`` at this
            module's output; ``None`` on the last rank and in ``'bp'`` mode.
        synth_optimizer (~chainer.Optimizer): Set up on ``synthesizer``.
        mode (str): ``'synthetic'`` (decoupled) or ``'bp'`` (model-parallel
            back-propagation: wait for δ before the update).
        max_staleness (int): δ's that may be outstanding after a step
            (``>= 0``); ``0`` reproduces the synchronous updater.
        loss_func: ``loss_func(y, t)`` of the last module.
        device: Chainer device of the links (``None``: the CPU).
        timeout (float): Seconds any wait for a peer may last (when
            ``transport`` is a communicator).
        synth_name (str): Report prefix of this rank's synthesizer;
            ``None``: :func:`chainer_vfbn.split_step.synth_name`.
        synth_placement (str): Where synth_k trains, ``'below'`` or
            ``'above'`` (then ``synthesizer`` is a replica and
            ``synth_optimizer`` unused); ignored in ``'bp'`` mode.
        lower_synthesizer (~chainer.Link): ``'above'`` only, ranks
            ``k > 0``: the master copy of synth_{k-1} (the synthesizer at
            this module's *input*), built and initialised exactly as rank
            ``k - 1`` builds its replica.
        lower_synth_optimizer (~chainer.Optimizer): Set up on
            ``lower_synthesizer``.
        lower_synth_name (str): Report prefix of synth_{k-1}.
        target_scale (str): What the synthesizers predict (see
            :mod:`chainer_vfbn.split_step`).
    """

    def __init__(self, transport, module, optimizer, synthesizer=None,
                 synth_optimizer=None, mode='synthetic', max_staleness=0,
                 loss_func=F.softmax_cross_entropy, device=None,
                 timeout=300.0, synth_name=None, synth_placement='below',
                 lower_synthesizer=None, lower_synth_optimizer=None,
                 lower_synth_name=None, target_scale='batch-mean'):
        if hasattr(transport, 'mpi_comm'):   # a ChainerMN communicator
            transport = tr.MPITransport(transport, timeout)
        split_step.check_target_scale(target_scale)
        _check_options(mode, max_staleness, synth_placement, transport.size)
        self.transport = transport
        self.rank, self.size = transport.rank, transport.size
        self.is_first = self.rank == 0
        self.is_last = self.rank == self.size - 1
        self.mode, self.target_scale = mode, target_scale
        self.synth_placement = pl.synth_placement(mode == 'synthetic',
                                                  synth_placement)
        self.module = module
        self.optimizer = optimizer
        (self.synthesizer, self.synth_optimizer, self.lower_synthesizer,
         self.lower_synth_optimizer) = pl.choose_links(
            self.rank, self.size, mode, self.synth_placement, synthesizer,
            synth_optimizer, lower_synthesizer, lower_synth_optimizer)
        for opt in self._optimizers():  # as StandardUpdater(auto_new_epoch)
            opt.use_auto_new_epoch = True
        self.max_staleness = int(max_staleness)
        self.loss_func = loss_func
        for synth in (synthesizer, lower_synthesizer):
            if synth is not None:
                split_step.check_loss(synth, loss_func)
        self.device = chainer.get_device(device if device is not None
                                         else '@numpy')
        n_splits = self.size - 1
        self.synth_name = synth_name or split_step.synth_name(
            self.rank, n_splits)
        self.lower_synth_name = lower_synth_name or split_step.synth_name(
            self.rank - 1, n_splits)
        self.iteration = 0               # steps of this module completed
        self.epoch_info = EpochInfo()
        self._build_collaborators()

    def _build_collaborators(self):
        """The channel, the observations, the placements of synth_k and
        synth_{k-1} (None where the rank has no such synthesizer), the
        module's :class:`~.steps.TrainStep`, the :class:`~.steps.EvalRelay`.
        """
        self._channel = Channel(self.transport, self.device)
        self._obs = Observations()
        common = (self._channel, self._obs, self.target_scale)
        self._synth = self._lower = None
        if self.synthesizer is not None:
            self._synth = pl.synthesizer_side(
                self.synth_placement, self.synthesizer, self.synth_optimizer,
                self.synth_name, *(common + (self.max_staleness,)))
        if self.lower_synthesizer is not None:
            self._lower = pl.MasterCopy(
                self.lower_synthesizer, self.lower_synth_optimizer,
                self.lower_synth_name, *common)
        self._train_step = TrainStep(
            self.module, self.optimizer, self.loss_func, self.mode,
            self._channel, self._obs, self._synth, self._lower)
        self._relay = EvalRelay(self.module, self._channel)

    def _optimizers(self):
        return [opt for opt in (self.optimizer, self.synth_optimizer,
                                self.lower_synth_optimizer)
                if opt is not None]

    # ------------------------------------------------------------ training
    def step(self, x, t, info=None, events=0):
        """Rank 0: one training iteration on the batch ``(x, t)``.

        Args:
            x (array): Images, shape ``(B, 3, H, W)``, on the device.
            t (array): Labels, int32, shape ``(B,)``, on the device.
            info (EpochInfo): The iterator's epoch information after this
                batch (sent up the chain).
            events (int): Bits of :data:`LOG`, :data:`EVALUATE`, ... that
                every rank acts upon after this iteration.
        """
        if not self.is_first:
            raise DecoupledError('only rank 0 reads batches; rank %d must '
                                 'call receive() and process()' % self.rank)
        self._train(x, t, info or EpochInfo(), int(events))

    def receive(self):
        """Ranks > 0: wait for the next message from the rank below.

        Returns:
            tuple: ``(header, arrays)``, for :meth:`process`.
        """
        return self._channel.recv(self.rank - 1, tr.TAG_FORWARD,
                                  'the activation h', 2)

    def process(self, message):
        """Ranks > 0: act on a message from :meth:`receive`.

        Returns:
            tuple: ``(kind, events)`` of the message.
        """
        head, arrays = message
        kind = int(head[tr.H_KIND])
        events = int(head[tr.H_EVENTS])
        if kind == tr.TRAIN:
            if int(head[tr.H_ITER]) != self.iteration + 1:
                raise DecoupledError(
                    'rank %d: got iteration %d from rank %d after its own '
                    'iteration %d (ranks out of step: a mismatched resume?)'
                    % (self.rank, int(head[tr.H_ITER]), self.rank - 1,
                       self.iteration))
            self._train(chainer.Variable(arrays[0]), arrays[1],
                        EpochInfo.of_header(head), events)
        elif kind == tr.EVAL:
            self._relay.forward(arrays[0], self.iteration)
        elif kind == tr.EVAL_END:
            self._relay.pass_end(head)
        else:
            raise DecoupledError('rank %d: unknown message kind %d from rank '
                                 '%d' % (self.rank, kind, self.rank - 1))
        return kind, events

    def _train(self, inp, t, info, events):
        """The module's step, then its iteration's bookkeeping: count it,
        train synth_k on the δ's the staleness bound forces, and start a
        new epoch per optimizer (as the synchronous updater counts them)."""
        try:
            iteration = self.iteration + 1
            self._train_step(iteration, inp, t, info, events)
            self.iteration = iteration
            self.epoch_info = info
            if self._synth is not None:
                self._synth.bound(iteration)
            if info.is_new_epoch:
                for opt in self._optimizers():
                    opt.new_epoch(auto=True)
            self.transport.reap()
        except Diverged as e:
            if e.iteration is None:
                e.iteration = self.iteration + 1
            raise

    def settle(self):
        """Consume every outstanding δ (before a log entry or a snapshot);
        with ``'above'``, take every weight version up to this iteration
        (then the replica equals the master copy on rank ``k + 1``)."""
        if self._synth is not None:
            self._synth.settle(self.iteration)

    @property
    def outstanding(self):
        """Number of this rank's steps whose δ has not been consumed."""
        if self._synth is None:
            return 0
        return self._synth.outstanding(self.iteration)

    def flush(self):
        """Wait until every message this rank sent has been received."""
        self.transport.flush(self.rank - 1 if self.is_last else
                             self.rank + 1)

    def run(self, stop_iteration, iterator=None,
            converter=chainer.dataset.concat_examples, events=None,
            on_events=None, abort_on_error=True):
        """Train until iteration ``stop_iteration`` (every rank calls this).

        Args:
            stop_iteration (int): Last iteration, the same on every rank
                (rank 0 sends :data:`STOP` with it; nothing is done if this
                rank's :attr:`iteration` has reached it).
            iterator: Rank 0's training iterator (ignored elsewhere).
            converter: ``converter(batch, device) -> (x, t)``.
            events: Rank 0's ``events(iteration, iterator) -> bits`` that
                every rank acts upon after that iteration; :data:`STOP`
                among them ends the run there (e.g. on a signal).
            on_events: ``on_events(worker, bits)``, called on every rank
                after an iteration whose bits are not 0 (after the
                :data:`STOP` iteration's δ's are consumed).
            abort_on_error (bool): On any exception, let the transport
                stop every rank (``MPI_Abort`` over MPI) instead of leaving
                the others waiting for this one.
        """
        try:
            if self.iteration >= stop_iteration:  # e.g. resumed at the end
                return
            if self.is_first:
                _run_first(self, stop_iteration, iterator, converter, events,
                           on_events)
            else:
                _run_other(self, on_events)
            self.flush()
        except BaseException as e:
            if not abort_on_error:
                raise
            self.transport.abort(e)

    # ---------------------------------------------------------- evaluation
    def predict(self, x):
        """Rank 0: class scores of ``x`` through every rank, in test mode.

        Args:
            x (array): Images, shape ``(B, 3, H, W)``.

        Returns:
            ~chainer.Variable: Scores ``(B, n_class)`` computed by the last
            rank, on this rank's device.
        """
        if not self.is_first:
            raise DecoupledError('only rank 0 drives an evaluation')
        return chainer.Variable(self._relay.predict(x, self.iteration))

    def end_eval(self):
        """Rank 0: tell the other ranks that the evaluation is over."""
        self._relay.end(self.iteration)

    def serve_eval(self):
        """Ranks > 0: forward evaluation batches until rank 0 ends it."""
        while True:
            kind, _ = self.process(self.receive())
            if kind == tr.EVAL_END:
                return
            if kind != tr.EVAL:
                raise DecoupledError('rank %d: a training batch arrived '
                                     'during an evaluation' % self.rank)

    # ----------------------------------------------------- logs, snapshots
    def pop_observation(self):
        """Means of what this rank observed since the last call.

        Returns:
            dict: ``key -> float``: ``main/loss``, ``main/accuracy`` (last
            rank), ``<synth>/{loss,cos,relerr,norm_ratio,staleness}``
            (where the synthesizer trains), ``<synth>/staleness_max``, and
            ``rank{k}/wait_time``, seconds this rank spent blocked on its
            peers.
        """
        out = self._obs.pop_means()
        out['rank%d/wait_time' % self.rank] = self.transport.pop_wait_time()
        return out

    def gather(self, obj):
        """One picklable object per rank, as a list on rank 0 (else None)."""
        return self.transport.gather(obj)

    def serialize(self, serializer):
        """Save or load this rank's module, synthesizer and optimizers.

        Call :meth:`settle` first: a snapshot holds no outstanding δ.
        """
        if self.outstanding and isinstance(serializer,
                                           chainer.serializer.Serializer):
            raise DecoupledError('settle() before taking a snapshot: %d δ '
                                 'outstanding' % self.outstanding)
        self.iteration = serializer('iteration', self.iteration)
        self.module.serialize(serializer['module'])
        self.optimizer.serialize(serializer['optimizer'])
        for placement in (self._synth, self._lower):
            if placement is not None:   # 'synth*' or 'lower_synth*' keys
                placement.serialize(serializer)


# ---------------------------------------------------------------- the loop
# DecoupledWorker.run's loops; they use only the worker's public methods.
def _run_first(worker, stop_iteration, iterator, converter, events,
               on_events):
    """Rank 0: read batches and step until ``stop_iteration``."""
    while worker.iteration < stop_iteration:
        x, t = converter(iterator.next(), worker.device)
        iteration = worker.iteration + 1
        bits = events(iteration, iterator) if events else 0
        if iteration >= stop_iteration:
            bits |= STOP
        worker.step(x, t, EpochInfo.of(iterator), bits)
        _after(worker, bits, on_events)
        if bits & STOP:   # before stop_iteration: the events asked for it
            break


def _run_other(worker, on_events):
    """Ranks > 0: process training messages until the STOP iteration."""
    while True:
        kind, bits = worker.process(worker.receive())
        if kind != tr.TRAIN:
            raise DecoupledError('rank %d: an evaluation batch arrived '
                                 'outside an evaluation' % worker.rank)
        _after(worker, bits, on_events)
        if bits & STOP:
            break


def _after(worker, bits, on_events):
    """After an iteration: settle at the STOP, then the event callback."""
    if bits & STOP:
        worker.settle()
    if bits and on_events is not None:
        on_events(worker, bits)
