"""train/reproduce.py, the command line over chainer_vfbn.experiments:
its flags, refusals and exit statuses, with fake runs (nothing trains)."""
import json
import os
import signal
import subprocess

import pytest

from chainer_vfbn.experiments import results_doc
from chainer_vfbn.experiments import schedules

import reproduce
import support
from chainer_vfbn.runs import folder as run_dir
from fake_train import FakeProcess
from fake_train import write_finished_run


def fake_popen(calls, fail=(), on_start=None):
    """A popen whose runs finish at once (exit 0), or fail (exit 3, no
    summary) for the methods in ``fail``; ``on_start(argv)`` may return
    an exit status instead."""
    class Finished(object):
        def __init__(self, argv, **kw):
            calls.append(list(argv))
            rc = on_start(argv) if on_start else None
            out = argv[argv.index('--out') + 1]
            method = argv[argv.index('--method') + 1]
            if rc is None and method in fail:
                rc = 3
            if rc is None:
                write_finished_run(out, 0.4, 0.35)
                rc = 0
            self.returncode = rc

        def poll(self):
            return self.returncode
    return Finished


# -- the Table 1 schedules ----------------------------------------------------

def test_main_end_to_end_with_fake_runs(tmp_path, capsys):
    out = str(tmp_path / 'r')
    calls = []
    rc = reproduce.main(['--schedule', 'smoke', '--rows', 'bp,vfbn-mlp',
                         '--seeds', '0,1', '--out', out, '--device', '@numpy',
                         '--', '--test-batchsize', '50'],
                        popen=fake_popen(calls))
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
                          popen=fake_popen(calls)) == 0
    assert len(calls) == 4
    assert reproduce.main(['--rows', 'dni-resnet', '--out', out],
                          popen=fake_popen(calls, ['dni-resnet'])) == 1
    assert 'dni-resnet_seed0' in capsys.readouterr().err
    # --report-only reads the records, and trains nothing
    os.remove(os.path.join(out, 'table.md'))
    assert reproduce.main(['--rows', 'bp', '--out', out, '--report-only'],
                          popen=fake_popen(calls)) == 0
    assert len(calls) == 5 and os.path.isfile(os.path.join(out, 'table.md'))
    # and refuses records of another schedule rather than show them
    assert reproduce.main(['--schedule', 'short', '--rows', 'bp', '--out',
                           out, '--report-only']) == 2
    assert 'made by --schedule smoke' in capsys.readouterr().err


def test_a_row_counts_only_with_its_own_schedule_and_args(tmp_path,
                                                          capsys):
    out = str(tmp_path / 'r')
    calls = []
    assert reproduce.main(['--schedule', 'smoke', '--rows', 'bp', '--out',
                           out, '--', '--learnrate', '0.05'],
                          popen=fake_popen(calls)) == 0
    argv = calls[0]       # honoured: the last --learnrate
    last = len(argv) - 1 - argv[::-1].index('--learnrate')
    assert argv[last + 1] == '0.05'
    with open(os.path.join(out, 'records', 'bp', 'seed0.json')) as f:
        config = json.load(f)['config']
    assert config['protocol'] == 'smoke'
    assert config['train_args'][-2:] == ['--learnrate', '0.05']
    capsys.readouterr()
    with open(os.path.join(out, 'reproduce.json')) as f:
        first = f.read()
    for schedule, extra, why in [('short', [], '--schedule smoke'),
                                 ('smoke', ['--', '--learnrate', '0.1'],
                                  'another configuration (differs in '
                                  'train_args)')]:
        rc = reproduce.main(['--schedule', schedule, '--rows', 'bp', '--out',
                             out] + extra, popen=fake_popen(calls))
        assert rc == 2 and len(calls) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and why in err[0] and 'another run' in err[0]
        with open(os.path.join(out, 'reproduce.json')) as f:
            assert f.read() == first   # refused before anything is written
    # The same arguments (another device) count as done.
    assert reproduce.main(['--schedule', 'smoke', '--rows', 'bp', '--out',
                           out, '--device', '@numpy', '--', '--learnrate',
                           '0.05'], popen=fake_popen(calls)) == 0
    assert len(calls) == 1


