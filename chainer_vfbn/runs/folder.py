"""A run's output folder (``--out``): its identity, its locks and its
snapshots.

A folder holds one run. The run records its configuration
(``args.json``); a later command on the same folder resumes it only if it
asks for the same run (:func:`check_identity`, the one check of both
runners), a lock (:func:`claim_out`) keeps a second live process out, and
a damaged snapshot is skipped for the one before it instead of ending in a
traceback (:func:`newest_readable`).

Two kinds of lock, for two kinds of folder:

- a training folder (``--out``) is locked with ``fcntl.flock``
  (:func:`lock`): the kernel drops it when its process dies, and a run
  trains on one machine;
- a shared records folder, written by many jobs on many machines, is
  locked per record with a lock file that names its holder
  (:class:`LockFile`): it is taken with ``O_EXCL`` (atomic on local and NFS
  file systems, where ``flock`` between machines is not guaranteed), kept
  fresh by its holder, and taken over, with a line, once its holder is
  dead (:func:`claim_file`).
"""
import errno
import fcntl
import glob
import json
import os
import re
import shutil
import socket
import time
import zipfile

import numpy

from chainer_vfbn.methods import synthetic
from chainer_vfbn.runs import provenance
from chainer_vfbn.runs.config import RESUMABLE
from chainer_vfbn.runs.config import UserError

LOCK_NAME = '.lock'
# What a killed write leaves behind: chainer's snapshot writer
# saves into a temporary folder ``tmp<filename>XXXX`` (and the decoupled
# runner into ``<name>.tmp.npz``, write_json into ``<file>.tmp<pid>``) and
# renames at the end.
TEMPORARY = ('tmpsnapshot_iter_*', 'snapshot_iter_*.tmp.npz', '*.json.tmp*',
             'log.tmp*')


# A write that failed for want of room: the disk or the user's quota.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class Busy(Exception):
    """Another live process holds the folder."""


class CorruptSnapshot(Exception):
    """A snapshot file cannot be read back whole."""


def lock(out):
    """Hold an exclusive ``fcntl`` lock on ``out`` for this process's life.

    Returns:
        file: The lock file; keep it open (closing it releases the lock).

    Raises:
        Busy: Another process holds it.
    """
    f = open(os.path.join(out, LOCK_NAME), 'a+')
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        f.close()
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise Busy('another run is writing to %s right now (it holds '
                       '%s); wait for it or choose another folder'
                       % (out, os.path.join(out, LOCK_NAME)))
        raise
    return f


#: A lock file of another machine whose holder has not refreshed it for this
#: many seconds is stale (its holder refreshes it every
#: :data:`LOCK_REFRESH_S`; a dead one does not).
LOCK_STALE_S = 600
LOCK_REFRESH_S = 60
#: A lock file with no holder written yet (its holder is between the
#: create and the write) counts as live for this long.
LOCK_UNWRITTEN_S = 60


def _start_time(pid):
    """The start time of process ``pid`` in clock ticks since boot (Linux's
    ``/proc/<pid>/stat``, field 22), or None: with the pid, it names one
    process even after the pid is reused."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: count from its ')'.
    return stat[stat.rindex(')') + 2:].split()[19]


def _holder():
    pid = os.getpid()
    return {'host': socket.gethostname(), 'pid': pid,
            'start': _start_time(pid),
            'since': time.strftime('%Y-%m-%dT%H:%M:%S%z')}


def holder_alive(holder, age):
    """Whether the process a lock file names still holds it.

    On this machine: its pid runs and (where ``/proc`` says) started when
    the lock says. On another machine, which cannot be asked: its lock was
    refreshed less than :data:`LOCK_STALE_S` seconds ago.

    Args:
        holder (dict): The lock file's contents (None: not written yet).
        age (float): Seconds since the lock file was last refreshed.

    Example:
        >>> holder_alive(_holder(), 0.)
        True
    """
    if not holder:
        return age < LOCK_UNWRITTEN_S
    if holder.get('host') != socket.gethostname():
        return age < LOCK_STALE_S
    pid = holder.get('pid')
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's live process
        pass
    except (TypeError, OverflowError, ValueError):
        return False
    start = _start_time(pid)
    return start is None or holder.get('start') in (None, start)


def describe_holder(holder):
    """``pid P on host H since T`` of a lock file's contents."""
    if not holder:
        return 'a process that has not written its name yet'
    return 'pid %s on %s since %s' % (holder.get('pid'), holder.get('host'),
                                      holder.get('since'))


def _read_holder(path):
    """``(contents or None, age in seconds)``; FileNotFoundError if gone."""
    age = time.time() - os.stat(path).st_mtime
    try:
        with open(path) as f:
            return json.load(f), age
    except ValueError:
        return None, age


