"""chainer_vfbn.runs.snapshot_sets: a decoupled run's clock counts every
session once (issue #20), without MPI."""
import time

import chainer
import pytest

from chainer_vfbn.runs import snapshot_sets as snapshots
from support import FakeIterator
from support import FakeWorker


def _save(state):
    saved = chainer.serializers.DictionarySerializer()
    state.serialize(saved)
    return saved.target


def test_saving_a_snapshot_does_not_count_the_session_twice():
    state = snapshots.RankState(FakeWorker(), FakeIterator())
    state.session_start = time.time() - 10.   # 10 s into the first session
    first = float(_save(state)['elapsed'])
    assert first == pytest.approx(10., abs=1.)
    # The clock goes on from 10 s, not from 20 s (10 saved + 10 of the
    # session counted again).
    assert state.elapsed_time() == pytest.approx(10., abs=1.)
    assert float(_save(state)['elapsed']) == pytest.approx(10., abs=1.)
    # A resumed session starts from what was saved.
    resumed = snapshots.RankState(FakeWorker(), FakeIterator())
    chainer.serializers.NpzDeserializer(_save(state)).load(resumed)
    resumed.session_start = time.time() - 5.
    assert resumed.elapsed_time() == pytest.approx(15., abs=1.)
