"""The runs a schedule plans (chainer_vfbn/experiments/plan.py)."""
import math
import os

import pytest

import train_cifar
from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments import plan as planning
from chainer_vfbn.experiments import rows
from chainer_vfbn.experiments import schedules


# -- the mini schedule ------------------------------------------------------

def test_tuning_grid_is_the_same_for_every_synthetic_row():
    s = schedules.settings()
    grids = {row: sorted({a for a, _ in schedules.tuning_grid(row, s)})
             for row in rows.TUNED_ROWS}
    first = grids[rows.TUNED_ROWS[0]]
    assert all(g == first for g in grids.values()), grids
    assert math.log10(max(first) / min(first)) >= 5    # five decades
    for row in ('dni-linear', 'dni-resnet'):
        scales = {sc for _, sc in schedules.tuning_grid(row, s)}
        assert scales == {'batch-mean', 'per-example'}
    tune = planning.plan('tune', s)
    assert {r.row for r in tune} == set(rows.TUNED_ROWS)
    assert 'vfbn-alpha0' not in {r.row for r in tune}
    for run in tune:   # the same budget: the same epochs for every row
        assert run.args[run.args.index('--epoch') + 1] == str(
            s['tune_epochs'])
        assert '--validation-split' in run.args


def test_final_needs_the_tuning_and_uses_the_test_set():
    s = schedules.settings()
    with pytest.raises(ExperimentError, match='tuning'):
        planning.plan('final', s, chosen={})
    chosen = {row: (1e-4, 'batch-mean') for row in rows.TUNED_ROWS}
    final = planning.plan('final', s, chosen=chosen)
    by_row = {}
    for run in final:
        assert '--validation-split' not in run.args
        by_row.setdefault(run.row, []).append(run.seed)
        if run.row in rows.TUNED_ROWS:
            i = run.args.index('--alpha-gs')
            assert float(run.args[i + 1]) == 1e-4
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


def test_every_planned_command_parses():
    s = schedules.settings()
    chosen = schedules.default_alphas()
    for phase in schedules.PHASES:
        for run in planning.plan(phase, s, chosen=chosen):
            args = train_cifar.parse_args(run.args + ['--out', 'x'])
            assert args.arch == s['arch']


def test_lr_steps_at_five_and_ten_twelfths():
    s = schedules.settings()
    run = planning.plan('length', s)[0]
    step = float(run.args[run.args.index('--lr-step') + 1])
    epochs = int(run.args[run.args.index('--epoch') + 1])
    assert step == pytest.approx(5 / 12. * epochs)


def test_a_mini_config_is_the_committed_records_identity():
    """The committed records' ``config`` (docs/results/mini) names these
    keys and values; a rename would orphan every one of them."""
    run = planning.plan('length', schedules.settings())[0]
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
    argv = planning.command(runs[0], 'o', device='@numpy')
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
    argv = planning.command(run, 'o', data_dir='/d')
    assert argv[argv.index('--epoch') + 1] == '432'
    assert argv[argv.index('--lr-step') + 1] == '180'
    assert argv[argv.index('--dataset') + 1] == 'sample'
    assert argv[-2:] == ['--data-dir', '/d']
    assert '--device' not in argv


def test_extra_place_options_win():
    """An option after "--" comes last, so it wins, even a place option."""
    run, = planning.table_runs('smoke', ['bp'], [0],
                               extra=['--device', '@cupy:1'])
    argv = planning.command(run, 'o', device='@numpy')
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
        args = train_cifar.parse_args(planning.command(run, 'o'))
        assert args.method == rows.ROWS[run.row][1][1]
        assert args.out == os.path.join('o', run.row, 'seed0')
        if run.row == 'vfbn-alpha0':
            assert args.alpha_gs == 0
    if schedule == 'paper':
        assert (args.arch, args.epoch, args.lr_step, args.batchsize) == (
            'resnet110-paper', 432, 180, 128)
