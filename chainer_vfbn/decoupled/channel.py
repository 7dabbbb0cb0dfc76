"""One rank's messages to its neighbours, and what it observes.

:class:`Channel` puts the header of :mod:`~chainer_vfbn.decoupled.transport`
on what a rank sends and moves what it receives onto the rank's device;
it also checks the iteration of the true gradients δ, which travel down
the chain one per step. :class:`Observations` collects the values a rank
reports (losses, the synthesizers' regression, staleness) between two log
entries.
"""
import collections

from chainer_vfbn.decoupled import transport as tr
from chainer_vfbn.decoupled.transport import DecoupledError


class Channel(object):
    """The messages of rank ``transport.rank``.

    Args:
        transport: The rank's transport.
        device (~chainer.backend.Device): Where received arrays go.
    """

    def __init__(self, transport, device):
        self.transport = transport
        self.device = device
        self.rank = transport.rank

    def send(self, dest, tag, kind, iteration, events, info, arrays):
        """Send ``arrays`` to ``dest`` without waiting, after a header of
        ``kind``, ``iteration``, the event bits and the epoch ``info``."""
        head = tr.header(kind, iteration, events, info,
                         arrays[0] if arrays else None)
        self.transport.isend(dest, tag, head, arrays)

    def recv(self, source, tag, what, n_arrays):
        """Wait for a message from ``source``; ``(header, arrays)`` with the
        arrays on the device (``what`` names it in a timeout's error)."""
        head, arrays = self.transport.recv(source, tag, what, n_arrays)
        return head, [self.device.send(a) for a in arrays]

    def send_delta(self, iteration, grad, info):
        """δ of ``iteration`` (the gradient at this module's input) down."""
        self.send(self.rank - 1, tr.TAG_DELTA, tr.TRAIN, iteration, 0, info,
                  [grad])

    def recv_delta(self, iteration):
        """δ of ``iteration`` (at this module's output), from the rank
        above; raises if the rank above sent another iteration's."""
        head, (grad,) = self.recv(self.rank + 1, tr.TAG_DELTA,
                                  'the true gradient δ', 1)
        if int(head[tr.H_ITER]) != iteration:
            raise DecoupledError(
                'rank %d: expected δ of iteration %d from rank %d, got %d'
                % (self.rank, iteration, self.rank + 1, int(head[tr.H_ITER])))
        return grad


class Observations(object):
    """Values reported by one rank, averaged when popped."""

    def __init__(self):
        self._values = collections.defaultdict(list)

    def add(self, key, value):
        self._values[key].append(value)

    def add_all(self, name, values):
        """Add ``values`` (``key -> value``) as ``<name>/<key>``."""
        for key, value in values.items():
            self.add('%s/%s' % (name, key), value)

    def pop_means(self):
        """``key -> mean`` of the values added since the last call (and
        ``<key>_max`` for every ``.../staleness``); then forget them."""
        out = {}
        for key, values in self._values.items():
            out[key] = float(sum(float(v) for v in values) / len(values))
            if key.endswith('/staleness'):
                out[key + '_max'] = float(max(float(v) for v in values))
        self._values.clear()
        return out
