"""chainer_vfbn/runs/provenance.py: the code, the machine, a run folder's
files and the differences of two configurations."""
import doctest
import hashlib
import json
import os
import subprocess

import pytest

from chainer_vfbn.runs import provenance
from support import git_checkout

CPUINFO = '''processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 23
model\t\t: 49
model name\t: Another CPU
'''


def test_the_examples_hold():
    assert doctest.testmod(provenance).failed == 0


# -- the code -----------------------------------------------------------------

def test_a_clean_checkout_names_its_commit(tmp_path):
    repo = git_checkout(tmp_path / 'repo')
    state = provenance.code_state(repo)
    head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=repo,
                          capture_output=True, text=True).stdout.strip()
    assert state['commit'] == head and state['dirty'] is False
    assert state['code_version'].startswith('git %s (chainer_vfbn ' % head[:7])
    assert state['diff_sha256'] is None
    assert provenance.tracked_diff(repo) == b''


def test_a_modified_checkout_is_dirty_and_keeps_its_diff(tmp_path):
    repo = git_checkout(tmp_path / 'repo', dirty=True)
    out = str(tmp_path / 'out')
    state = provenance.code_state(repo, keep_diff_in=out)
    diff = provenance.tracked_diff(repo)
    assert b'-x = 1\n+x = 2\n' in diff
    assert state['dirty'] is True and state['code_version'].split()[1]\
        .endswith('-dirty')
    assert state['diff_sha256'] == hashlib.sha256(diff).hexdigest()
    with open(os.path.join(out, 'diffs', state['diff_sha256'] + '.diff'),
              'rb') as f:
        assert f.read() == diff
    # an untracked file is not a change of the tracked files
    repo2 = git_checkout(tmp_path / 'repo2')
    (tmp_path / 'repo2' / 'new.py').write_text('y = 1\n')
    assert provenance.code_state(repo2)['dirty'] is False


def test_a_folder_inside_another_checkout_is_no_checkout(tmp_path):
    # an installed package inside another repository's tree (a venv in a
    # checkout) must not name that repository's commit
    repo = git_checkout(tmp_path / 'repo')
    inside = os.path.join(repo, 'site-packages')
    os.makedirs(inside)
    state = provenance.code_state(inside)
    assert state['commit'] is None and state['dirty'] is None
    assert state['code_version'].startswith('chainer_vfbn ')
    assert provenance.tracked_diff(inside) is None


def test_each_session_of_a_run_keeps_its_code():
    a = dict(code_version='git aaa (chainer_vfbn 0.1.0)', diff_sha256=None)
    b = dict(code_version='git bbb-dirty (chainer_vfbn 0.1.0)',
             diff_sha256='1' * 64)
    b2 = dict(b, diff_sha256='2' * 64)
    # a new run: its code alone
    assert provenance.code_history(None, a, False) == (
        a['code_version'], [a], None)
    # resumed on the same code: one more session, nothing said
    first, every, line = provenance.code_history(
        {'code_version': a['code_version'], 'code_versions': [a]}, a, True)
    assert (first, every, line) == (a['code_version'], [a, a], None)
    # resumed on other code: the first stays the run's, every one is kept
    first, every, line = provenance.code_history(
        {'code_version': a['code_version'], 'code_versions': [a]}, b, True)
    assert first == a['code_version'] and every == [a, b]
    assert line.startswith('resumed on other code') and '\n' not in line
    assert a['code_version'] in line and b['code_version'] in line
    # one dirty checkout after another: the diffs differ, so the code does
    assert provenance.code_history(
        {'code_version': b['code_version'], 'code_versions': [b]}, b2,
        True)[2]
    # an args.json from before the list: its one code version starts it
    first, every, line = provenance.code_history(
        {'code_version': 'git old (chainer_vfbn 0.1.0)'}, a, True)
    assert every == [{'code_version': 'git old (chainer_vfbn 0.1.0)'}, a]
    assert first == 'git old (chainer_vfbn 0.1.0)' and line
    # a folder whose run starts afresh (no snapshot) starts a new history
    assert provenance.code_history(
        {'code_version': 'git old (chainer_vfbn 0.1.0)'}, a, False) == (
        a['code_version'], [a], None)


