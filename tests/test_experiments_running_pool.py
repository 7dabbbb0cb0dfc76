"""Running runs and their records (chainer_vfbn/experiments/: running/pool.py,
records/, protocol/choices.py): skip what is recorded, refuse what differs."""
import os
import signal

import pytest

from chainer_vfbn.runs import folder
from chainer_vfbn.runs import strict_json
from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments.protocol import choices
from chainer_vfbn.experiments import execute
from chainer_vfbn.experiments.protocol import plan as planning
from chainer_vfbn.experiments.records import locks
from chainer_vfbn.experiments.records import store
from chainer_vfbn.experiments.reporting import mini_report
from chainer_vfbn.experiments.protocol import rows
from chainer_vfbn.experiments.protocol import schedules
from chainer_vfbn.experiments.protocol.slots import phase_slots
from chainer_vfbn.experiments.statistics import summary
from chainer_vfbn.experiments.running.pool import run_pool
from chainer_vfbn.runs.interrupt import Interrupted
from fake_train import DivergingProcess
from fake_train import FakeProcess


def quiet(message):
    pass


def test_rerun_skips_matching_records_and_refuses_others(tmp_path):
    s = schedules.settings(protocol='evidence2')
    records, out = str(tmp_path / 'rec'), str(tmp_path / 'out')
    runs = planning.plan('tune', s, rows=['vfbn'])
    FakeProcess.calls = []
    result = run_pool(runs, s, records, out, 'train.py', jobs=3,
                      popen=FakeProcess, log=quiet)
    assert set(result.values()) == {'done'}
    assert len(FakeProcess.calls) == len(runs)
    rec = store.read_record(store.record_path(records, runs[0]))
    assert rec['settings']['arch'] == s['arch']
    assert rec['config']['train_args'] == runs[0].args
    assert rec['curve'] == [{'epoch': 1, 'iteration': 2,
                             'validation/main/error':
                                 rec['summary']['test_error']}]
    # Again: nothing runs.
    result = run_pool(runs, s, records, out, 'train.py', jobs=3,
                      popen=FakeProcess, log=quiet)
    assert set(result.values()) == {'skipped'}
    assert len(FakeProcess.calls) == len(runs)
    # Another configuration: refused, naming what differs.
    other = schedules.settings(protocol='evidence2', arch='resnet14-paper')
    with pytest.raises(ExperimentError, match='train_args'):
        run_pool(planning.plan('tune', other, rows=['vfbn']), other,
                 records, out, 'train.py', popen=FakeProcess)
    # The tuning choice is the lowest validation error of the grid.
    assert choices.tuning_choice('vfbn', s, records) == (1e-4, 'batch-mean')


def test_a_record_of_another_schedule_is_refused(tmp_path):
    """One identity scheme for every schedule: a smoke row's record
    refuses the short row that would train into the same folder."""
    records, out = str(tmp_path / 'rec'), str(tmp_path / 'out')
    smoke = planning.table_runs('smoke', ['bp'], [0])
    run_pool(smoke, {}, records, out, 'train.py', popen=FakeProcess,
             log=quiet)
    assert store.status(smoke[0], records) == 'done'
    short = planning.table_runs('short', ['bp'], [0])
    assert store.record_path(records, short[0]) == \
        store.record_path(records, smoke[0])
    with pytest.raises(ExperimentError, match='made by --schedule smoke'):
        store.status(short[0], records)


def test_one_blas_thread_per_run(tmp_path):
    s = schedules.settings(protocol='evidence2')
    FakeProcess.calls = []
    seen = []

    class Spy(FakeProcess):
        def __init__(self, argv, **kw):
            super().__init__(argv, **kw)
            seen.append(kw['env'])
    run_pool(planning.plan('length', s), s, str(tmp_path / 'r'),
             str(tmp_path / 'o'), 'train.py', popen=Spy, log=quiet)
    assert seen and all(e['OMP_NUM_THREADS'] == '1' and
                        e['OPENBLAS_NUM_THREADS'] == '1' and
                        e['CHAINER_TYPE_CHECK'] == '0' for e in seen)
    # threads=None: the environment as it is; capture=False: our output
    seen.clear()
    logs = []

    class Out(Spy):
        def __init__(self, argv, **kw):
            super().__init__(argv, **kw)
            logs.append(kw['stdout'])
    run_pool(planning.table_runs('smoke', ['bp'], [0]), {},
             str(tmp_path / 'r2'), str(tmp_path / 'o2'), 'train.py',
             popen=Out, log=quiet, threads=None, capture=False)
    assert seen == [None] and logs == [None]


def test_a_signal_is_passed_on_and_waited_for(tmp_path):
    """SIGTERM: the running run gets it, is waited for, nothing else starts,
    and the pool raises Interrupted with the shell's exit status."""
    s = schedules.settings(protocol='evidence2')
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

    runs = planning.plan('tune', s, rows=['vfbn'])
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as e:
        run_pool(runs, s, str(tmp_path / 'r'), str(tmp_path / 'o'),
                 'train.py', jobs=1, popen=Running, log=quiet)
    assert e.value.exit_code == 143 and e.value.name == 'SIGTERM'
    assert len(started) == 1 and got == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is previous
    # no record written, and the run's lock is gone
    assert not [f for _, _, fs in os.walk(str(tmp_path / 'r')) for f in fs]


