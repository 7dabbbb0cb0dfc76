"""Decoupled training: each module of the network in its own MPI process.

The reason synthetic gradients exist (Jaderberg et al., 2016; Section 2 of
the VFBN paper) is that a module need not wait for the modules above it.
The paper's footnote 1 admits that its synthetic gradients only replaced
back-propagation inside ordinary synchronous training.
:class:`~chainer_vfbn.updaters.SyntheticGradientUpdater` does the same: one
process runs the modules one after the other. This module runs them in
*different processes*, one ChainerMN rank per module, so that the bottom
really never waits for the top.

Who does what (rank ``k`` of ``K`` owns module ``k``, its optimizer, and
the synthesizer at its output):

* rank 0 reads the batch ``(x, t)``; every other rank receives
  ``(h_{k-1}, t)`` from rank ``k - 1``: the labels travel with ``h``, so
  every rank sees the same ``t``;
* a rank below the top computes ``h_k``, sends ``(h_k, t)`` up at once
  (non-blocking), back-propagates ``grad_synth = synth(h_k, t)`` (Eq. 2)
  into its module and updates it: it does NOT wait for the true gradient;
* rank ``k + 1`` back-propagates into its input and sends
  ``grad_true`` = δ_k = ∂ℓ/∂h_k down (non-blocking; for a middle rank δ_k
  is the gradient implied by its own synthetic gradient, the bootstrapped
  target of Jaderberg et al., Section 3.1, exactly as in the synchronous
  updater);
* the last rank computes the real loss ``ℓ = loss_func(y, t)``;
* when δ_k for iteration ``j`` arrives, rank ``k`` trains its synthesizer on
  ``||δ_k(j) - synth(h_k(j), t(j))||²`` (Eq. 3). A queue of
  ``(j, h_k(j), t(j))`` on rank ``k`` pairs each δ with the activation and
  labels of *its own* iteration; ``synth(h_k(j), t(j))`` is recomputed with
  the synthesizer's current parameters when the synthesizer was updated
  since iteration ``j`` (its old graph would see parameters that the
  optimizer has since changed in place); otherwise the graph of the forward
  that produced the module's δ̂ is reused.

Where the synthesizer trains (``synth_placement``). The protocol above is
``'below'``: synth_k trains on rank k. With ``'above'`` the *master* copy of
synth_k and its optimizer live on rank ``k + 1``, which already holds
``h_k(j)``, ``t(j)`` and δ_k(j) the moment its backward ends: it trains
synth_k there at once (no queue, no recomputation) and sends the new
weights down (non-blocking); rank ``k`` keeps a *replica* that only
computes δ̂ and takes each weight version when the staleness bound needs
it. No δ travels down at all. The schedule is the same (the synthesizer
used at iteration ``i`` has learnt from δ(1..i-1-s)), so the numbers are
the same as with ``'below'``; only who pays for Eq. 3 changes: at the
paper's split the bottom module is the heavier one and the top idles, so
``'above'`` moves the synthesizer's training (about 2/3 of its cost) onto
the idle rank.

Staleness. Rank ``k`` keeps at most ``max_staleness`` δ's outstanding: after
its update at iteration ``i`` it blocks until δ(j) has arrived for every
``j <= i - max_staleness`` and trains the synthesizer on them, oldest first.
A δ is consumed exactly when that bound forces it, never earlier, so the
synthesizer used at iteration ``i`` has learned from δ(1..i-1-s), ``s =
max_staleness``: the schedule, hence the numbers, do not depend on timing
(a CPU run is reproducible). The staleness of each consumed δ (iterations
of the module completed since its forward) is reported as
``<synth>/staleness``. With ``max_staleness = 0`` every rank waits for δ
before its next step: the computation is then exactly that of
:class:`~chainer_vfbn.updaters.SyntheticGradientUpdater` in one process.

``mode='bp'`` is the model-parallel back-propagation baseline: the same
ranks, no synthesizers, and rank ``k`` waits for δ_k before it can
back-propagate and update (the "lock" that synthetic gradients remove).

Transport. ChainerMN's communicator (``chainermn.create_communicator``:
``'naive'`` on CPUs, ``'pure_nccl'`` with one GPU per rank) sets up the
ranks; point-to-point messages use the mpi4py communicator under it
(``comm.mpi_comm``) with non-blocking ``Isend``/``Irecv`` of contiguous
NumPy buffers, because ChainerMN's own ``send``/``recv`` block. GPU arrays
are staged through host memory (``cuda.to_cpu``), which works with any MPI.
Every message is a fixed 16-float header (kind, iteration, event bits, epoch
information, dtype and shape) followed by its arrays. Every wait polls its
requests (``Test``) with a short sleep, so that a waiting rank leaves its
core to the others, and gives up after ``timeout`` seconds with a
:class:`DecoupledError`; a rank that dies is handled by ``mpiexec``, which
kills the others (see ``docs/decoupled.md``).

ChainerMN's multi-node iterator is deliberately not used: it broadcasts
every batch to every rank (a collective per iteration, which would
re-synchronise the ranks); here only rank 0 reads data.
"""
import collections
import time