# -- the machine --------------------------------------------------------------

def test_machine_names_the_first_cpu_its_family_and_model(tmp_path):
    # "AMD EPYC" covers generations whose BLAS kernels differ (Haswell and
    # SkylakeX on this project's machines): the family and model tell them
    # apart
    path = tmp_path / 'cpuinfo'
    path.write_text(CPUINFO)
    m = provenance.machine(str(path))
    assert m['cpu'] == 'AMD EPYC'
    assert m['cpu_id'] == 'family 25 model 17'
    assert isinstance(m['blas'], list) and m['cpu_count'] >= 1


def test_machine_without_cpuinfo_names_what_platform_knows(tmp_path):
    m = provenance.machine(str(tmp_path / 'none'))
    assert m['cpu'] and 'cpu_id' not in m


def test_the_kernel_pin_is_what_the_record_names():
    # OPENBLAS_CORETYPE picks OpenBLAS's kernel, and the machine record
    # names the kernel that runs (from threadpoolctl)
    m = provenance.machine_under(dict(os.environ,
                                      OPENBLAS_CORETYPE='Haswell'))
    label = provenance.kernel_label(m)
    if 'openblas' not in label:
        pytest.skip('NumPy does not run on OpenBLAS here')
    # (each BLAS library loaded: NumPy's, and SciPy's where it loads)
    assert set(label.split(', ')) == {'openblas Haswell'}
    assert m['cpu'] == provenance.machine()['cpu']


# -- a run folder's files -----------------------------------------------------

def test_a_run_folders_files_are_read_or_refused_in_one_line(tmp_path):
    assert provenance.read_args(str(tmp_path)) is None
    (tmp_path / 'args.json').write_text(json.dumps({'args': {'seed': 1}}))
    assert provenance.read_args(str(tmp_path)) == {'args': {'seed': 1}}
    (tmp_path / 'summary.json').write_text('{"test_error": 0.')
    with pytest.raises(provenance.Unreadable) as e:
        provenance.read_summary(str(tmp_path))
    assert str(e.value).startswith(str(tmp_path / 'summary.json'))
    assert '\n' not in str(e.value)
    (tmp_path / 'summary.json').write_text('[1, 2]')
    with pytest.raises(provenance.Unreadable, match='not a JSON object'):
        provenance.read_summary(str(tmp_path))


# -- the differences of two configurations -----------------------------------

def test_differences_name_nested_entries_and_missing_ones():
    assert provenance.differences({'a': 1, 'b': {'c': 2, 'd': 3}},
                                  {'a': 1, 'b': {'c': 2, 'd': 4}}) == ['b.d']
    # missing differs from any value, None included
    assert provenance.differences({'a': None}, {}) == ['a']
    assert provenance.differences({'a': 1}, {'a': 1}) == []
    assert provenance.differences(None, None) == []


def test_options_added_since_a_run_count_as_their_default():
    """A run recorded before an option existed resumes while the new
    command leaves that option at its default, and is refused otherwise."""
    recorded = {'method': 'bp', 'epoch': 3}
    current = {'method': 'bp', 'epoch': 5, 'new_flag': False}
    defaults = {'method': 'vfbn', 'epoch': 432, 'new_flag': False}
    diff = provenance.differences
    assert diff(recorded, current, ['epoch'], defaults) == []
    assert diff(recorded, dict(current, new_flag=True), ['epoch'],
                defaults) == ['new_flag']
    # Without the defaults, or for a recorded option, nothing is assumed.
    assert diff(recorded, current, ['epoch']) == ['new_flag']
    assert diff(recorded, dict(current, method='vfbn'), ['epoch'],
                defaults) == ['method']
