"""The runs a schedule plans (chainer_vfbn/experiments/protocol/plan.py)."""
import glob
import json
import math
import os

import pytest

import train_cifar
from chainer_vfbn import split_points
from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments.protocol import choices
from chainer_vfbn.experiments.protocol import plan as planning
from chainer_vfbn.experiments.protocol import rows
from chainer_vfbn.experiments.protocol.run import command
from chainer_vfbn.experiments.protocol.run import joined
from chainer_vfbn.experiments.protocol import schedules
from chainer_vfbn.experiments.records import store
from chainer_vfbn.models import resnet_cifar
from chainer_vfbn.runs import command_line
from support import REPO


# -- the mini schedule ------------------------------------------------------

def test_tuning_grid_is_the_same_for_every_synthetic_row():
    s = schedules.settings(protocol='evidence2')
    synthetic = [r for r in rows.TUNED_ROWS
                 if rows.TUNED_OPTIONS[r] == 'alpha_gs']
    # Evidence II did not tune InfoPro's weight
    assert schedules.tuned_rows(s) == tuple(synthetic)
    grids = {row: sorted({a for a, _ in schedules.tuning_grid(row, s)})
             for row in synthetic}
    first = grids[synthetic[0]]
    assert all(g == first for g in grids.values()), grids
    assert math.log10(max(first) / min(first)) >= 5    # five decades
    for row in ('dni-linear', 'dni-resnet'):
        scales = {sc for _, sc in schedules.tuning_grid(row, s)}
        assert scales == {'batch-mean', 'per-example'}
    tune = planning.plan('tune', s, rows=list(rows.MINI_ROWS))
    assert {r.row for r in tune} == set(synthetic)
    assert 'vfbn-alpha0' not in {r.row for r in tune}
    for run in tune:   # the same budget: the same epochs for every row
        assert run.options['epoch'] == s['tune_epochs']
        assert run.options['validation_split'] == s['validation_split']


def test_final_needs_the_tuning_and_uses_the_test_set():
    s = schedules.settings(protocol='evidence2')
    with pytest.raises(ExperimentError, match='tuning'):
        planning.plan('final', s, chosen={})
    chosen = {row: (1e-4, 'batch-mean') for row in rows.TUNED_ROWS}
    final = planning.plan('final', s, chosen=chosen)
    by_row = {}
    for run in final:
        assert 'validation_split' not in run.options
        by_row.setdefault(run.row, []).append(run.seed)
        if run.row in rows.TUNED_ROWS:
            assert run.options['alpha_gs'] == 1e-4
    for row in rows.ROWS:
        want = (s['closed_form_seeds'] if row in rows.ONE_SEED_ROWS
                else s['seeds'])
        assert by_row[row] == list(want)
    # Evidence II asks three seeds of the linear closed form.
    assert by_row['vfbn-linear'] == list(s['seeds'])
    assert by_row['vfbn-mlp'] == list(s['closed_form_seeds'])
    assert len(s['seeds']) >= 3
    assert sorted(rows.FINAL_ORDER) == sorted(rows.MINI_ROWS)
    # Seed by seed; within a seed, bp and vfbn first.
    assert [r.seed for r in final] == sorted(r.seed for r in final)
    assert [(r.row, r.seed) for r in final[:3]] == [
        ('bp', 0), ('vfbn', 0), ('vfbn-alpha0', 0)]


def _every_planned_run():
    """Every run of every schedule: the Table 1 schedules' rows, and the
    mini schedule's phases under both protocols at every cut, each rung of
    successive halving with every candidate and seed, the finals at the
    default and at a tuned choice."""
    runs = [run for schedule in schedules.TABLE_SCHEDULES
            for run in planning.table_runs(schedule, list(rows.ROWS), [0, 1])]
    for protocol in schedules.PROTOCOLS:
        for cut in (None,) + tuple(split_points(resnet_cifar(
                schedules.MINI['arch']))):
            s = schedules.settings(split_at=cut, protocol=protocol)
            for phase in ('length', 'pilot', 'tune'):
                runs += planning.plan(phase, s, rows=list(rows.MINI_ROWS))
            for rung in range(len(s.get('rungs', ()))):
                runs += [planning.rung_run(s, row, choice, seed, rung)
                         for row in schedules.tuned_rows(s)
                         for choice in schedules.tuning_grid(row, s)
                         for seed in planning.rung_seeds(s, rung)]
            chosen = {row: schedules.tuning_grid(row, s)[-1]
                      for row in schedules.tuned_rows(s)}
            runs += planning.plan('final', s, chosen=chosen,
                                  rows=list(rows.MINI_ROWS))
            runs += planning.plan('final', s,
                                  chosen=schedules.default_choices())
    return runs


