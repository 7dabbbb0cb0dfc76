"""End-to-end tests of train/train_cifar.py on the bundled real sample (CPU)."""
import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy
import pytest

from support import load_script
from support import REPO
from support import run_cli
from support import SAMPLE
from support import SCRIPT
from support import TINY


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
    assert 'test/main/tta_error' in log[-1]
    assert 'test/main/tta_error' not in log[0]
    for e in log:
        assert 0 <= e['test/main/error'] <= 1
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
    # The data set's content hash, and alpha_gs only where it means something.
    from chainer_vfbn.datasets import read_cifar10
    from chainer_vfbn.datasets import subset
    digest = subset.content_hash(*read_cifar10(SAMPLE))
    assert summary['data_sha256'] == meta['data_sha256'] == digest
    assert ('alpha_gs' in summary) == ('alpha_gs' in meta['args']) == (
        method == 'vfbn')
    if method == 'vfbn':
        assert summary['alpha_gs'] == meta['args']['alpha_gs'] == 1e-3
    assert summary['test_error'] == log[-1]['test/main/error']
    assert summary['tta_error'] == log[-1]['test/main/tta_error']
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
    (['--alpha-gs', '-1'], 'alpha_gs must be in [0, 1], got -1'),
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
        log[-1]['test/main/loss'] < log[0]['test/main/loss']
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


def _script():
    """train/train_cifar.py, loaded by its path."""
    return load_script()


def _parse(argv):
    """train_cifar.parse_args, the script loaded by its path."""
    return _script().parse_args(argv)


def test_help_in_groups_each_option_with_help_and_one_true_default():
    parser = _script().build_parser()
    groups = {g.title: [a.option_strings[0] for a in g._group_actions]
              for g in parser._action_groups}
    for title in ('data', 'model', 'method', 'optimization', 'device',
                  'output', 'decoupled'):
        assert groups.get(title), title
    assert '--data-dir' in groups['data']
    assert '--method' in groups['method'] and '--alpha-gs' in groups['method']
    assert '--learnrate' in groups['optimization']
    assert set(groups['decoupled']) == {'--decoupled', '--max-staleness',
                                        '--synth-placement', '--mpi-timeout',
                                        '--mpiexec'}
    text = parser.format_help()
    assert '(default: True)' not in text and '(default: False)' not in text
    assert '(default: None)' not in text
    for action in parser._actions:
        if action.dest == 'help':
            continue
        name = action.option_strings[0]
        assert action.help, name
        # the help as printed: the default once, and only where it is one
        printed = parser._get_formatter()._expand_help(action)
        assert printed.count('default:') <= 1, (name, printed)
        if action.nargs != 0 and action.default is not None:
            assert 'default:' in printed or 'the default' in printed, (
                name, printed)
    flat = ' '.join(text.split())
    assert '(default: 432)' in flat and '(default: resnet110-paper)' in flat


def _config(argv):
    """train_cifar.parse_config, the script loaded by its path, resolved as
    a runner resolves it once the method is built (its alpha_gs)."""
    from chainer_vfbn import methods
    config = _script().parse_config(argv)
    return config.resolved(argparse.Namespace(
        alpha_gs=methods.resolve_alpha_gs(config.method, config.alpha_gs)))


def test_alpha_gs_only_for_synthetic_methods(tmp_path):
    assert _config(['--method', 'bp']).alpha_gs is None
    assert 'alpha_gs' not in _config(['--method', 'bp']).options
    assert _config(['--method', 'vfbn']).alpha_gs == 1e-3
    assert _config(['--method', 'vfbn']).options['alpha_gs'] == 1e-3
    # Resolved into the configuration, not written back into the options.
    assert _parse(['--method', 'vfbn']).alpha_gs is None
    r = run_cli(['--method', 'bp', '--alpha-gs', '0.01', '--out',
                 str(tmp_path / 'o')], timeout=60)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        'train_cifar.py: error: --alpha-gs is the step size of a gradient '
        'synthesizer: it applies to dni-linear, dni-resnet, vfbn, '
        'vfbn-linear, vfbn-mlp only, not to --method bp']
    assert not os.path.exists(str(tmp_path / 'o'))


