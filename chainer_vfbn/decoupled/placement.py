"""Where a decoupled run trains each synthesizer, and when.

synth_k predicts δ_k, the gradient at the output of module ``k``; rank
``k`` uses it, and the true δ_k is known only on rank ``k + 1`` (after its
backward). The two placements give the same numbers:

* ``'below'``: rank ``k + 1`` sends δ_k down and rank ``k`` trains synth_k
  on it (Eq. 3). Rank ``k`` holds a :class:`StalenessQueue`: each step's
  ``(h, t, δ̂)`` waits there until its δ_k arrives, and at most
  ``max_staleness`` steps may wait after a step.
* ``'above'``: rank ``k + 1`` trains a master copy of synth_k
  (:class:`MasterCopy`) on its own δ_k and sends the new weights down;
  rank ``k`` holds a :class:`Replica`, which takes the weight versions it
  needs before each forward: before step ``i``, the version trained on
  δ(1..i-1-s), as ``'below'`` would have it.

The training itself (Eq. 2, Eq. 3) is :mod:`chainer_vfbn.split_step`'s.
"""
import collections

import chainer

from chainer_vfbn import split_step
from chainer_vfbn.decoupled import transport as tr
from chainer_vfbn.decoupled.transport import DecoupledError
from chainer_vfbn.divergence import Diverged


def synth_placement(synthetic, placement):
    """Where a run trains its synthesizers: ``placement`` (``'above'`` or
    ``'below'``) for a synthetic method, ``None`` for model-parallel
    back-propagation, which has no synthesizer. The one rule for both the
    workers and the runner's record.

    Example:
        >>> synth_placement(True, 'above'), synth_placement(False, 'above')
        ('above', None)
    """
    return placement if synthetic else None


def choose_links(rank, size, mode, placement, synth, synth_opt, lower,
                 lower_opt):
    """The synthesizers rank ``rank`` of ``size`` uses, the others None.

    Returns:
        tuple: ``(synth, synth_opt, lower, lower_opt)``: synth_k and its
        optimizer (``'synthetic'`` mode, below the top; no optimizer on an
        ``'above'`` replica), the master copy of synth_{k-1} and its
        optimizer (``'above'``, ranks ``k > 0``).

    Raises:
        ValueError: A synthesizer or an optimizer the rank needs is None.
    """
    above = placement == 'above'
    if mode == 'synthetic' and rank < size - 1:
        if synth is None or (synth_opt is None and not above):
            raise ValueError('rank %d (below the top) needs a synthesizer '
                             'and its optimizer' % rank)
        if above:
            synth_opt = None  # trained on rank k + 1
    else:
        synth = synth_opt = None
    if above and rank > 0:
        if lower is None or lower_opt is None:
            raise ValueError(
                "rank %d: synth_placement='above' needs the master copy "
                'of the synthesizer below (lower_synthesizer) and its '
                'optimizer' % rank)
    else:
        lower = lower_opt = None
    return synth, synth_opt, lower, lower_opt


class _Pending(object):
    """A step of rank ``k`` whose δ has not been consumed yet."""

    __slots__ = ('iteration', 'h', 't', 'prediction', 'version')

    def __init__(self, iteration, h, t, prediction, version):
        self.iteration = iteration
        self.h = h                    # h_k(j) (array, on the device)
        self.t = t                    # t(j)
        self.prediction = prediction  # the synth's output, with its graph
        self.version = version        # synth updates done before its forward


class _SynthLink(object):
    """A synthesizer link as one rank holds it: its optimizer, report
    name, version counter and snapshot keys (``<key>``,
    ``<key>_optimizer``, ``<key>_version``)."""

    key = 'synth'

    def __init__(self, link, optimizer, name, channel, observations,
                 target_scale):
        self.link = link
        self.optimizer = optimizer
        self.name = name
        self.channel = channel
        self.observations = observations
        self.target_scale = target_scale
        self.version = 0   # updates of the synthesizer so far

    def synthesize(self, h, t):
        """``(prediction, grad_synth)`` of :func:`split_step.synthesize`."""
        return split_step.synthesize(self.link, h, t, self.target_scale,
                                     self.name)

    def serialize(self, serializer):
        self.link.serialize(serializer[self.key])
        if self.optimizer is not None:
            self.optimizer.serialize(serializer[self.key + '_optimizer'])
        self.version = serializer(self.key + '_version', self.version)


class _Synthesizer(_SynthLink):
    """synth_k on rank ``k``, which uses its δ̂ for the module's update.

    Args:
        link (~chainer.Link): synth_k.
        optimizer (~chainer.Optimizer): Set up on ``link``; None on a
            :class:`Replica`.
        name (str): Report prefix of synth_k.
        channel (~chainer_vfbn.decoupled.channel.Channel): The rank's
            messages.
        observations (~chainer_vfbn.decoupled.channel.Observations): Where
            the rank's reports go.
        target_scale (str): What the synthesizer predicts.
        max_staleness (int): Steps whose δ may be outstanding after a step.
    """

    def __init__(self, link, optimizer, name, channel, observations,
                 target_scale, max_staleness):
        super(_Synthesizer, self).__init__(link, optimizer, name, channel,
                                           observations, target_scale)
        self.max_staleness = max_staleness


