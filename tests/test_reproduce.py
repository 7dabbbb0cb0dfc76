"""train/reproduce.py without training: commands, resume, table and figures.

The row folders are written by hand here (a LogReport ``log`` and a
``summary.json`` each, as train_cifar.py writes them), so every number the
table shows is known in advance.
"""
import json
import os
import sys

import pytest

import reproduce  # NOQA

ROWS = ['bp', 'vfbn', 'dni-linear']
SEEDS = [0, 1]


def write_run(out, row, seed, summary=None, log=None):
    folder = reproduce.row_dir(str(out), row, seed)
    os.makedirs(folder, exist_ok=True)
    if log is not None:
        with open(os.path.join(folder, 'log'), 'w') as f:
            json.dump(log, f)
    if summary is not None:
        with open(os.path.join(folder, 'summary.json'), 'w') as f:
            json.dump(summary, f)
    return folder


def summary(test_error, tta_error, wall, ips, cos=None, method='bp'):
    return {'method': method, 'arch': 'resnet8-paper', 'dataset': 'sample',
            'epochs': 2.0, 'iterations': 20, 'test_error': test_error,
            'tta_error': tta_error, 'wall_time_s': wall,
            'images_per_sec': ips, 'synth_cos': cos, 'device': '@numpy'}


def log(errors, tta=None, cos=None):
    entries = []
    for k, err in enumerate(errors, 1):
        e = {'epoch': k, 'iteration': 10 * k, 'main/loss': 2.0 / k,
             'validation/main/error': err, 'elapsed_time': 1.5 * k}
        if tta is not None and k == len(errors):
            e['validation/main/tta_error'] = tta
        if cos is not None:
            e['synth/cos'] = cos[k - 1]
        entries.append(e)
    return entries


@pytest.fixture
def fake_out(tmp_path):
    write_run(tmp_path, 'bp', 0, summary(0.06, 0.05, 100.0, 500.0),
              log([0.5, 0.06], tta=0.05))
    write_run(tmp_path, 'bp', 1, summary(0.07, 0.055, 110.0, 450.0),
              log([0.6, 0.07], tta=0.055))
    write_run(tmp_path, 'vfbn', 0,
              summary(0.08, None, 120.0, 400.0, cos=0.25, method='vfbn'),
              log([0.7, 0.08], cos=[0.1, 0.25]))
    write_run(tmp_path, 'vfbn', 1, None, log([0.9]))  # interrupted
    return tmp_path


def test_table_numbers_come_from_the_files(fake_out):
    report = reproduce.write_report(str(fake_out), ROWS, SEEDS, 'smoke',
                                    log=lambda *a: None)
    with open(os.path.join(fake_out, 'table.json')) as f:
        on_disk = json.load(f)
    assert on_disk == json.loads(json.dumps(report, sort_keys=True))
    rows = {r['row']: r for r in on_disk['rows']}
    assert [r['row'] for r in on_disk['rows']] == ROWS

    bp = rows['bp']
    assert bp['paper_error_pct'] == 5.15
    assert bp['test_error_pct']['values'] == pytest.approx([6.0, 7.0])
    assert bp['test_error_pct']['mean'] == pytest.approx(6.5)
    assert bp['test_error_pct']['std'] == pytest.approx(0.5 ** 0.5)
    assert bp['tta_error_pct']['mean'] == pytest.approx(5.25)
    assert bp['wall_time_s']['mean'] == pytest.approx(105.0)
    assert bp['images_per_sec']['mean'] == pytest.approx(475.0)
    assert bp['synth_cos'] is None

    vfbn = rows['vfbn']
    assert vfbn['paper_error_pct'] == 5.51
    assert vfbn['flags'] == '--method vfbn --alpha-gs 1e-3'
    assert vfbn['test_error_pct'] == {'mean': pytest.approx(8.0), 'std': None,
                                      'n': 1, 'values': [pytest.approx(8.0)]}
    assert vfbn['tta_error_pct'] is None
    assert vfbn['synth_cos']['mean'] == 0.25
    assert [r['status'] for r in on_disk['runs']['vfbn']] == [
        'complete', 'incomplete']

    dni = rows['dni-linear']
    assert dni['paper_error_pct'] == 15.56
    assert dni['test_error_pct'] is None and dni['wall_time_s'] is None
    assert [r['status'] for r in on_disk['runs']['dni-linear']] == [
        'missing', 'missing']

    with open(os.path.join(fake_out, 'table.md')) as f:
        md = f.read().splitlines()
    assert md[0] == '# Table 1 reproduction, schedule smoke'
    assert ('| bp | Back prop (`--method bp`) | 5.15 | 6.50 ± 0.71 (n=2) | '
            '5.25 ± 0.35 (n=2) | 105 ± 7 (n=2) | 475.0 ± 35.4 (n=2) | — | '
            '2.0 ± 0.0 (n=2) | seed 0 complete, seed 1 complete |') in md
    assert ('| vfbn | VFBN, alpha_gs = 1e-3 (`--method vfbn --alpha-gs 1e-3`)'
            ' | 5.51 | 8.00 | — | 120 | 400.0 | 0.250 | 2.0 | seed 0 '
            'complete, seed 1 incomplete |') in md
    assert ("| dni-linear | Jaderberg's Linear (`--method dni-linear`) | "
            '15.56 | — | — | — | — | — | — | seed 0 missing, seed 1 missing |'
            ) in md
    body = [line for line in md if line.startswith('| ') and
            not line.startswith('| row')]
    assert len(body) == 3


