"""chainer_vfbn.experiments.bench.machine: what a figure was measured on."""
import os

from chainer_vfbn.experiments.bench import machine
from chainer_vfbn.runs import provenance
from support import git_checkout


def test_cpu_name_reads_the_model_name(tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor\t: 0\nmodel name\t: Some CPU 9000\n'
                       'flags\t: x\n')
    assert machine.cpu_name(str(cpuinfo)) == \
        'Some CPU 9000, %d cores' % os.cpu_count()


def test_cpu_name_without_proc(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance.platform, 'processor', lambda: 'x86_64')
    assert machine.cpu_name(str(tmp_path / 'none')) == \
        'x86_64, %d cores' % os.cpu_count()


def test_versions_name_the_code_as_the_runs_do(tmp_path, monkeypatch):
    # the commit's describe, -dirty for a modified checkout (the run
    # records' code_version without its package part)
    monkeypatch.setattr(provenance, 'REPO', git_checkout(
        tmp_path / 'repo', dirty=True))
    state = provenance.code_state()
    git = machine.versions()['git']
    assert git.endswith('-dirty') and state['commit'].startswith(git[:7])
    monkeypatch.setattr(provenance, 'REPO', str(tmp_path))
    assert machine.versions()['git'] == 'unknown'
