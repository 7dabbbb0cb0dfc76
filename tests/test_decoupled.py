"""Decoupled training over MPI ranks (chainer_vfbn.decoupled, --decoupled).

The tests launch ``mpiexec --allow-run-as-root --oversubscribe -n K`` on
this very file (its ``__main__`` is the MPI worker) or on the CLI, and
compare what the ranks computed with the same computation in one process:

* ``max_staleness = 0`` gives exactly the numbers of the synchronous
  :class:`~chainer_vfbn.updaters.SyntheticGradientUpdater` (K = 2 and K = 3);
* ``max_staleness = 1`` gives exactly a sequential simulation of the stale
  schedule (each δ consumed one step late, δ̂ recomputed for its own h);
* ``mode='bp'`` (model-parallel back-prop) gives plain back-prop's numbers;
* the CLI run writes one log/plots/summary, resumes a killed run from its
  snapshot set with the numbers of an uninterrupted run, and a rank killed
  with SIGKILL stops the whole job within seconds with a clear message.

They skip, with the reason, where ``mpiexec`` or ``mpi4py`` is missing.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import chainer_vfbn  # NOQA  (before chainer)

import chainer  # NOQA
import numpy  # NOQA
import pytest  # NOQA

import _mpi  # NOQA  (tests/_mpi.py)
from support import ALPHA_GS  # NOQA
from support import ARCH  # NOQA
from support import BATCH  # NOQA
from support import LR  # NOQA
from support import N_DATA  # NOQA
from support import REPO  # NOQA
from chainer_vfbn import methods  # NOQA
from chainer_vfbn.decoupled import ranks  # NOQA
from chainer_vfbn.models import resnet_cifar  # NOQA

MPIEXEC = _mpi.MPIEXEC


def _data():
    rng = numpy.random.RandomState(1)
    x = rng.standard_normal((N_DATA, 3, 24, 24)).astype(numpy.float32)
    t = rng.randint(0, 10, N_DATA).astype(numpy.int32)
    return x, t


def _iterator():
    x, t = _data()
    return chainer.iterators.SerialIterator(
        chainer.datasets.TupleDataset(x, t), BATCH, shuffle=False)


def _method(method, split):
    """The network and its method, built the same way on every rank."""
    numpy.random.seed(0)
    net = resnet_cifar(ARCH)
    return net, methods.build_pipeline(method, net, split_at=split, lr=LR,
                                   alpha_gs=ALPHA_GS)


def _build(method, split):
    net, m = _method(method, split)
    return net, m.modules, m.synthesizers, m.optimizers


def _state(link):
    """``{path: array copy}`` of a link's parameters and persistents."""
    d = chainer.serializers.DictionarySerializer()
    d.save(link)
    return {k: numpy.array(v) for k, v in d.target.items()}


# ------------------------------------------------------------ MPI worker
def _worker(out, configs):
    import chainermn
    from chainer_vfbn import decoupled

    comm = chainermn.create_communicator('naive')
    with open(os.path.join(out, 'pid.rank%d' % comm.rank), 'w') as f:
        f.write(str(os.getpid()))
    for cfg in configs:
        net, method = _method(cfg['method'], cfg['split'])
        modules, synths = method.modules, method.synthesizers
        k = comm.rank
        placement = cfg.get('placement', 'below')
        has_synth = k < len(modules) - 1 and synths
        has_lower = placement == 'above' and k > 0 and synths
        worker = ranks.make_worker(method, comm,
                                   max_staleness=cfg['staleness'],
                                   placement=placement, timeout=60)
        log = []

        def on_events(w, bits):
            log.append(w.pop_observation())
            if w.iteration == cfg.get('raise_at') and w.rank == 1:
                raise RuntimeError('injected failure at iteration %d'
                                   % w.iteration)
            if w.iteration == 3 and w.rank == 0:
                open(os.path.join(out, 'running'), 'w').close()
        worker.run(cfg['iterations'],
                   iterator=_iterator() if k == 0 else None,
                   events=lambda i, it: decoupled.LOG, on_events=on_events)
        prefix = os.path.join(out, '%s.rank%d' % (cfg['name'], k))
        chainer.serializers.save_npz(prefix + '.module.npz', modules[k])
        if has_synth:
            chainer.serializers.save_npz(prefix + '.synth.npz', synths[k])
        if has_lower:
            chainer.serializers.save_npz(prefix + '.lower_synth.npz',
                                         synths[k - 1])
        with open(prefix + '.json', 'w') as f:
            json.dump(log, f)


