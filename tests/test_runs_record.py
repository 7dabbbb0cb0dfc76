"""What a run records of its code (chainer_vfbn/runs/record.py): every
session's, in args.json and summary.json, and one line when a run is
resumed on other code."""
import json
import os

from chainer_vfbn.runs import provenance
from support import run_cli
from support import TINY


def _sessions(path):
    with open(os.path.join(path, 'args.json')) as f:
        return json.load(f)


def test_a_run_resumed_on_other_code_says_so_and_keeps_both(tmp_path):
    out = str(tmp_path / 'run')
    r = run_cli(TINY + ['--method', 'bp', '--iterations', '2',
                        '--frequency', '1', '--out', out])
    assert r.returncode == 0, r.stderr
    args = _sessions(out)
    assert 'resumed on other code' not in r.stdout
    assert [s['code_version'] for s in args['code_versions']] == [
        args['code_version']]
    # as if the first session had run on another commit
    old = 'git 0123456 (chainer_vfbn 0.0.1)'
    args['code_version'] = old
    args['code_versions'][0].update(code_version=old, commit='0123456' * 5)
    with open(os.path.join(out, 'args.json'), 'w') as f:
        json.dump(args, f)
    r = run_cli(TINY + ['--method', 'bp', '--iterations', '4',
                        '--frequency', '1', '--out', out])
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stdout.splitlines()
            if 'resumed on other code' in line]
    now = provenance.code_state()['code_version']
    assert len(said) == 1 and old in said[0] and now in said[0]
    args = _sessions(out)
    assert args['code_version'] == old         # the run's, as it was
    assert [s['code_version'] for s in args['code_versions']] == [old, now]
    with open(os.path.join(out, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['code_version'] == old
    assert summary['code_versions'] == args['code_versions']
    # resumed again on the same code: a third session, nothing said
    r = run_cli(TINY + ['--method', 'bp', '--iterations', '6',
                        '--frequency', '1', '--out', out])
    assert r.returncode == 0 and 'resumed on other code' not in r.stdout
    assert len(_sessions(out)['code_versions']) == 3