def test_options_resolved_once_into_the_config():
    """--split-at parsed once, --gpu standing for --device, and the
    placement of model-parallel BP decided by the configuration."""
    config = _config(['--split-at', 'stage1_unit1,stage2_unit1', '--gpu',
                      '-1', '--method', 'vfbn-linear'])
    assert config.split_at == ('stage1_unit1', 'stage2_unit1')
    assert config.options['split_at'] == 'stage1_unit1,stage2_unit1'
    assert config.device == config.options['device'] == '@numpy'
    assert config.options['gpu'] == -1
    assert _config([]).split_at is None
    assert _config(['--synth-placement', 'below']).placement == 'below'
    assert _config(['--method', 'bp']).placement is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.alpha_gs = 0.5


def test_refusal_names_the_method_not_its_default_alpha_gs(tmp_path):
    """A vfbn run's folder, then --method bp (or dni-linear) without
    --alpha-gs: the refusal names --method, never '(was 0.001)'."""
    from chainer_vfbn.runs import folder
    from chainer_vfbn.runs import UserError
    out = str(tmp_path / 'run')
    os.makedirs(out)
    vfbn = _config(['--method', 'vfbn', '--out', out])
    with open(os.path.join(out, 'args.json'), 'w') as f:
        json.dump({'args': dict(vfbn.options)}, f)
    for method in ('bp', 'dni-linear'):
        config = _config(['--method', method, '--out', out])
        with pytest.raises(UserError) as e:
            folder.check_identity(config)
        assert '--method %s (was vfbn)' % method in str(e.value)
        assert 'alpha' not in str(e.value)
    # The same method with another --alpha-gs is named.
    config = _config(['--method', 'vfbn', '--alpha-gs', '0.01', '--out', out])
    with pytest.raises(UserError, match=r'--alpha-gs 0\.01 '
                       r'\(was 0\.001\)'):
        folder.check_identity(config)


def test_piped_progress_lock_and_a_finished_run_resumed(tmp_path):
    """With the progress display on and stdout a pipe: plain lines, no
    escape code or carriage return; no .lock left; the same command again
    finds the run finished and rewrites nothing."""
    out = str(tmp_path / 'o')
    argv = [a for a in TINY if a != '--no-progress'] + [
        '--method', 'vfbn', '--iterations', '3', '--out', out]
    r = run_cli(argv)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '\033' not in r.stdout and '\r' not in r.stdout
    assert 'progress: epoch 1 of ' in r.stdout
    assert 'test/main/error' in r.stdout      # named for the test set
    assert 'validation' not in r.stdout
    assert sorted(e for e in os.listdir(out) if e.startswith('.')) == []
    before = {}
    # (files: a modified checkout's run also keeps its diff, in diffs/)
    for name in [n for n in os.listdir(out)
                 if os.path.isfile(os.path.join(out, n))]:
        with open(os.path.join(out, name), 'rb') as f:
            before[name] = (f.read(), os.stat(os.path.join(out, name))
                            .st_mtime_ns)
    r = run_cli(argv)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'finished at iteration 3: nothing to do' in r.stdout
    after = {}
    for name in [n for n in os.listdir(out)
                 if os.path.isfile(os.path.join(out, n))]:
        with open(os.path.join(out, name), 'rb') as f:
            after[name] = (f.read(), os.stat(os.path.join(out, name))
                           .st_mtime_ns)
    assert after == before   # summary.json, args.json, log: not rewritten


def test_chainer_example_conventions():
    """--device (with --gpu its deprecated alias; -1 the CPU), --autoload
    and its negation, --frequency -1."""
    assert _config([]).device == '@numpy'
    assert _config(['--gpu', '-1']).device == '@numpy'
    assert _config(['--device', '-1']).device == '@numpy'
    assert _config(['--gpu', '1']).device == '@cupy:1'
    assert _config(['--device', '@cupy:0']).device == '@cupy:0'
    assert _parse([]).autoload is True
    assert _parse(['--autoload']).autoload is True
    assert _parse(['--no-autoload']).autoload is False
    assert _parse(['--frequency', '-1']).frequency == -1
    with pytest.raises(SystemExit):
        _parse(['--frequency', '0'])