# ------------------------------------------------------------- the tests
def _launch_requirements():
    import pytest
    _mpi.require_mpi()
    try:
        import chainermn  # NOQA
    except ImportError as e:
        pytest.skip('chainermn does not import: %s' % e)


def _mpirun(n, args, timeout=300):
    # (the timeout guards against a hang; it is no speed check: a 2-rank
    # run on a loaded 2-core machine has taken over 180 s)
    cmd = MPIEXEC + ['-n', str(n), sys.executable] + args
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_mpi.env(),
                          timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, (
        'mpiexec failed (%d):\n%s\n%s' % (proc.returncode, proc.stdout[-3000:],
                                          proc.stderr[-3000:]))
    return proc


def _run_configs(tmp_path, n, configs):
    out = str(tmp_path)
    _mpirun(n, [os.path.abspath(__file__), 'worker', out,
                json.dumps(configs)])
    return out


def _load(out, name, rank, part):
    path = os.path.join(out, '%s.rank%d.%s.npz' % (name, rank, part))
    with numpy.load(path) as f:
        return {k: f[k] for k in f.files}


def _log(out, name, rank):
    with open(os.path.join(out, '%s.rank%d.json' % (name, rank))) as f:
        return json.load(f)


def _assert_same_state(got, want, what):
    assert sorted(got) == sorted(want), what
    for key in want:
        numpy.testing.assert_allclose(got[key], want[key], rtol=1e-5,
                                      atol=1e-6, err_msg='%s: %s'
                                      % (what, key))


def _reference_synchronous(method, split, iterations):
    """The synchronous updater in one process: states and per-step reports."""
    net, modules, synths, opts = _build(method, split)
    from chainer_vfbn.updaters import SyntheticGradientUpdater
    updater = SyntheticGradientUpdater(_iterator(), modules, synths, opts)
    reports = []
    for _ in range(iterations):
        obs = {}
        with chainer.reporter.Reporter().scope(obs):
            updater.update()
        reports.append({k: float(v.array if hasattr(v, 'array') else v)
                        for k, v in obs.items()})
    return modules, synths, reports


def _weights(state):
    """The parameters of a link's state, without BN's running averages."""
    return {k: v for k, v in state.items()
            if not k.rsplit('/', 1)[-1] in ('avg_mean', 'avg_var', 'N')}


def test_staleness0_matches_synchronous_updater_k2(tmp_path):
    """Both placements of the synthesizer's training, K = 2, s = 0."""
    _launch_requirements()
    split, iters = None, 5
    out = _run_configs(tmp_path, 2, [
        dict(name='s0', method='vfbn', split=split, staleness=0,
             iterations=iters),
        dict(name='s0a', method='vfbn', split=split, staleness=0,
             iterations=iters, placement='above')])
    modules, synths, reports = _reference_synchronous('vfbn', split, iters)
    for name in ('s0', 's0a'):
        for k in (0, 1):
            _assert_same_state(_load(out, name, k, 'module'),
                               _state(modules[k]), '%s module %d' % (name, k))
        _assert_same_state(_load(out, name, 0, 'synth'), _state(synths[0]),
                           name + ' synthesizer')
        top, bottom = _log(out, name, 1), _log(out, name, 0)
        # 'below': rank 0 trains the synthesizer; 'above': rank 1 does.
        trainer = bottom if name == 's0' else top
        assert len(top) == len(bottom) == iters
        for i, ref in enumerate(reports):
            numpy.testing.assert_allclose(top[i]['main/loss'],
                                          ref['main/loss'], rtol=1e-6)
            numpy.testing.assert_allclose(top[i]['main/accuracy'],
                                          ref['main/accuracy'])
            for key in ('synth/loss', 'synth/cos', 'synth/relerr'):
                numpy.testing.assert_allclose(trainer[i][key], ref[key],
                                              rtol=1e-5, err_msg=key)
            assert bottom[i]['synth/staleness'] == 0
    # 'above': the master copy on rank 1 (BN averages included) too.
    _assert_same_state(_load(out, 's0a', 1, 'lower_synth'),
                       _state(synths[0]), 'master copy of the synthesizer')
    # The run learnt something: the losses are not all equal.
    assert len({round(r['main/loss'], 6) for r in reports}) > 1


