"""chainer_vfbn.experiments.bench.decoupled_speed: one process's timed steps.

(:func:`time_ranks` needs two MPI ranks; ``benchmarks/bench_decoupled.py``
runs it under ``mpiexec``.)"""
import chainer
import numpy
import pytest

from chainer_vfbn.experiments.bench import decoupled_speed
from chainer_vfbn.updaters import SyntheticGradientUpdater


@pytest.mark.parametrize('mode, updater', [
    ('bp', chainer.training.updaters.StandardUpdater),
    ('vfbn', SyntheticGradientUpdater)])
def test_time_one_process_counts_the_timed_steps(monkeypatch, mode, updater):
    updates = []
    real = updater.update
    monkeypatch.setattr(updater, 'update',
                        lambda self: updates.append(type(self)) or real(self))
    ticks = iter([10., 14.])   # 4 s for the timed steps
    monkeypatch.setattr(decoupled_speed.time, 'perf_counter',
                        lambda: next(ticks))
    result = decoupled_speed.time_one_process(
        mode, 'resnet8-paper', None, batchsize=2, warmup=1, iterations=2)
    assert updates == [updater] * 3
    assert result == {'images_per_sec': 1., 'step_s': 2.}


def test_batches_are_fixed_and_cycled():
    numpy.random.seed(0)
    net, _ = decoupled_speed._method('resnet8-paper', 'bp', None)
    it = decoupled_speed._batches(net, 2, n=2)
    first = [next(it) for _ in range(2)]
    again = [next(it) for _ in range(2)]
    for a, b in zip(first, again):
        numpy.testing.assert_array_equal(a[0][0], b[0][0])
    assert first[0][0][0].shape == (3, net.insize, net.insize)
    assert not numpy.array_equal(first[0][0][0], first[1][0][0])
