"""What one rank's module does with a message: a training step, or a
test-mode forward of the evaluation relay.

:class:`TrainStep` is one training iteration of module ``k`` (forward, h
up, backward from the task loss, δ or δ̂, δ_{k-1} down, the update), in the
order that lets the other ranks wait as little as they can.
:class:`EvalRelay` passes evaluation batches up the chain and the scores
back to rank 0. When each runs is :class:`~chainer_vfbn.decoupled.worker.
DecoupledWorker`'s decision.
"""
import chainer
import chainer.functions as F

from chainer_vfbn import split_step
from chainer_vfbn.decoupled import transport as tr
from chainer_vfbn.decoupled.transport import EpochInfo
from chainer_vfbn.divergence import check_finite


class TrainStep(object):
    """One training iteration of rank ``k``'s module.

    Args:
        module (~chainer.Link): The rank's module.
        optimizer (~chainer.Optimizer): Set up on ``module``.
        loss_func: ``loss_func(y, t)`` (the last rank).
        mode (str): ``'synthetic'`` or ``'bp'``.
        channel (~chainer_vfbn.decoupled.channel.Channel): The messages.
        observations (~chainer_vfbn.decoupled.channel.Observations): Where
            the last rank reports its loss and accuracy.
        synth: synth_k's :class:`~chainer_vfbn.decoupled.placement.
            StalenessQueue` or :class:`~chainer_vfbn.decoupled.placement.
            Replica` (``'synthetic'``, below the top), else None.
        lower (~chainer_vfbn.decoupled.placement.MasterCopy): synth_{k-1}'s
            master copy (``'above'``, ranks ``k > 0``), else None.
    """

    def __init__(self, module, optimizer, loss_func, mode, channel,
                 observations, synth, lower):
        self.module = module
        self.optimizer = optimizer
        self.loss_func = loss_func
        self.mode = mode
        self.channel = channel
        self.observations = observations
        self.synth = synth
        self.lower = lower
        rank, size = channel.rank, channel.transport.size
        self.is_first, self.is_last = rank == 0, rank == size - 1

    def __call__(self, iteration, inp, t, info, events):
        """Step ``iteration`` on the input ``inp`` (a Variable: its grad
        is δ_{k-1}) and labels ``t``; ``info`` and ``events`` go up."""
        if self.is_last:
            self._top(iteration, inp, t, info)
        elif self.mode == 'bp':
            self._bp(iteration, inp, t, info, events)
        else:
            self._synthetic(iteration, inp, t, info, events)

    def _top(self, iteration, inp, t, info):
        """The last module: plain back-prop of the task loss."""
        y, loss = split_step.top_backward(self.module, inp, t,
                                          self.loss_func)
        check_finite('main/loss', loss)
        # δ_{k-1} (or synth_{k-1}'s new weights) down first, so the rank
        # below waits as little as it can.
        self._send_down(iteration, inp, t, info)
        self.optimizer.update()
        self.observations.add('main/loss', loss.array)
        self.observations.add('main/accuracy', F.accuracy(y, t).array)

    def _bp(self, iteration, inp, t, info, events):
        """Model-parallel BP: send h up, then wait for δ (the lock)."""
        h = self.module(inp)
        self._send_up(iteration, events, info, h, t)
        split_step.backward_from(self.module, h,
                                 self.channel.recv_delta(iteration))
        if not self.is_first:
            self.channel.send_delta(iteration, inp.grad, info)
        self.optimizer.update()

    def _synthetic(self, iteration, inp, t, info, events):
        """A module below a split: update at once with δ̂ (Eq. 2)."""
        self.synth.before_forward(iteration)
        h = self.module(inp)
        prediction, grad_synth = self.synth.synthesize(h.array, t)
        # h goes up at once: the rank above can start.
        self._send_up(iteration, events, info, h, t)
        split_step.backward_from(self.module, h, grad_synth)
        if not self.is_first:
            self._send_down(iteration, inp, t, info)
        self.optimizer.update()
        self.synth.record(iteration, h.array, t, prediction)

    def _send_up(self, iteration, events, info, h, t):
        self.channel.send(self.channel.rank + 1, tr.TAG_FORWARD, tr.TRAIN,
                          iteration, events, info, [h.array, t])

    def _send_down(self, iteration, inp, t, info):
        """After the backward: δ_{k-1} down, or train synth_{k-1} here."""
        if self.lower is None:
            self.channel.send_delta(iteration, inp.grad, info)
        else:
            self.lower.train(inp.array, t, inp.grad, info)


class EvalRelay(object):
    """Test-mode forwards of evaluation batches through the ranks.

    Each rank runs its module in test mode, without a graph, and sends the
    output up; the last rank sends the class scores to rank 0.

    Args:
        module (~chainer.Link): The rank's module.
        channel (~chainer_vfbn.decoupled.channel.Channel): The messages.
    """

    def __init__(self, module, channel):
        self.module = module
        self.channel = channel
        self.rank, self.size = channel.rank, channel.transport.size

    def forward(self, x, iteration):
        """This rank's module on ``x``; the output goes up (scores from
        the last rank to rank 0). ``iteration`` labels the message."""
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            y = self.module(x)
        if self.rank == self.size - 1:
            self.channel.send(0, tr.TAG_SCORES, tr.EVAL, iteration, 0,
                              EpochInfo(), [y.array])
        else:
            t = self.channel.device.xp.zeros(y.shape[0], 'i')
            self.channel.send(self.rank + 1, tr.TAG_FORWARD, tr.EVAL,
                              iteration, 0, EpochInfo(), [y.array, t])

    def predict(self, x, iteration):
        """Rank 0: the scores (an array on the device) of the images
        ``x`` (an array or a Variable) from the last rank."""
        x = x.array if isinstance(x, chainer.Variable) else x
        self.forward(self.channel.device.send(x), iteration)
        _, (scores,) = self.channel.recv(self.size - 1, tr.TAG_SCORES,
                                         'evaluation scores', 1)
        return scores

    def end(self, iteration):
        """Rank 0: send the end of the evaluation to rank 1."""
        self.channel.send(1, tr.TAG_FORWARD, tr.EVAL_END, iteration, 0,
                          EpochInfo(), [])

    def pass_end(self, head):
        """Ranks > 0: pass the end (its header ``head``) up the chain."""
        if self.rank < self.size - 1:
            self.channel.transport.isend(self.rank + 1, tr.TAG_FORWARD,
                                         head, [])