def test_staleness1_and_bp_mode(tmp_path):
    """s = 1 equals a sequential simulation; 'bp' mode equals plain BP."""
    _launch_requirements()
    iters = 5
    out = _run_configs(tmp_path, 2, [
        dict(name='s1', method='vfbn', split=None, staleness=1,
             iterations=iters),
        dict(name='s1a', method='vfbn', split=None, staleness=1,
             iterations=iters, placement='above'),
        dict(name='bp', method='bp', split=None, staleness=0,
             iterations=iters)])

    # Sequential simulation of the stale schedule: δ(j) is consumed after
    # the bottom's update at iteration j + 1 (and the rest at the end);
    # δ̂ is recomputed on (h(j), t(j)) once the synthesizer has changed.
    import chainer.functions as F
    net, (bottom, top), (synth,), opts = _build('vfbn', None)
    it = _iterator()
    queue, version, stale = [], 0, []
    losses = []

    def consume(now):
        nonlocal version
        j, h, t, gs, v, delta = queue.pop(0)
        if v != version:
            gs = synth(chainer.Variable(h), t)
        loss = F.sum(F.squared_difference(gs, delta))
        synth.cleargrads()
        loss.backward()
        opts['synth'].update()
        version += 1
        stale.append(now - j)

    for i in range(1, iters + 1):
        x, t = chainer.dataset.concat_examples(it.next())
        h = bottom(x)
        gs = synth(chainer.Variable(h.array), t)
        bottom.cleargrads()
        h.grad = gs.array
        h.backward()
        opts['module0'].update()
        inp = chainer.Variable(h.array)
        loss = F.softmax_cross_entropy(top(inp), t)
        top.cleargrads()
        loss.backward()
        opts['module1'].update()
        losses.append(float(loss.array))
        queue.append((i, h.array, t, gs, version, inp.grad))
        while len(queue) > 1:
            consume(i)
    while queue:
        consume(iters)
    assert stale == [1] * (iters - 1) + [0]

    _assert_same_state(_load(out, 's1', 0, 'module'), _state(bottom),
                       'bottom (s=1)')
    _assert_same_state(_load(out, 's1', 1, 'module'), _state(top),
                       'top (s=1)')
    # The synthesizer's weights (its BN running averages are touched by the
    # recomputed forwards too, identically in both).
    _assert_same_state(_load(out, 's1', 0, 'synth'), _state(synth),
                       'synthesizer (s=1)')
    got = [entry['main/loss'] for entry in _log(out, 's1', 1)]
    numpy.testing.assert_allclose(got, losses, rtol=1e-6)
    # Logged staleness: 0 for the first step (nothing consumed yet means no
    # key), then 1 per step; the final settle consumes at staleness 0.
    log0 = _log(out, 's1', 0)
    assert 'synth/staleness' not in log0[0]
    assert [e['synth/staleness'] for e in log0[1:-1]] == [1] * (iters - 2)
    assert log0[-1]['synth/staleness_max'] == 1

    # 'above' (rank 1 trains the synthesizer, sends its weights down): the
    # same schedule, hence the same weights; the replica on rank 0 and the
    # master on rank 1 agree after the final settle.
    _assert_same_state(_load(out, 's1a', 0, 'module'), _state(bottom),
                       'bottom (s=1, above)')
    _assert_same_state(_load(out, 's1a', 1, 'module'), _state(top),
                       'top (s=1, above)')
    for k, part in ((0, 'synth'), (1, 'lower_synth')):
        _assert_same_state(_weights(_load(out, 's1a', k, part)),
                           _weights(_state(synth)),
                           'synthesizer (s=1, above, rank %d)' % k)
    got = [entry['main/loss'] for entry in _log(out, 's1a', 1)]
    numpy.testing.assert_allclose(got, losses, rtol=1e-6)
    # Staleness is logged by the replica at each step: δ(1..i-1) were
    # produced, the weights it used had learnt from δ(1..i-2).
    assert [e['synth/staleness'] for e in _log(out, 's1a', 0)] == (
        [0] + [1] * (iters - 1))
    # Rank 1 trained on δ(i) at step i: the losses 'below' logs a step late.
    above1, below0 = _log(out, 's1a', 1), log0
    for i in range(iters - 2):
        numpy.testing.assert_allclose(above1[i]['synth/loss'],
                                      below0[i + 1]['synth/loss'], rtol=1e-5)

    # Model-parallel BP = plain back-prop of the whole network.
    net, (bottom, top), _, _ = _build('bp', None)
    clf = chainer.links.Classifier(net)
    opt = methods.momentum_sgd(clf, LR, 0.9, 1e-4)
    updater = chainer.training.updaters.StandardUpdater(_iterator(), opt)
    for _ in range(iters):
        updater.update()
    _assert_same_state(_load(out, 'bp', 0, 'module'), _state(bottom),
                       'bottom (bp)')
    _assert_same_state(_load(out, 'bp', 1, 'module'), _state(top),
                       'top (bp)')