def test_figure3_written_or_skipped(fake_out):
    report = reproduce.write_report(str(fake_out), ROWS, SEEDS,
                                    log=lambda *a: None)
    try:
        import matplotlib  # NOQA
    except ImportError:
        assert report['figures'] == []
        assert 'matplotlib is not installed' in report['figures_skipped']
        return
    assert report['figures'] == ['figure3_test_error.png',
                                 'figure3_synth_cos.png']
    assert report['figures_skipped'] is None
    for name in report['figures']:
        with open(os.path.join(fake_out, name), 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_plots_skipped_without_matplotlib(fake_out, monkeypatch):
    monkeypatch.setitem(sys.modules, 'matplotlib', None)  # import fails
    messages = []
    report = reproduce.write_report(str(fake_out), ['bp'], [0],
                                    log=messages.append)
    assert report['figures'] == []
    assert report['figures_skipped'].startswith('plots skipped: matplotlib')
    assert messages[0] == report['figures_skipped']
    assert not os.path.exists(os.path.join(fake_out, 'figure3_synth_cos.png'))


def test_curves_and_synth_key():
    entries = log([0.5, 0.2], tta=0.1, cos=[0.3, 0.4])
    assert reproduce._curves(entries, 'validation/main/error', 'epoch') == (
        [1, 2], [0.5, 0.2])
    assert reproduce._curves(entries, 'validation/main/tta_error',
                             'epoch') == ([2], [0.1])
    assert reproduce._synth_key(entries) == 'synth/cos'
    assert reproduce._synth_key([{'synth0/cos': 1.0}]) == 'synth0/cos'
    assert reproduce._synth_key(log([0.5])) is None


def test_row_command():
    argv = reproduce.row_command('vfbn-alpha0', 'smoke', 3, 'o',
                                 device='@numpy', extra=['--lr-step', '7'])
    assert argv == [
        '--method', 'vfbn', '--alpha-gs', '0',
        '--arch', 'resnet8-paper', '--batchsize', '50', '--iterations', '20',
        '--lr-step', '100', '--eval-interval', '1', '--tta-interval', '2',
        '--test-batchsize', '150', '--no-progress',
        '--dataset', 'sample', '--seed', '3',
        '--out', os.path.join('o', 'vfbn-alpha0', 'seed3'),
        '--device', '@numpy', '--lr-step', '7']
    argv = reproduce.row_command('bp', 'paper', 0, 'o', dataset='sample',
                                 data_dir='/d')
    assert argv[argv.index('--epoch') + 1] == '432'
    assert argv[argv.index('--lr-step') + 1] == '180'
    assert argv[argv.index('--dataset') + 1] == 'sample'
    assert argv[-2:] == ['--data-dir', '/d']
    assert '--device' not in argv


def test_paper_numbers():
    paper = {row: spec[2] for row, spec in reproduce.ROWS.items()}
    assert paper == {'bp': 5.15, 'bottom-bp': 5.76, 'layerwise': 5.71,
                     'dni-resnet': 20.45, 'dni-linear': 15.56,
                     'vfbn-alpha0': 5.73, 'vfbn': 5.51, 'vfbn-linear': None,
                     'vfbn-mlp': None}


@pytest.mark.parametrize('schedule', list(reproduce.SCHEDULES))
def test_commands_follow_the_cli_contract(schedule):
    """Every row's argv parses with train_cifar.py's own parser."""
    try:
        import train_cifar
    except ImportError as e:  # the CLI is written elsewhere
        pytest.skip('train/train_cifar.py is not importable: %s' % e)
    for row in reproduce.ROWS:
        argv = reproduce.row_command(row, schedule, 0, 'o')
        args = train_cifar.parse_args(argv)
        assert args.method == reproduce.ROWS[row][1][1]
        assert args.out == os.path.join('o', row, 'seed0')
        if row == 'vfbn-alpha0':
            assert args.alpha_gs == 0
    if schedule == 'paper':
        assert (args.arch, args.epoch, args.lr_step, args.batchsize) == (
            'resnet110-paper', 432, 180, 128)


def fake_runner(calls, fail=()):
    """Writes what a finished train_cifar.py run leaves, without training."""
    def run(argv):
        calls.append(list(argv))
        out = argv[argv.index('--out') + 1]
        method = argv[argv.index('--method') + 1]
        if method in fail:
            os.makedirs(out, exist_ok=True)
            return 3
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, 'log'), 'w') as f:
            json.dump(log([0.5, 0.4], tta=0.35), f)
        with open(os.path.join(out, 'summary.json'), 'w') as f:
            json.dump(summary(0.4, 0.35, 10.0, 100.0, method=method), f)
        return 0
    return run


