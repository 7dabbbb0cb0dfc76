"""tools/slurm/submit.sh (issue #32): a schedule as job arrays, one per
phase, each after the one before, then the report job after them all.

``sbatch`` is a stand-in here that records its arguments and answers a job
id; the list of runs is the real ``reproduce.py --list``. The cluster itself
(tools/slurm/cluster.sh) and a real array of two smoke rows are CI's
(tools/slurm/ci_check.sh, run by .ci/run).
"""
import os
import shlex
import stat
import subprocess
import sys

import pytest

from support import REPO

SUBMIT = os.path.join(REPO, 'tools', 'slurm', 'submit.sh')
SBATCH_SCRIPT = os.path.join(REPO, 'tools', 'slurm', 'reproduce.sbatch')
FAKE_SBATCH = '''#!/bin/bash
n=$(( $(cat "$0.n" 2>/dev/null || echo 100) + 1 ))
echo $n > "$0.n"
printf '%s\\n' "$*" >> "$0.log"
echo "$n;vfbn"
'''


@pytest.fixture
def fake_sbatch(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    path = bin_dir / 'sbatch'
    path.write_text(FAKE_SBATCH)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH='%s%s%s' % (bin_dir, os.pathsep,
                                            os.environ['PATH']),
               PYTHONPATH=REPO)
    return str(path), env


def _submit(env, *args):
    return subprocess.run(['bash', SUBMIT] + list(args), capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120)


def _calls(sbatch):
    with open(sbatch + '.log') as f:
        return [shlex.split(line) for line in f]


def test_smoke_is_one_array_then_the_report(tmp_path, fake_sbatch):
    sbatch, env = fake_sbatch
    out = str(tmp_path / 'shared')
    proc = _submit(env, '--gpu', '--python', sys.executable, '--sbatch',
                   '--partition gpu --time 1:00:00', '--', '--schedule',
                   'smoke', '--out', out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == 'smoke: job 101, array 0-8\nreport: job 102\n'
    array, report = _calls(sbatch)
    reproduce = ['--schedule', 'smoke', '--out', out]
    assert array == [
        '--parsable', '--job-name=vfbn-smoke', '--array=0-8',
        '--output=%s/slurm/smoke-%%A_%%a.out' % out, '--gres=gpu:1',
        '--partition', 'gpu', '--time', '1:00:00', SBATCH_SCRIPT, 'run',
        sys.executable, REPO] + reproduce
    assert report == [
        '--parsable', '--job-name=vfbn-report',
        '--output=%s/slurm/report-%%j.out' % out,
        '--dependency=afterok:101', '--partition', 'gpu', '--time',
        '1:00:00', SBATCH_SCRIPT, 'report', sys.executable, REPO] + reproduce
    assert os.path.isdir(os.path.join(out, 'slurm'))


def test_rows_make_an_array_of_their_runs_alone(tmp_path, fake_sbatch):
    """--rows (CI's check submits bp,vfbn): the array covers those rows'
    runs, indexed as the tasks' own --list with the same options lists
    them, and every job gets the option."""
    sbatch, env = fake_sbatch
    out = str(tmp_path / 'two')
    reproduce = ['--schedule', 'smoke', '--rows', 'bp,vfbn', '--out', out]
    listed = subprocess.run(
        [sys.executable, os.path.join(REPO, 'train', 'reproduce.py'),
         '--list'] + reproduce, capture_output=True, text=True, env=env,
        cwd=REPO, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert [line.split('\t')[2] for line in listed.stdout.splitlines()] \
        == ['bp', 'vfbn']
    proc = _submit(env, '--python', sys.executable, '--', *reproduce)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == 'smoke: job 101, array 0-1\nreport: job 102\n'
    array, report = _calls(sbatch)
    tail = len(reproduce) + 3
    assert array[-tail:] == ['run', sys.executable, REPO] + reproduce
    assert report[-tail:] == ['report', sys.executable, REPO] + reproduce


def test_each_phase_waits_for_the_one_before(tmp_path, fake_sbatch):
    """mini: one array per phase of --list, in its order, each afterok the
    one before; the report after them all."""
    sbatch, env = fake_sbatch
    out = str(tmp_path / 'mini')
    listed = subprocess.run(
        [sys.executable, os.path.join(REPO, 'train', 'reproduce.py'),
         '--schedule', 'mini', '--out', out, '--list'], capture_output=True,
        text=True, env=env, cwd=REPO, timeout=120)
    assert listed.returncode == 0, listed.stderr
    phases = []
    for line in listed.stdout.splitlines():
        index, phase = line.split('\t')[:2]
        if not phases or phases[-1][0] != phase:
            phases.append((phase, []))
        phases[-1][1].append(int(index))
    assert len(phases) >= 3, phases
    proc = _submit(env, '--python', sys.executable, '--', '--schedule', 'mini',
                   '--out', out)
    assert proc.returncode == 0, proc.stderr
    calls = _calls(sbatch)
    assert len(calls) == len(phases) + 1
    for i, ((phase, indices), call) in enumerate(zip(phases, calls)):
        assert indices == list(range(indices[0], indices[-1] + 1))
        assert '--array=%d-%d' % (indices[0], indices[-1]) in call \
            or (len(indices) == 1 and '--array=%d' % indices[0] in call)
        assert '--job-name=vfbn-%s' % phase in call
        deps = [a for a in call if a.startswith('--dependency=')]
        assert deps == ([] if i == 0 else ['--dependency=afterok:%d'
                                           % (100 + i)])
    ids = ':'.join(str(101 + i) for i in range(len(phases)))
    assert '--dependency=afterok:%s' % ids in calls[-1]
    assert calls[-1][-7:] == ['report', sys.executable, REPO, '--schedule',
                             'mini', '--out', out]


def test_refusals_are_one_line(tmp_path, fake_sbatch):
    sbatch, env = fake_sbatch
    proc = _submit(env, '--', '--schedule', 'smoke')
    assert proc.returncode == 2
    assert proc.stderr == ('submit.sh: give reproduce.py an --out that every '
                           'node sees\n')
    proc = _submit(env, '--python', sys.executable, '--', '--schedule',
                   'nosuch', '--out', str(tmp_path / 'x'))
    assert proc.returncode == 2
    assert proc.stderr.endswith('submit.sh: reproduce.py --list failed '
                                '(above); nothing submitted\n')
    assert not os.path.exists(sbatch + '.log')