def test_rows_of_an_older_reproduce_count_as_done(tmp_path, capsys):
    """A finished row that reproduce.py ran before rows had records (its
    reproduce-row.json names the same schedule and arguments) gets its
    record and is not run again; one that names others is refused."""
    out = tmp_path / 'r'
    for row, args in (('bp', ['--method', 'bp']),
                      ('layerwise', ['--method', 'bp'])):   # not its own
        folder = out / row / 'seed0'
        folder.mkdir(parents=True)
        write_finished_run(str(folder), 0.3, 0.25)
        legacy = args + ['--arch', 'resnet8-paper', '--batchsize', '50',
                         '--iterations', '20', '--lr-step', '100',
                         '--eval-interval', '1', '--tta-interval', '2',
                         '--no-progress', '--dataset', 'sample', '--seed',
                         '0']
        (folder / 'reproduce-row.json').write_text(json.dumps(
            {'schedule': 'smoke', 'args': legacy}))
    calls = []
    assert reproduce.main(['--rows', 'bp', '--out', str(out)],
                          popen=fake_popen(calls)) == 0
    assert calls == []
    with open(str(out / 'table.json')) as f:
        bp = json.load(f)['rows'][0]
    assert bp['test_error_pct']['mean'] == pytest.approx(30.0)
    assert reproduce.main(['--rows', 'layerwise', '--out', str(out)],
                          popen=fake_popen(calls)) == 2
    assert 'a result without a record' in capsys.readouterr().err
    assert calls == []


def test_interrupt_stops_the_rows_and_writes_the_table(tmp_path, capsys):
    out = str(tmp_path / 'r')
    calls = []

    def second_is_interrupted(argv):
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
            return 143       # it snapshots and exits
        return None
    rc = reproduce.main(['--rows', 'bp,vfbn,dni-linear', '--out', out],
                        popen=fake_popen(calls, (), second_is_interrupted))
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
    args = reproduce.parse_args(['--schedule', 'mini', '--jobs', '3',
                                 '--phase', 'report'])
    assert args.jobs == 3 and args.phase == 'report' and not args.untuned


def test_a_second_live_reproduction_on_one_out_is_refused(tmp_path, capsys):
    """Issue #20: a lock on --out; released and removed at the end."""
    out = str(tmp_path / 'r')
    os.makedirs(out)
    held = run_dir.lock(out)          # a first reproduce.py, still running
    calls = []
    try:
        rc = reproduce.main(['--rows', 'bp', '--out', out],
                            popen=fake_popen(calls))
    finally:
        held.close()
    assert rc == 2 and calls == []
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith(
        'reproduce.py: error: another run is writing to %s' % out), err
    assert os.listdir(out) == [run_dir.LOCK_NAME]   # nothing written

    # The run holds the lock while its rows train, and removes it at the end.
    def busy(argv):
        with pytest.raises(run_dir.Busy):
            run_dir.lock(out).close()
    assert reproduce.main(['--rows', 'bp', '--out', out],
                          popen=fake_popen(calls, on_start=busy)) == 0
    assert len(calls) == 1
    assert not os.path.exists(os.path.join(out, run_dir.LOCK_NAME))


# -- the mini schedule ------------------------------------------------------

@pytest.fixture
def mini_data(tmp_path, monkeypatch):
    """A --data-dir that passes reproduce.py's checks up front
    (support.use_as_mini; the fake runs never read it)."""
    return support.use_as_mini(monkeypatch, tmp_path)


def test_mini_runs_reports_and_resolves_the_pilots_cut(tmp_path, mini_data):
    records, out = str(tmp_path / 'rec'), str(tmp_path / 'out')
    FakeProcess.calls = []
    rc = reproduce.main_mini(reproduce.parse_args(
        ['--schedule', 'mini', '--jobs', '4', '--records', records,
         '--out', out, '--data-dir', mini_data]), popen=FakeProcess)
    assert rc == 0 and FakeProcess.calls
    with open(os.path.join(records, 'table.md')) as f:
        assert 'Chosen: `stage1_unit1`.' in f.read()
    # --split-at pilot resolves to the pilot's cut, with its own records
    args = reproduce.parse_args(['--schedule', 'mini', '--split-at', 'pilot',
                                 '--pilot-records', records, '--out', out,
                                 '--data-dir', mini_data])
    assert args.split_at == 'stage1_unit1'
    assert args.records == os.path.join(out, 'records-stage1_unit1')
    # a pilot without records has chosen nothing: refused in one line
    with pytest.raises(SystemExit) as e:
        reproduce.parse_args(['--schedule', 'mini', '--split-at', 'pilot',
                              '--out', str(tmp_path / 'none'),
                              '--data-dir', mini_data])
    assert e.value.code == 2