class StalenessQueue(_Synthesizer):
    """``'below'``: synth_k trained here, on the δ_k that rank ``k + 1``
    sends down, oldest step first."""

    def __init__(self, *args):
        super(StalenessQueue, self).__init__(*args)
        self._pending = collections.deque()

    def before_forward(self, iteration):
        """Nothing to wait for: this rank's synth_k is the master."""

    def record(self, iteration, h, t, prediction):
        """Queue step ``iteration``'s ``(h, t, δ̂)`` until its δ arrives."""
        self._pending.append(_Pending(iteration, h, t, prediction,
                                      self.version))

    def bound(self, iteration):
        """After step ``iteration``: train on the δ's the staleness bound
        forces, oldest first."""
        while len(self._pending) > self.max_staleness:
            self._consume(iteration)

    def settle(self, iteration):
        """Train on every outstanding δ."""
        while self._pending:
            self._consume(iteration)

    def outstanding(self, iteration):
        return len(self._pending)

    def _consume(self, iteration):
        """Train synth_k on the oldest outstanding δ (Eq. 3)."""
        entry = self._pending.popleft()
        grad_true = self.channel.recv_delta(entry.iteration)
        prediction = entry.prediction
        if prediction is None or entry.version != self.version:
            # Stale: the synthesizer changed since this forward (its old
            # graph would see parameters changed in place); recompute δ̂ for
            # the same (h, t) with the current parameters.
            prediction = self.link(chainer.Variable(entry.h), entry.t)
        try:
            values = split_step.regress(
                self.link, self.optimizer, prediction, grad_true,
                self.target_scale, self.name)
        except Diverged as e:
            e.iteration = entry.iteration
            raise
        self.version += 1
        for other in self._pending:  # their graphs now see changed weights
            other.prediction = None
        self.observations.add_all(self.name, values)
        self.observations.add(self.name + '/staleness',
                              iteration - entry.iteration)


class Replica(_Synthesizer):
    """``'above'``: a copy of synth_k whose weights rank ``k + 1`` trains
    and sends down, one version per step."""

    def before_forward(self, iteration):
        """Before step ``iteration``: take the version trained on
        δ(1..iteration-1-s)."""
        self._take(iteration - 1 - self.max_staleness)
        self.observations.add(self.name + '/staleness',
                              iteration - 1 - self.version)

    def record(self, iteration, h, t, prediction):
        """Nothing to keep: rank ``k + 1`` trains synth_k."""

    def bound(self, iteration):
        """Nothing to do: :meth:`before_forward` waits for the weights."""

    def settle(self, iteration):
        """Take every version up to ``iteration`` (the master's state)."""
        self._take(iteration)

    def outstanding(self, iteration):
        return iteration - self.version

    def _take(self, version):
        """Receive weight versions until ``version``."""
        rank = self.channel.rank
        while self.version < version:
            head, (flat,) = self.channel.recv(rank + 1, tr.TAG_WEIGHTS,
                                              'the synthesizer weights', 1)
            if int(head[tr.H_ITER]) != self.version + 1:
                raise DecoupledError(
                    'rank %d: expected synthesizer weights version %d from '
                    'rank %d, got %d' % (rank, self.version + 1, rank + 1,
                                         int(head[tr.H_ITER])))
            if not tr.load_flat_weights(self.link, flat):
                raise DecoupledError(
                    'rank %d: the synthesizer weights from rank %d have %d '
                    'values, the replica %d (different synthesizers?)'
                    % (rank, rank + 1, flat.size,
                       sum(p.array.size for p in tr.params(self.link))))
            self.version += 1


def synthesizer_side(placement, *args):
    """The :class:`StalenessQueue` (``'below'``) or :class:`Replica`
    (``'above'``) of synth_k; ``args`` as :class:`_Synthesizer`'s."""
    cls = Replica if placement == 'above' else StalenessQueue
    return cls(*args)


class MasterCopy(_SynthLink):
    """``'above'``, rank ``k > 0``: synth_{k-1}, trained here on the δ at
    this module's input; each update's weights go down to rank ``k - 1``.

    Args: as :class:`_SynthLink`'s, for synth_{k-1}.
    """

    key = 'lower_synth'

    def train(self, h, t, grad_true, info):
        """Eq. 3 on this step's input ``(h, t)`` and its δ; weights down."""
        prediction, _ = self.synthesize(h, t)
        values = split_step.regress(self.link, self.optimizer, prediction,
                                    grad_true, self.target_scale, self.name)
        self.version += 1
        flat = tr.flat_weights(self.link, self.channel.device.xp)
        self.channel.send(self.channel.rank - 1, tr.TAG_WEIGHTS, tr.TRAIN,
                          self.version, 0, info, [flat])
        self.observations.add_all(self.name, values)
