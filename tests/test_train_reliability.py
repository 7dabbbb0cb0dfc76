"""train_cifar.py never trains silently on bad input, NaN, another run's
folder or a damaged snapshot, and stops cleanly on a signal (issue #12)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from chainer_vfbn.runs import folder
from support import load_script
from support import run_cli
from support import SCRIPT
from support import TINY


def _strict_json(path):
    def refuse(name):
        raise ValueError('not JSON: %s' % name)
    with open(path) as f:
        return json.load(f, parse_constant=refuse)


def _one_error_line(r, *parts):
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert 'Traceback' not in r.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


def test_every_bad_number_is_one_line_and_leaves_no_folder(tmp_path):
    out = tmp_path / 'o'
    bad = [('--learnrate', 'nan'), ('--momentum', '-3'),
           ('--weight-decay', '-1'), ('--lr-decay', '-1'), ('--seed', '-1'),
           ('--lr-step', 'nan'),
           ('--mpi-timeout', '0')]
    argv = TINY + ['--iterations', '1', '--out', str(out)]
    for flag, value in bad:
        argv += [flag, value]
    r = run_cli(argv, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == len(bad), r.stderr
    for flag, value in bad:
        assert sum(line.startswith('train_cifar.py: error: %s must be' % flag)
                   for line in lines) == 1, (flag, lines)
    assert not out.exists()


@pytest.mark.parametrize('extra,message', [
    # Checked where it is defaulted (build_method), still before --out.
    (['--alpha-gs', '10'], 'alpha_gs must be in [0, 1], got 10'),
    (['--momentum', '1'], '--momentum must be finite and in [0, 1)'),
    (['--seed', str(2 ** 32)], '--seed must be in [0, 2**32)'),
    (['--batchsize', '100000'], '--batchsize 100000 is larger than the '
                                'training set (500 images)'),
    (['--method', 'bp', '--split-at', 'nosuchlayer'],
     "cannot split resnet8-paper after 'nosuchlayer': no such layer"),
])
def test_rejected_before_anything_is_written(tmp_path, extra, message):
    out = tmp_path / 'o'
    start = time.time()
    r = run_cli(TINY + ['--iterations', '1', '--out', str(out)] + extra,
                timeout=120)
    assert r.returncode == 2
    _one_error_line(r, message)
    assert not out.exists()
    assert time.time() - start < 60


@pytest.mark.parametrize('method', ['bp', 'vfbn'])
def test_divergence_stops_with_one_line_and_valid_summary(tmp_path, method):
    out = str(tmp_path / 'o')
    r = run_cli(TINY + ['--method', method, '--learnrate', '1e4',
                        '--iterations', '40', '--out', out])
    assert r.returncode == 3, r.stderr[-3000:]
    lines = [l for l in r.stderr.splitlines() if 'train_cifar.py' in l]
    assert len(lines) == 1 and 'diverged:' in lines[0], r.stderr
    assert 'Traceback' not in r.stderr
    summary = _strict_json(os.path.join(out, 'summary.json'))
    assert summary['status'] == 'diverged'
    record = summary['diverged']
    assert 'iteration %d' % record['iteration'] in lines[0]
    assert record['iteration'] < 40
    assert record['what'] in lines[0]
    assert 'done:' not in r.stdout
    # The last good snapshot is older than the divergence and named.
    snaps = folder.snapshots(out)
    if snaps:
        assert record['last_snapshot'] == snaps[0]
        assert int(snaps[0].rsplit('_', 1)[1]) < record['iteration']
        assert snaps[0] in lines[0]


def test_another_run_in_out_is_refused_then_force_new(tmp_path):
    out = str(tmp_path / 'o')
    args = TINY + ['--method', 'vfbn', '--out', out]
    r = run_cli(args + ['--iterations', '2'])
    assert r.returncode == 0, r.stderr[-3000:]
    with open(os.path.join(out, 'args.json')) as f:
        before = f.read()
    for extra, names in [(['--batchsize', '25'], ['--batchsize 25 (was 50)']),
                         (['--learnrate', '0.2', '--method', 'bp'],
                          ['--learnrate', '--method bp (was vfbn)'])]:
        r = run_cli(args + ['--iterations', '4'] + extra, timeout=120)
        assert r.returncode == 2
        _one_error_line(r, 'holds another run', '--force-new', *names)
        with open(os.path.join(out, 'args.json')) as f:
            assert f.read() == before
    # A longer run, logged differently, resumes and says so.
    r = run_cli(args + ['--iterations', '3', '--eval-interval', '2'])
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'resumed from %s at iteration 2' % os.path.join(
        out, 'snapshot_iter_2') in r.stdout
    # --force-new moves the old run aside and starts afresh.
    r = run_cli(args + ['--iterations', '2', '--batchsize', '25',
                        '--force-new'])
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'resumed' not in r.stdout
    moved = [p for p in os.listdir(str(tmp_path)) if '.replaced-' in p]
    assert len(moved) == 1
    assert 'snapshot_iter_3' in os.listdir(str(tmp_path / moved[0]))
    assert _strict_json(os.path.join(out, 'args.json'))['args'][
        'batchsize'] == 25


def test_a_second_live_run_is_refused(tmp_path):
    out = tmp_path / 'o'
    out.mkdir()
    held = folder.lock(str(out))
    try:
        r = run_cli(TINY + ['--iterations', '1', '--out', str(out)],
                    timeout=120)
    finally:
        held.close()
    assert r.returncode == 2
    _one_error_line(r, 'another run is writing to %s' % out)
    assert os.listdir(str(out)) == [folder.LOCK_NAME]


def test_corrupt_snapshots_fall_back_or_stop_in_one_line(tmp_path):
    out = str(tmp_path / 'o')
    args = TINY + ['--method', 'bp', '--out', out, '--eval-interval', '100']
    r = run_cli(args + ['--iterations', '12'])
    assert r.returncode == 0, r.stderr[-3000:]
    newest = os.path.join(out, 'snapshot_iter_12')
    with open(newest, 'r+b') as f:
        f.truncate(os.path.getsize(newest) // 2)
    os.mkdir(os.path.join(out, 'tmpsnapshot_iter_13abcd'))
    # --resume of a damaged file: one line, nothing rewritten.
    r = run_cli(args + ['--iterations', '13', '--resume', newest],
                timeout=120)
    assert r.returncode == 2
    _one_error_line(r, '--resume: snapshot %s is corrupt' % newest)
    # Autoload: falls back to the older one, and says so.
    r = run_cli(args + ['--iterations', '13'])
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'snapshot %s is corrupt' % newest in r.stdout
    assert 'falling back to %s' % os.path.join(out, 'snapshot_iter_10') \
        in r.stdout
    assert 'resumed from %s at iteration 10' % os.path.join(
        out, 'snapshot_iter_10') in r.stdout
    assert not [p for p in os.listdir(out) if p.startswith('tmp')]
    assert _strict_json(os.path.join(out, 'summary.json'))['iterations'] == 13


def _start(out, extra=()):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    argv = TINY + ['--method', 'vfbn', '--out', out, '--iterations', '1000',
                   '--frequency', '1000'] + list(extra)
    return subprocess.Popen(
        [sys.executable, SCRIPT] + argv,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize('signum,code', [(signal.SIGINT, 130),
                                         (signal.SIGTERM, 143)])
def test_signal_snapshots_and_exits(tmp_path, signum, code):
    out = str(tmp_path / 'o')
    proc = _start(out)
    try:
        # The table's first row: training is under way (epoch 1 done).
        for line in proc.stdout:
            if line.replace('\033[J', '').startswith('1 '):
                break
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, stderr[-3000:]
    lines = stderr.strip().splitlines()
    # The signal acknowledged at once, then where the run stopped.
    assert len(lines) == 2 and 'Traceback' not in stderr, stderr
    assert lines[0].startswith('train_cifar.py: %s received: stopping '
                               % signal.Signals(signum).name), lines[0]
    snaps = folder.snapshots(out)
    assert snaps and snaps[0] in lines[1]
    iteration = int(snaps[0].rsplit('_', 1)[1])
    assert 'interrupted by %s at iteration %d' % (
        signal.Signals(signum).name, iteration) in lines[1]
    assert not os.path.exists(os.path.join(out, 'summary.json'))
    # The same command (shorter) resumes from there.
    r = run_cli(TINY + ['--method', 'vfbn', '--out', out,
                        '--iterations', str(iteration + 1)])
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'resumed from %s at iteration %d' % (snaps[0], iteration) \
        in r.stdout
    # The summary's wall time counts both sessions (issue #20): at least
    # the first session's clock at its first log entry.
    with open(os.path.join(out, 'log')) as f:
        first = json.load(f)[0]
    assert first['iteration'] <= iteration
    assert _strict_json(os.path.join(out, 'summary.json'))['wall_time_s'] \
        >= first['elapsed_time'] > 0


def test_no_terminal_escapes_in_logs(tmp_path):
    r = run_cli(TINY + ['--iterations', '2', '--out', str(tmp_path / 'o')])
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'iteration' in r.stdout
    assert '\033' not in r.stdout


def test_a_run_from_before_an_option_resumes(tmp_path):
    """The real chain: args.json without an option the CLI has since
    gained; train_cifar.py's defaults, carried by the configuration that
    both runners check, let it resume, unless set."""
    train_cifar = load_script()
    from chainer_vfbn.runs import UserError
    out = str(tmp_path / 'run')
    os.makedirs(out)
    config = train_cifar.parse_config(['--method', 'bp', '--out', out])
    recorded = dict(config.options)
    del recorded['synth_target_scale']       # "added since"
    with open(os.path.join(out, 'args.json'), 'w') as f:
        json.dump({'args': recorded}, f)
    folder.check_identity(config)
    assert config.defaults['synth_target_scale'] == 'batch-mean'
    changed = train_cifar.parse_config(['--method', 'bp', '--out', out,
                                        '--synth-target-scale',
                                        'per-example'])
    with pytest.raises(UserError, match='synth-target-scale'):
        folder.check_identity(changed)


def _train_cifar():
    return load_script()


def test_a_full_disk_is_one_line_that_names_the_intact_snapshot(
        tmp_path, monkeypatch, capsys):
    """The second snapshot's write finds the disk full (issue #20)."""
    import errno
    from chainer.serializers import npz
    train_cifar = _train_cifar()
    real, written = npz.save_npz, []

    def save_npz(path, obj, *args, **kwargs):
        if isinstance(path, str):   # (it calls itself with the open file)
            written.append(path)
        if len(written) == 2:
            with open(path, 'wb') as f:   # what fitted before the disk filled
                f.write(b'PK\x03\x04')
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real(path, obj, *args, **kwargs)
    monkeypatch.setattr(npz, 'save_npz', save_npz)
    out = str(tmp_path / 'o')
    rc = train_cifar.main(TINY + ['--method', 'bp', '--iterations', '20',
                                  '--eval-interval', '100', '--out', out])
    err = capsys.readouterr().err
    assert rc == 1
    intact = os.path.join(out, 'snapshot_iter_10')
    line = _one_error_line(argparse_result(err), 'the disk is full',
                           'the newest intact snapshot is %s' % intact)
    assert line.startswith('train_cifar.py: error: ')
    assert len(written) == 2 and folder.snapshots(out) == [intact]
    assert not [p for p in os.listdir(out) if p.startswith('tmp')]