def test_deadline_starts_nothing(tmp_path):
    s = schedules.settings(protocol='evidence2')
    FakeProcess.calls = []
    result = run_pool(planning.plan('tune', s, rows=['vfbn']), s,
                      str(tmp_path / 'r'), str(tmp_path / 'o'), 'train.py',
                      deadline=0, popen=FakeProcess, log=quiet)
    assert FakeProcess.calls == []
    assert set(result.values()) == {'not started (deadline)'}


def test_diverged_runs_are_recorded_and_ranked_last(tmp_path):
    """A diverged grid point is a result: recorded (not re-run) and never
    chosen, so the row's tuning completes."""
    s = schedules.settings(protocol='evidence2')
    records = str(tmp_path / 'rec')
    runs = planning.plan('tune', s, rows=['dni-linear'])
    FakeProcess.calls = []
    result = run_pool(runs, s, records, str(tmp_path / 'out'), 'train.py',
                      jobs=4, popen=DivergingProcess, log=quiet)
    diverged = [k for k, v in result.items() if v == 'diverged']
    big = [a for a in s['alpha_grid'] if a >= 1e-3]
    assert len(big) >= 2 and len(diverged) == 2 * len(big)  # both scales
    assert all(v in ('done', 'diverged') for v in result.values())
    rec = store.read_record(store.record_path(records, runs[-1]))
    assert rec['summary']['status'] == 'diverged' and rec['curve'] == []
    choice = choices.tuning_choice('dni-linear', s, records)
    assert choice is not None and choice[0] < 1e-3
    table = summary.summarize(s, records, rows=['dni-linear'])
    cells = mini_report.markdown(s, records, table, None).split(
        '## Tuning')[1].split('\n', 1)[1]
    assert cells.count('| diverged ') == len(diverged)  # not '—' (not run)
    again = run_pool(runs, s, records, str(tmp_path / 'out'), 'train.py',
                     popen=DivergingProcess, log=quiet)
    assert set(again.values()) == {'skipped'}


def test_records_without_predictions_rerun_only_when_asked(tmp_path):
    """A record made before the predictions were kept counts as done,
    unless need_predictions asks for it again; the new record (with
    predictions) replaces it and then counts as done."""
    s = schedules.settings(protocol='evidence2')
    records, out = str(tmp_path / 'rec'), str(tmp_path / 'out')
    runs = planning.plan('final', s, rows=['bp'])[:1]
    run_pool(runs, s, records, out, 'train.py', popen=FakeProcess, log=quiet)
    path = store.record_path(records, runs[0])
    rec = store.read_record(path)
    assert rec['predictions']['n_images'] == 100
    rec['predictions'] = None               # as the records of 2026-11-30
    strict_json.write_json(path, rec, **strict_json.RECORD)
    assert store.status(runs[0], records) == 'done'
    assert store.status(runs[0], records, need_predictions=True) == 'todo'
    FakeProcess.calls = []
    result = run_pool(runs, s, records, out, 'train.py', popen=FakeProcess,
                      log=quiet, need_predictions=True)
    assert result == {runs[0].key: 'done'} and len(FakeProcess.calls) == 1
    assert store.read_record(path)['predictions'] is not None
    assert store.status(runs[0], records, need_predictions=True) == 'done'


def test_the_committed_records_load_and_match_their_runs():
    """Every committed record of docs/results/mini* is found as the record
    of a planned run with the same identity (none is orphaned)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for folder, split_at in (('mini', None), ('mini-stage1_unit1',
                                              'stage1_unit1')):
        records = os.path.join(repo, 'docs', 'results', folder)
        if not os.path.isdir(records):
            pytest.skip('no committed records in this checkout')
        s = schedules.settings(protocol='evidence2', split_at=split_at)
        chosen = choices.chosen_settings(s, records)
        runs = [r for ph in ('length', 'pilot', 'tune')
                for r in planning.plan(ph, s)]
        runs += planning.plan('final', s, chosen=chosen, rows=[
            r for r in rows.MINI_ROWS if r not in
            set(rows.TUNED_ROWS) - set(chosen)])
        done = {store.record_path(records, run) for run, _ in
                store.records_of(runs, records)}
        on_disk = {os.path.join(d, f) for d, _, fs in os.walk(records)
                   for f in fs if f.endswith('.json')
                   and 'superseded' not in d}
        assert done and on_disk <= done, sorted(on_disk - done)[:3]


def test_a_run_another_live_process_holds_is_left_to_it(tmp_path):
    """Issue #32: a run whose record lock a live process holds is
    'taken' (said, not trained); a dead holder's lock is taken over."""
    s = schedules.settings()
    records, out = str(tmp_path / 'rec'), str(tmp_path / 'out')
    run = planning.plan('length', s)[0]
    held = locks.lock_record(records, run)      # a live holder: us
    said = []
    FakeProcess.calls = []
    result = run_pool([run], s, records, out, 'train.py', popen=FakeProcess,
                      log=said.append)
    assert result == {run.key: 'taken'} and FakeProcess.calls == []
    holder = folder.read_lock(held.path)
    assert holder.startswith('pid %d on ' % os.getpid())
    assert said == ['mini: length/bp is being trained by %s; moving on'
                    % holder]
    assert store.status(run, records) == 'todo'
    held.release()
    result = run_pool([run], s, records, out, 'train.py', popen=FakeProcess,
                      log=quiet)
    assert result == {run.key: 'done'} and len(FakeProcess.calls) == 1
    assert not os.path.exists(locks.lock_path(records, run))


