"""A running run's progress and the time a run takes
(chainer_vfbn/experiments/running/progress.py), and their lines in the pool."""
import json
import os
import re

import numpy

from chainer_vfbn.experiments.protocol import plan as planning
from chainer_vfbn.experiments.running import progress
from chainer_vfbn.experiments.protocol import schedules
from chainer_vfbn.experiments.running.pool import run_pool
from fake_train import write_finished_run


def _log(run_dir, epochs, per_epoch=10.):
    with open(os.path.join(run_dir, 'log'), 'w') as f:
        json.dump([{'epoch': e, 'iteration': 10 * e,
                    'elapsed_time': per_epoch * e}
                   for e in range(1, epochs + 1)], f)


def test_tracker_reads_the_log_and_the_snapshots(tmp_path):
    run_dir = str(tmp_path)
    now = [100.]
    t = progress.Tracker(run_dir, ['--epoch', '24'], clock=lambda: now[0])
    assert t.state() == (0, 24, 'epoch', None)
    # a snapshot of epoch 3 (its name says the iteration only)
    with open(os.path.join(run_dir, 'snapshot_iter_30'), 'wb') as f:
        numpy.savez(f, **{progress.SNAPSHOT_EPOCH: numpy.array(3)})
    now[0] = 160.
    assert t.state() == (3, 24, 'epoch', 20. * 21)   # 20 s an epoch
    _log(run_dir, 4)
    assert t.done() == 4
    # a resumed run's pace counts this session only
    resumed = progress.Tracker(run_dir, ['--epoch', '24'],
                               clock=lambda: now[0])
    assert resumed.at_start == 4 and resumed.state()[3] is None
    # an iteration budget
    it = progress.Tracker(run_dir, ['--iterations', '50'])
    assert it.state()[:3] == (40, 50, 'iteration')


def test_the_pool_says_epoch_time_left_log_and_resumed(tmp_path):
    """Issue #34: progress while a run trains; "resumed" on a restart."""
    s = schedules.settings()
    run = planning.plan('length', s)[0]
    out, records = str(tmp_path / 'out'), str(tmp_path / 'rec')
    run_dir = os.path.join(out, run.folder)
    os.makedirs(run_dir)
    open(os.path.join(run_dir, 'snapshot_iter_5'), 'wb').close()
    polls = []

    class Training(object):
        """An epoch every poll, finished after three."""
        def __init__(self, argv, **kw):
            self.argv = argv
            self.returncode = None

        def poll(self):
            polls.append(1)
            if len(polls) <= 3:
                _log(run_dir, len(polls))
                return None
            write_finished_run(run_dir, 0.3, 0.3, argv=self.argv[2:])
            self.returncode = 0
            return 0

    said = []
    result = run_pool([run], s, records, out, 'train.py', popen=Training,
                      log=said.append, progress_every=0)
    assert result == {run.key: 'done'}
    log_file = os.path.join(run_dir, 'train.log')
    assert said[0] == 'mini: resumed (from snapshot_iter_5) length/bp; ' \
        'its log: %s' % log_file
    shown = [line for line in said if line.startswith('mini: running ')]
    assert shown and all(re.match(
        r'mini: running length/bp epoch [1-3]/24, about \d+ min left \(%s\)$'
        % re.escape(log_file), line) for line in shown), shown


def test_measured_durations_from_records(tmp_path):
    final = tmp_path / 'final'
    final.mkdir()
    for name, row, secs in (('bp_seed0', 'bp', 600.), ('bp_seed1', 'bp',
                                                       1200.),
                            ('vfbn_seed0', 'vfbn', 3000.)):
        (final / (name + '.json')).write_text(json.dumps({
            'config': {'row': row},
            'environment': {'machine': {'cpu': 'Some CPU', 'cpu_count': 2}},
            'curve': [{'epoch': 1, 'elapsed_time': secs / 2},
                      {'epoch': 2, 'elapsed_time': secs}]}))
    found = progress.measured_durations(str(tmp_path))
    assert found['rows'] == {'bp': [600., 1200.], 'vfbn': [3000.]}
    assert found['machines'] == ['Some CPU (2 cores)']
    assert found['epochs'] == [2] and found['runs'] == 3
    assert progress.measured_durations(str(tmp_path / 'none'))['rows'] == {}
