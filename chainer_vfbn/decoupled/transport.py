"""How the ranks of a decoupled run talk: the message codec and transports.

A message is a fixed 16-float header (kind, iteration, event bits, epoch
information, dtype and shape of its first array) followed by its arrays.
Arrays travel as contiguous host (NumPy) buffers: GPU arrays are staged
through host memory (``cuda.to_cpu``), which works with any MPI.

:class:`MPITransport` sends them over the mpi4py communicator under a
ChainerMN one (``comm.mpi_comm``) with non-blocking ``Isend``/``Irecv``,
because ChainerMN's own ``send``/``recv`` block. Every wait polls its
requests (``Test``) with a short sleep, so that a waiting rank leaves its
core to the others, and gives up after ``timeout`` seconds with a
:class:`DecoupledError`; a rank that dies is handled by ``mpiexec``, which
kills the others (``docs/decoupled.md``).

:class:`LoopbackTransport` carries the same messages between the ranks of
one process (one thread per rank, :func:`run_loopback`), so that the worker
can be tested without MPI.
"""
import collections
import queue
import sys
import threading
import time
import traceback

import numpy

from chainer.backends import cuda

# Message kinds.
TRAIN = 1
EVAL = 2
EVAL_END = 3

# MPI tags of the headers; a message's arrays follow on ``tag + 1 + i``.
TAG_FORWARD = 11       # header, h, t (rank k -> k + 1)
TAG_DELTA = 21         # header, δ (rank k + 1 -> k)
TAG_SCORES = 31        # header, class scores (last rank -> 0)
TAG_GATHER = 41        # a pickled object (rank k -> 0)
TAG_WEIGHTS = 51       # header, synth_k's flat weights (k + 1 -> k)

HEADER_LEN = 16
H_KIND, H_ITER, H_EVENTS, H_EPOCH, H_NEW_EPOCH = 0, 1, 2, 3, 4
H_DETAIL, H_PREV_DETAIL, H_DTYPE, H_NDIM, H_SHAPE = 5, 6, 7, 8, 9
_MAX_NDIM = HEADER_LEN - H_SHAPE
_DTYPES = (numpy.float32, numpy.float64, numpy.float16)


class DecoupledError(RuntimeError):
    """A rank gave up: a peer sent nothing in time, or sent the wrong thing."""


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

    @classmethod
    def of_header(cls, header):
        prev = header[H_PREV_DETAIL]
        return cls(header[H_EPOCH], header[H_NEW_EPOCH], header[H_DETAIL],
                   None if prev < 0 else prev)


def _dtype_code(dtype):
    for code, d in enumerate(_DTYPES):
        if numpy.dtype(d) == dtype:
            return code
    raise TypeError('cannot send arrays of dtype %s' % dtype)


def header(kind, iteration, events, info, array):
    """The header of a message whose first array is ``array`` (or None)."""
    out = numpy.zeros(HEADER_LEN, numpy.float64)
    out[H_KIND] = kind
    out[H_ITER] = iteration
    out[H_EVENTS] = events
    out[H_EPOCH] = info.epoch
    out[H_NEW_EPOCH] = info.is_new_epoch
    out[H_DETAIL] = info.epoch_detail
    out[H_PREV_DETAIL] = (-1 if info.previous_epoch_detail is None
                          else info.previous_epoch_detail)
    if array is not None:
        if array.ndim > _MAX_NDIM:
            raise ValueError('cannot send arrays of %d dims' % array.ndim)
        out[H_DTYPE] = _dtype_code(array.dtype)
        out[H_NDIM] = array.ndim
        out[H_SHAPE:H_SHAPE + array.ndim] = array.shape
    return out


def empty_buffers(head, n_arrays):
    """Receive buffers for a message: its first array and, for
    ``n_arrays == 2``, int32 labels of the same length."""
    if not n_arrays or int(head[H_KIND]) == EVAL_END:
        return []
    ndim = int(head[H_NDIM])
    shape = tuple(int(s) for s in head[H_SHAPE:H_SHAPE + ndim])
    bufs = [numpy.empty(shape, _DTYPES[int(head[H_DTYPE])])]
    if n_arrays == 2:
        bufs.append(numpy.empty(shape[:1], numpy.int32))
    return bufs