class LockFile(object):
    """A held lock file (:func:`claim_file`): :meth:`refresh` it now and
    then, :meth:`release` it at the end.

    Attributes:
        path (str): The lock file.
    """

    def __init__(self, path):
        self.path = path
        self.refreshed = time.time()

    def refresh(self, every=LOCK_REFRESH_S):
        """Touch the file (at most once per ``every`` seconds), so that
        other machines see its holder alive."""
        if time.time() - self.refreshed >= every:
            try:
                os.utime(self.path)
            except OSError:
                pass
            self.refreshed = time.time()

    def release(self):
        """Remove the file: the lock is free."""
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


def _create(path):
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    with os.fdopen(fd, 'w') as f:
        json.dump(_holder(), f)
    return LockFile(path)


def claim_file(path, say=print):
    """Take the lock file ``path`` for this process.

    The file is created with ``O_EXCL`` (one process wins) and names its
    holder (host, pid, start). A lock whose holder is dead
    (:func:`holder_alive`) is taken over, with one line to ``say``; the
    take-over happens under a ``flock`` of the folder, after the holder is
    read again, so that two processes never both take one stale lock.

    Returns:
        LockFile or None: The lock, or None while a live process holds it
        (:func:`read_lock` says who).
    """
    folder_ = os.path.dirname(path) or '.'
    os.makedirs(folder_, exist_ok=True)
    try:
        return _create(path)
    except FileExistsError:
        pass
    guard = os.open(folder_, os.O_RDONLY)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            holder, age = _read_holder(path)
        except FileNotFoundError:   # released meanwhile
            holder = age = None
        if holder is not None or age is not None:
            if holder_alive(holder, age):
                return None
            os.remove(path)
            say('%s: took over the stale lock of %s, which is no longer '
                'running' % (path, describe_holder(holder)))
        try:
            return _create(path)
        except FileExistsError:     # another process won the race
            return None
    finally:
        os.close(guard)


def read_lock(path):
    """Who holds the lock file ``path`` (:func:`describe_holder`), or None
    if it is free."""
    try:
        return describe_holder(_read_holder(path)[0])
    except FileNotFoundError:
        return None


def move_aside(out):
    """Rename ``out`` to ``<out>.replaced-<time>`` and return the new name."""
    stamp = time.strftime('%Y%m%d-%H%M%S')
    target = '%s.replaced-%s' % (out.rstrip(os.sep), stamp)
    n = 1
    while os.path.exists(target):
        n += 1
        target = '%s.replaced-%s-%d' % (out.rstrip(os.sep), stamp, n)
    os.rename(out, target)
    return target


def check_identity(config):
    """Refuse to resume a run in ``config.out`` that other options made.

    Reads the folder's ``args.json`` (writes nothing) and compares its
    options with ``config.options``
    (:func:`~chainer_vfbn.runs.provenance.differences`, with
    ``config.defaults`` for options the run did not record); with
    ``--force-new`` any difference is allowed (:func:`claim_out` moves the
    old run aside).

    Args:
        config (~chainer_vfbn.runs.config.RunConfig): The new command's.

    Raises:
        UserError: One line naming each option that differs.
    """
    out = config.out
    if config.force_new:
        return
    try:
        written = provenance.read_args(out)
    except provenance.Unreadable as e:
        raise UserError('--out %s: %s; choose another --out or pass '
                        '--force-new' % (out, e))
    if written is None:
        return
    recorded = written.get('args')
    if not isinstance(recorded, dict):
        raise UserError('--out %s: its args.json names no options; choose '
                        'another --out or pass --force-new' % out)
    current = dict(config.options)
    if not synthetic(recorded.get('method')):
        recorded = {k: v for k, v in recorded.items() if k != 'alpha_gs'}
    changed = provenance.differences(recorded, current, RESUMABLE,
                                     config.defaults)
    if 'method' in changed and 'alpha_gs' in changed:
        # Another method's default alpha_gs, not an option the user gave:
        # the method is the difference to name.
        changed.remove('alpha_gs')
    if changed:
        raise UserError(
            '--out %s holds another run: %s; resume it with its own options '
            '(only the length and the logging may change), choose another '
            '--out, or pass --force-new to move it aside'
            % (out, ', '.join(
                '--%s %s (was %s)' % (k.replace('_', '-'), current.get(k),
                                      recorded.get(k)) for k in changed)))


