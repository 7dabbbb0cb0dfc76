"""train/reproduce.py, the command line over chainer_vfbn.experiments:
its flags, refusals and exit statuses, with fake runs (nothing trains)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from chainer_vfbn.experiments.protocol import choices
from chainer_vfbn.experiments.protocol import plan as planning
from chainer_vfbn.experiments.protocol import schedules
from chainer_vfbn.experiments.records import locks
from chainer_vfbn.experiments.records import store
from chainer_vfbn.experiments.protocol.rows import MINI_ROWS
from chainer_vfbn.experiments.protocol.rows import ROWS
from chainer_vfbn.experiments.reporting import results_doc

import reproduce
import support
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
                write_finished_run(out, 0.4, 0.35, argv=argv[2:])
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
        # its args.json names no arguments (a real one of then did)
        write_finished_run(str(folder), 0.3, 0.25, {'iterations': 20})
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
    assert 'layerwise/seed0 holds another run: its args.json names other ' \
        'arguments than smoke/layerwise_seed0' in capsys.readouterr().err
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
    (['--schedule', 'short', '--jobs', '2', '--untuned'],
     '--jobs, --untuned are for --schedule mini'),
    (['--schedule', 'short', '--phase', 'tune'],
     '--phase tune is not a phase of --schedule short; choose from all, '
     'short, report'),
    (['--schedule', 'smoke', '--phase', 'report', '--run-index', '0'],
     '--run-index and --only run a run; --phase report runs none'),
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


@pytest.mark.parametrize('folder,cut,protocol', [
    ('mini', None, 'evidence2'),
    ('mini-stage1_unit1', 'stage1_unit1', 'evidence2'),
    ('evidence3-stage1_unit1', 'stage1_unit1', 'evidence3')])
def test_the_committed_reports_regenerate_byte_identical(tmp_path, folder,
                                                         cut, protocol):
    """``--phase report`` on the committed records rewrites the committed
    table.md, and its block of docs/RESULTS.md, byte for byte (here into
    copies, not the checkout), at both cuts and under both protocols."""
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
            split_at=cut, protocol=protocol))
    page.write_text(committed_page[:begin] + '\nstale\n' +
                    committed_page[end:])
    cwd = os.getcwd()
    os.chdir(str(tmp_path))
    try:
        assert reproduce.main(['--schedule', 'mini', '--phase', 'report',
                               '--records', 'docs/results/' + folder, '--out',
                               str(tmp_path / 'out'), '--results-doc',
                               str(page), '--protocol', protocol]
                              + (['--split-at', cut] if cut else [])) == 0
    finally:
        os.chdir(cwd)
    with open(os.path.join(committed, 'table.md'), 'rb') as a, \
            open(os.path.join(records, 'table.md'), 'rb') as b:
        assert a.read() == b.read()
    assert page.read_text() == committed_page


# -- a run list, a run of one, one shared folder -----------------------------

def _lines(capsys):
    return capsys.readouterr().out.strip().splitlines()


def test_list_and_run_index_run_exactly_one(tmp_path, capsys):
    out = str(tmp_path / 'r')
    base = ['--schedule', 'smoke', '--rows', 'bp,vfbn', '--seeds', '0,1',
            '--out', out]
    assert reproduce.main(base + ['--list']) == 0
    assert [line.split('\t') for line in _lines(capsys)] == [
        ['0', 'smoke', 'bp', '0', 'smoke/bp_seed0'],
        ['1', 'smoke', 'vfbn', '0', 'smoke/vfbn_seed0'],
        ['2', 'smoke', 'bp', '1', 'smoke/bp_seed1'],
        ['3', 'smoke', 'vfbn', '1', 'smoke/vfbn_seed1']]
    assert not os.path.exists(out)          # listing writes nothing
    calls = []
    assert reproduce.main(base + ['--run-index', '2'],
                          popen=fake_popen(calls)) == 0
    assert len(calls) == 1 and calls[0][calls[0].index('--out') + 1] == \
        os.path.join(out, 'bp', 'seed1')
    assert os.path.isfile(os.path.join(out, 'records', 'bp', 'seed1.json'))
    assert not os.path.exists(os.path.join(out, 'table.md'))   # no report
    capsys.readouterr()
    # again: its record is done, so nothing runs, and it says so
    assert reproduce.main(base + ['--only', 'smoke/bp_seed1'],
                          popen=fake_popen(calls)) == 0
    assert len(calls) == 1
    assert 'smoke/bp_seed1 is recorded already' in capsys.readouterr().out
    # the other tasks of the array, then the report job
    for i in (0, 1, 3):
        assert reproduce.main(base + ['--run-index', str(i)],
                              popen=fake_popen(calls)) == 0
    assert len(calls) == 4
    assert reproduce.main(base + ['--phase', 'report']) == 0
    with open(os.path.join(out, 'table.json')) as f:
        assert json.load(f)['runs']['bp'][1]['status'] == 'complete'
    for bad, why in ((['--run-index', '4'], '--run-index 4: the list has 4 '
                      'run(s)'), (['--only', 'smoke/nope'],
                                  '--only smoke/nope: no such run')):
        assert reproduce.main(base + bad, popen=fake_popen(calls)) == 2
        err = capsys.readouterr().err
        assert why in err and err.count('\n') == 1


def test_without_rows_a_mini_table_has_its_protocols_rows(tmp_path, capsys,
                                                          mini_data):
    """Evidence III's table holds every mini row (the peers and the paper's
    alpha_gs too, issue 31) unless --rows names others; Evidence II's, and
    a Table 1 schedule's, Table 1's rows."""
    def final_rows(*extra):
        assert reproduce.main(['--schedule', 'mini', '--phase', 'final',
                               '--records', str(tmp_path / 'rec'),
                               '--out', str(tmp_path / 'out'), '--data-dir',
                               mini_data, '--list'] + list(extra)) == 0
        return {line.split('\t')[2] for line in _lines(capsys)}

    assert final_rows() == set(MINI_ROWS)
    assert final_rows('--protocol', 'evidence2') == set(ROWS)
    assert final_rows('--rows', 'bp,dgl') == {'bp', 'dgl'}
    assert reproduce.main(['--schedule', 'smoke', '--out',
                           str(tmp_path / 's'), '--list']) == 0
    assert {line.split('\t')[2] for line in _lines(capsys)} == set(ROWS)


def test_mini_list_has_every_phase_and_a_final_waits_for_its_tuning(
        tmp_path, capsys, mini_data):
    records, out = str(tmp_path / 'rec'), str(tmp_path / 'out')
    base = ['--schedule', 'mini', '--rows', 'bp,vfbn', '--records', records,
            '--out', out, '--data-dir', mini_data]
    assert reproduce.main(base + ['--list']) == 0
    full = [line.split('\t') for line in _lines(capsys)]
    phases = [f[1] for f in full]
    assert phases == sorted(phases, key=schedules.PHASES.index)
    assert set(phases) == set(schedules.PHASES)
    assert [f[0] for f in full] == [str(i) for i in range(len(full))]
    # one phase's list is that phase's slice of the full list, re-indexed
    assert reproduce.main(base + ['--phase', 'final', '--list']) == 0
    final = [line.split('\t') for line in _lines(capsys)]
    assert [f[1:] for f in final] == [f[1:] for f in full
                                      if f[1] == 'final']
    index = [f[4] for f in final].index('final/vfbn_seed1')
    FakeProcess.calls = []
    one = base + ['--phase', 'final', '--run-index', str(index)]
    assert reproduce.main(one, popen=FakeProcess) == reproduce.EXIT_WAITING
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['reproduce.py: final/vfbn_seed1 waits for the tuning of '
                   'vfbn: 8 of its 8 tune runs have no record']
    assert FakeProcess.calls == []
    # a later rung's slot waits for the rung before too
    assert reproduce.main(base + ['--phase', 'tune2', '--run-index', '0'],
                          popen=FakeProcess) == reproduce.EXIT_WAITING
    assert 'tune2/vfbn_seed0_slot0 waits for the tuning of vfbn: 8 of ' \
        'its 8 tune runs' in capsys.readouterr().err
    # each rung's slots as an array task runs them, then the final
    for phase in schedules.TUNE_PHASES:
        capsys.readouterr()
        assert reproduce.main(base + ['--phase', phase, '--list']) == 0
        slots = [line.split('\t')[4] for line in _lines(capsys)]
        for i in range(len(slots)):
            assert reproduce.main(base + ['--phase', phase, '--run-index',
                                          str(i)], popen=FakeProcess) == 0
        if phase == 'tune2':     # the best 4 of the 8 (the fake: near 1e-4)
            ran = [a[a.index('--alpha-gs') + 1] for a in
                   FakeProcess.calls[-len(slots):]]
            assert ran == ['0.0001', '1e-05', '0.001', '1e-06']
    assert len(FakeProcess.calls) == 8 + 4 + 4
    assert reproduce.main(one, popen=FakeProcess) == 0
    argv = FakeProcess.calls[-1]
    assert argv[argv.index('--out') + 1] == os.path.join(out, 'final',
                                                         'vfbn_seed1')
    assert argv[argv.index('--alpha-gs') + 1] == '0.0001'  # the fake's best


def test_a_mini_table_that_another_process_holds_back_exits_75(
        tmp_path, capsys, mini_data):
    """A whole mini table whose tuning run another live process trains
    cannot plan the rungs after it: it says so in one line and exits 75
    (try again), not 0; once that run is recorded, the same command
    completes the table."""
    records, out = str(tmp_path / 'rec'), str(tmp_path / 'out')
    argv = ['--schedule', 'mini', '--rows', 'bp,vfbn', '--records', records,
            '--out', out, '--data-dir', mini_data]
    s = schedules.settings()
    first = planning.plan('tune', s, rows=['vfbn'])[0]
    held = locks.lock_record(records, first)        # a live holder: us
    FakeProcess.calls = []
    assert reproduce.main(argv, popen=FakeProcess) == reproduce.EXIT_WAITING
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['reproduce.py: the table is not complete: 1 run(s) that '
                   'other processes train have no record yet (%s); the same '
                   'command goes on once they end' % first.key]
    assert 'final/vfbn_seed0' not in str(FakeProcess.calls)
    held.release()
    assert reproduce.main(argv, popen=FakeProcess) == 0
    assert store.status(first, records) == 'done'
    assert choices.tuning_choice('vfbn', s, records) is not None


def test_a_deleted_or_damaged_record_and_a_full_disk_strand_nothing(
        tmp_path, capsys, monkeypatch):
    """Issue #32: a finished run folder is adopted as its record after
    the record was deleted, or never written for a full disk (one line, no
    .tmp left); a damaged record is one line that says what to do."""
    import errno
    from chainer_vfbn.runs import strict_json
    out = str(tmp_path / 'r')
    argv = ['--rows', 'bp', '--out', out]
    record = os.path.join(out, 'records', 'bp', 'seed0.json')
    calls = []
    assert reproduce.main(argv, popen=fake_popen(calls)) == 0
    with open(record) as f:
        first = json.load(f)
    os.remove(record)
    capsys.readouterr()
    assert reproduce.main(argv, popen=fake_popen(calls)) == 0
    assert len(calls) == 1                 # adopted, not trained again
    assert 'smoke/bp_seed0: adopted the finished run in %s' % os.path.join(
        out, 'bp', 'seed0') in capsys.readouterr().out
    with open(record) as f:
        again = json.load(f)
    assert {k: v for k, v in again.items() if k != 'finished'} == \
        {k: v for k, v in first.items() if k != 'finished'}
    # damaged: one line that says what to do; then deleted: adopted
    with open(record, 'w') as f:
        f.write('{"config": ')
    assert reproduce.main(argv, popen=fake_popen(calls)) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'the record %s is damaged' % record in \
        err and 'delete it' in err
    os.remove(record)

    # a full disk while the record is written
    class FullDisk(object):
        @staticmethod
        def dump(obj, f, **kw):
            f.write('{"config"')
            raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(strict_json, 'json', FullDisk)
    assert reproduce.main(argv + ['--seeds', '1'],
                          popen=fake_popen(calls)) == 1
    assert len(calls) == 2
    lines = capsys.readouterr()
    err = lines.err.strip().splitlines()
    assert err == ['reproduce.py: 1 run(s) failed: smoke/bp_seed1']
    assert 'smoke/bp_seed1 finished, but its record %s was not written: ' \
        'the disk is full (No space left on device' % record.replace(
            'seed0', 'seed1') in lines.out
    assert not [f for _, _, fs in os.walk(out) for f in fs
                if '.tmp' in f or f.endswith('.lock')]
    monkeypatch.undo()
    assert reproduce.main(argv + ['--seeds', '0,1'],
                          popen=fake_popen(calls)) == 0
    assert len(calls) == 2          # both adopted
    assert os.path.isfile(record) and os.path.isfile(
        record.replace('seed0', 'seed1'))


def _driver(out, rows, seconds, ledger, said):
    """A reproduce.py process over the fake train_cifar.py (fake_train.py
    as a script), its output (and its runs') in the file ``said`` (a pipe
    would stay open while an orphan holds it)."""
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    code = ('import sys, reproduce; reproduce.TRAIN_SCRIPT = sys.argv[1]; '
            'sys.exit(reproduce.main(sys.argv[2:]))')
    env = dict(os.environ, FAKE_TRAIN_SECONDS=str(seconds),
               FAKE_TRAIN_LEDGER=ledger, PYTHONPATH=os.pathsep.join(
                   [repo, os.path.join(repo, 'train')]))
    with open(said, 'w') as f:     # the process keeps its own copy
        return subprocess.Popen(
            [sys.executable, '-c', code, os.path.join(here, 'fake_train.py'),
             '--rows', rows, '--seeds', '0,1', '--out', out],
            env=env, stdout=f, stderr=subprocess.STDOUT)


def _finish(proc, said, timeout=240):
    """``(exit status, output)`` of a :func:`_driver`."""
    proc.wait(timeout=timeout)
    with open(said) as f:
        return proc.returncode, f.read()


def _ledger(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.split() for line in f]


def test_two_reproductions_on_one_folder_train_each_run_once(tmp_path):
    out, ledger = str(tmp_path / 'r'), str(tmp_path / 'ledger')
    said = [str(tmp_path / ('said%d' % i)) for i in (0, 1)]
    procs = [_driver(out, 'bp,vfbn', 2, ledger, s) for s in said]
    ended = [_finish(p, s) for p, s in zip(procs, said)]
    outputs = [o for _, o in ended]
    assert [rc for rc, _ in ended] == [0, 0], outputs
    trained = sorted(o for o, _ in _ledger(ledger))
    assert trained == sorted(os.path.join(out, r, 's' + s) for r in
                             ('bp', 'vfbn') for s in ('eed0', 'eed1'))
    said = ''.join(outputs)
    assert 'is being trained by pid' in said or 'recorded meanwhile' in said
    assert os.path.isfile(os.path.join(out, 'table.md'))


def test_kill_9_of_reproduce_takes_its_run_along_and_a_rerun_recovers(
        tmp_path):
    out, ledger = str(tmp_path / 'r'), str(tmp_path / 'ledger')
    said = str(tmp_path / 'said')
    parent = _driver(out, 'bp', 120, ledger, said)
    deadline = time.time() + 120
    while not _ledger(ledger) and time.time() < deadline:
        time.sleep(0.2)
    assert _ledger(ledger), open(said).read()
    child = int(_ledger(ledger)[0][1])
    parent.kill()
    parent.wait()
    deadline = time.time() + 30
    while time.time() < deadline and _running(child):
        time.sleep(0.2)
    assert not _running(child), 'the orphan train_cifar.py still runs'
    rc, said = _finish(_driver(out, 'bp', 0, ledger, said), said)
    assert rc == 0, said
    assert 'took over the stale lock of pid %d' % parent.pid in said
    for seed in (0, 1):
        assert os.path.isfile(os.path.join(out, 'records', 'bp',
                                           'seed%d.json' % seed))


def _running(pid):
    """Whether ``pid`` runs (a zombie counts as ended)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def test_help_says_how_long_a_row_takes_from_the_records(tmp_path):
    """Issue #34: measured from the records' curves, not guessed."""
    final = tmp_path / 'final'
    final.mkdir()
    for seed, secs in ((0, 1080.), (1, 1140.)):
        (final / ('bp_seed%d.json' % seed)).write_text(json.dumps({
            'config': {'row': 'bp'},
            'environment': {'machine': {'cpu': 'Some CPU', 'cpu_count': 2}},
            'curve': [{'epoch': 24, 'elapsed_time': secs}]}))
    lines = reproduce.row_times(str(tmp_path))
    assert 'the 2 final runs of 24 epochs in %s, on Some CPU (2 cores), ' \
        'two runs at once' % tmp_path in ' '.join(' '.join(lines).split())
    assert lines[-1] == '    bp                 18-19 min a seed, 0.6 h ' \
        'for its 2 seed(s)'
    assert reproduce.row_times(str(tmp_path / 'none')) == [
        'How long a row takes: not measured here (no records in %s).'
        % (tmp_path / 'none')]
    help_text = reproduce.build_parser().format_help()
    if os.path.isdir(os.path.join(os.path.dirname(reproduce.HERE),
                                  reproduce.TIMED_RECORDS)):
        assert 'How long a row of --schedule mini takes (measured' in \
            help_text