def host_buffers(arrays):
    """Contiguous NumPy copies (GPU arrays staged through the host)."""
    return [numpy.ascontiguousarray(cuda.to_cpu(a)) for a in arrays]


# ---------------------------------------------------------- weight transfer
def params(link):
    """``link``'s parameters in a fixed (name) order."""
    return [p for _, p in sorted(link.namedparams())]


def flat_weights(link, xp):
    """Every parameter of ``link``, concatenated into one vector."""
    return xp.concatenate([p.array.ravel() for p in params(link)])


def load_flat_weights(link, flat):
    """Copy :func:`flat_weights`'s vector into ``link``'s parameters.

    Returns:
        bool: Whether the sizes matched (nothing is half-copied otherwise
        only when the vector is too short for the next parameter).
    """
    offset = 0
    for p in params(link):
        size = p.array.size
        if offset + size > flat.size:
            return False
        p.array[...] = flat[offset:offset + size].reshape(p.array.shape)
        offset += size
    return offset == flat.size


# -------------------------------------------------------------- transports
class _Transport(object):
    """What the worker needs from a transport; see :class:`MPITransport`."""

    def __init__(self, rank, size, timeout):
        self.rank = rank
        self.size = size
        self.timeout = float(timeout)
        self.wait_time = collections.defaultdict(float)

    def _give_up(self, what, peer):
        raise DecoupledError(
            'rank %d: waited %.0f s for %s from rank %d; giving up (is rank '
            '%d alive?)' % (self.rank, self.timeout, what, peer, peer))

    def pop_wait_time(self):
        """Seconds spent blocked on peers since the last call."""
        total = float(sum(self.wait_time.values()))
        self.wait_time.clear()
        return total


class MPITransport(_Transport):
    """Non-blocking point-to-point messages over ``comm.mpi_comm``.

    Args:
        comm: A ChainerMN communicator (``rank``, ``size``, ``mpi_comm``).
        timeout (float): Seconds any wait for a peer may last.
    """

    def __init__(self, comm, timeout=300.0):
        super().__init__(comm.rank, comm.size, timeout)
        self.mpi_comm = comm.mpi_comm
        self._sends = []                 # [(requests, buffers)] in flight

    def _poll(self, done, what, peer, record=True):
        """Poll ``done()`` until true; DecoupledError on timeout.

        The wait counts in :meth:`pop_wait_time` if ``record``.
        """
        start = time.monotonic()
        pause = 1e-5
        while True:
            result = done()
            if result:
                break
            if time.monotonic() - start > self.timeout:
                self._give_up(what, peer)
            time.sleep(pause)
            pause = min(2 * pause, 1e-3)
        if record:
            self.wait_time[what] += time.monotonic() - start
        return result

    def _wait_all(self, requests, what, peer):
        from mpi4py import MPI  # optional (the mpi extra): MPI transport only
        self._poll(lambda: MPI.Request.Testall(requests), what, peer)

    def isend(self, dest, tag, head, arrays):
        """Send a header and its arrays without blocking."""
        bufs = [head] + host_buffers(arrays)
        reqs = [self.mpi_comm.Isend(buf, dest=dest, tag=tag + i)
                for i, buf in enumerate(bufs)]
        self._sends.append((reqs, bufs))
        self.reap()

    def reap(self):
        """Release the buffers of completed sends (Test drives progress)."""
        from mpi4py import MPI  # optional (the mpi extra): MPI transport only
        self._sends = [(reqs, bufs) for reqs, bufs in self._sends
                       if not MPI.Request.Testall(reqs)]

    def flush(self, peer):
        """Wait until every message this rank sent has been received."""
        for reqs, _ in self._sends:
            self._wait_all(reqs, 'delivery of sent messages', peer)
        self._sends = []

    def recv(self, source, tag, what, n_arrays):
        """A header and ``n_arrays`` host arrays (the 2nd one int32)."""
        head = numpy.empty(HEADER_LEN, numpy.float64)
        self._wait_all([self.mpi_comm.Irecv(head, source=source, tag=tag)],
                       what, source)
        bufs = empty_buffers(head, n_arrays)
        reqs = [self.mpi_comm.Irecv(b, source=source, tag=tag + 1 + i)
                for i, b in enumerate(bufs)]
        self._wait_all(reqs, what, source)
        return head, bufs

    def gather(self, obj):
        """One picklable object per rank, as a list on rank 0 (else None).

        Polls with the timeout (no blocking collective).
        """
        if self.rank != 0:
            req = self.mpi_comm.isend(obj, dest=0, tag=TAG_GATHER)
            self._wait_all([req], 'delivery of a gathered object', 0)
            return None
        out = [obj]
        for source in range(1, self.size):
            req = self.mpi_comm.irecv(source=source, tag=TAG_GATHER)
            out.append(self._poll(lambda: _tested(req), 'the report',
                                  source, record=False)[1])
        return out

    def abort(self, error):
        abort(self.mpi_comm, self.rank, error)


