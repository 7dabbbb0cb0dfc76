"""End-to-end tests of train/train_cifar.py on the bundled real sample (CPU)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy
import pytest

from conftest import REPO

SCRIPT = os.path.join(REPO, 'train', 'train_cifar.py')
SAMPLE = os.path.join(REPO, 'data', 'cifar-10-sample', 'cifar-10-python.tar.gz')
# A tiny, fast configuration: 500 sample images, batch 50 = 10 iterations
# per epoch; no 36-view TTA except where a test asks for it.
TINY = ['--dataset', 'sample', '--arch', 'resnet8-paper', '--batchsize', '50',
        '--learnrate', '0.05', '--lr-step', '100', '--device', '@numpy',
        '--no-progress', '--tta-interval', '0', '--test-batchsize', '150']


def run_cli(args, timeout=300, **kwargs):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, SCRIPT] + list(args), env=env,
                          capture_output=True, text=True, timeout=timeout,
                          **kwargs)


def read_log(out):
    with open(os.path.join(out, 'log')) as f:
        return json.load(f)


def final_arrays(out, iteration):
    with numpy.load(os.path.join(out, 'snapshot_iter_%d' % iteration)) as f:
        return {k: f[k] for k in f.files if 'model:' in k or 'optimizer:' in k}


@pytest.mark.parametrize('method', ['bp', 'vfbn'])
def test_smoke_run_writes_everything_and_learns(tmp_path, method):
    out = str(tmp_path / method)
    r = run_cli(TINY + ['--method', method, '--epoch', '3', '--out', out,
                        '--tta-interval', '3'])
    assert r.returncode == 0, r.stderr[-3000:]
    log = read_log(out)
    assert [e['epoch'] for e in log] == [1, 2, 3]
    losses = [e['main/loss'] for e in log]
    assert losses[-1] < losses[0], losses
    assert 'validation/main/tta_error' in log[-1]
    assert 'validation/main/tta_error' not in log[0]
    for e in log:
        assert 0 <= e['validation/main/error'] <= 1
    if method == 'vfbn':
        assert -1 <= log[-1]['synth/cos'] <= 1
        assert 'synth/relerr' in log[-1]
    files = set(os.listdir(out))
    assert {'args.json', 'log', 'summary.json', 'snapshot_iter_30'} <= files
    pytest.importorskip('matplotlib')
    assert {'loss.png', 'error.png'} <= files
    if method == 'vfbn':
        assert 'synth_cos.png' in files
    with open(os.path.join(out, 'args.json')) as f:
        meta = json.load(f)
    assert meta['args']['method'] == method
    assert meta['dataset'].startswith('sample')
    assert 'chainer_vfbn' in meta['code_version']
    with open(os.path.join(out, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['iterations'] == 30
    assert summary['test_error'] == log[-1]['validation/main/error']
    assert summary['tta_error'] == log[-1]['validation/main/tta_error']
    assert 'sample' in r.stdout  # the log says which data set was used


def test_same_seed_same_numbers(tmp_path):
    logs = []
    for name in ('a', 'b'):
        out = str(tmp_path / name)
        r = run_cli(TINY + ['--method', 'dni-linear', '--iterations', '6',
                            '--out', out])
        assert r.returncode == 0, r.stderr[-3000:]
        logs.append(read_log(out))
    strip = [{k: v for k, v in e.items() if k != 'elapsed_time'}
             for e in logs[0]]
    assert strip == [{k: v for k, v in e.items() if k != 'elapsed_time'}
                     for e in logs[1]]
    a, b = final_arrays(str(tmp_path / 'a'), 6), final_arrays(
        str(tmp_path / 'b'), 6)
    assert a.keys() == b.keys()
    for k in a:
        numpy.testing.assert_array_equal(a[k], b[k])


def test_kill_and_resume_gives_the_same_weights(tmp_path):
    args = TINY + ['--method', 'vfbn', '--epoch', '4', '--frequency', '1']
    whole = str(tmp_path / 'whole')
    r = run_cli(args + ['--out', whole])
    assert r.returncode == 0, r.stderr[-3000:]

    killed = str(tmp_path / 'killed')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.Popen([sys.executable, SCRIPT] + args + ['--out', killed],
                            env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while not os.path.exists(os.path.join(killed, 'snapshot_iter_10')):
            assert proc.poll() is None, 'run ended before it could be killed'
            assert time.time() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not os.path.exists(os.path.join(killed, 'summary.json'))
    # The same command again resumes from the newest snapshot.
    r = run_cli(args + ['--out', killed])
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = final_arrays(whole, 40), final_arrays(killed, 40)
    assert a.keys() == b.keys() and len(a) > 10
    for k in a:
        numpy.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert [e['main/loss'] for e in read_log(whole)] == \
        [e['main/loss'] for e in read_log(killed)]


def _truncated_archive(tmp_path):
    with open(SAMPLE, 'rb') as f:
        data = f.read()
    d = tmp_path / 'truncated'
    d.mkdir()
    (d / 'cifar-10-python.tar.gz').write_bytes(data[:len(data) // 2])
    return str(d)


@pytest.mark.parametrize('extra,message', [
    (['--method', 'nope'], "invalid choice: 'nope'"),
    (['--arch', 'resnet111-paper'], "unknown arch 'resnet111-paper'"),
    (['--split-at', 'stage2_unit7'], "cannot split resnet8-paper after 'stage2_unit7'"),
    (['--device', '@cupy:0'], 'asks for CUDA'),
    (['--gpu', '0'], 'asks for CUDA'),
    (['--epoch', '0'], '--epoch must be >= 1'),
    (['--alpha-gs', '-1'], '--alpha-gs must be finite and in [0, 1]'),
])
def test_bad_input_one_clear_line(tmp_path, extra, message):
    if 'CUDA' in message:
        chainer_cuda = pytest.importorskip('chainer.backends.cuda')
        if chainer_cuda.available:
            pytest.skip('this machine has CUDA')
    base = TINY
    if '--gpu' in extra:  # --gpu and --device are exclusive
        i = TINY.index('--device')
        base = TINY[:i] + TINY[i + 2:]
    r = run_cli(base + ['--out', str(tmp_path / 'o'), '--iterations', '1']
                + extra, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert message in lines[0]
    assert 'Traceback' not in r.stderr


def test_missing_truncated_archive_and_unwritable_out(tmp_path):
    base = ['--method', 'bp', '--arch', 'resnet8-paper', '--no-progress',
            '--iterations', '1', '--out', str(tmp_path / 'o')]
    empty = tmp_path / 'empty'
    empty.mkdir()
    r = run_cli(base + ['--dataset', 'cifar10', '--data-dir', str(empty),
                        '--no-download'], timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert 'cifar-10-python.tar.gz' in r.stderr and str(empty) in r.stderr

    r = run_cli(base + ['--dataset', 'cifar10', '--data-dir',
                        _truncated_archive(tmp_path)], timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert 'Traceback' not in r.stderr
    assert 'truncated' in r.stderr.lower() or 'corrupt' in r.stderr.lower()

    blocker = tmp_path / 'a_file'
    blocker.write_text('x')
    r = run_cli(TINY + ['--iterations', '1', '--out', str(blocker / 'sub')],
                timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert 'cannot write to --out' in r.stderr


def test_resume_flag_rejects_missing_file(tmp_path):
    r = run_cli(TINY + ['--iterations', '1', '--out', str(tmp_path / 'o'),
                        '--resume', str(tmp_path / 'nope')], timeout=120)
    assert r.returncode == 2 and 'no such snapshot file' in r.stderr


@pytest.mark.parametrize('method', ['bottom-bp', 'layerwise', 'dni-linear',
                                    'dni-resnet', 'vfbn-linear', 'vfbn-mlp'])
def test_every_method_trains_on_the_sample(tmp_path, method):
    out = str(tmp_path / method)
    r = run_cli(TINY + ['--method', method, '--epoch', '2', '--out', out,
                        '--n-hidden', '32'])
    assert r.returncode == 0, r.stderr[-3000:]
    log = read_log(out)
    assert log[-1]['main/loss'] < log[0]['main/loss'] or \
        log[-1]['validation/main/loss'] < log[0]['validation/main/loss']
    with open(os.path.join(out, 'summary.json')) as f:
        assert json.load(f)['method'] == method


def test_split_into_three_modules(tmp_path):
    out = str(tmp_path / 'k3')
    r = run_cli(TINY + ['--method', 'vfbn', '--iterations', '4', '--out', out,
                        '--split-at', 'stage1_unit1,stage2_unit1'])
    assert r.returncode == 0, r.stderr[-3000:]
    last = read_log(out)[-1]
    assert 'synth0/cos' in last and 'synth1/cos' in last


def test_he_preset_standard_augmentation(tmp_path):
    out = str(tmp_path / 'he')
    r = run_cli(TINY + ['--method', 'bp', '--arch', 'resnet8-he',
                        '--iterations', '3', '--out', out])
    assert r.returncode == 0, r.stderr[-3000:]
    with open(os.path.join(out, 'args.json')) as f:
        assert json.load(f)['augment'] == 'standard'
    r = run_cli(TINY + ['--method', 'bp', '--arch', 'resnet8-he',
                        '--augment', 'paper', '--iterations', '1',
                        '--out', out + '2'], timeout=120)
    assert r.returncode == 2 and 'takes 32x32' in r.stderr


def _parse(argv):
    """train_cifar.parse_args, the script loaded by its path."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('train_cifar_cli', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parse_args(argv)


def test_chainer_example_conventions():
    """--device (with --gpu its deprecated alias; -1 the CPU), --autoload
    and its negation, --frequency -1."""
    assert _parse([]).device == '@numpy'
    assert _parse(['--gpu', '-1']).device == '@numpy'
    assert _parse(['--device', '-1']).device == '@numpy'
    assert _parse(['--gpu', '1']).device == '@cupy:1'
    assert _parse(['--device', '@cupy:0']).device == '@cupy:0'
    assert _parse([]).autoload is True
    assert _parse(['--autoload']).autoload is True
    assert _parse(['--no-autoload']).autoload is False
    assert _parse(['--frequency', '-1']).frequency == -1
    with pytest.raises(SystemExit):
        _parse(['--frequency', '0'])
