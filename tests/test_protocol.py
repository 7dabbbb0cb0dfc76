"""Tests of the ``mini`` evidence protocol (chainer_vfbn/protocol.py)."""
import json
import math
import os
import subprocess

import numpy
import pytest

from chainer_vfbn import protocol
from chainer_vfbn import strict_json
from chainer_vfbn.datasets import validation_split
from chainer_vfbn.evaluation import predictions_record

from support import REPO

import reproduce  # NOQA
import train_cifar  # NOQA


# -- the validation split ----------------------------------------------------

def test_validation_split_is_fixed_stratified_and_disjoint():
    rng = numpy.random.RandomState(3)
    labels = rng.randint(0, 10, size=4660)
    train, val = validation_split(labels, 0.1)
    again_train, again_val = validation_split(labels.copy(), 0.1)
    numpy.testing.assert_array_equal(val, again_val)
    numpy.testing.assert_array_equal(train, again_train)
    assert not set(train) & set(val)
    assert sorted(set(train) | set(val)) == list(range(len(labels)))
    for c in range(10):
        n_c = (labels == c).sum()
        assert (labels[val] == c).sum() == round(0.1 * n_c)
    # Another seed holds out other images (the split is not the identity).
    _, other = validation_split(labels, 0.1, seed=1)
    assert set(other) != set(val)


def test_validation_split_rejects_bad_fractions():
    for bad in (0, 1, -0.1, float('nan')):
        with pytest.raises(ValueError, match='validation fraction'):
            validation_split([0, 1, 1, 0], bad)


