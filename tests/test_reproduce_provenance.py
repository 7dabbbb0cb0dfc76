"""reproduce.py --schedule mini checks its data and its code before any
run, and its records name the code they ran (fake runs: nothing trains)."""
import hashlib
import json
import os

import pytest

import reproduce
import support
from chainer_vfbn.experiments.protocol import schedules
from chainer_vfbn.runs import provenance
from fake_train import FakeProcess


def test_a_changed_mini_set_is_refused_before_any_run(tmp_path, monkeypatch,
                                                      capsys):
    data = support.use_as_mini(monkeypatch, tmp_path)
    archive = os.path.join(data, 'cifar-10-python.tar.gz')
    support.archive_with_label_changed(archive)
    FakeProcess.calls = []
    with pytest.raises(SystemExit) as e:
        reproduce.main(['--schedule', 'mini', '--rows', 'bp', '--out',
                        str(tmp_path / 'out'), '--data-dir', data],
                       popen=FakeProcess)
    assert e.value.code == 2 and FakeProcess.calls == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert 'is not the cifar-10-mini set: its content sha256 is' in err[0]
    assert reproduce.MINI_DATA_COMMAND in err[0]
    assert not os.path.exists(str(tmp_path / 'out'))
    # the report alone reads no data
    assert reproduce.parse_args(['--schedule', 'mini', '--phase', 'report',
                                 '--data-dir', data]).phase == 'report'


class _TrainCifarProvenance(FakeProcess):
    """A fake run that records its code as train_cifar.py does."""

    def __init__(self, argv, **kw):
        super().__init__(argv, **kw)
        out = argv[argv.index('--out') + 1]
        state = provenance.code_state(keep_diff_in=out)
        with open(os.path.join(out, 'args.json')) as f:
            args = json.load(f)
        args.update(code_version=state['code_version'],
                    code_versions=[state])
        with open(os.path.join(out, 'args.json'), 'w') as f:
            json.dump(args, f)


def test_a_modified_checkout_is_refused_unless_allowed(tmp_path, monkeypatch,
                                                       capsys):
    data = support.use_as_mini(monkeypatch, tmp_path)
    repo = support.git_checkout(tmp_path / 'dirty', dirty=True)
    monkeypatch.setattr(provenance, 'REPO', repo)
    argv = ['--schedule', 'mini', '--rows', 'bp', '--phase', 'length',
            '--out', str(tmp_path / 'out'), '--data-dir', data]
    with pytest.raises(SystemExit) as e:
        reproduce.parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'differs from its commit' in err[0]
    assert '--allow-dirty' in err[0] and repo in err[0]
    # allowed: the record names the diff's sha256, and the diff is kept
    # beside the records
    args = reproduce.parse_args(argv + ['--allow-dirty'])
    assert reproduce.main_mini(args, popen=_TrainCifarProvenance) == 0
    diff = provenance.tracked_diff(repo)
    sha = hashlib.sha256(diff).hexdigest()
    with open(os.path.join(args.records, 'length', 'bp.json')) as f:
        record = json.load(f)
    assert record['code_version'].split()[1].endswith('-dirty')
    assert [s['diff_sha256'] for s in record['code_versions']] == [sha]
    with open(os.path.join(args.records, 'diffs', sha + '.diff'),
              'rb') as f:
        assert f.read() == diff
    # --allow-dirty is the mini schedule's
    with pytest.raises(SystemExit):
        reproduce.parse_args(['--schedule', 'smoke', '--allow-dirty'])


def test_a_clean_checkouts_records_name_its_commit(tmp_path, monkeypatch):
    data = support.use_as_mini(monkeypatch, tmp_path)
    args = reproduce.parse_args(['--schedule', 'mini', '--rows', 'bp',
                                 '--phase', 'length', '--out',
                                 str(tmp_path / 'out'), '--data-dir', data])
    assert reproduce.main_mini(args, popen=_TrainCifarProvenance) == 0
    with open(os.path.join(args.records, 'length', 'bp.json')) as f:
        record = json.load(f)
    (session,) = record['code_versions']
    assert session['dirty'] is False and session['diff_sha256'] is None
    assert len(session['commit']) == 40
    assert record['code_version'] == session['code_version']
    assert not os.path.exists(os.path.join(args.records, 'diffs'))


def test_a_kernel_this_machine_does_not_run_is_refused(tmp_path, monkeypatch,
                                                       capsys):
    # OpenBLAS runs its Katmai kernel when asked for Prescott: not the
    # schedule's kernel, so no run starts
    data = support.use_as_mini(monkeypatch, tmp_path)
    probe = provenance.machine_under(dict(os.environ,
                                          OPENBLAS_CORETYPE='Prescott'))
    if 'openblas' not in provenance.kernel_label(probe):
        pytest.skip('NumPy does not run on OpenBLAS here')
    if 'Prescott' in provenance.kernel_label(probe):
        pytest.skip("this OpenBLAS runs Prescott as asked")
    monkeypatch.setitem(schedules.EVIDENCE3, 'blas_kernel', 'Prescott')
    with pytest.raises(SystemExit) as e:
        reproduce.parse_args(['--schedule', 'mini', '--out',
                              str(tmp_path / 'out'), '--data-dir', data])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'OPENBLAS_CORETYPE=Prescott' in err[0]
    assert "cannot run the schedule's BLAS kernel" in err[0]
