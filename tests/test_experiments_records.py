"""chainer_vfbn/experiments/records/: what a record keeps of its run's
code and machine, and which tables it may join."""
import hashlib
import json
import os

import pytest

from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments.records import machines
from chainer_vfbn.experiments.records import store as records
from chainer_vfbn.experiments.protocol.run import Run
from chainer_vfbn.runs import provenance
from fake_train import MACHINE
from fake_train import write_finished_run

RUN = Run('final', 'bp_seed0', 'bp', 0, {'seed': 0})


def _run_dir(tmp_path, sessions):
    run_dir = str(tmp_path / 'run')
    os.makedirs(run_dir)
    write_finished_run(run_dir, 0.4, 0.35)
    with open(os.path.join(run_dir, 'args.json'), 'w') as f:
        json.dump({'code_version': sessions[0]['code_version'],
                   'code_versions': sessions,
                   'environment': {'machine': MACHINE}}, f)
    return run_dir


def test_a_record_names_every_sessions_code_and_keeps_their_diffs(
        tmp_path):
    # a run begun on one modified checkout and resumed on another
    diffs = [b'diff --git a/x b/x\n-1\n+2\n', b'diff --git a/x b/x\n-1\n+3\n']
    sessions = [dict(code_version='git abc%d-dirty (chainer_vfbn 0.1.0)' % i,
                     commit='abc%d' % i, dirty=True,
                     diff_sha256=hashlib.sha256(diff).hexdigest())
                for i, diff in enumerate(diffs)]
    run_dir_2 = _run_dir(tmp_path, sessions)
    for diff in diffs:
        provenance.save_diff(run_dir_2, diff)
    out = str(tmp_path / 'records')
    rec = records.record_run(out, RUN, {'blas_kernel': 'Haswell'}, run_dir_2)
    assert rec['code_version'] == sessions[0]['code_version']
    assert rec['code_versions'] == sessions
    for session, diff in zip(sessions, diffs):
        with open(os.path.join(out, 'diffs', session['diff_sha256']
                               + '.diff'), 'rb') as f:
            assert f.read() == diff
    with open(records.record_path(out, RUN)) as f:
        assert json.load(f)['code_versions'] == sessions


def test_a_run_folder_without_its_files_is_one_line(tmp_path):
    run_dir = str(tmp_path / 'run')
    os.makedirs(run_dir)
    with pytest.raises(ExperimentError) as e:
        records.make_record(RUN, {}, run_dir)
    assert str(e.value) == 'final/bp_seed0: %s has no args.json' % run_dir
    write_finished_run(run_dir, 0.4, 0.35)
    with open(os.path.join(run_dir, 'summary.json'), 'w') as f:
        f.write('{')
    with pytest.raises(ExperimentError, match='summary.json is unreadable'):
        records.make_record(RUN, {}, run_dir)


def test_the_pin_marks_a_records_machine():
    rec = {'environment': {'machine': MACHINE},
           'settings': {machines.KERNEL_SETTING: 'Haswell'}}
    assert machines.machine_of(rec) == dict(MACHINE, pinned_kernel='Haswell',
                                            numpy=None)
    rec['environment']['numpy'] = '2.4.6'
    assert machines.machine_of(rec)['numpy'] == '2.4.6'
    assert machines.machine_of(dict(rec, settings={})) == MACHINE
    assert machines.machine_of({'settings': rec['settings']}) is None


def test_a_table_of_two_kernels_is_refused_only_under_the_pin():
    haswell = dict(MACHINE, pinned_kernel='Haswell')
    skylake = dict(haswell, blas=[dict(MACHINE['blas'][0],
                                       architecture='SkylakeX')])
    table = [dict(row='bp', machines={0: haswell, 1: haswell}),
             dict(row='vfbn', machines={0: haswell, 1: skylake})]
    with pytest.raises(ExperimentError) as e:
        machines.check_one_kernel(table)
    assert str(e.value).startswith(
        'the table would pair records of 2 BLAS kernels: 3 on openblas '
        'Haswell, NumPy None; 1 on openblas SkylakeX, NumPy None (vfbn seed '
        '1); ')
    # one kernel, on any CPU: a table
    machines.check_one_kernel([dict(row='bp', machines={
        0: haswell, 1: dict(haswell, cpu='Another CPU')})])
    # a pinned record beside one that names no machine: refused too
    with pytest.raises(ExperimentError, match='not recorded'):
        machines.check_one_kernel([dict(row='bp', machines={
            0: haswell, 1: None})])
    # SciPy's own OpenBLAS, loaded beside NumPy's (Chainer imports SciPy
    # where it is installed), before or after it: the same kernel
    scipy_lib = dict(MACHINE['blas'][0], version='0.3.30')
    both = [dict(haswell, blas=MACHINE['blas'] + [scipy_lib]),
            dict(haswell, blas=[scipy_lib] + MACHINE['blas'])]
    machines.check_one_kernel([dict(row='bp', machines={
        0: haswell, 1: both[0], 3: both[1]})])
    assert machines.same_machine(haswell, both[1])
    # another NumPy wheel bundles another OpenBLAS build: another kernel
    with pytest.raises(ExperimentError, match='NumPy 2.3.5'):
        machines.check_one_kernel([dict(row='bp', machines={
            0: dict(haswell, numpy='2.4.6'),
            1: dict(haswell, numpy='2.3.5')})])
    assert not machines.same_machine(dict(haswell, numpy='2.4.6'),
                                     dict(haswell, numpy='2.3.5'))
    # records made before the pin are reported as they were
    machines.check_one_kernel([dict(row='bp', machines={
        0: MACHINE, 1: dict(MACHINE, blas=skylake['blas'])})])