def _record_row(out, row, seed, schedule='smoke', extra=()):
    """What run_rows writes before it runs a row."""
    argv = reproduce.row_command(row, schedule, seed, out, extra=extra)
    with open(os.path.join(reproduce.row_dir(out, row, seed),
                           reproduce.ROW_RECORD), 'w') as f:
        json.dump(reproduce.row_identity(schedule, argv), f)


def test_resume_row_by_row(tmp_path):
    out = str(tmp_path)
    write_run(tmp_path, 'bp', 0, summary(0.1, 0.1, 1.0, 1.0), log([0.1]))
    _record_row(out, 'bp', 0)
    write_run(tmp_path, 'layerwise', 0, None, log([0.9]))  # interrupted
    calls = []
    status = reproduce.run_rows(['bp', 'layerwise', 'dni-linear'], [0],
                                'smoke', out, fake_runner(calls, ['dni-linear']),
                                log=lambda *a: None)
    assert status == {('bp', 0): 'skipped', ('layerwise', 0): 'done',
                      ('dni-linear', 0): 'failed (exit 3)'}
    # the interrupted row is run again into the same folder (autoload there)
    assert [c[c.index('--out') + 1] for c in calls] == [
        reproduce.row_dir(out, 'layerwise', 0),
        reproduce.row_dir(out, 'dni-linear', 0)]
    calls.clear()
    status = reproduce.run_rows(['bp', 'layerwise', 'dni-linear'], [0],
                                'smoke', out, fake_runner(calls),
                                log=lambda *a: None)
    assert status[('bp', 0)] == status[('layerwise', 0)] == 'skipped'
    assert status[('dni-linear', 0)] == 'done' and len(calls) == 1


def test_main_end_to_end_with_a_fake_runner(tmp_path, capsys):
    out = str(tmp_path / 'r')
    calls = []
    rc = reproduce.main(['--schedule', 'smoke', '--rows', 'bp,vfbn-mlp',
                         '--seeds', '0,1', '--out', out, '--device', '@numpy',
                         '--', '--test-batchsize', '50'],
                        runner=fake_runner(calls))
    assert rc == 0
    assert len(calls) == 4 and all(c[-2:] == ['--test-batchsize', '50']
                                   for c in calls)
    with open(os.path.join(out, 'reproduce.json')) as f:
        record = json.load(f)
    assert sorted(record['commands']) == ['bp/seed0', 'bp/seed1',
                                          'vfbn-mlp/seed0', 'vfbn-mlp/seed1']
    with open(os.path.join(out, 'table.json')) as f:
        table = json.load(f)
    bp = table['rows'][0]
    assert bp['test_error_pct']['mean'] == pytest.approx(40.0)
    assert bp['test_error_pct']['std'] == 0.0
    assert table['rows'][1]['paper_error_pct'] is None
    # a second call trains nothing and exits 0; a failure gives exit 1
    assert reproduce.main(['--rows', 'bp', '--seeds', '0,1', '--out', out],
                          runner=fake_runner(calls)) == 0
    assert len(calls) == 4
    assert reproduce.main(['--rows', 'dni-resnet', '--out', out],
                          runner=fake_runner(calls, ['dni-resnet'])) == 1
    assert 'dni-resnet seed 0' in capsys.readouterr().err