import numpy

import chainer
from chainer.backends import cuda
import chainer.functions as F

from chainer_vfbn import split_step
from chainer_vfbn.divergence import check_finite
from chainer_vfbn.divergence import Diverged

# Message kinds.
TRAIN = 1
EVAL = 2
EVAL_END = 3

# Event bits, chosen by rank 0 for an iteration and carried in its header,
# so that every rank runs the same ``on_events`` after that iteration.
LOG = 1
EVALUATE = 2
SNAPSHOT = 4
LR_DECAY = 8
STOP = 16

PLACEMENTS = ('below', 'above')

# MPI tags.
TAG_FORWARD = 11       # header, then h, then t (rank k -> k + 1)
TAG_FORWARD_H = 12
TAG_FORWARD_T = 13
TAG_DELTA = 21         # header, then δ (rank k + 1 -> k)
TAG_DELTA_DATA = 22
TAG_SCORES = 31        # header, then class scores (last rank -> 0)
TAG_SCORES_DATA = 32
TAG_GATHER = 41        # a pickled object (rank k -> 0)
TAG_WEIGHTS = 51       # header, then synth_k's flat weights (k + 1 -> k)
TAG_WEIGHTS_DATA = 52

HEADER_LEN = 16
_H_KIND, _H_ITER, _H_EVENTS, _H_EPOCH, _H_NEW_EPOCH = 0, 1, 2, 3, 4
_H_DETAIL, _H_PREV_DETAIL, _H_DTYPE, _H_NDIM, _H_SHAPE = 5, 6, 7, 8, 9
_MAX_NDIM = HEADER_LEN - _H_SHAPE
_DTYPES = (numpy.float32, numpy.float64, numpy.float16)


class DecoupledError(RuntimeError):
    """A rank gave up: a peer sent nothing in time, or sent the wrong thing."""


def abort(mpi_comm, rank, error):
    """Print ``error`` as one clear block and abort the whole MPI job.

    ``MPI_Abort`` makes ``mpiexec`` kill every rank and exit non-zero;
    without it a rank that raised would finalize MPI and leave its peers
    waiting for messages that never come.
    """
    import sys
    import traceback
    if not isinstance(error, (DecoupledError, KeyboardInterrupt)):
        traceback.print_exception(type(error), error, error.__traceback__)
    sys.stderr.write('decoupled: rank %d stops the run: %s: %s\n'
                     % (rank, type(error).__name__, error))
    sys.stderr.flush()
    mpi_comm.Abort(1)


def _dtype_code(dtype):
    for code, d in enumerate(_DTYPES):
        if numpy.dtype(d) == dtype:
            return code
    raise TypeError('cannot send arrays of dtype %s' % dtype)


class EpochInfo(object):
    """What rank 0's iterator says about an iteration, passed up the chain.

    Attributes:
        epoch (int): Completed epochs after this batch.
        is_new_epoch (bool): Whether this batch ended an epoch.
        epoch_detail (float): Epochs, fractional.
        previous_epoch_detail (float or None): The same before this batch.
    """

    def __init__(self, epoch=0, is_new_epoch=False, epoch_detail=0.0,
                 previous_epoch_detail=None):
        self.epoch = int(epoch)
        self.is_new_epoch = bool(is_new_epoch)
        self.epoch_detail = float(epoch_detail)
        self.previous_epoch_detail = previous_epoch_detail

    @classmethod
    def of(cls, iterator):
        """Read the epoch information off a Chainer iterator."""
        return cls(iterator.epoch, iterator.is_new_epoch,
                   iterator.epoch_detail,
                   getattr(iterator, 'previous_epoch_detail', None))