def test_results_doc_without_markers_is_refused(tmp_path, capsys):
    page = tmp_path / 'RESULTS.md'
    page.write_text('# Results\nno markers\n')
    # --phase report: the report reads no data, so this holds where the
    # cifar-10-mini archive is absent too (as on CI)
    with pytest.raises(SystemExit):
        reproduce.parse_args(['--schedule', 'mini', '--phase', 'report',
                              '--results-doc', str(page)])
    err = capsys.readouterr().err
    assert 'has no' in err and 'block' in err and err.count('\n') == 1
    with pytest.raises(SystemExit):
        reproduce.parse_args(['--schedule', 'mini', '--phase', 'report',
                              '--results-doc', str(tmp_path / 'missing.md')])
    assert 'missing.md' in capsys.readouterr().err
    # the block checked is the named cut's: the default block alone does
    # not do for --split-at stage1_unit1
    page.write_text('%s\n%s\n' % (results_doc.DOC_BEGIN, results_doc.DOC_END))
    assert reproduce.parse_args(['--schedule', 'mini', '--phase', 'report',
                                 '--protocol', 'evidence2',
                                 '--results-doc', str(page)]).results_doc
    capsys.readouterr()
    # nor for the Evidence III protocol, which has blocks of its own
    with pytest.raises(SystemExit):
        reproduce.parse_args(['--schedule', 'mini', '--phase', 'report',
                              '--results-doc', str(page)])
    assert 'evidence3' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reproduce.parse_args(['--schedule', 'mini', '--phase', 'report',
                              '--protocol', 'evidence2',
                              '--split-at', 'stage1_unit1',
                              '--results-doc', str(page)])
    assert 'stage1_unit1' in capsys.readouterr().err


def test_mini_writes_only_under_its_out_and_checks_the_data_first(
        tmp_path, monkeypatch, capsys, mini_data):
    """By default the records go under --out (result/table1-mini, which
    git ignores), never into the committed docs/results/mini; and without
    the data nothing starts: one line, exit 2, naming the data command."""
    here = os.path.dirname(os.path.abspath(__file__))

    def status():
        return subprocess.run(['git', 'status', '--porcelain'], cwd=here,
                              capture_output=True, text=True).stdout
    before = status()
    monkeypatch.chdir(tmp_path)
    args = reproduce.parse_args(['--schedule', 'mini', '--data-dir',
                                 mini_data])
    assert args.records == os.path.join('result', 'table1-mini', 'records')
    FakeProcess.calls = []
    assert reproduce.main_mini(args, popen=FakeProcess) == 0
    assert FakeProcess.calls     # it trained, and wrote its own report
    assert os.path.isfile(os.path.join(args.records, 'table.md'))
    assert status() == before
    with pytest.raises(SystemExit) as e:
        reproduce.parse_args(['--schedule', 'mini', '--data-dir',
                              str(tmp_path / 'nothing')])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and reproduce.MINI_DATA_COMMAND in err[0]


def test_mini_split_at_names_a_cut_of_the_network(tmp_path, capsys,
                                                  mini_data):
    out = str(tmp_path / 'out')
    args = reproduce.parse_args(['--schedule', 'mini', '--split-at',
                                 'stage1_unit1', '--out', out,
                                 '--data-dir', mini_data])
    assert args.records == os.path.join(out, 'records-stage1_unit1')
    with pytest.raises(SystemExit) as e:
        reproduce.parse_args(['--schedule', 'mini', '--split-at', 'stage9',
                              '--data-dir', mini_data])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert 'is not a cut of resnet8-paper' in err and 'stage1_unit1' in err


def test_mini_flags_are_checked(capsys):
    with pytest.raises(SystemExit):
        reproduce.parse_args(['--schedule', 'smoke', '--arch', 'x'])
    assert 'is for --schedule mini' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reproduce.parse_args(['--schedule', 'mini', '--', '--epoch', '3'])
    assert 'no extra' in capsys.readouterr().err


@pytest.mark.parametrize('folder,cut', [('mini', None),
                                        ('mini-stage1_unit1', 'stage1_unit1')])
def test_the_committed_reports_regenerate_byte_identical(tmp_path, folder,
                                                         cut):
    """``--phase report`` on the committed records rewrites the committed
    table.md, and the cut's block of docs/RESULTS.md, byte for byte (here
    into copies, not the checkout), at both cuts."""
    import shutil
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    committed = os.path.join(repo, 'docs', 'results', folder)
    if not os.path.isdir(committed):
        pytest.skip('no committed records in this checkout')
    records = str(tmp_path / 'docs' / 'results' / folder)
    shutil.copytree(committed, records)
    os.remove(os.path.join(records, 'table.md'))
    page = tmp_path / 'RESULTS.md'
    committed_page, begin, end = results_doc.results_doc_block(
        os.path.join(repo, 'docs', 'RESULTS.md'), schedules.settings(
            split_at=cut, protocol='evidence2'))
    page.write_text(committed_page[:begin] + '\nstale\n' +
                    committed_page[end:])
    cwd = os.getcwd()
    os.chdir(str(tmp_path))
    try:
        assert reproduce.main(['--schedule', 'mini', '--phase', 'report',
                               '--records', 'docs/results/' + folder, '--out',
                               str(tmp_path / 'out'), '--results-doc',
                               str(page)]
                              + (['--split-at', cut] if cut else [])) == 0
    finally:
        os.chdir(cwd)
    with open(os.path.join(committed, 'table.md'), 'rb') as a, \
            open(os.path.join(records, 'table.md'), 'rb') as b:
        assert a.read() == b.read()
    assert page.read_text() == committed_page