def _tested(request):
    done, value = request.test()
    return (done, value) if done else None


def abort(mpi_comm, rank, error):
    """Print ``error`` as one clear block and abort the whole MPI job.

    ``MPI_Abort`` makes ``mpiexec`` kill every rank and exit non-zero;
    without it a rank that raised would finalize MPI and leave its peers
    waiting for messages that never come.
    """
    if not isinstance(error, (DecoupledError, KeyboardInterrupt)):
        traceback.print_exception(type(error), error, error.__traceback__)
    sys.stderr.write('decoupled: rank %d stops the run: %s: %s\n'
                     % (rank, type(error).__name__, error))
    sys.stderr.flush()
    mpi_comm.Abort(1)


class LoopbackNetwork(object):
    """The mailboxes of ``size`` ranks in one process."""

    def __init__(self, size):
        self.size = size
        self._boxes = collections.defaultdict(queue.Queue)
        self._lock = threading.Lock()
        self.failed = None               # the first rank's error

    def box(self, source, dest, tag):
        with self._lock:
            return self._boxes[source, dest, tag]


class LoopbackTransport(_Transport):
    """The :class:`MPITransport` interface between threads of one process.

    Messages are copied on send (as MPI would), so a sender may overwrite
    its arrays at once. A rank whose peer failed stops waiting at once.
    """

    def __init__(self, network, rank, timeout=60.0):
        super().__init__(rank, network.size, timeout)
        self.network = network

    def isend(self, dest, tag, head, arrays):
        message = (numpy.array(head), host_buffers(arrays))
        self.network.box(self.rank, dest, tag).put(message)

    def reap(self):
        pass

    def flush(self, peer):
        pass

    def _get(self, box, what, peer):
        start = time.monotonic()
        while True:
            if self.network.failed is not None:
                raise DecoupledError('rank %d: a peer failed: %s'
                                     % (self.rank, self.network.failed))
            try:
                item = box.get(timeout=0.05)
                break
            except queue.Empty:
                if time.monotonic() - start > self.timeout:
                    self._give_up(what, peer)
        self.wait_time[what] += time.monotonic() - start
        return item

    def recv(self, source, tag, what, n_arrays):
        head, arrays = self._get(self.network.box(source, self.rank, tag),
                                 what, source)
        return head, arrays[:n_arrays]

    def gather(self, obj):
        if self.rank != 0:
            self.network.box(self.rank, 0, TAG_GATHER).put(obj)
            return None
        return [obj] + [
            self._get(self.network.box(source, 0, TAG_GATHER), 'the report',
                      source) for source in range(1, self.size)]

    def abort(self, error):
        self.network.failed = '%s: %s' % (type(error).__name__, error)
        raise error


def run_loopback(targets):
    """Run ``targets[k](LoopbackTransport of rank k)`` in one thread each.

    Returns:
        list: What each target returned. The first exception is re-raised.
    """
    network = LoopbackNetwork(len(targets))
    results = [None] * len(targets)
    errors = []

    def call(k):
        try:
            results[k] = targets[k](LoopbackTransport(network, k))
        except BaseException as e:  # reported to the caller below
            if network.failed is None:
                network.failed = '%s: %s' % (type(e).__name__, e)
            errors.append(e)

    threads = [threading.Thread(target=call, args=(k,))
               for k in range(len(targets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