def claim_out(out, force_new=False):
    """Create ``out`` and lock it for this process; after validation.

    With ``force_new`` (``--force-new``) an old run there is moved aside
    first; what killed snapshot writes left behind is removed.

    Returns:
        file: The lock; keep it open for the whole run.
    """
    existed = os.path.isdir(out)
    try:
        os.makedirs(out, exist_ok=True)
        held = lock(out)
        if force_new and existed and \
                set(os.listdir(out)) - {LOCK_NAME}:
            moved = move_aside(out)
            print('--force-new: moved the old contents of %s to %s'
                  % (out, moved))
            os.makedirs(out)
            held.close()
            held = lock(out)
    except Busy as e:
        raise UserError(str(e))
    except OSError as e:
        raise UserError('cannot write to --out %s: %s'
                        % (out, e.strerror or e))
    removed = clean_temporary(out)
    if removed:
        print('removed what an interrupted snapshot write left in %s: %s'
              % (out, ', '.join(removed)))
    return held


def release_out(held, out):
    """Remove ``--out``'s lock file and release the lock (the run's end).

    The file is removed while still held, so that no other process can
    take the lock on it in between.
    """
    if held is None or held.closed:
        return
    try:
        os.remove(os.path.join(out, LOCK_NAME))
    except OSError:
        pass
    held.close()


def clean_temporary(out):
    """Remove what killed snapshot writes left in ``out``.

    Returns:
        list of str: The names removed.
    """
    removed = []
    for pattern in TEMPORARY:
        for path in glob.glob(os.path.join(out, pattern)):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)
            removed.append(os.path.basename(path))
    return sorted(removed)


def read_npz(path):
    """Every array of an ``.npz`` snapshot, read (and CRC-checked) in full.

    Returns:
        dict: ``key -> numpy.ndarray``, what
        :class:`chainer.serializers.NpzDeserializer` reads.

    Raises:
        CorruptSnapshot: Truncated, damaged or not an ``.npz``.
    """
    try:
        with numpy.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile,
            zipfile.LargeZipFile) as e:
        raise CorruptSnapshot('snapshot %s is corrupt or truncated (%s: %s)'
                              % (path, type(e).__name__,
                                 ' '.join(str(e).split())))


_ITER = re.compile(r'^snapshot_iter_(\d+)$')


def snapshots(out):
    """The ``snapshot_iter_N`` files in ``out``, newest (largest N) first."""
    found = []
    for path in glob.glob(os.path.join(out, 'snapshot_iter_*')):
        match = _ITER.match(os.path.basename(path))
        if match and os.path.isfile(path):
            found.append((int(match.group(1)), path))
    return [p for _, p in sorted(found, reverse=True)]


def newest_readable(paths, read=read_npz, say=print):
    """The first of ``paths`` that reads whole, saying which were skipped.

    Args:
        paths (list of str): Candidates, newest first.
        read (callable): ``read(path) -> data``, raising
            :class:`CorruptSnapshot`.
        say (callable): Gets one line per skipped snapshot.

    Returns:
        tuple: ``(path, data)``, or ``(None, None)`` if none reads.
    """
    for i, path in enumerate(paths):
        try:
            return path, read(path)
        except CorruptSnapshot as e:
            later = paths[i + 1] if i + 1 < len(paths) else None
            say('%s; %s' % (e, 'falling back to %s' % later if later else
                            'no older snapshot: starting afresh'))
    return None, None


def newest_intact(out):
    """The newest ``snapshot_iter_N`` in ``out`` that reads back whole, or
    ``None``; silent about the damaged ones it passes."""
    return newest_readable(snapshots(out), say=lambda line: None)[0]


def disk_full(error):
    """What a full disk stopped (``'<strerror>, writing <file>'``), or
    None if ``error`` is not a full disk.

    Example:
        >>> import errno
        >>> disk_full(OSError(errno.ENOSPC, 'No space left on device', 'x'))
        'No space left on device, writing x'
    """
    # The full disk may be the cause of what was raised (a clean-up that
    # failed in turn), not the error itself.
    while error is not None and not (isinstance(error, OSError) and
                                     error.errno in DISK_FULL):
        error = error.__cause__ or error.__context__
    if error is None:
        return None
    what = error.strerror or str(error)
    if error.filename:
        what += ', writing %s' % error.filename
    return what


def disk_full_line(error, intact):
    """One line for a run stopped by a full disk, or ``None`` for any other
    error.

    A snapshot is written to a temporary name and renamed once whole, so
    the one before the failed write is intact; the line names it.

    Args:
        error (BaseException): What stopped the run (or an error raised
            while handling it).
        intact (str): The newest snapshot that is whole (``None``: none).

    Example:
        >>> import errno
        >>> disk_full_line(OSError(errno.ENOSPC, 'No space left on device',
        ...                        'o/log'), 'o/snapshot_iter_10')[:64]
        'the disk is full (No space left on device, writing o/log); the n'
    """
    what = disk_full(error)
    if what is None:
        return None
    if intact:
        then = ('the newest intact snapshot is %s: free some space and run '
                'the same command to resume from it' % intact)
    else:
        then = ('no snapshot was written before: free some space and run the '
                'same command to start again')
    return 'the disk is full (%s); %s' % (what, then)