def test_staleness0_matches_synchronous_updater_k3(tmp_path):
    """A middle rank: it receives h, sends h up and δ down, owns synth1."""
    _launch_requirements()
    split, iters = ['stem', 'stage2_unit1'], 3
    out = _run_configs(tmp_path, 3, [
        dict(name='k3', method='vfbn', split=split, staleness=0,
             iterations=iters),
        dict(name='k3a', method='vfbn', split=split, staleness=0,
             iterations=iters, placement='above')])
    modules, synths, reports = _reference_synchronous('vfbn', split, iters)
    for name in ('k3', 'k3a'):
        for k in range(3):
            _assert_same_state(_load(out, name, k, 'module'),
                               _state(modules[k]), '%s module %d' % (name, k))
        for k in range(2):
            _assert_same_state(_load(out, name, k, 'synth'),
                               _state(synths[k]),
                               '%s synthesizer %d' % (name, k))
    # 'above': rank k + 1 holds the master copy of synth_k.
    for k in range(2):
        _assert_same_state(_load(out, 'k3a', k + 1, 'lower_synth'),
                           _state(synths[k]), 'master of synthesizer %d' % k)
    mid, top = _log(out, 'k3', 1), _log(out, 'k3a', 2)
    for i, ref in enumerate(reports):
        numpy.testing.assert_allclose(mid[i]['synth1/cos'], ref['synth1/cos'],
                                      rtol=1e-5)
        numpy.testing.assert_allclose(top[i]['synth1/cos'], ref['synth1/cos'],
                                      rtol=1e-5)