def test_cli_trains_on_the_rest_and_evaluates_on_the_held_out(monkeypatch):
    """--validation-split: the iterator holds exactly the kept images and
    the evaluation exactly the held-out ones, never the test set."""
    rng = numpy.random.RandomState(0)
    x = rng.randint(0, 256, size=(200, 3, 32, 32)).astype(numpy.uint8)
    t = numpy.repeat(numpy.arange(10, dtype=numpy.int32), 20)
    test = (x[:10] // 2, t[:10])
    from chainer_vfbn import datasets
    monkeypatch.setattr(datasets, 'get_cifar10',
                        lambda *a, **k: (((x, t), test), 'fake'))
    args = train_cifar.parse_args(['--validation-split', '0.1',
                                   '--batchsize', '10'])
    from chainer_vfbn import runtime
    train_iter, ev, description, _, n_train = runtime.setup_data(args, 24)
    kept, held = validation_split(t, 0.1)
    assert n_train == len(kept) == 180
    numpy.testing.assert_array_equal(ev['images'], x[held])
    numpy.testing.assert_array_equal(ev['labels'], t[held])
    assert 'validation split' in description
    seen = {img.tobytes() for img in train_iter.images}
    assert seen == {img.tobytes() for img in x[kept]}
    assert not seen & {img.tobytes() for img in x[held]}


# -- the plan -----------------------------------------------------------------

def test_tuning_grid_is_the_same_for_every_synthetic_row():
    s = protocol.settings()
    grids = {row: sorted({a for a, _ in protocol.tuning_grid(row, s)})
             for row in protocol.TUNED_ROWS}
    first = grids[protocol.TUNED_ROWS[0]]
    assert all(g == first for g in grids.values()), grids
    assert math.log10(max(first) / min(first)) >= 5    # five decades
    for row in ('dni-linear', 'dni-resnet'):
        scales = {sc for _, sc in protocol.tuning_grid(row, s)}
        assert scales == {'batch-mean', 'per-example'}
    tune = protocol.plan('tune', s)
    assert {r.row for r in tune} == set(protocol.TUNED_ROWS)
    assert 'vfbn-alpha0' not in {r.row for r in tune}
    for run in tune:   # the same budget: the same epochs for every row
        assert run.args[run.args.index('--epoch') + 1] == str(
            s['tune_epochs'])
        assert '--validation-split' in run.args


def test_final_needs_the_tuning_and_uses_the_test_set():
    s = protocol.settings()
    with pytest.raises(protocol.ProtocolError, match='tuning'):
        protocol.plan('final', s, chosen={})
    chosen = {row: (1e-4, 'batch-mean') for row in protocol.TUNED_ROWS}
    final = protocol.plan('final', s, chosen=chosen)
    by_row = {}
    for run in final:
        assert '--validation-split' not in run.args
        by_row.setdefault(run.row, []).append(run.seed)
        if run.row in protocol.TUNED_ROWS:
            i = run.args.index('--alpha-gs')
            assert float(run.args[i + 1]) == 1e-4
    for row in protocol.ROWS:
        want = (s['closed_form_seeds'] if row in protocol.CLOSED_FORM_ROWS
                else s['seeds'])
        assert by_row[row] == list(want)
    assert len(s['seeds']) >= 3
    assert sorted(protocol.FINAL_ORDER) == sorted(protocol.MINI_ROWS)
    # Seed by seed; within a seed, bp and vfbn first.
    assert [r.seed for r in final] == sorted(r.seed for r in final)
    assert [(r.row, r.seed) for r in final[:3]] == [
        ('bp', 0), ('vfbn', 0), ('vfbn-alpha0', 0)]


def test_every_planned_command_parses():
    s = protocol.settings()
    chosen = protocol.default_alphas()
    for phase in protocol.PHASES:
        for run in protocol.plan(phase, s, chosen=chosen):
            args = train_cifar.parse_args(run.args + ['--out', 'x'])
            assert args.arch == s['arch']


def test_lr_steps_at_five_and_ten_twelfths():
    s = protocol.settings()
    run = protocol.plan('length', s)[0]
    step = float(run.args[run.args.index('--lr-step') + 1])
    epochs = int(run.args[run.args.index('--epoch') + 1])
    assert step == pytest.approx(5 / 12. * epochs)


# -- running: skip what is recorded, refuse what differs -----------------------

def _wrong_first(labels, err):
    pred = labels.copy()
    k = int(round(100 * err))
    pred[:k] = (labels[:k] + 1) % 10
    return pred


class FakeProcess(object):
    """Writes what train_cifar.py leaves behind, then exits 0."""

    calls = []
    cut_penalty = {'stem': 0.2, 'stage1_unit1': 0.08}

    def __init__(self, argv, stdout=None, stderr=None, env=None,
                 start_new_session=False):
        FakeProcess.calls.append(argv)
        self.env = env
        out = argv[argv.index('--out') + 1]
        seed = int(argv[argv.index('--seed') + 1])
        err = 0.5 - 0.01 * seed
        if '--alpha-gs' in argv:
            err += abs(math.log10(float(argv[argv.index('--alpha-gs') + 1])
                           + 1e-30) + 4) / 100.
        if '--split-at' in argv:   # the pilot's bottom halves
            err += FakeProcess.cut_penalty.get(
                argv[argv.index('--split-at') + 1], 0.)
        with open(os.path.join(out, 'summary.json'), 'w') as f:
            json.dump({'test_error': err, 'tta_error': err - 0.02,
                       'train_accuracy': 0.9, 'synth_cos': 0.5,
                       'synth_norm_ratio': 1.0, 'epochs': 1,
                       'images_per_sec': 10.}, f)
        with open(os.path.join(out, 'args.json'), 'w') as f:
            json.dump({'code_version': 'test'}, f)
        with open(os.path.join(out, 'log'), 'w') as f:
            json.dump([{'epoch': 1, 'iteration': 2,
                        'validation/main/error': err, 'other': 1}], f)
        # 100 images: the first 100 * err of them wrong (nested, so that
        # a lower error errs on a subset of the images a higher one does)
        labels = numpy.arange(100) % 10
        with open(os.path.join(out, 'predictions.json'), 'w') as f:
            json.dump(predictions_record(dict(
                predictions=_wrong_first(labels, err),
                tta_predictions=_wrong_first(labels, err - 0.02)), labels), f)
        self.returncode = 0

    def poll(self):
        return self.returncode


def test_rerun_skips_matching_records_and_refuses_others(tmp_path):
    s = protocol.settings()
    records, out = str(tmp_path / 'rec'), str(tmp_path / 'out')
    runs = protocol.plan('tune', s, rows=['vfbn'])
    FakeProcess.calls = []
    result = protocol.run_pool(runs, s, records, out, 'train.py', jobs=3,
                               popen=FakeProcess, log=lambda m: None)
    assert set(result.values()) == {'done'}
    assert len(FakeProcess.calls) == len(runs)
    rec = protocol.read_record(protocol.record_path(records, runs[0]))
    assert rec['settings']['arch'] == s['arch']
    assert rec['config']['train_args'] == runs[0].args
    assert rec['curve'] == [{'epoch': 1, 'iteration': 2,
                             'validation/main/error':
                                 rec['summary']['test_error']}]
    # Again: nothing runs.
    result = protocol.run_pool(runs, s, records, out, 'train.py', jobs=3,
                               popen=FakeProcess, log=lambda m: None)
    assert set(result.values()) == {'skipped'}
    assert len(FakeProcess.calls) == len(runs)
    # Another configuration: refused, naming what differs.
    other = protocol.settings(arch='resnet14-paper')
    with pytest.raises(protocol.ProtocolError, match='train_args'):
        protocol.run_pool(protocol.plan('tune', other, rows=['vfbn']), other,
                          records, out, 'train.py', popen=FakeProcess)
    # The tuning choice is the lowest validation error of the grid.
    assert protocol.tuning_choice('vfbn', s, records) == (1e-4, 'batch-mean')


def test_one_blas_thread_per_run(tmp_path):
    s = protocol.settings()
    FakeProcess.calls = []
    seen = []

    class Spy(FakeProcess):
        def __init__(self, argv, **kw):
            super().__init__(argv, **kw)
            seen.append(kw['env'])
    protocol.run_pool(protocol.plan('length', s), s, str(tmp_path / 'r'),
                      str(tmp_path / 'o'), 'train.py', popen=Spy,
                      log=lambda m: None)
    assert seen and all(e['OMP_NUM_THREADS'] == '1' and
                        e['OPENBLAS_NUM_THREADS'] == '1' and
                        e['CHAINER_TYPE_CHECK'] == '0' for e in seen)


def test_a_signal_is_passed_on_and_waited_for(tmp_path):
    """SIGTERM: the running run gets it, is waited for, nothing else starts,
    and the pool raises Interrupted with the shell's exit status."""
    import signal
    from chainer_vfbn.interrupt import Interrupted
    s = protocol.settings()
    started, got = [], []

    class Running(object):
        def __init__(self, argv, **kw):
            started.append(argv)
            assert kw['start_new_session']
            self.returncode = None
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while running

        def poll(self):
            return self.returncode

        def send_signal(self, signum):
            got.append(signum)
            self.returncode = 128 + signum   # snapshots, then exits

    runs = protocol.plan('tune', s, rows=['vfbn'])
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as e:
        protocol.run_pool(runs, s, str(tmp_path / 'r'), str(tmp_path / 'o'),
                          'train.py', jobs=1, popen=Running,
                          log=lambda m: None)
    assert e.value.exit_code == 143 and e.value.name == 'SIGTERM'
    assert len(started) == 1 and got == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is previous
    assert not os.path.exists(str(tmp_path / 'r'))  # no record written


def test_deadline_starts_nothing(tmp_path):
    s = protocol.settings()
    FakeProcess.calls = []
    result = protocol.run_pool(protocol.plan('tune', s, rows=['vfbn']), s,
                               str(tmp_path / 'r'), str(tmp_path / 'o'),
                               'train.py', deadline=0, popen=FakeProcess,
                               log=lambda m: None)
    assert FakeProcess.calls == []
    assert set(result.values()) == {'not started (deadline)'}


@pytest.fixture
def mini_data(tmp_path):
    """A --data-dir that passes reproduce.py's check up front (the fake
    runs never read it)."""
    folder = tmp_path / 'mini-data'
    folder.mkdir()
    (folder / 'cifar-10-python.tar.gz').write_bytes(b'')
    return str(folder)


def test_report_end_to_end_with_fake_runs(tmp_path, capsys, mini_data):
    records, out = str(tmp_path / 'rec'), str(tmp_path / 'out')
    rc = reproduce.main_mini(reproduce.parse_args(
        ['--schedule', 'mini', '--jobs', '4', '--records', records,
         '--out', out, '--data-dir', mini_data]), popen=FakeProcess)
    assert rc == 0
    with open(os.path.join(records, 'table.md')) as f:
        md = f.read()
    assert '| Back prop (`bp`) | 5.15 |' in md
    assert '3 of 3' in md and '1 of 1' in md
    assert '**' in md          # the chosen grid points are marked
    assert 'Gain over the last fifth' in md
    # every comparison of two Table 1 rows has its line in both views: a
    # misspelled row would be skipped
    for question, a, b in protocol.COMPARISONS:
        if a in protocol.ROWS and b in protocol.ROWS:
            for view in ('centre', 'tta'):
                assert '| %s | `%s` − `%s` | %s | ' % (question, a, b,
                                                       view) in md
    # The fake untrained VFBN (alpha 0) errs on the same 26 more images
    # than the tuned one in every seed: -26 points, p = 2 / 2**26.
    line = [l for l in md.splitlines() if l.startswith(
        '| (c) VFBN tuned α_gs against α_gs = 0 |') and '| centre |' in l]
    assert line and '| centre | -26.00 [' in line[0]
    assert '| <1e-4 | <1e-4 | 0: <1e-4, 1: <1e-4, 2: <1e-4 |' in line[0]
    n_tests = 2 * sum(a in protocol.ROWS and b in protocol.ROWS
                      for _, a, b in protocol.COMPARISONS)
    assert 'adjusted for the %d tests of this table' % n_tests in md
    # The pilot: stage1_unit1's bottom errs on 8 more images than BP, all
    # one way: McNemar p = 2 / 2**8 < 0.01 and 8 >= 5 points: chosen.
    assert '## Pilot' in md
    assert '| `bottom-bp` cut after `stage1_unit1` | 58.00 | 56.00 | ' \
        '+8.00 [' in md and '], p = 0.0078 |' in md
    assert 'Chosen: `stage1_unit1`.' in md
    # and --split-at pilot resolves to it, with its own records folder
    args = reproduce.parse_args(['--schedule', 'mini', '--split-at', 'pilot',
                                 '--pilot-records', records, '--out', out,
                                 '--data-dir', mini_data])
    assert args.split_at == 'stage1_unit1'
    assert args.records == os.path.join(out, 'records-stage1_unit1')


def test_report_writes_its_block_into_the_results_page(tmp_path, capsys,
                                                      mini_data):
    records, out = str(tmp_path / 'rec'), str(tmp_path / 'out')
    page = tmp_path / 'RESULTS.md'
    page.write_text('# Results\nkept above\n%s\nold table\n%s\nkept below\n'
                    % (protocol.DOC_BEGIN, protocol.DOC_END))
    argv = ['--schedule', 'mini', '--jobs', '4', '--records', records,
            '--out', out, '--data-dir', mini_data, '--results-doc', str(page)]
    assert reproduce.main_mini(reproduce.parse_args(argv),
                               popen=FakeProcess) == 0
    text = page.read_text()
    assert text.startswith('# Results\nkept above\n' + protocol.DOC_BEGIN)
    assert text.endswith(protocol.DOC_END + '\nkept below\n')
    assert 'old table' not in text
    assert '\n#### Test error\n' in text and '## Test error' not in \
        text.replace('#### Test error', '')
    assert '| (a) VFBN against BP | `vfbn` − `bp` |' in text
    # the block is the report's own table, and a second write changes nothing
    with open(os.path.join(records, 'table.md')) as f:
        table_md = f.read()
    row = [l for l in table_md.splitlines() if l.startswith('| Back prop')]
    assert row and row[0] in text
    reproduce.main_mini(reproduce.parse_args(argv[:-2] + ['--phase', 'report',
                                                         '--results-doc',
                                                         str(page)]))
    assert page.read_text() == text


def test_results_doc_without_markers_is_refused(tmp_path, capsys):
    page = tmp_path / 'RESULTS.md'
    page.write_text('# Results\nno markers\n')
    with pytest.raises(SystemExit):
        reproduce.parse_args(['--schedule', 'mini', '--results-doc',
                              str(page)])
    err = capsys.readouterr().err
    assert 'has no' in err and 'block' in err
    with pytest.raises(SystemExit):
        reproduce.parse_args(['--schedule', 'mini', '--results-doc',
                              str(tmp_path / 'missing.md')])


def test_mini_writes_only_under_its_out_and_checks_the_data_first(
        tmp_path, monkeypatch, capsys, mini_data):
    """By default the records go under --out (result/table1-mini, which
    git ignores), never into the committed docs/results/mini; and without
    the data nothing starts: one line, exit 2, naming the data command."""
    def status():
        return subprocess.run(['git', 'status', '--porcelain'], cwd=REPO,
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


class DivergingProcess(FakeProcess):
    """Diverges (exit 3, as train_cifar.py) at alpha_gs >= 1e-3, before
    its first log entry; otherwise as FakeProcess."""

    def __init__(self, argv, **kw):
        alpha = float(argv[argv.index('--alpha-gs') + 1])
        if alpha < 1e-3:
            super().__init__(argv, **kw)
            return
        FakeProcess.calls.append(argv)
        out = argv[argv.index('--out') + 1]
        with open(os.path.join(out, 'summary.json'), 'w') as f:
            json.dump({'status': 'diverged', 'test_error': None,
                       'diverged': {'iteration': 7}}, f)
        with open(os.path.join(out, 'args.json'), 'w') as f:
            json.dump({'code_version': 'test'}, f)
        self.returncode = 3


def test_diverged_runs_are_recorded_and_ranked_last(tmp_path):
    """A diverged grid point is a result: recorded (not re-run) and never
    chosen, so the row's tuning completes."""
    s = protocol.settings()
    records = str(tmp_path / 'rec')
    runs = protocol.plan('tune', s, rows=['dni-linear'])
    FakeProcess.calls = []
    result = protocol.run_pool(runs, s, records, str(tmp_path / 'out'),
                               'train.py', jobs=4, popen=DivergingProcess,
                               log=lambda m: None)
    diverged = [k for k, v in result.items() if v == 'diverged']
    big = [a for a in s['alpha_grid'] if a >= 1e-3]
    assert len(big) >= 2 and len(diverged) == 2 * len(big)  # both scales
    assert all(v in ('done', 'diverged') for v in result.values())
    rec = protocol.read_record(protocol.record_path(records, runs[-1]))
    assert rec['summary']['status'] == 'diverged' and rec['curve'] == []
    choice = protocol.tuning_choice('dni-linear', s, records)
    assert choice is not None and choice[0] < 1e-3
    table = protocol.summarize(s, records, rows=['dni-linear'])
    cells = protocol.markdown(s, records, table, None).split(
        '## Tuning')[1].split('\n', 1)[1]
    assert cells.count('| diverged ') == len(diverged)  # not '—' (not run)
    again = protocol.run_pool(runs, s, records, str(tmp_path / 'out'),
                              'train.py', popen=DivergingProcess,
                              log=lambda m: None)
    assert set(again.values()) == {'skipped'}


def test_records_without_predictions_rerun_only_when_asked(tmp_path):
    """A record made before the predictions were kept counts as done,
    unless need_predictions asks for it again; the new record (with
    predictions) replaces it and then counts as done."""
    s = protocol.settings()
    records, out = str(tmp_path / 'rec'), str(tmp_path / 'out')
    runs = protocol.plan('final', s, rows=['bp'])[:1]
    protocol.run_pool(runs, s, records, out, 'train.py', popen=FakeProcess,
                      log=lambda m: None)
    path = protocol.record_path(records, runs[0])
    rec = protocol.read_record(path)
    assert rec['predictions']['n_images'] == 100
    rec['predictions'] = None               # as the records of 2026-11-30
    strict_json.write_json(path, rec, **strict_json.RECORD)
    assert protocol.status(runs[0], s, records) == 'done'
    assert protocol.status(runs[0], s, records,
                           need_predictions=True) == 'todo'
    FakeProcess.calls = []
    result = protocol.run_pool(runs, s, records, out, 'train.py',
                               popen=FakeProcess, log=lambda m: None,
                               need_predictions=True)
    assert result == {runs[0].key: 'done'} and len(FakeProcess.calls) == 1
    assert protocol.read_record(path)['predictions'] is not None
    assert protocol.status(runs[0], s, records,
                           need_predictions=True) == 'done'
