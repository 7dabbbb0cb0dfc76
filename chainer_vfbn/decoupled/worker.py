"""One rank of a decoupled run: its module, the staleness queue, the
synthesizer placements and the evaluation relay.

The per-split science is :mod:`chainer_vfbn.split_step`'s, the same
functions as the synchronous
:class:`~chainer_vfbn.updaters.SyntheticGradientUpdater`; this module only
decides *when* each runs and what travels between the ranks (through a
transport of :mod:`chainer_vfbn.decoupled.transport`). The protocol is in
the package's docstring (:mod:`chainer_vfbn.decoupled`).
"""
import collections

import chainer
import chainer.functions as F

from chainer_vfbn import split_step
from chainer_vfbn.decoupled import transport as tr
from chainer_vfbn.decoupled.transport import DecoupledError
from chainer_vfbn.decoupled.transport import EpochInfo
from chainer_vfbn.divergence import check_finite
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


class _Pending(object):
    """A step of rank ``k`` whose δ has not been consumed yet."""

    __slots__ = ('iteration', 'h', 't', 'prediction', 'version')

    def __init__(self, iteration, h, t, prediction, version):
        self.iteration = iteration
        self.h = h                    # h_k(j) (array, on the device)
        self.t = t                    # t(j)
        self.prediction = prediction  # the synth's output, with its graph
        self.version = version        # synth updates done before its forward


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
    if synth_placement not in PLACEMENTS:
        raise ValueError('synth_placement must be one of %s, got %r'
                         % (', '.join(PLACEMENTS), synth_placement))