def test_a_row_counts_only_with_its_own_schedule_and_args(tmp_path,
                                                          capsys):
    out = str(tmp_path / 'r')
    calls = []
    assert reproduce.main(['--schedule', 'smoke', '--rows', 'bp', '--out',
                           out, '--', '--learnrate', '0.05'],
                          runner=fake_runner(calls)) == 0
    assert calls[0][-2:] == ['--learnrate', '0.05']   # honoured
    with open(os.path.join(reproduce.row_dir(out, 'bp', 0),
                           reproduce.ROW_RECORD)) as f:
        assert json.load(f)['args'][-2:] == ['--learnrate', '0.05']
    capsys.readouterr()
    with open(os.path.join(out, 'reproduce.json')) as f:
        first = f.read()
    for schedule, extra, why in [('short', [], '--schedule smoke'),
                                 ('smoke', ['--', '--learnrate', '0.1'],
                                  'other arguments')]:
        rc = reproduce.main(['--schedule', schedule, '--rows', 'bp', '--out',
                             out] + extra, runner=fake_runner(calls))
        assert rc == 2 and len(calls) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and why in err[0] and 'another run' in err[0]
        with open(os.path.join(out, 'reproduce.json')) as f:
            assert f.read() == first   # refused before anything is written
    # The same arguments (another device) count as done.
    assert reproduce.main(['--schedule', 'smoke', '--rows', 'bp', '--out',
                           out, '--device', '@numpy', '--', '--learnrate',
                           '0.05'], runner=fake_runner(calls)) == 0
    assert len(calls) == 1


def test_interrupt_stops_the_rows_and_writes_the_table(tmp_path, capsys):
    import signal
    out = str(tmp_path / 'r')
    calls = []
    finish = fake_runner(calls)

    def runner(argv):
        if len(calls) == 1:   # the second row is interrupted
            calls.append(list(argv))
            os.kill(os.getpid(), signal.SIGTERM)
            return 143
        return finish(argv)
    rc = reproduce.main(['--rows', 'bp,vfbn,dni-linear', '--out', out],
                        runner=runner)
    assert rc == 143 and len(calls) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['reproduce.py: interrupted by SIGTERM; the table holds '
                   'the 1 finished row(s); the same command resumes the '
                   'others']
    with open(os.path.join(out, 'table.json')) as f:
        table = json.load(f)
    assert [row for row, runs in table['runs'].items()
            if runs[0]['status'] == 'complete'] == ['bp']


@pytest.mark.parametrize('argv, message', [
    (['--rows', 'bp,nope'], 'unknown row(s) nope'),
    (['--seeds', '0,x'], '--seeds must be comma-separated integers'),
    (['--seeds', '1,1'], '--seeds must name distinct integers'),
    (['--schedule', 'long'], "invalid choice: 'long'"),
])
def test_bad_input_is_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        reproduce.parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count('\n') == 1


@pytest.mark.parametrize('argv, message', [
    (['--schedule', 'smoke', '--jobs', '2'],
     '--jobs is for --schedule mini'),
    (['--schedule', 'smoke', '--jobs', '1'],      # even the default value
     '--jobs is for --schedule mini'),
    (['--schedule', 'short', '--phase', 'tune', '--untuned'],
     '--phase, --untuned are for --schedule mini'),
    (['--schedule', 'paper', '--arch', 'resnet8-paper'],
     '--arch is for --schedule mini'),
    (['--schedule', 'mini', '--report-only'],
     '--report-only is for the Table 1 schedules (smoke, short, paper), '
     'not mini'),
    (['--schedule', 'mini', '--seeds', '1', '--dataset', 'sample'],
     '--seeds, --dataset are for the Table 1 schedules'),
])
def test_options_a_schedule_ignores_are_refused(argv, message, capsys):
    """Issue #20: refused in one line, not silently ignored."""
    with pytest.raises(SystemExit) as e:
        reproduce.parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count('\n') == 1, err


def test_the_defaults_stand_where_a_schedule_reads_them():
    args = reproduce.parse_args(['--schedule', 'smoke'])
    assert args.seeds == [0] and args.jobs == 1 and args.phase == 'all'
    args = reproduce.parse_args(['--schedule', 'mini', '--jobs', '3'])
    assert args.jobs == 3 and args.phase == 'all' and not args.untuned


def test_a_second_live_reproduction_on_one_out_is_refused(tmp_path, capsys):
    """Issue #20: a lock on --out; released and removed at the end."""
    from chainer_vfbn import run_dir
    out = str(tmp_path / 'r')
    os.makedirs(out)
    held = run_dir.lock(out)          # a first reproduce.py, still running
    calls = []
    try:
        rc = reproduce.main(['--rows', 'bp', '--out', out],
                            runner=fake_runner(calls))
    finally:
        held.close()
    assert rc == 2 and calls == []
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith(
        'reproduce.py: error: another run is writing to %s' % out), err
    assert os.listdir(out) == [run_dir.LOCK_NAME]   # nothing written
    # The run holds the lock while its rows train, and removes it at the end.
    finish = fake_runner(calls)

    def runner(argv):
        with pytest.raises(run_dir.Busy):
            run_dir.lock(out).close()
        return finish(argv)
    assert reproduce.main(['--rows', 'bp', '--out', out], runner=runner) == 0
    assert len(calls) == 1
    assert not os.path.exists(os.path.join(out, run_dir.LOCK_NAME))
