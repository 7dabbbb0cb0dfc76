"""chainer_vfbn._compat item 4: ChainerMN's multi-node iterator on NumPy 2.

``chainermn.iterators.create_multi_node_iterator`` makes the non-master
ranks call ``int()`` on a 1-element array (the dataset size), which NumPy
>= 2.4 rejects and NumPy 1.25-2.3 warn about. The tests launch
``mpiexec -n 2`` on this file (its ``__main__`` is the worker) with
warnings as errors, so the unpatched iterator fails on either stack, and
check that, patched, both ranks see the same batches across an epoch
boundary. They skip where ``mpiexec`` or ``mpi4py`` is missing.
"""
import json
import os
import subprocess
import sys

import chainer_vfbn  # NOQA  (before chainer: installs the patch)

import numpy  # NOQA
import pytest  # NOQA

import _mpi  # NOQA  (tests/_mpi.py)
from support import REPO  # NOQA

N_DATA, BATCH, STEPS = 10, 4, 4   # 2.5 batches per epoch: crosses an epoch


def _worker(mode):
    """One rank: build the iterator, take STEPS batches, print them."""
    import chainer
    import chainermn
    from chainermn.iterators import multi_node_iterator as mni
    from mpi4py import MPI
    try:
        if mode == 'unpatched':
            cls = mni._MultiNodeIteratorSlave
            cls.__init__ = cls.__init__.__wrapped__
        comm = chainermn.create_communicator('naive')
        actual = None  # only the master reads data
        if comm.rank == 0:
            x = numpy.arange(N_DATA * 3, dtype=numpy.float32)
            t = numpy.arange(N_DATA, dtype=numpy.int32)
            numpy.random.seed(3)
            actual = chainer.iterators.SerialIterator(
                chainer.datasets.TupleDataset(x.reshape(N_DATA, 3), t),
                BATCH, shuffle=True)
        it = chainermn.iterators.create_multi_node_iterator(actual, comm)
        batches = []
        for _ in range(STEPS):
            batch = it.next()
            batches.append({
                'x': [b[0].tolist() for b in batch],
                't': [int(b[1]) for b in batch],
                'epoch': int(it.epoch),
                'epoch_detail': float(it.epoch_detail),
                'is_new_epoch': bool(it.is_new_epoch)})
        mine = {'rank': comm.rank, 'batches': batches,
                'patched': bool(getattr(mni._MultiNodeIteratorSlave,
                                        '_chainer_vfbn_patched', False))}
        # One line from rank 0 with both results: lines that two ranks print
        # at once can interleave in mpiexec's output under load.
        both = MPI.COMM_WORLD.gather(mine, root=0)
        if comm.rank == 0:
            print('RESULT ' + json.dumps(both), flush=True)
    except BaseException as e:  # one rank failing must stop both
        print('RANK %d FAILED: %s: %s'
              % (MPI.COMM_WORLD.rank, type(e).__name__, e), flush=True)
        MPI.COMM_WORLD.Abort(3)


def _run(mode):
    _mpi.require_mpi()
    cmd = _mpi.MPIEXEC + ['-n', '2', sys.executable, '-W',
                          'error::DeprecationWarning',
                          os.path.abspath(__file__), mode]
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env=_mpi.env(), timeout=120, cwd=REPO)
    results = [r for line in proc.stdout.splitlines()
               if line.startswith('RESULT ')
               for r in json.loads(line[len('RESULT '):])]
    return proc, sorted(results, key=lambda r: r['rank'])


def test_patched_iterator_gives_every_rank_the_same_batches():
    proc, results = _run('patched')
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [r['rank'] for r in results] == [0, 1]
    master, slave = results
    assert slave['patched']
    assert slave['batches'] == master['batches']
    # The run really crossed an epoch (2.5 batches each) on both ranks.
    epochs = [b['epoch'] for b in slave['batches']]
    assert epochs == [0, 0, 1, 1]
    assert [b['is_new_epoch'] for b in slave['batches']] == \
        [False, False, True, False]
    assert slave['batches'][0]['epoch_detail'] == pytest.approx(
        BATCH / N_DATA)
    # Shuffled: the first epoch (2 batches and half of the third) is a
    # permutation of the data set, not in order.
    first = [t for b in slave['batches'][:2] for t in b['t']] + \
        slave['batches'][2]['t'][:N_DATA - 2 * BATCH]
    assert sorted(first) == list(range(N_DATA))
    assert first != list(range(N_DATA))


def test_unpatched_iterator_fails_on_the_slave_rank():
    """What the patch is for: the same run without it stops on rank 1."""
    proc, results = _run('unpatched')
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert 'RANK 1 FAILED' in out, out[-3000:]
    if tuple(int(v) for v in numpy.__version__.split('.')[:2]) >= (2, 4):
        assert 'only 0-dimensional arrays can be converted' in out
    else:
        assert 'Conversion of an array with ndim > 0 to a scalar' in out


if __name__ == '__main__':
    _worker(sys.argv[1])