class DecoupledWorker(object):
    """One rank of a decoupled (or model-parallel BP) run.

    Rank ``k`` owns ``module`` (the ``k``-th of ``net.split``), its
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
        synth_placement (str): ``'below'`` (rank ``k`` trains synth_k on
            the δ_k that rank ``k + 1`` sends down) or ``'above'`` (rank
            ``k + 1`` trains it and sends the weights down; then
            ``synthesizer`` is a replica and ``synth_optimizer`` is not
            used on rank ``k``). The same numbers either way.
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
        self.mode = mode
        self.target_scale = target_scale
        self.synth_placement = synth_placement if mode == 'synthetic' else None
        self.module = module
        self.optimizer = optimizer
        self._set_synthesizers(synthesizer, synth_optimizer,
                               lower_synthesizer, lower_synth_optimizer)
        for opt in (optimizer, self.synth_optimizer,
                    self.lower_synth_optimizer):
            if opt is not None:  # as StandardUpdater(auto_new_epoch=True)
                opt.use_auto_new_epoch = True
        self.max_staleness = int(max_staleness)
        self.loss_func = loss_func
        self.device = chainer.get_device(device if device is not None
                                         else '@numpy')
        n_splits = self.size - 1
        self.synth_name = synth_name or split_step.synth_name(
            self.rank, n_splits)
        self.lower_synth_name = lower_synth_name or split_step.synth_name(
            self.rank - 1, n_splits)
        self.iteration = 0               # steps of this module completed
        self.epoch_info = EpochInfo()
        self._pending = collections.deque()   # steps whose δ is due
        self._synth_version = 0          # synthesizer updates so far
        self._lower_version = 0          # 'above': updates of synth_{k-1}
        self._obs = collections.defaultdict(list)

    def _set_synthesizers(self, synth, synth_opt, lower, lower_opt):
        """Keep the synthesizers this rank's mode and placement use."""
        above = self.synth_placement == 'above'
        if self.mode == 'synthetic' and not self.is_last:
            if synth is None or (synth_opt is None and not above):
                raise ValueError('rank %d (below the top) needs a synthesizer '
                                 'and its optimizer' % self.rank)
            if above:
                synth_opt = None  # trained on rank k + 1
        else:
            synth = synth_opt = None
        if above and not self.is_first:
            if lower is None or lower_opt is None:
                raise ValueError(
                    "rank %d: synth_placement='above' needs the master copy "
                    'of the synthesizer below (lower_synthesizer) and its '
                    'optimizer' % self.rank)
        else:
            lower = lower_opt = None
        self.synthesizer, self.synth_optimizer = synth, synth_opt
        self.lower_synthesizer, self.lower_synth_optimizer = lower, lower_opt

    # ----------------------------------------------------------- messages
    def _send(self, dest, tag, kind, iteration, events, info, arrays):
        head = tr.header(kind, iteration, events, info,
                         arrays[0] if arrays else None)
        self.transport.isend(dest, tag, head, arrays)

    def _recv(self, source, tag, what, n_arrays):
        head, arrays = self.transport.recv(source, tag, what, n_arrays)
        return head, [self.device.send(a) for a in arrays]

    def flush(self):
        """Wait until every message this rank sent has been received."""
        self.transport.flush(self.rank - 1 if self.is_last else
                             self.rank + 1)

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
        return self._recv(self.rank - 1, tr.TAG_FORWARD,
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
            self._eval_forward(arrays[0])
        elif kind == tr.EVAL_END:
            if not self.is_last:
                self.transport.isend(self.rank + 1, tr.TAG_FORWARD, head, [])
        else:
            raise DecoupledError('rank %d: unknown message kind %d from rank '
                                 '%d' % (self.rank, kind, self.rank - 1))
        return kind, events

    def _train(self, inp, t, info, events):
        try:
            iteration = self.iteration + 1
            if self.is_last:
                self._top_step(iteration, inp, t, info)
            elif self.mode == 'bp':
                self._bp_step(iteration, inp, t, info, events)
            else:
                self._synthetic_step(iteration, inp, t, info, events)
            self._end_step(iteration, info)
        except Diverged as e:
            if e.iteration is None:
                e.iteration = self.iteration + 1
            raise

    def _top_step(self, iteration, inp, t, info):
        """The last module: plain back-prop of the task loss."""
        y, loss = split_step.top_backward(self.module, inp, t,
                                          self.loss_func)
        check_finite('main/loss', loss)
        # δ_{k-1} (or synth_{k-1}'s new weights) down first, so the rank
        # below waits as little as it can.
        self._send_down(iteration, inp, t, info)
        self.optimizer.update()
        self._observe('main/loss', loss.array)
        self._observe('main/accuracy', F.accuracy(y, t).array)

    def _bp_step(self, iteration, inp, t, info, events):
        """Model-parallel BP: send h up, then wait for δ (the lock)."""
        h = self.module(inp)
        self._send(self.rank + 1, tr.TAG_FORWARD, tr.TRAIN, iteration,
                   events, info, [h.array, t])
        split_step.backward_from(self.module, h, self._recv_delta(iteration))
        if not self.is_first:
            self._send_delta(iteration, inp.grad, info)
        self.optimizer.update()

    def _synthetic_step(self, iteration, inp, t, info, events):
        """A module below a split: update at once with δ̂ (Eq. 2)."""
        above = self.synth_placement == 'above'
        if above:
            # The replica must have learnt from δ(1..i-1-s).
            self._take_weights(iteration - 1 - self.max_staleness)
            self._observe(self.synth_name + '/staleness',
                          iteration - 1 - self._synth_version)
        h = self.module(inp)
        prediction, grad_synth = split_step.synthesize(
            self.synthesizer, h.array, t, self.target_scale, self.synth_name)
        # h goes up at once: the rank above can start.
        self._send(self.rank + 1, tr.TAG_FORWARD, tr.TRAIN, iteration,
                   events, info, [h.array, t])
        split_step.backward_from(self.module, h, grad_synth)
        if not self.is_first:
            self._send_down(iteration, inp, t, info)
        self.optimizer.update()
        if not above:
            self._pending.append(_Pending(iteration, h.array, t, prediction,
                                          self._synth_version))

    def _end_step(self, iteration, info):
        self.iteration = iteration
        self.epoch_info = info
        if self.synth_placement == 'below' and self.synthesizer is not None:
            # The staleness bound: train on the δ's it forces, oldest first.
            while len(self._pending) > self.max_staleness:
                self._consume()
        if info.is_new_epoch:
            # As the synchronous updater (counts epochs per optimizer).
            for opt in (self.optimizer, self.synth_optimizer,
                        self.lower_synth_optimizer):
                if opt is not None:
                    opt.new_epoch(auto=True)
        self.transport.reap()

    def _send_down(self, iteration, inp, t, info):
        """After the backward: δ_{k-1} down, or train synth_{k-1} here."""
        if self.lower_synthesizer is None:
            self._send_delta(iteration, inp.grad, info)
        else:
            self._train_lower(inp.array, t, inp.grad, info)

    def _train_lower(self, h, t, grad_true, info):
        """'above': Eq. 3 for synth_{k-1} on this step, weights down."""
        synth = self.lower_synthesizer
        prediction, _ = split_step.synthesize(
            synth, h, t, self.target_scale, self.lower_synth_name)
        values = split_step.regress(synth, self.lower_synth_optimizer,
                                    prediction, grad_true, self.target_scale,
                                    self.lower_synth_name)
        self._lower_version += 1
        flat = tr.flat_weights(synth, self.device.xp)
        self._send(self.rank - 1, tr.TAG_WEIGHTS, tr.TRAIN,
                   self._lower_version, 0, info, [flat])
        self._observe_all(self.lower_synth_name, values)

    def _take_weights(self, version):
        """'above', replica: receive weight versions until ``version``."""
        while self._synth_version < version:
            head, (flat,) = self._recv(self.rank + 1, tr.TAG_WEIGHTS,
                                       'the synthesizer weights', 1)
            if int(head[tr.H_ITER]) != self._synth_version + 1:
                raise DecoupledError(
                    'rank %d: expected synthesizer weights version %d from '
                    'rank %d, got %d' % (self.rank, self._synth_version + 1,
                                         self.rank + 1, int(head[tr.H_ITER])))
            if not tr.load_flat_weights(self.synthesizer, flat):
                raise DecoupledError(
                    'rank %d: the synthesizer weights from rank %d have %d '
                    'values, the replica %d (different synthesizers?)'
                    % (self.rank, self.rank + 1, flat.size,
                       sum(p.array.size
                           for p in tr.params(self.synthesizer))))
            self._synth_version += 1

    def _send_delta(self, iteration, grad, info):
        self._send(self.rank - 1, tr.TAG_DELTA, tr.TRAIN, iteration, 0, info,
                   [grad])

    def _recv_delta(self, iteration):
        head, (grad,) = self._recv(self.rank + 1, tr.TAG_DELTA,
                                   'the true gradient δ', 1)
        if int(head[tr.H_ITER]) != iteration:
            raise DecoupledError(
                'rank %d: expected δ of iteration %d from rank %d, got %d'
                % (self.rank, iteration, self.rank + 1, int(head[tr.H_ITER])))
        return grad

    def _consume(self):
        """Train the synthesizer on the oldest outstanding δ (Eq. 3)."""
        entry = self._pending.popleft()
        grad_true = self._recv_delta(entry.iteration)
        prediction = entry.prediction
        if prediction is None or entry.version != self._synth_version:
            # Stale: the synthesizer changed since this forward (its old
            # graph would see parameters changed in place); recompute δ̂ for
            # the same (h, t) with the current parameters.
            prediction = self.synthesizer(chainer.Variable(entry.h), entry.t)
        try:
            values = split_step.regress(
                self.synthesizer, self.synth_optimizer, prediction,
                grad_true, self.target_scale, self.synth_name)
        except Diverged as e:
            e.iteration = entry.iteration
            raise
        self._synth_version += 1
        for other in self._pending:  # their graphs now see changed weights
            other.prediction = None
        self._observe_all(self.synth_name, values)
        self._observe(self.synth_name + '/staleness',
                      self.iteration - entry.iteration)

    def settle(self):
        """Consume every outstanding δ (before a log entry or a snapshot).

        With ``'above'``: take every weight version up to this iteration,
        so that the replica equals the master copy on rank ``k + 1``.
        """
        while self._pending:
            self._consume()
        if self.synth_placement == 'above' and self.synthesizer is not None:
            self._take_weights(self.iteration)

    @property
    def outstanding(self):
        """Number of this rank's steps whose δ has not been consumed."""
        if self.synth_placement == 'above' and self.synthesizer is not None:
            return self.iteration - self._synth_version
        return len(self._pending)

    # ---------------------------------------------------------- evaluation
    def _eval_forward(self, x):
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            y = self.module(x)
        if self.is_last:
            self._send(0, tr.TAG_SCORES, tr.EVAL, self.iteration, 0,
                       EpochInfo(), [y.array])
        else:
            t = self.device.xp.zeros(y.shape[0], 'i')
            self._send(self.rank + 1, tr.TAG_FORWARD, tr.EVAL,
                       self.iteration, 0, EpochInfo(), [y.array, t])

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
        x = x.array if isinstance(x, chainer.Variable) else x
        self._eval_forward(self.device.send(x))
        _, (scores,) = self._recv(self.size - 1, tr.TAG_SCORES,
                                  'evaluation scores', 1)
        return chainer.Variable(scores)

    def end_eval(self):
        """Rank 0: tell the other ranks that the evaluation is over."""
        self._send(1, tr.TAG_FORWARD, tr.EVAL_END, self.iteration, 0,
                   EpochInfo(), [])

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
    def _observe(self, key, value):
        self._obs[key].append(value)

    def _observe_all(self, name, values):
        for key, value in values.items():
            self._observe('%s/%s' % (name, key), value)

    def pop_observation(self):
        """Means of what this rank observed since the last call.

        Returns:
            dict: ``key -> float``: ``main/loss``, ``main/accuracy`` (last
            rank), ``<synth>/{loss,cos,relerr,norm_ratio,staleness}``
            (where the synthesizer trains), ``<synth>/staleness_max``, and
            ``rank{k}/wait_time``, seconds this rank spent blocked on its
            peers.
        """
        out = {}
        for key, values in self._obs.items():
            out[key] = float(sum(float(v) for v in values) / len(values))
            if key.endswith('/staleness'):
                out[key + '_max'] = float(max(float(v) for v in values))
        out['rank%d/wait_time' % self.rank] = self.transport.pop_wait_time()
        self._obs.clear()
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
        if self.synthesizer is not None:
            self.synthesizer.serialize(serializer['synth'])
            if self.synth_optimizer is not None:
                self.synth_optimizer.serialize(serializer['synth_optimizer'])
            self._synth_version = serializer('synth_version',
                                             self._synth_version)
        if self.lower_synthesizer is not None:
            self.lower_synthesizer.serialize(serializer['lower_synth'])
            self.lower_synth_optimizer.serialize(
                serializer['lower_synth_optimizer'])
            self._lower_version = serializer('lower_synth_version',
                                             self._lower_version)

    # ------------------------------------------------------------ the loop
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
                every rank acts upon after that iteration.
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
                self._run_first(stop_iteration, iterator, converter, events,
                                on_events)
            else:
                self._run_other(on_events)
            self.flush()
        except BaseException as e:
            if not abort_on_error:
                raise
            self.transport.abort(e)

    def _run_first(self, stop_iteration, iterator, converter, events,
                   on_events):
        while self.iteration < stop_iteration:
            x, t = converter(iterator.next(), self.device)
            iteration = self.iteration + 1
            bits = events(iteration, iterator) if events else 0
            if iteration >= stop_iteration:
                bits |= STOP
            self.step(x, t, EpochInfo.of(iterator), bits)
            self._after(bits, on_events)

    def _run_other(self, on_events):
        while True:
            kind, bits = self.process(self.receive())
            if kind != tr.TRAIN:
                raise DecoupledError('rank %d: an evaluation batch arrived '
                                     'outside an evaluation' % self.rank)
            self._after(bits, on_events)
            if bits & STOP:
                break

    def _after(self, bits, on_events):
        if bits & STOP:
            self.settle()
        if bits and on_events is not None:
            on_events(self, bits)