def test_every_planned_run_round_trips_through_the_real_parser():
    """The argument list of every planned run, parsed by train_cifar.py's
    own parser and checks, gives back every option as planned: the flags
    are the parser's, the values its types."""
    runs = _every_planned_run()
    assert len(runs) > 1000
    phases = {run.phase for run in runs}
    assert set(schedules.PHASES) | set(schedules.TABLE_SCHEDULES) <= phases
    for run in runs:
        argv = command(run, 'o', device='@numpy', data_dir='d')
        parsed = vars(train_cifar.parse_args(argv))
        planned = dict(run.options, out=os.path.join('o', run.folder),
                       device='@numpy', data_dir='d')
        got = {dest: parsed[dest] for dest in planned}
        assert got == planned, (run.key, argv)
        assert all(type(got[k]) is type(v) or isinstance(v, (int, float))
                   for k, v in planned.items()), run.key


def test_an_option_the_parser_loses_fails_the_plan(monkeypatch):
    """Planning writes each flag from the parser's option table: an option
    renamed or removed there (here ``alpha_gs``, as if --alpha-gs had gone)
    fails at once, naming it, not when a schedule runs."""
    table = dict(command_line.option_table())
    del table['alpha_gs']
    monkeypatch.setattr(command_line, 'option_table', lambda: table)
    s = schedules.settings(protocol='evidence2')
    with pytest.raises(ValueError, match='no option alpha_gs'):
        planning.plan('tune', s, rows=['vfbn'])
    assert planning.plan('length', s)      # BP names no alpha_gs


def test_an_option_planned_twice_is_refused():
    with pytest.raises(ValueError, match='option seed is planned twice'):
        joined({'seed': 0}, {'method': 'bp', 'seed': 1})


def _planned_as(record, s):
    """The run that ``s`` plans for a committed record: its phase, row and
    seed, at the choice the record names."""
    config = record['config']
    phase, row, seed = config['phase'], config['row'], config['seed']
    choice = tuple(record['choice']) if record['choice'] else None
    if phase in schedules.TUNE_PHASES and schedules.halving(s):
        return planning.rung_run(s, row, choice, seed,
                                 schedules.TUNE_PHASES.index(phase))
    chosen = {row: choice} if phase == 'final' and choice else None
    runs = [r for r in planning.plan(phase, s, chosen=chosen, rows=[row])
            if r.seed == seed and r.choice == choice]
    assert len(runs) == 1, (phase, row, seed, choice)
    return runs[0]


def test_every_committed_record_is_its_planned_run():
    """Every record under docs/results/ (what the committed reports are
    made of) is the run its schedule plans today, argument for argument
    and at the same path: a flag renamed in the parser, even with its
    dest kept, or an option planned in another order, would orphan them."""
    found = glob.glob(os.path.join(REPO, 'docs', 'results', '*', '*',
                                   '*.json'))
    records = [p for p in found if os.sep + 'superseded' + os.sep not in p
               and os.sep + 'closed_form' + os.sep not in p]
    assert len(records) >= 100
    for path in records:
        with open(path) as f:
            record = json.load(f)
        folder = os.path.dirname(os.path.dirname(path))
        kept = record['settings']
        s = schedules.settings(kept['arch'], kept['split_at'],
                               choices.protocol_of(folder))
        run = _planned_as(record, s)
        assert json.loads(json.dumps(run.config())) == record['config'], path
        assert store.record_path(folder, run) == path


def test_lr_steps_at_five_and_ten_twelfths():
    s = schedules.settings(protocol='evidence2')
    run = planning.plan('length', s)[0]
    assert run.options['lr_step'] == pytest.approx(
        5 / 12. * run.options['epoch'])


