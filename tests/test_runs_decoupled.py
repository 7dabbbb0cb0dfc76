"""chainer_vfbn.runs.decoupled without MPI: rank 0's summary counts every
session (issue #20), and a full disk stops the job in one line."""
import argparse
import json
import os
import time

import pytest

from chainer_vfbn.runs import decoupled as runner
from chainer_vfbn.runs import snapshot_sets as snapshots
from support import FakeIterator
from support import FakeWorker
from support import load_script


class _LogReport(object):
    log = [{'main/loss': 1.0, 'validation/main/error': 0.5}]


class _Trainer(object):
    def get_extension(self, name):
        assert name == 'LogReport'
        return _LogReport()


def test_summary_wall_time_counts_every_session(tmp_path):
    """A resumed decoupled run: 100 s before, 5 s in this session."""
    state = snapshots.RankState(FakeWorker(), FakeIterator())
    state.elapsed = 100.
    state.session_start = time.time() - 5.
    worker = argparse.Namespace(
        iteration=30, epoch_info=argparse.Namespace(epoch_detail=1.5))
    run = runner._Run.__new__(runner._Run)
    run.config = load_script().parse_config(
        ['--method', 'vfbn', '--arch', 'resnet8-paper', '--batchsize', '10',
         '--decoupled', '--out', str(tmp_path)]).resolved(
             argparse.Namespace(alpha_gs=1e-3))   # as the built method's
    run.worker, run.state, run.trainer, run.K = worker, state, _Trainer(), 2
    run.method = argparse.Namespace(split_at=['stage2_unit2'])
    run.description, run.device = 'sample', '@numpy'
    run.test = {'data_sha256': 'f' * 64}
    run._summarize(10)   # 10 of the 30 iterations in this session
    with open(os.path.join(str(tmp_path), 'summary.json')) as f:
        summary = json.load(f)
    assert summary['wall_time_s'] == pytest.approx(105., abs=1.)
    assert summary['alpha_gs'] == 1e-3 and summary['max_staleness'] == 1
    assert summary['synth_placement'] == 'above'   # the default
    assert summary['images_per_sec'] == pytest.approx(
        30 * 10 / summary['wall_time_s'])


class _Aborted(Exception):
    pass


class _MPI(object):
    """An MPI communicator's Abort, recorded."""

    def Abort(self, code):
        raise _Aborted(code)


def test_a_full_disk_stops_the_job_in_one_line(tmp_path, capsys):
    import errno
    out = str(tmp_path)
    for name in ('snapshot_iter_4.json', 'snapshot_iter_8.json'):
        with open(os.path.join(out, name), 'w') as f:
            json.dump({'files': []}, f)
    config = load_script().parse_config(['--decoupled', '--out', out])
    error = OSError(errno.ENOSPC, 'No space left on device',
                    os.path.join(out, 'snapshot_iter_12.rank1.npz.tmp.npz'))
    with pytest.raises(_Aborted) as e:
        runner._stop_failed(config, 1, error, _MPI(), 'train_cifar.py')
    assert e.value.args == (1,)
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'Traceback' not in err
    assert err.startswith('train_cifar.py: rank 1: error: the disk is full')
    assert 'the newest intact snapshot is %s' % os.path.join(
        out, 'snapshot_iter_8.json') in err
    # Any other error is abort()'s, as before.
    with pytest.raises(_Aborted):
        runner._stop_failed(config, 1, ValueError('bug'), _MPI(),
                            'train_cifar.py')
    assert 'decoupled: rank 1 stops the run: ValueError: bug' in \
        capsys.readouterr().err