def _cli(n, out, data_dir, *extra, check=True):
    cmd = MPIEXEC + ['-n', str(n), sys.executable,
                     os.path.join(REPO, 'train', 'train_cifar.py'),
                     '--decoupled', '--method', 'vfbn', '--arch', ARCH,
                     '--batchsize', '16', '--data-dir', data_dir,
                     '--test-batchsize', '500', '--tta-interval', '0',
                     '--no-progress', '--out', out] + list(extra)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_mpi.env(),
                          timeout=300, cwd=REPO)
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def test_cli_log_snapshots_and_resume(tmp_path, mini_archive):
    """One log/plots/summary; a resumed run equals an uninterrupted one."""
    _launch_requirements()
    data_dir = os.path.dirname(mini_archive)
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    # s = 0, so that the snapshot's settle changes nothing: bitwise equal.
    _cli(2, a, data_dir, '--iterations', '3', '--max-staleness', '0')
    assert sorted(f for f in os.listdir(a) if f.startswith('snapshot')) == [
        'snapshot_iter_3.json', 'snapshot_iter_3.rank0.npz',
        'snapshot_iter_3.rank1.npz']
    # Resuming with the other placement is one clear error: each rank saved
    # the synthesizer copies it held.
    proc = _cli(2, a, data_dir, '--iterations', '6', '--max-staleness', '0',
                '--synth-placement', 'below', check=False)
    assert proc.returncode == 2
    assert proc.stderr.count('--synth-placement below (was above)') == 1
    assert 'Traceback' not in proc.stderr
    # A run recorded before an option existed resumes while the option is
    # at its default: the identity check, and its defaults, of the
    # synchronous runner (issue #20).
    with open(os.path.join(a, 'args.json')) as f:
        recorded = json.load(f)
    del recorded['args']['synth_target_scale']
    with open(os.path.join(a, 'args.json'), 'w') as f:
        json.dump(recorded, f)
    # "killed" after the snapshot: the same command with more iterations.
    proc = _cli(2, a, data_dir, '--iterations', '6', '--max-staleness', '0')
    assert 'resumed from %s at iteration 3' % os.path.join(
        a, 'snapshot_iter_3.json') in proc.stdout
    _cli(2, b, data_dir, '--iterations', '6', '--max-staleness', '0')
    for r in (0, 1):
        name = 'snapshot_iter_6.rank%d.npz' % r
        with numpy.load(os.path.join(a, name)) as fa, \
                numpy.load(os.path.join(b, name)) as fb:
            assert sorted(fa.files) == sorted(fb.files)
            params = [k for k in fa.files
                      if k not in ('elapsed', 'n_evals')
                      and not k.startswith('reports/')]
            assert len(params) > 20
            for key in params:
                numpy.testing.assert_array_equal(fa[key], fb[key],
                                                 err_msg=key)
    with open(os.path.join(a, 'log')) as f:
        log = json.load(f)
    assert [e['iteration'] for e in log] == [3, 6]
    for key in ('main/loss', 'main/accuracy', 'test/main/loss',
                'test/main/error', 'synth/loss', 'synth/cos',
                'synth/relerr', 'synth/staleness', 'rank0/wait_time',
                'rank1/wait_time', 'lr', 'elapsed_time'):
        assert key in log[-1], key
    with open(os.path.join(b, 'log')) as f:
        log_b = json.load(f)
    assert log[-1]['test/main/loss'] == log_b[-1][
        'test/main/loss']
    with open(os.path.join(a, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['iterations'] == 6 and summary['ranks'] == 2
    assert summary['decoupled'] is True and summary['max_staleness'] == 0
    assert summary['synth_placement'] == 'above'   # the default
    assert 0 <= summary['test_error'] <= 1
    with open(os.path.join(a, 'args.json')) as f:
        args = json.load(f)
    assert args['decoupled']['ranks'] == 2
    # the resumed run keeps both sessions' code; b ran in one session
    assert len(args['code_versions']) == 2
    assert summary['code_versions'] == args['code_versions']
    with open(os.path.join(b, 'args.json')) as f:
        assert len(json.load(f)['code_versions']) == 1
    for name in ('loss.png', 'error.png', 'synth_cos.png'):
        assert os.path.getsize(os.path.join(a, name)) > 1000, name


def test_cli_final_tta_and_divergence(tmp_path, mini_archive):
    """The 36-view test at the last iteration whatever --tta-interval, as
    in the synchronous runner; a NaN loss stops every rank (issue #12)."""
    _launch_requirements()
    data_dir = os.path.dirname(mini_archive)
    out = str(tmp_path / 'tta')
    # One evaluation, at the end: the 1st, not a multiple of 5 (on a small
    # held-out set: 36 views of the test set would take minutes here).
    _cli(2, out, data_dir, '--iterations', '2', '--tta-interval', '5',
         '--validation-split', '0.05')
    with open(os.path.join(out, 'log')) as f:
        log = json.load(f)
    assert [e['iteration'] for e in log] == [2]
    # evaluated on the held-out split: named val/, not test/
    assert 0 <= log[-1]['val/main/tta_error'] <= 1
    assert not [k for k in log[-1] if k.startswith('test/')]
    with open(os.path.join(out, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['tta_error'] == log[-1]['val/main/tta_error']
    assert summary['evaluated_on'] == 'validation'

    out = str(tmp_path / 'nan')
    proc = _cli(2, out, data_dir, '--iterations', '30', '--learnrate', '1e4',
                check=False)
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = [l for l in proc.stderr.splitlines()
             if l.startswith('train_cifar.py')]
    assert len(lines) == 1 and 'diverged:' in lines[0], proc.stderr
    assert 'Traceback' not in proc.stderr
    def refuse(name):
        raise ValueError('not JSON: %s' % name)
    with open(os.path.join(out, 'summary.json')) as f:
        summary = json.load(f, parse_constant=refuse)
    assert summary['status'] == 'diverged'
    assert 'iteration %d' % summary['diverged']['iteration'] in lines[0]
    assert 'done:' not in proc.stdout


@pytest.mark.gpu
def test_cli_two_ranks_share_one_gpu(tmp_path, mini_archive):
    """The single-GPU path: both ranks on GPU 0, each placement."""
    _launch_requirements()
    for placement in ('above', 'below'):
        out = str(tmp_path / placement)
        _cli(2, out, os.path.dirname(mini_archive), '--iterations', '4',
             '--device', '@cupy:0', '--synth-placement', placement)
        with open(os.path.join(out, 'summary.json')) as f:
            summary = json.load(f)
        assert summary['iterations'] == 4
        assert numpy.isfinite(summary['train_loss'])
        assert 0 <= summary['test_error'] <= 1
        with open(os.path.join(out, 'args.json')) as f:
            assert json.load(f)['device'] == '@cupy:0'


def test_cli_wrong_rank_count_is_one_clear_error(tmp_path, mini_archive):
    _launch_requirements()
    proc = _cli(3, str(tmp_path), os.path.dirname(mini_archive),
                '--iterations', '2', check=False)
    assert proc.returncode != 0
    line = ('train_cifar.py: error: the split at stage2_unit1 makes 2 '
            'modules: launch with mpiexec -n 2 (this run has 3 ranks)')
    assert proc.stderr.count(line) == 1, proc.stderr
    assert 'Traceback' not in proc.stderr


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open('/proc/%d/stat' % pid) as f:   # a zombie is not alive
        return f.read().split(')')[-1].split()[0] != 'Z'


def _start_long_run(out, **extra):
    cfg = dict(name='long', method='vfbn', split=None, staleness=1,
               iterations=10 ** 6, **extra)
    cmd = MPIEXEC + ['-n', '2', sys.executable, os.path.abspath(__file__),
                     'worker', out, json.dumps([cfg])]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_mpi.env(),
                            cwd=REPO, start_new_session=True)


def _finish(proc, timeout):
    """Wait for ``proc``; on timeout kill its process group and fail."""
    import pytest
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail('mpiexec still running %d s after the failure' % timeout)
    return stdout, stderr


def test_killed_rank_stops_the_job(tmp_path):
    """kill -9 of a rank: mpiexec exits non-zero within seconds, naming it."""
    _launch_requirements()
    out = str(tmp_path)
    proc = _start_long_run(out)
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(out, 'running')):
        if proc.poll() is not None or time.time() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError('the run did not start: %s'
                                 % (proc.communicate()[1][-2000:],))
        time.sleep(0.1)
    pids = []
    for r in (0, 1):
        with open(os.path.join(out, 'pid.rank%d' % r)) as f:
            pids.append(int(f.read()))
    killed = time.time()
    os.kill(pids[1], signal.SIGKILL)
    _, stderr = _finish(proc, timeout=20)
    took = time.time() - killed
    assert proc.returncode != 0
    assert took < 20
    assert re.search(r'process rank 1 .*exited on signal 9', stderr), stderr
    time.sleep(0.5)
    assert not _alive(pids[0]), 'rank 0 (pid %d) was left behind' % pids[0]


def test_exception_on_one_rank_aborts_the_job(tmp_path):
    """An exception on rank 1 stops rank 0 too, with one clear line."""
    _launch_requirements()
    proc = _start_long_run(str(tmp_path), raise_at=4)
    start = time.time()
    _, stderr = _finish(proc, timeout=60)
    assert proc.returncode != 0
    assert time.time() - start < 60
    assert ('decoupled: rank 1 stops the run: RuntimeError: injected failure '
            'at iteration 4') in stderr, stderr


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == 'worker':
        _worker(sys.argv[2], json.loads(sys.argv[3]))
    else:
        sys.exit('usage: %s worker OUT CONFIGS_JSON (run by the tests under '
                 'mpiexec)' % sys.argv[0])