def test_a_mini_config_is_the_committed_records_identity():
    """The committed records' ``config`` (docs/results/mini) names these
    keys and values; a rename would orphan every one of them."""
    run = planning.plan('length', schedules.settings(protocol='evidence2'))[0]
    config = run.config()
    assert list(config) == ['protocol', 'protocol_version', 'phase', 'row',
                            'seed', 'train_args']
    assert (config['protocol'], config['protocol_version']) == ('mini', 1)
    assert run.folder == os.path.join('length', 'bp')


# -- the Table 1 schedules ----------------------------------------------------

def test_table_runs_and_their_command():
    runs = planning.table_runs('smoke', ['vfbn-alpha0'], [3],
                               extra=['--lr-step', '7'])
    assert [(r.key, r.folder) for r in runs] == [
        ('smoke/vfbn-alpha0_seed3', os.path.join('vfbn-alpha0', 'seed3'))]
    argv = command(runs[0], 'o', device='@numpy')
    assert argv == [
        '--method', 'vfbn', '--alpha-gs', '0',
        '--arch', 'resnet8-paper', '--batchsize', '50', '--iterations', '20',
        '--lr-step', '100', '--eval-interval', '1', '--tta-interval', '2',
        '--no-progress', '--dataset', 'sample', '--seed', '3',
        '--lr-step', '7',
        '--out', os.path.join('o', 'vfbn-alpha0', 'seed3'),
        '--device', '@numpy', '--test-batchsize', '150']
    # where it runs and the evaluation batch are not its identity
    assert '--test-batchsize' not in runs[0].config()['train_args']
    assert runs[0].config()['protocol'] == 'smoke'
    run, = planning.table_runs('paper', ['bp'], [0], dataset='sample')
    argv = command(run, 'o', data_dir='/d')
    assert argv[argv.index('--epoch') + 1] == '432'
    assert argv[argv.index('--lr-step') + 1] == '180'
    assert argv[argv.index('--dataset') + 1] == 'sample'
    assert argv[-2:] == ['--data-dir', '/d']
    assert '--device' not in argv


def test_extra_place_options_win():
    """An option after "--" comes last, so it wins, even a place option."""
    run, = planning.table_runs('smoke', ['bp'], [0],
                               extra=['--device', '@cupy:1'])
    argv = command(run, 'o', device='@numpy')
    assert argv[-2:] == ['--device', '@cupy:1']
    assert train_cifar.parse_args(argv).device == '@cupy:1'


def test_paper_numbers():
    paper = {row: spec[2] for row, spec in rows.ROWS.items()}
    assert paper == {'bp': 5.15, 'bottom-bp': 5.76, 'layerwise': 5.71,
                     'dni-resnet': 20.45, 'dni-linear': 15.56,
                     'vfbn-alpha0': 5.73, 'vfbn': 5.51, 'vfbn-linear': None,
                     'vfbn-mlp': None}


@pytest.mark.parametrize('schedule', schedules.TABLE_SCHEDULES)
def test_commands_follow_the_cli_contract(schedule):
    """Every row's argv parses with train_cifar.py's own parser."""
    for run in planning.table_runs(schedule, list(rows.ROWS), [0]):
        args = train_cifar.parse_args(command(run, 'o'))
        assert args.method == rows.ROWS[run.row].options['method']
        assert args.out == os.path.join('o', run.row, 'seed0')
        if run.row == 'vfbn-alpha0':
            assert args.alpha_gs == 0
    if schedule == 'paper':
        assert (args.arch, args.epoch, args.lr_step, args.batchsize) == (
            'resnet110-paper', 432, 180, 128)


# -- Evidence III: successive halving ---------------------------------------