class _Pending(object):
    """A step of rank ``k`` whose δ has not been consumed yet."""

    __slots__ = ('iteration', 'h', 't', 'grad_synth', 'version')

    def __init__(self, iteration, h, t, grad_synth, version):
        self.iteration = iteration
        self.h = h                    # h_k(j) (array, on the device)
        self.t = t                    # t(j)
        self.grad_synth = grad_synth  # δ̂ Variable with the synth's graph
        self.version = version        # synth updates done before its forward


class DecoupledWorker(object):
    """One rank of a decoupled (or model-parallel BP) run.

    Rank ``k`` of ``comm`` owns ``module`` (the ``k``-th of ``net.split``),
    its ``optimizer`` and, below the top, the ``synthesizer`` at its output
    with ``synth_optimizer``. See the module docstring for the protocol.

    Drive it with :meth:`run` (every rank), or step by step: rank 0 calls
    :meth:`step` per batch; the other ranks call :meth:`receive` and
    :meth:`process` in a loop.

    Args:
        comm: A ChainerMN communicator (``comm.rank``, ``comm.size`` and
            ``comm.mpi_comm`` are used). Its size is the number of modules
            ``K >= 2``.
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
        device: Chainer device of the links (``None``: CPU / as they are).
        timeout (float): Seconds any wait for a peer may last.
        synth_name (str): Report prefix of this rank's synthesizer
            (``'synth'`` for ``K = 2``, else ``'synth{k}'``), as in the
            synchronous updater.
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

    def __init__(self, comm, module, optimizer, synthesizer=None,
                 synth_optimizer=None, mode='synthetic', max_staleness=0,
                 loss_func=F.softmax_cross_entropy, device=None,
                 timeout=300.0, synth_name=None, synth_placement='below',
                 lower_synthesizer=None, lower_synth_optimizer=None,
                 lower_synth_name=None, target_scale='batch-mean'):
        split_step.check_target_scale(target_scale)
        self.target_scale = target_scale
        self.comm = comm
        self.mpi_comm = comm.mpi_comm
        self.rank = comm.rank
        self.size = comm.size
        if self.size < 2:
            raise DecoupledError(
                'a decoupled run needs one MPI rank per module (K >= 2), got '
                '%d rank(s): launch it with mpiexec -n K' % self.size)
        if mode not in ('synthetic', 'bp'):
            raise ValueError("mode must be 'synthetic' or 'bp', got %r"
                             % (mode,))
        if max_staleness < 0:
            raise ValueError('max_staleness must be >= 0, got %d'
                             % max_staleness)
        if synth_placement not in PLACEMENTS:
            raise ValueError('synth_placement must be one of %s, got %r'
                             % (', '.join(PLACEMENTS), synth_placement))
        self.is_first = self.rank == 0
        self.is_last = self.rank == self.size - 1
        self.mode = mode
        above = mode == 'synthetic' and synth_placement == 'above'
        self.synth_placement = synth_placement if mode == 'synthetic' else None
        if mode == 'synthetic' and not self.is_last:
            if synthesizer is None or (synth_optimizer is None and
                                       not above):
                raise ValueError('rank %d (below the top) needs a synthesizer '
                                 'and its optimizer' % self.rank)
            if above:
                synth_optimizer = None  # trained on rank k + 1
        else:
            synthesizer = synth_optimizer = None
        if above and not self.is_first:
            if lower_synthesizer is None or lower_synth_optimizer is None:
                raise ValueError(
                    "rank %d: synth_placement='above' needs the master copy "
                    'of the synthesizer below (lower_synthesizer) and its '
                    'optimizer' % self.rank)
        else:
            lower_synthesizer = lower_synth_optimizer = None
        self.module = module
        self.optimizer = optimizer
        for opt in (optimizer, synth_optimizer, lower_synth_optimizer):
            if opt is not None:  # as StandardUpdater(auto_new_epoch=True)
                opt.use_auto_new_epoch = True
        self.synthesizer = synthesizer
        self.synth_optimizer = synth_optimizer
        self.lower_synthesizer = lower_synthesizer
        self.lower_synth_optimizer = lower_synth_optimizer
        self.max_staleness = int(max_staleness)
        self.loss_func = loss_func
        self.device = chainer.get_device(device if device is not None
                                         else '@numpy')
        self.timeout = float(timeout)
        if synth_name is None:
            synth_name = ('synth' if self.size == 2 else
                          'synth%d' % self.rank)
        self.synth_name = synth_name
        if lower_synth_name is None:
            lower_synth_name = ('synth' if self.size == 2 else
                                'synth%d' % (self.rank - 1))
        self.lower_synth_name = lower_synth_name

        self.iteration = 0               # steps of this module completed
        self.epoch_info = EpochInfo()
        self._pending = collections.deque()   # steps whose δ is due
        self._sends = []                 # [(request, buffers)] in flight
        self._synth_version = 0          # synthesizer updates so far
        self._lower_version = 0          # 'above': updates of synth_{k-1}
        self._obs = collections.defaultdict(list)
        self._wait = collections.defaultdict(float)

    # ----------------------------------------------------------------- MPI
    def _wait_all(self, requests, what, peer):
        """Poll ``requests`` until all complete; DecoupledError on timeout."""
        from mpi4py import MPI
        start = time.monotonic()
        deadline = start + self.timeout
        pause = 1e-5
        while not MPI.Request.Testall(requests):
            now = time.monotonic()
            if now > deadline:
                raise DecoupledError(
                    'rank %d: waited %.0f s for %s from rank %d; giving up '
                    '(is rank %d alive?)' % (self.rank, self.timeout, what,
                                             peer, peer))
            time.sleep(pause)
            pause = min(2 * pause, 1e-3)
        self._wait[what] += time.monotonic() - start

    def _isend(self, dest, tag, header, arrays):
        """Send a header and its arrays without blocking."""
        bufs = [header] + [numpy.ascontiguousarray(cuda.to_cpu(a))
                           for a in arrays]
        reqs = [self.mpi_comm.Isend(buf, dest=dest, tag=tag + i)
                for i, buf in enumerate(bufs)]
        self._sends.append((reqs, bufs))
        self._reap_sends()

    def _reap_sends(self):
        # Completed sends release their buffers; Test also drives progress.
        from mpi4py import MPI
        self._sends = [(reqs, bufs) for reqs, bufs in self._sends
                       if not MPI.Request.Testall(reqs)]

    def flush(self):
        """Wait until every message this rank sent has been received."""
        for reqs, _ in self._sends:
            self._wait_all(reqs, 'delivery of sent messages',
                           self.rank - 1 if self.is_last else self.rank + 1)
        self._sends = []

    def _header(self, kind, iteration, events, info, array):
        header = numpy.zeros(HEADER_LEN, numpy.float64)
        header[_H_KIND] = kind
        header[_H_ITER] = iteration
        header[_H_EVENTS] = events
        header[_H_EPOCH] = info.epoch
        header[_H_NEW_EPOCH] = info.is_new_epoch
        header[_H_DETAIL] = info.epoch_detail
        header[_H_PREV_DETAIL] = (-1 if info.previous_epoch_detail is None
                                  else info.previous_epoch_detail)
        if array is not None:
            if array.ndim > _MAX_NDIM:
                raise ValueError('cannot send arrays of %d dims' % array.ndim)
            header[_H_DTYPE] = _dtype_code(array.dtype)
            header[_H_NDIM] = array.ndim
            header[_H_SHAPE:_H_SHAPE + array.ndim] = array.shape
        return header

    def _recv(self, source, tag, what, n_arrays, label_dtype=None):
        """Receive a header and ``n_arrays`` arrays (the 2nd one int32)."""
        header = numpy.empty(HEADER_LEN, numpy.float64)
        self._wait_all([self.mpi_comm.Irecv(header, source=source, tag=tag)],
                       what, source)
        kind = int(header[_H_KIND])
        arrays = []
        if n_arrays and kind != EVAL_END:
            ndim = int(header[_H_NDIM])
            shape = tuple(int(s) for s in header[_H_SHAPE:_H_SHAPE + ndim])
            data = numpy.empty(shape, _DTYPES[int(header[_H_DTYPE])])
            bufs = [data]
            if n_arrays == 2:
                bufs.append(numpy.empty(shape[:1], numpy.int32))
            reqs = [self.mpi_comm.Irecv(b, source=source, tag=tag + 1 + i)
                    for i, b in enumerate(bufs)]
            self._wait_all(reqs, what, source)
            arrays = [self.device.send(b) for b in bufs]
        return header, arrays

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
        return self._recv(self.rank - 1, TAG_FORWARD,
                          'the activation h', 2)

    def process(self, message):
        """Ranks > 0: act on a message from :meth:`receive`.

        Returns:
            tuple: ``(kind, events)`` of the message.
        """
        header, arrays = message
        kind = int(header[_H_KIND])
        events = int(header[_H_EVENTS])
        if kind == TRAIN:
            if int(header[_H_ITER]) != self.iteration + 1:
                raise DecoupledError(
                    'rank %d: got iteration %d from rank %d after its own '
                    'iteration %d (ranks out of step: a mismatched resume?)'
                    % (self.rank, int(header[_H_ITER]), self.rank - 1,
                       self.iteration))
            prev = header[_H_PREV_DETAIL]
            info = EpochInfo(header[_H_EPOCH], header[_H_NEW_EPOCH],
                             header[_H_DETAIL], None if prev < 0 else prev)
            self._train(chainer.Variable(arrays[0]), arrays[1], info, events)
        elif kind == EVAL:
            self._eval_forward(arrays[0])
        elif kind == EVAL_END:
            if not self.is_last:
                self._isend(self.rank + 1, TAG_FORWARD, header, [])
        else:
            raise DecoupledError('rank %d: unknown message kind %d from rank '
                                 '%d' % (self.rank, kind, self.rank - 1))
        return kind, events

    def _train(self, inp, t, info, events):
        try:
            self._train_step(inp, t, info, events)
        except Diverged as e:
            if e.iteration is None:
                e.iteration = self.iteration + 1
            raise

    def _train_step(self, inp, t, info, events):
        iteration = self.iteration + 1
        module = self.module
        if self.is_last:
            y = module(inp)
            loss = self.loss_func(y, t)
            check_finite('main/loss', loss)
            module.cleargrads()
            loss.backward()
            # δ_{k-1} (or synth_{k-1}'s new weights) down first, so the rank
            # below waits as little as it can.
            self._send_down(iteration, inp, t, info)
            self.optimizer.update()
            self._observe('main/loss', loss.array)
            self._observe('main/accuracy', F.accuracy(y, t).array)
        else:
            h = module(inp)
            header = self._header(TRAIN, iteration, events, info, h.array)
            if self.mode == 'bp':
                # Model-parallel BP: send h up, then wait for δ (the lock).
                self._isend(self.rank + 1, TAG_FORWARD, header, [h.array, t])
                grad_true = self._recv_delta(iteration)
                module.cleargrads()
                h.grad = grad_true
                h.backward()
                h.unchain_backward()
                if not self.is_first:
                    self._send_delta(iteration, inp.grad, info)
                self.optimizer.update()
            else:
                above = self.synth_placement == 'above'
                if above:
                    # The replica must have learnt from δ(1..i-1-s).
                    self._take_weights(iteration - 1 - self.max_staleness)
                    self._observe(self.synth_name + '/staleness',
                                  iteration - 1 - self._synth_version)
                # a. δ̂ from a copy of h cut from the module's graph.
                grad_synth, applied = split_step.synthesize(
                    self.synthesizer, h.array, t, self.target_scale,
                    self.synth_name)
                # h goes up at once: the rank above can start.
                self._isend(self.rank + 1, TAG_FORWARD, header, [h.array, t])
                # b. Back-propagate δ̂ and update now (Eq. 2): no waiting.
                module.cleargrads()
                h.grad = applied
                h.backward()
                h.unchain_backward()
                if not self.is_first:
                    self._send_down(iteration, inp, t, info)
                self.optimizer.update()
                if not above:
                    self._pending.append(_Pending(
                        iteration, h.array, t, grad_synth,
                        self._synth_version))
        self.iteration = iteration
        self.epoch_info = info
        if (not self.is_last and self.mode == 'synthetic' and
                self.synth_placement == 'below'):
            # c. The staleness bound: train on the δ's it forces, oldest first.
            while len(self._pending) > self.max_staleness:
                self._consume()
        if info.is_new_epoch:
            # As the synchronous updater (counts epochs per optimizer).
            self.optimizer.new_epoch(auto=True)
            for opt in (self.synth_optimizer, self.lower_synth_optimizer):
                if opt is not None:
                    opt.new_epoch(auto=True)
        self._reap_sends()

    def _send_down(self, iteration, inp, t, info):
        """After the backward: δ_{k-1} down, or train synth_{k-1} here."""
        if self.lower_synthesizer is None:
            self._send_delta(iteration, inp.grad, info)
        else:
            self._train_lower(inp.array, t, inp.grad, info)

    def _train_lower(self, h, t, grad_true, info):
        """'above': Eq. 3 for synth_{k-1} on this step, weights down."""
        synth = self.lower_synthesizer
        grad_synth = synth(chainer.Variable(h), t)
        values = split_step.regress(synth, self.lower_synth_optimizer,
                                    grad_synth, grad_true, self.target_scale,
                                    self.lower_synth_name)
        self._lower_version += 1
        flat = self._flat_weights(synth)
        header = self._header(TRAIN, self._lower_version, 0, info, flat)
        self._isend(self.rank - 1, TAG_WEIGHTS, header, [flat])
        self._observe_all(self.lower_synth_name, values)

    @staticmethod
    def _params(link):
        return [p for _, p in sorted(link.namedparams())]

    def _flat_weights(self, link):
        xp = self.device.xp
        return xp.concatenate([p.array.ravel() for p in self._params(link)])

    def _take_weights(self, version):
        """'above', replica: receive weight versions until ``version``."""
        while self._synth_version < version:
            header, (flat,) = self._recv(self.rank + 1, TAG_WEIGHTS,
                                         'the synthesizer weights', 1)
            if int(header[_H_ITER]) != self._synth_version + 1:
                raise DecoupledError(
                    'rank %d: expected synthesizer weights version %d from '
                    'rank %d, got %d' % (self.rank, self._synth_version + 1,
                                         self.rank + 1, int(header[_H_ITER])))
            offset = 0
            for p in self._params(self.synthesizer):
                size = p.array.size
                if offset + size > flat.size:
                    break
                p.array[...] = flat[offset:offset + size].reshape(
                    p.array.shape)
                offset += size
            if offset != flat.size:
                raise DecoupledError(
                    'rank %d: the synthesizer weights from rank %d have %d '
                    'values, the replica %d (different synthesizers?)'
                    % (self.rank, self.rank + 1, flat.size,
                       sum(p.array.size
                           for p in self._params(self.synthesizer))))
            self._synth_version += 1

    def _send_delta(self, iteration, grad, info):
        header = self._header(TRAIN, iteration, 0, info, grad)
        self._isend(self.rank - 1, TAG_DELTA, header, [grad])

    def _recv_delta(self, iteration):
        header, (grad,) = self._recv(self.rank + 1, TAG_DELTA,
                                     'the true gradient δ', 1)
        if int(header[_H_ITER]) != iteration:
            raise DecoupledError(
                'rank %d: expected δ of iteration %d from rank %d, got %d'
                % (self.rank, iteration, self.rank + 1, int(header[_H_ITER])))
        return grad

    def _consume(self):
        """Train the synthesizer on the oldest outstanding δ (Eq. 3)."""
        entry = self._pending.popleft()
        grad_true = self._recv_delta(entry.iteration)
        grad_synth = entry.grad_synth
        if grad_synth is None or entry.version != self._synth_version:
            # Stale: the synthesizer changed since this forward; recompute
            # δ̂ for the same (h, t) with the current parameters.
            grad_synth = self.synthesizer(chainer.Variable(entry.h), entry.t)
        try:
            values = split_step.regress(
                self.synthesizer, self.synth_optimizer, grad_synth,
                grad_true, self.target_scale, self.synth_name)
        except Diverged as e:
            e.iteration = entry.iteration
            raise
        self._synth_version += 1
        for other in self._pending:  # their graphs now see changed weights
            other.grad_synth = None
        name = self.synth_name
        self._observe_all(name, values)
        self._observe(name + '/staleness', self.iteration - entry.iteration)

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
        header = self._header(EVAL, self.iteration, 0, EpochInfo(), y.array)
        if self.is_last:
            self._isend(0, TAG_SCORES, header, [y.array])
        else:
            t = numpy.zeros(y.shape[0], numpy.int32)
            self._isend(self.rank + 1, TAG_FORWARD, header, [y.array, t])

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
        _, (scores,) = self._recv(self.size - 1, TAG_SCORES,
                                  'evaluation scores', 1)
        return chainer.Variable(scores)

    def end_eval(self):
        """Rank 0: tell the other ranks that the evaluation is over."""
        header = self._header(EVAL_END, self.iteration, 0, EpochInfo(), None)
        self._isend(1, TAG_FORWARD, header, [])

    def serve_eval(self):
        """Ranks > 0: forward evaluation batches until rank 0 ends it."""
        while True:
            kind, _ = self.process(self.receive())
            if kind == EVAL_END:
                return
            if kind != EVAL:
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
            rank), ``<synth>/{loss,cos,relerr,norm_ratio,staleness}`` (ranks below the
            top), ``<synth>/staleness_max``, and ``rank{k}/wait_time``,
            seconds this rank spent blocked on its peers.
        """
        out = {}
        for key, values in self._obs.items():
            out[key] = float(sum(float(v) for v in values) / len(values))
            if key.endswith('/staleness'):
                out[key + '_max'] = float(max(float(v) for v in values))
        out['rank%d/wait_time' % self.rank] = float(sum(self._wait.values()))
        self._obs.clear()
        self._wait.clear()
        return out

    def gather(self, obj):
        """Collect one picklable object per rank on rank 0.

        Returns:
            list: On rank 0, the objects of ranks ``0 .. K-1``; elsewhere
            ``None``. Polls with the worker's timeout (no blocking
            collective).
        """
        if not self.is_first:
            req = self.mpi_comm.isend(obj, dest=0, tag=TAG_GATHER)
            self._wait_all([req], 'delivery of a gathered object', 0)
            return None
        out = [obj]
        for source in range(1, self.size):
            req = self.mpi_comm.irecv(source=source, tag=TAG_GATHER)
            start = time.monotonic()
            pause = 1e-5
            while True:
                done, value = req.test()
                if done:
                    break
                if time.monotonic() - start > self.timeout:
                    raise DecoupledError(
                        'rank 0: waited %.0f s for the report of rank %d; '
                        'giving up (is rank %d alive?)'
                        % (self.timeout, source, source))
                time.sleep(pause)
                pause = min(2 * pause, 1e-3)
            out.append(value)
        return out

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
            abort_on_error (bool): On any exception, print it and call
                ``MPI_Abort``, so that ``mpiexec`` stops every rank at once
                instead of leaving the others waiting for this one.
        """
        try:
            self._run(stop_iteration, iterator, converter, events, on_events)
        except BaseException as e:
            if not abort_on_error:
                raise
            abort(self.mpi_comm, self.rank, e)

    def _run(self, stop_iteration, iterator, converter, events, on_events):
        if self.iteration >= stop_iteration:  # e.g. resumed at the end
            return
        if self.is_first:
            while self.iteration < stop_iteration:
                x, t = converter(iterator.next(), self.device)
                iteration = self.iteration + 1
                bits = events(iteration, iterator) if events else 0
                if iteration >= stop_iteration:
                    bits |= STOP
                self.step(x, t, EpochInfo.of(iterator), bits)
                self._after(bits, on_events)
        else:
            while True:
                kind, bits = self.process(self.receive())
                if kind != TRAIN:
                    raise DecoupledError('rank %d: an evaluation batch '
                                         'arrived outside an evaluation'
                                         % self.rank)
                self._after(bits, on_events)
                if bits & STOP:
                    break
        self.flush()

    def _after(self, bits, on_events):
        if bits & STOP:
            self.settle()
        if bits and on_events is not None:
            on_events(self, bits)