def argparse_result(stderr):
    """``stderr`` as :func:`_one_error_line` reads it."""
    return subprocess.CompletedProcess([], 1, '', stderr)


def test_disk_full_line_finds_the_cause():
    import errno
    full = OSError(errno.ENOSPC, 'No space left on device')
    try:
        try:
            raise full
        except OSError:
            raise RuntimeError('clean-up failed')
    except RuntimeError as e:
        chained = e
    assert folder.disk_full_line(chained, 'o/snapshot_iter_3') == (
        'the disk is full (No space left on device); the newest intact '
        'snapshot is o/snapshot_iter_3: free some space and run the same '
        'command to resume from it')
    assert 'no snapshot was written before' in folder.disk_full_line(
        OSError(errno.EDQUOT, 'Disk quota exceeded'), None)
    assert folder.disk_full_line(OSError(errno.EACCES, 'denied'), 'x') \
        is None
    assert folder.disk_full_line(ValueError('x'), 'x') is None


def test_ctrl_c_in_the_final_test_is_acknowledged_and_the_run_ends(
        tmp_path, monkeypatch, capsys):
    """SIGINT during the last iteration's 36-view test (issue #20): one
    line at once, and the finished run writes its summary."""
    from chainer_vfbn.runs import evaluation
    train_cifar = _train_cifar()
    real, said = evaluation.evaluate_views, []

    def evaluate_views(*args, **kwargs):
        if kwargs.get('tta'):    # the final test: Ctrl-C in the middle
            os.kill(os.getpid(), signal.SIGINT)
            said.append(capsys.readouterr().err)   # before the test ends
        return real(*args, **kwargs)
    monkeypatch.setattr(evaluation, 'evaluate_views', evaluate_views)
    out = str(tmp_path / 'o')
    rc = train_cifar.main(TINY + ['--method', 'bp', '--iterations', '5',
                                  '--tta-interval', '100', '--out', out])
    assert len(said) == 1
    assert said[0].startswith('train_cifar.py: SIGINT received: stopping '
                              'after this iteration'), said
    assert said[0].count('\n') == 1
    assert rc == 0
    summary = _strict_json(os.path.join(out, 'summary.json'))
    assert summary['iterations'] == 5 and summary['tta_error'] is not None
    assert 'done: 5 iterations' in capsys.readouterr().out