def test_halving_rungs_continue_one_folder_on_the_finals_schedule():
    s = schedules.settings(split_at='stage1_unit1')
    assert s['protocol'] == 'evidence3' and len(s['seeds']) == 5
    finals = planning.plan('final', s, chosen=schedules.default_choices(),
                           rows=['bp'])[0]
    for rung, (epochs, _) in enumerate(s['rungs']):
        run = planning.rung_run(s, 'vfbn', (1e-3, 'batch-mean'), 0, rung)
        assert run.phase == schedules.TUNE_PHASES[rung]
        assert run.folder == 'tune/vfbn_a1e-3_batch-mean_seed0'
        assert run.record == run.folder + '_e%d' % epochs
        # the rung's length, but the learning-rate steps of the finals'
        assert run.options['epoch'] == epochs
        assert run.options['lr_step'] == finals.options['lr_step']
        assert run.options['validation_split'] == s['validation_split']
        assert run.options['split_at'] == 'stage1_unit1'
    assert s['rungs'][-1][0] == s['epochs']     # ends at the finals' length
    rung0 = planning.plan('tune', s, rows=list(rows.MINI_ROWS))
    assert schedules.tuned_rows(s) == rows.TUNED_ROWS
    for row in rows.TUNED_ROWS:
        assert len([r for r in rung0 if r.row == row]) == s['rungs'][0][1]
    # later rungs need the records of the one before
    assert planning.plan('tune2', s) == []
    # Evidence II plans no later rungs
    assert planning.plan('tune2', schedules.settings(protocol='evidence2'),
                         records='x') == []


def _tuned_by_halving(tmp_path, popen):
    from chainer_vfbn.experiments import execute
    s = schedules.settings(split_at='stage1_unit1')
    records = str(tmp_path / 'rec')
    failed, held = execute.run_mini(
        s, list(rows.TUNED_ROWS), schedules.TUNE_PHASES, records,
        str(tmp_path / 'out'), train_script='t.py', jobs=2, popen=popen,
        log=lambda m: None)
    assert held == []
    return s, records, failed


def test_halving_same_budget_and_the_best_survive(tmp_path):
    from fake_train import FakeProcess
    FakeProcess.calls = []
    s, records, failed = _tuned_by_halving(tmp_path, FakeProcess)
    assert failed == []
    # The last rung's new seeds, with all of it to train, start before the
    # survivors it continues from the rung before (longest first).
    last = planning.plan(schedules.TUNE_PHASES[-1], s,
                         rows=list(rows.TUNED_ROWS), records=records)
    started = {argv[argv.index('--out') + 1]: i    # the last start of each
               for i, argv in enumerate(FakeProcess.calls)}
    seeds = [r.seed for r in sorted(last, key=lambda r: started[
        os.path.join(str(tmp_path / 'out'), r.folder)])]
    assert seeds == sorted(seeds, key=lambda seed: seed == s['tune_seed'])
    assert len(set(seeds)) == 2
    for row in rows.TUNED_ROWS:
        epochs = 0
        for rung, phase in enumerate(schedules.TUNE_PHASES):
            for run in planning.plan(phase, s, rows=[row], records=records):
                assert os.path.isfile(os.path.join(records,
                                                   run.record + '.json'))
                start = (s['rungs'][rung - 1][0]
                         if rung and run.seed == s['tune_seed'] else 0)
                epochs += s['rungs'][rung][0] - start
        assert epochs == 8 * 6 + 4 * 6 + 2 * 12 + 2 * 24, row
    # The fake errs 0.01 more per decade from 1e-4: the rungs keep the
    # best, ties in grid order, and the choice is the best mean.
    assert planning.rung_candidates('vfbn', s, records, 1) == [
        (1e-4, 'batch-mean'), (1e-5, 'batch-mean'), (1e-3, 'batch-mean'),
        (1e-6, 'batch-mean')]
    assert planning.rung_candidates('vfbn', s, records, 2) == [
        (1e-4, 'batch-mean'), (1e-5, 'batch-mean')]
    assert choices.tuning_choice('vfbn', s, records) == (1e-4, 'batch-mean')
    last = choices.halving_results('vfbn', s, records)
    # (0.08: the fake's penalty of the cut)
    assert last[0]['errors'] == {0: 0.58, 1: 0.57}
    assert math.isclose(last[1]['mean'], 0.585)


