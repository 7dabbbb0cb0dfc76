"""A run's identity and provenance, defined once: the code it ran (commit,
dirty flag and the diff of a modified checkout), the machine (CPU, BLAS
library and kernel), the run folder's ``args.json`` and ``summary.json``,
and the names of the differences between two configurations.

The run folder (:mod:`chainer_vfbn.runs.folder`), the records a run writes
(:mod:`chainer_vfbn.runs.record`), the experiment records
(:mod:`chainer_vfbn.experiments.records`), the benchmarks
(:mod:`chainer_vfbn.experiments.bench.machine`) and ``train/compare_runs.py`` read
these from here.

Example:
    >>> differences({'a': 1, 'b': {'c': 2}}, {'a': 1, 'b': {}})
    ['b.c']
    >>> kernel_label({'blas': [{'internal_api': 'openblas',
    ...                         'architecture': 'Haswell'}]})
    'openblas Haswell'
"""
import collections
import hashlib
import json
import os
import platform
import subprocess
import sys

import chainer
import numpy
import threadpoolctl

import chainer_vfbn

# The checkout the package belongs to (if it is one: an installed package
# is not, though it may sit inside another repository's tree).
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
ARGS_FILE = 'args.json'
SUMMARY_FILE = 'summary.json'
#: Where a modified checkout's diff is kept, as ``<sha256>.diff``, beside
#: a run's files and beside the experiment records.
DIFFS = 'diffs'


class Unreadable(ValueError):
    """A run's ``args.json`` or ``summary.json`` exists but cannot be
    read; the message is one line naming the file."""


