"""The lock file of a shared records folder (chainer_vfbn/runs/folder.py's
claim_file): one holder, and a dead holder's lock taken over with a line."""
import json
import os
import socket
import subprocess
import sys
import time

from chainer_vfbn.runs import folder


def _dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def _write(path, holder, age=0.):
    with open(path, 'w') as f:
        json.dump(holder, f)
    then = time.time() - age
    os.utime(path, (then, then))


def test_one_holder_at_a_time_and_release(tmp_path):
    path = str(tmp_path / 'rec' / 'x.json.lock')
    said = []
    held = folder.claim_file(path, say=said.append)
    assert held is not None and os.path.isfile(path)
    assert folder.claim_file(path, say=said.append) is None   # ours, live
    assert folder.read_lock(path).startswith('pid %d on %s since '
                                             % (os.getpid(),
                                                socket.gethostname()))
    held.release()
    assert folder.read_lock(path) is None
    assert folder.claim_file(path, say=said.append) is not None
    assert said == []


def test_a_dead_holders_lock_is_taken_over_with_a_line(tmp_path):
    path = str(tmp_path / 'x.lock')
    pid = _dead_pid()
    _write(path, {'host': socket.gethostname(), 'pid': pid, 'start': None,
                  'since': 'then'})
    said = []
    held = folder.claim_file(path, say=said.append)
    assert held is not None
    assert said == ['%s: took over the stale lock of pid %d on %s since then,'
                    ' which is no longer running' % (path, pid,
                                                     socket.gethostname())]
    with open(path) as f:
        assert json.load(f)['pid'] == os.getpid()


def test_a_reused_pid_does_not_keep_a_lock(tmp_path):
    """Our own pid with another start time: the holder is gone."""
    path = str(tmp_path / 'x.lock')
    me = folder._holder()
    if me['start'] is None:
        return    # no /proc: the pid alone decides
    _write(path, dict(me, start='1'))
    assert folder.claim_file(path, say=lambda line: None) is not None


def test_another_machines_lock_lives_while_it_is_refreshed(tmp_path):
    path = str(tmp_path / 'x.lock')
    other = {'host': 'elsewhere', 'pid': 1, 'since': 'then'}
    _write(path, other, age=folder.LOCK_STALE_S - 30)
    assert folder.claim_file(path, say=lambda line: None) is None
    _write(path, other, age=folder.LOCK_STALE_S + 30)
    said = []
    assert folder.claim_file(path, say=said.append) is not None
    assert len(said) == 1 and 'on elsewhere' in said[0]


def test_refresh_touches_the_file(tmp_path):
    path = str(tmp_path / 'x.lock')
    held = folder.claim_file(path)
    then = time.time() - 1000
    os.utime(path, (then, then))
    held.refresh(every=0)
    assert time.time() - os.stat(path).st_mtime < 100