def test_the_report_shows_every_rung_and_alpha_zero(tmp_path):
    """The summary's tuning holds every rung's records (8, then 4, then the
    best 2 with two seeds), and the tuning figure draws one line per rung,
    the last averaged over its seeds, with alpha_gs = 0 at a place of its
    own (a log axis had dropped it)."""
    from fake_train import FakeProcess
    from chainer_vfbn.experiments.reporting import figures
    from chainer_vfbn.experiments.statistics import summary
    plt = pytest.importorskip('matplotlib.pyplot')
    s, records, failed = _tuned_by_halving(tmp_path, FakeProcess)
    tuning = summary._tuning('vfbn', s, records)
    assert [sum(t['rung'] == k for t in tuning) for k in range(3)] == [
        8, 4, 4]
    assert {t['epochs'] for t in tuning if t['rung'] == 2} == {24}
    fig, ax = plt.subplots()
    figures._tuning(ax, [dict(row='vfbn', tuning=tuning)])
    drawn = {line.get_label(): line for line in ax.get_lines()}
    assert sorted(drawn) == ['vfbn, batch-mean, epoch 12',
                             'vfbn, batch-mean, epoch 24, mean of 2 seeds',
                             'vfbn, batch-mean, epoch 6']
    grid = [tick.get_text() for tick in ax.get_xticklabels()]
    assert grid == ['0', '1e-7', '1e-6', '1e-5', '1e-4', '1e-3', '1e-2',
                    '1e-1']
    first = drawn['vfbn, batch-mean, epoch 6']
    assert list(first.get_xdata()) == list(range(8))
    assert first.get_ydata()[0] == 100 * [
        t['val_error'] for t in tuning if t['rung'] == 0
        and t['alpha'] == 0][0]
    last = drawn['vfbn, batch-mean, epoch 24, mean of 2 seeds']
    for x, y in zip(last.get_xdata(), last.get_ydata()):
        errors = [100 * t['val_error'] for t in tuning if t['rung'] == 2
                  and t['alpha'] == [0, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2,
                                     1e-1][x]]
        assert len(errors) == 2 and y == pytest.approx(sum(errors) / 2)
    plt.close(fig)


def test_halving_ranks_a_diverged_run_last(tmp_path):
    from fake_train import DivergingProcess
    s, records, failed = _tuned_by_halving(tmp_path, DivergingProcess)
    diverged = planning.rung_run(s, 'vfbn-linear', (1e-3, 'batch-mean'),
                                 0, 0)
    assert planning.run_error(diverged, records) == float('inf')
    # a real run that diverges after an evaluated epoch keeps that epoch's
    # error in its record (dni-linear at 1e-6: 89.7%): still ranked last
    path = store.record_path(records, diverged)
    with open(path) as f:
        rec = json.load(f)
    rec['summary'].update(status='diverged', test_error=0.01)
    with open(path, 'w') as f:
        json.dump(rec, f)
    assert planning.run_error(diverged, records) == float('inf')
    survivors = planning.rung_candidates('vfbn-linear', s, records, 1)
    assert all(a < 1e-3 for a, _ in survivors), survivors
    assert choices.tuning_choice('vfbn-linear', s, records) == (
        1e-4, 'batch-mean')


@pytest.mark.slow
def test_a_rung_continued_from_its_snapshot_is_the_straight_run(tmp_path):
    """Successive halving's premise (``rung_run``): a run trained to epoch 1
    and continued in its folder to epoch 2 logs and predicts exactly as one
    trained to epoch 2 at once, on the same learning-rate schedule."""
    import json
    from support import TINY, run_cli
    args = TINY + ['--method', 'vfbn', '--validation-split', '0.1',
                   '--lr-step', '1', '--seed', '1', '--eval-interval', '1']
    straight, staged = str(tmp_path / 'straight'), str(tmp_path / 'staged')
    for epochs, out in ((2, straight), (1, staged), (2, staged)):
        r = run_cli(args + ['--epoch', str(epochs), '--out', out])
        assert r.returncode == 0, r.stderr[-2000:]

    def result(out):
        with open(os.path.join(out, 'log')) as f:
            log = [{k: v for k, v in e.items() if k != 'elapsed_time'}
                   for e in json.load(f)]
        with open(os.path.join(out, 'predictions.json')) as f:
            return log, json.load(f)
    log, predictions = result(staged)
    assert len(log) == 2 and log[1]['lr'] < log[0]['lr']   # decayed
    assert (log, predictions) == result(straight)
