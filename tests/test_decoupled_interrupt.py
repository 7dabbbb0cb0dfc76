"""Ctrl-C of a decoupled run (issue #32): a snapshot set, exit 130, resume.

Open MPI's ``mpiexec`` kills its ranks within two seconds of its own SIGINT
and exits 1, so ``train_cifar.py --mpiexec COMMAND`` starts the ranks and
passes its SIGINT on as SIGUSR1, which ``mpiexec`` forwards. The test sends
SIGINT to that process, running a real 2-rank ``mpiexec`` on the bundled
sample, then runs the same command again, which resumes from the set.
It skips, with the reason, where ``mpiexec`` or ``mpi4py`` is missing.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import _mpi  # NOQA  (tests/_mpi.py)
from support import REPO
from support import SCRIPT


def _command(out, iterations):
    return [sys.executable, SCRIPT, '--decoupled',
            '--mpiexec', ' '.join(_mpi.MPIEXEC + ['-n', '2']),
            '--method', 'vfbn', '--dataset', 'sample',
            '--arch', 'resnet8-paper', '--batchsize', '10',
            '--iterations', str(iterations), '--eval-interval', '1000',
            '--tta-interval', '0', '--test-batchsize', '500',
            '--no-progress', '--out', out]


def _wait_for(path, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            return True
        time.sleep(0.2)
    return False


def test_sigint_takes_a_snapshot_set_exits_130_and_resumes(tmp_path):
    _mpi.require_mpi()
    pytest.importorskip('chainermn')
    out = str(tmp_path / 'run')
    proc = subprocess.Popen(_command(out, 10000), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=_mpi.env(), cwd=REPO)
    try:
        # args.json is written by rank 0 just before the first iteration.
        assert _wait_for(os.path.join(out, 'args.json'), 120), \
            'the run did not start'
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stdout[-2000:] + stderr[-3000:]
    assert 'Traceback' not in stderr, stderr
    lines = [l for l in stderr.splitlines()
             if l.startswith('train_cifar.py: interrupted')]
    assert len(lines) == 1, stderr
    m = re.match(r'train_cifar.py: interrupted by SIGINT at iteration (\d+); '
                 r'snapshot (\S+); the same command resumes it$', lines[0])
    assert m, lines[0]
    stopped, manifest = int(m.group(1)), m.group(2)
    assert 0 < stopped < 10000
    assert manifest == os.path.join(out, 'snapshot_iter_%d.json' % stopped)
    assert sorted(f for f in os.listdir(out) if f.startswith('snapshot')) == [
        'snapshot_iter_%d.json' % stopped,
        'snapshot_iter_%d.rank0.npz' % stopped,
        'snapshot_iter_%d.rank1.npz' % stopped]
    assert not os.path.exists(os.path.join(out, 'summary.json'))
    assert not os.path.exists(os.path.join(out, '.lock'))

    # The same command (two iterations longer) resumes from that set.
    proc = subprocess.run(_command(out, stopped + 2), capture_output=True,
                          text=True, env=_mpi.env(), cwd=REPO, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert 'resumed from %s at iteration %d' % (manifest, stopped) \
        in proc.stdout
    with open(os.path.join(out, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['iterations'] == stopped + 2
    assert summary['decoupled'] is True


def test_mpiexec_needs_decoupled():
    proc = subprocess.run([sys.executable, SCRIPT, '--mpiexec', 'mpiexec'],
                          capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == ('train_cifar.py: error: --mpiexec starts a '
                           '--decoupled run (see --help)\n')
