"""The decoupled worker in one process, over the loopback transport.

No MPI: the ranks are threads of this process
(:func:`chainer_vfbn.decoupled.transport.run_loopback`). With
``max_staleness = 0`` every rank waits for δ before its next step, so the
ranks compute exactly what the synchronous
:class:`~chainer_vfbn.updaters.SyntheticGradientUpdater` computes; the
synthesizer placements (``'below'``, ``'above'``) give the same numbers;
``mode='bp'`` gives plain back-propagation's.
"""
import chainer_vfbn  # NOQA  (before chainer)

import chainer  # NOQA
import chainer.links as L  # NOQA
import numpy  # NOQA
import pytest  # NOQA

from chainer_vfbn import methods  # NOQA
from chainer_vfbn.decoupled import ranks  # NOQA
from chainer_vfbn.decoupled import transport as tr  # NOQA
from chainer_vfbn.decoupled import worker as wk  # NOQA
from chainer_vfbn.models import resnet_cifar  # NOQA
from chainer_vfbn.updaters import SyntheticGradientUpdater  # NOQA

from support import ALPHA_GS  # NOQA
from support import ARCH  # NOQA
from support import BATCH  # NOQA
from support import LR  # NOQA
from support import N_DATA  # NOQA

ITERATIONS = 5   # crosses two epoch boundaries


def _iterator():
    rng = numpy.random.RandomState(1)
    x = rng.standard_normal((N_DATA, 3, 24, 24)).astype(numpy.float32)
    t = rng.randint(0, 10, N_DATA).astype(numpy.int32)
    return chainer.iterators.SerialIterator(
        chainer.datasets.TupleDataset(x, t), BATCH, shuffle=False)


def _method(name, split):
    numpy.random.seed(0)
    return methods.build_pipeline(name, resnet_cifar(ARCH), split_at=split,
                              lr=LR, alpha_gs=ALPHA_GS)


def _params(links):
    return {'%d%s' % (i, n): numpy.array(p.array)
            for i, link in enumerate(links) for n, p in link.namedparams()}


def _run_decoupled(name, split, placement, staleness=0):
    """Train ``ITERATIONS`` steps with one thread per rank; the method and
    every rank's observations (one LOG per iteration)."""
    method = _method(name, split)
    logs = [[] for _ in method.modules]

    def rank(transport):
        w = ranks.make_worker(method, transport, max_staleness=staleness,
                              placement=placement)

        def on_events(w, bits):
            logs[w.rank].append(w.pop_observation())
        w.run(ITERATIONS, iterator=_iterator() if w.rank == 0 else None,
              events=lambda i, it: wk.LOG, on_events=on_events,
              abort_on_error=False)
        return w
    workers = tr.run_loopback([rank] * len(method.modules))
    return method, workers, logs


def _run_synchronous(name, split):
    method = _method(name, split)
    updater = SyntheticGradientUpdater(_iterator(), method.modules,
                                       method.synthesizers, method.optimizers)
    observed = []
    for _ in range(ITERATIONS):
        obs = {}
        with chainer.reporter.Reporter().scope(obs):
            updater.update()
        observed.append({k: float(chainer.as_array(v))
                         for k, v in obs.items()})
    return method, observed


@pytest.mark.parametrize('placement', ['below', 'above'])
@pytest.mark.parametrize('split', [['stage2_unit1'],
                                   ['stage1_unit1', 'stage3_unit1']])
def test_staleness0_equals_synchronous_updater(split, placement):
    sync, observed = _run_synchronous('vfbn', split)
    dec, workers, logs = _run_decoupled('vfbn', split, placement)
    assert [w.iteration for w in workers] == [ITERATIONS] * len(workers)
    want = _params(sync.modules + sync.synthesizers)
    got = _params(dec.modules + dec.synthesizers)
    assert sorted(want) == sorted(got)
    for key in want:
        numpy.testing.assert_allclose(got[key], want[key], rtol=1e-5,
                                      atol=1e-5, err_msg=key)
    top = len(dec.modules) - 1
    for i in range(ITERATIONS):
        numpy.testing.assert_allclose(logs[top][i]['main/loss'],
                                      observed[i]['main/loss'], rtol=1e-5)
    # Each synthesizer's regression is reported where it trains.
    names = [key for key in observed[0] if key.endswith('/loss') and
             key != 'main/loss']
    for name in names:
        held = [log for log in logs if name in log[-1]]
        assert len(held) == 1, name
        numpy.testing.assert_allclose(held[0][-1][name],
                                      observed[-1][name], rtol=1e-4)


def test_bp_mode_equals_backprop():
    numpy.random.seed(0)
    net = resnet_cifar(ARCH)
    clf = L.Classifier(net)
    updater = chainer.training.updaters.StandardUpdater(
        _iterator(), methods.momentum_sgd(clf, LR, 0.9, 1e-4))
    for _ in range(ITERATIONS):
        updater.update()
    dec, workers, logs = _run_decoupled('bp', ['stage2_unit1'], 'below')
    want, got = _params([net]), _params([dec.links[0]])
    for key in want:
        numpy.testing.assert_allclose(got[key], want[key], rtol=1e-5,
                                      atol=1e-6, err_msg=key)


def test_staleness_bound_is_kept():
    _, workers, logs = _run_decoupled('vfbn', ['stage2_unit1'], 'below',
                                      staleness=2)
    stale = [log['synth/staleness_max'] for log in logs[0]
             if 'synth/staleness_max' in log]
    assert max(stale) == 2
    assert workers[0].outstanding == 0   # the STOP iteration settles


def test_a_peer_that_sends_nothing_times_out():
    network = tr.LoopbackNetwork(2)
    transport = tr.LoopbackTransport(network, 1, timeout=0.2)
    with pytest.raises(tr.DecoupledError,
                       match='waited 0 s for the activation h from rank 0'):
        transport.recv(0, tr.TAG_FORWARD, 'the activation h', 2)
