"""benchmarks/bench_decoupled.py: bad options are refused in one line."""
import os
import subprocess
import sys

from support import REPO


def test_warmup_below_one_is_refused():
    # The timed window starts when step `warmup` ends: with 0 there is no
    # such step, and the run used to end in a KeyError after its set-up.
    r = subprocess.run([sys.executable, os.path.join(REPO, 'benchmarks',
                                                     'bench_decoupled.py'),
                        '--warmup', '0'],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        'bench_decoupled.py: error: --warmup must be at least 1, got 0')
    assert 'Traceback' not in r.stderr