def test_every_slot_resolves_to_its_phases_run(tmp_path):
    """The static slots of each phase (plan.slots) resolve, once the
    records they need are there, to exactly the phase's runs, in order
    (a later rung's slots to the best candidates of the rung before);
    before, a tuned row's final slot waits."""
    s = schedules.settings()
    records = str(tmp_path / 'rec')
    row_set = ['bp', 'vfbn', 'dni-linear']
    final = phase_slots('final', s, row_set)
    waiting = [x for x in final if x.row in rows.TUNED_ROWS]
    with pytest.raises(execute.Waiting, match='waits for the tuning of'):
        execute.resolve(waiting[0], s, records)
    assert execute.resolve(final[0], s, records).key == final[0].key  # bp
    FakeProcess.calls = []
    for phase in schedules.TUNE_PHASES:
        run_pool(planning.plan(phase, s, rows=row_set, records=records), s,
                 records, str(tmp_path / 'out'), 'train.py', jobs=4,
                 popen=FakeProcess, log=quiet)
    chosen = choices.chosen_settings(s, records)
    assert sorted(chosen) == ['dni-linear', 'vfbn']
    for phase in schedules.PHASES:
        slots = phase_slots(phase, s, row_set)
        resolved = [execute.resolve(x, s, records) for x in slots]
        expected = planning.plan(phase, s, rows=row_set, records=records,
                                 **(dict(chosen=chosen) if phase == 'final'
                                    else {}))
        assert [r.key for r in resolved] == [r.key for r in expected]
        assert [r.args for r in resolved] == [r.args for r in expected]
        if phase not in schedules.TUNE_PHASES[1:]:   # named by the slot
            assert [x.key for x in slots] == [r.key for r in expected]
    # a one-stage tuning (Evidence II) has no later rungs to list
    old = schedules.settings(protocol='evidence2')
    assert phase_slots('tune2', old, row_set) == []
    assert len(phase_slots('tune', old, row_set)) == 7 + 14


def test_no_record_from_a_folder_that_holds_another_run(tmp_path):
    """A run that exits 0 over a folder whose summary is of a longer run
    (a rung's folder a later rung continued: train_cifar.py finds it
    finished and does nothing) gets no record of that run's numbers."""
    s = schedules.settings()
    run = planning.plan('length', s)[0]
    records, out = str(tmp_path / 'rec'), str(tmp_path / 'out')

    class Longer(FakeProcess):
        def __init__(self, argv, **kw):
            i = argv.index('--epoch') + 1
            super().__init__(argv[:i] + ['48'] + argv[i + 1:], **kw)
    said = []
    result = run_pool([run], s, records, out, 'train.py', popen=Longer,
                      log=said.append)
    assert result == {run.key: 'failed (its folder holds another run)'}
    assert store.status(run, records) == 'todo'
    assert 'does not hold it finished' in said[-1]


@pytest.mark.parametrize('longest_first', [True, False])
def test_the_runs_with_most_left_to_train_start_first(tmp_path,
                                                      longest_first):
    """A halving rung continues its survivors from the rung before (part
    of the way left) beside new seeds (all of it). Longest first, the new
    ones start first, so that two slots, or two processes, end together;
    ties keep the plan's order. Otherwise: the plan's order."""
    s = schedules.settings(protocol='evidence2')
    records, out = str(tmp_path / 'rec'), str(tmp_path / 'out')
    runs = planning.plan('tune', s, rows=['vfbn'])[:3]
    epochs = int(runs[0].options['epoch'])
    run_dir = os.path.join(out, runs[0].folder)
    os.makedirs(run_dir)
    strict_json.write_json(os.path.join(run_dir, 'log'),
                           [{'epoch': epochs - 1, 'iteration': 9}])
    FakeProcess.calls = []
    run_pool(runs, s, records, out, 'train.py', popen=FakeProcess,
             log=quiet, longest_first=longest_first)
    started = [argv[argv.index('--out') + 1] for argv in FakeProcess.calls]
    order = [1, 2, 0] if longest_first else [0, 1, 2]
    assert started == [os.path.join(out, runs[i].folder) for i in order]