def _git(args, repo):
    """``git args`` in ``repo``: its stdout (bytes), or None on failure."""
    try:
        out = subprocess.run(['git'] + list(args), cwd=repo,
                             capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _checkout(repo):
    """Whether ``repo`` is the top of a git checkout (not a folder inside
    another repository's tree, as an installed package may be)."""
    top = _git(['rev-parse', '--show-toplevel'], repo)
    return top is not None and os.path.realpath(
        top.decode().strip()) == os.path.realpath(repo)


def tracked_diff(repo=None):
    """How the checkout's tracked files differ from its commit (``git diff
    HEAD``, binary changes included): bytes, empty where they do not;
    None outside a git checkout. Untracked files are not in it."""
    repo = repo or REPO
    if not _checkout(repo):
        return None
    return _git(['diff', 'HEAD', '--binary', '--no-color', '--no-ext-diff'],
                repo)


def code_state(repo=None, keep_diff_in=None):
    """The code a run runs: ``code_version`` (``'git 9813494 (chainer_vfbn
    0.1.0)'``, ``'git 9813494-dirty (...)'`` for a modified checkout, or
    ``'chainer_vfbn 0.1.0'`` outside one), ``commit`` (40 hex digits),
    ``dirty`` and ``diff_sha256`` (of :func:`tracked_diff`, where dirty).

    Args:
        repo (str): The checkout (default: the package's).
        keep_diff_in (str): Where dirty, also write the diff to
            ``<keep_diff_in>/diffs/<diff_sha256>.diff``.

    Returns:
        dict: The four keys (``commit``, ``dirty`` and ``diff_sha256``
        None outside a git checkout).
    """
    repo = repo or REPO
    package = 'chainer_vfbn %s' % chainer_vfbn.__version__
    diff = tracked_diff(repo)
    describe = _git(['describe', '--always', '--tags'], repo)
    commit = _git(['rev-parse', 'HEAD'], repo)
    if diff is None or not describe or not commit:
        return dict(code_version=package, commit=None, dirty=None,
                    diff_sha256=None)
    dirty = bool(diff)
    sha = hashlib.sha256(diff).hexdigest() if dirty else None
    if sha and keep_diff_in:
        save_diff(keep_diff_in, diff)
    return dict(code_version='git %s%s (%s)' % (
        describe.decode().strip(), '-dirty' if dirty else '', package),
        commit=commit.decode().strip(), dirty=dirty, diff_sha256=sha)


def save_diff(folder, diff):
    """Write ``diff`` (bytes) to ``<folder>/diffs/<its sha256>.diff``
    (once; atomically) and return its path."""
    path = os.path.join(folder, DIFFS,
                        hashlib.sha256(diff).hexdigest() + '.diff')
    if not os.path.isfile(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = '%s.tmp%d' % (path, os.getpid())
        with open(tmp, 'wb') as f:
            f.write(diff)
        os.replace(tmp, path)
    return path


def _same_code(a, b):
    return (a.get('code_version'), a.get('diff_sha256')) == \
        (b.get('code_version'), b.get('diff_sha256'))


def code_history(previous, state, resumed):
    """Every session's code of a run, the first one's, and the line that
    says so where this session runs other code than the last.

    Args:
        previous (dict): The folder's ``args.json`` before this session
            (None: a new run).
        state (dict): This session's :func:`code_state`.
        resumed (bool): Whether this session continues from a snapshot
            (otherwise the run starts afresh and its history with it).

    Returns:
        tuple: ``(code_version, code_versions, line)``: the first
        session's code version (the run's ``code_version``, as it always
        was), every session's :func:`code_state` in order (an ``args.json``
        from before the list gives its one ``code_version``), and one line
        or None.

    Example:
        >>> old = {'code_version': 'git abc (chainer_vfbn 0.1.0)'}
        >>> now = dict(code_version='git def (chainer_vfbn 0.1.0)',
        ...            diff_sha256=None)
        >>> first, every, line = code_history(old, now, resumed=True)
        >>> first, len(every), line.split(';')[0]
        ('git abc (chainer_vfbn 0.1.0)', 2, 'resumed on other code')
    """
    if not resumed or not previous or not previous.get('code_version'):
        return state['code_version'], [state], None
    every = list(previous.get('code_versions') or [
        {'code_version': previous['code_version']}])
    line = None
    if not _same_code(every[-1], state):
        line = ('resumed on other code; the run began on %s%s, this '
                'session runs %s (args.json keeps each session\'s, in '
                'code_versions)' % (
                    previous['code_version'],
                    '' if len(every) == 1 else ' and last ran on %s'
                    % every[-1]['code_version'], state['code_version']))
    return previous['code_version'], every + [state], line


def machine(cpuinfo='/proc/cpuinfo'):
    """The CPU model (and family and model numbers) and the BLAS library
    and kernel NumPy runs on (from threadpoolctl): a run is bit-identical
    with one BLAS kernel, and equal only within seed noise across kernels,
    so its record names the machine."""
    info = {}
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(':')
                if not key.strip():
                    break           # the first processor is enough
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = info.get('model name')
    blas = [{k: lib.get(k) for k in ('internal_api', 'version',
                                     'architecture', 'threading_layer')}
            for lib in threadpoolctl.threadpool_info()
            if lib.get('user_api') == 'blas']
    out = {'cpu': cpu or platform.processor() or platform.machine(),
           'cpu_count': os.cpu_count(), 'blas': blas}
    if 'cpu family' in info and 'model' in info:
        # One model name can cover several generations ("AMD EPYC"), whose
        # BLAS kernels differ.
        out['cpu_id'] = 'family %s model %s' % (info['cpu family'],
                                                info['model'])
    return out


def machine_under(env):
    """The :func:`machine` that a new Python process names under the
    environment ``env`` (e.g. with OpenBLAS's kernel pinned), or None if
    that process fails (a kernel the CPU cannot run)."""
    code = ('import json; from chainer_vfbn.runs import provenance; '
            'print(json.dumps(provenance.machine()))')
    try:
        out = subprocess.run([sys.executable, '-c', code], env=env,
                             capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def kernel_label(machine):
    """The BLAS library and kernel of a :func:`machine`, e.g.
    ``'openblas Haswell'`` (``', '``-joined where the process loaded
    several of different kernels; each kernel once).

    Example:
        >>> lib = {'internal_api': 'openblas', 'architecture': 'Haswell'}
        >>> kernel_label({'blas': [lib, dict(lib, version='0.3.30')]})
        'openblas Haswell'
    """
    blas = (machine or {}).get('blas')
    if not isinstance(blas, list):
        return str(blas)
    return ', '.join(collections.OrderedDict.fromkeys(
        '%s %s' % (b.get('internal_api'), b.get('architecture'))
        for b in blas))


def environment():
    """Python, NumPy, Chainer (and CuPy) versions, platform and machine."""
    env = {'python': platform.python_version(), 'numpy': numpy.__version__,
           'chainer': chainer.__version__, 'platform': platform.platform(),
           'machine': machine()}
    if chainer.backends.cuda.available:
        env['cupy'] = chainer.backends.cuda.cupy.__version__
        env['cudnn'] = bool(chainer.backends.cuda.cudnn_enabled)
    return env


def _read(folder, name):
    path = os.path.join(folder, name)
    try:
        with open(path) as f:
            data = json.load(f)
    except (FileNotFoundError, NotADirectoryError):
        return None     # no run there (a path under a file: no folder yet)
    except (OSError, ValueError) as e:
        raise Unreadable('%s is unreadable (%s)' % (
            path, ' '.join(str(getattr(e, 'strerror', None) or e).split())))
    if not isinstance(data, dict):
        raise Unreadable('%s is unreadable (not a JSON object)' % path)
    return data


def read_args(folder):
    """A run folder's ``args.json`` (its options under ``args``, its code
    and machine), or None where there is none.

    Raises:
        Unreadable: It exists but is damaged (one line).
    """
    return _read(folder, ARGS_FILE)


def read_summary(folder):
    """A run folder's ``summary.json``, or None where there is none.

    Raises:
        Unreadable: It exists but is damaged (one line).
    """
    return _read(folder, SUMMARY_FILE)


_ABSENT = '<absent>'


def differences(a, b, ignore=(), defaults=None, prefix=''):
    """Names of the entries that differ between two configurations.

    Nested dicts are compared entry by entry (``'b.c'``); an entry missing
    on one side differs from any value on the other.

    Args:
        a (dict): The recorded configuration.
        b (dict): The new one.
        ignore (iterable of str): Top-level entries not compared (e.g. the
            options a resumed run may change).
        defaults (dict): Top-level defaults: an entry that ``a`` lacks
            (an option added to the program since) counts as unchanged
            where ``b`` has its default.
        prefix (str): Put before each name (the recursion's).

    Returns:
        list of str: The names, in sorted order at each level.
    """
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [] if a == b else [prefix.rstrip('.')]
    defaults = defaults or {}
    out = []
    for k in sorted(set(a) | set(b), key=str):
        if k in ignore or (k not in a and k in defaults
                           and b.get(k) == defaults[k]):
            continue
        out += differences(a.get(k, _ABSENT), b.get(k, _ABSENT),
                           prefix=prefix + str(k) + '.')
    return out
