"""Snapshot sets of a decoupled run: one file per rank, one manifest.

Every rank writes ``snapshot_iter_N.rank{k}.npz`` (its worker, and on rank
0 the iterator, the log and the clock); rank 0 writes
``snapshot_iter_N.json`` once all of them are on disk, so a set with its
manifest is complete. Chainer's ``extensions.snapshot`` writes one file per
trainer; here ``K`` processes hold the state, so the set needs a manifest
that no single rank can write alone.
"""
import glob
import json
import os
import re
import time

import chainer

from chainer_vfbn.runs import folder
from chainer_vfbn.runs.config import UserError
from chainer_vfbn.runs.strict_json import write_json

SNAPSHOT_RE = re.compile(r'^snapshot_iter_(\d+)\.json$')
N_RETAINS = 2          # complete snapshot sets kept in --out


class RankState(object):
    """What one rank saves in its snapshot file.

    Rank 0 (the one with an ``iterator``) also saves its report extensions
    (``reports``: the log and the plots' data), the number of evaluations
    and the training time of the earlier sessions.
    """

    def __init__(self, worker, iterator=None, reports=None):
        self.worker = worker
        self.iterator = iterator
        self.reports = reports
        self.elapsed = 0.0    # seconds of training before this session
        self.session_start = time.time()
        self.n_evals = 0

    def elapsed_time(self):
        """Seconds of training over every session so far."""
        return self.elapsed + time.time() - self.session_start

    def serialize(self, serializer):
        saving = isinstance(serializer, chainer.serializer.Serializer)
        self.worker.serialize(serializer['worker'])
        opt = self.worker.optimizer
        opt.lr = float(serializer('lr', opt.lr))  # the step schedule's value
        if self.iterator is None:
            return
        self.iterator.serialize(serializer['iterator'])
        if saving:
            # The clock keeps running: saving reads it and leaves
            # ``elapsed`` and ``session_start`` as they are (assigning the
            # total to ``elapsed`` would count this session twice).
            serializer('elapsed', self.elapsed_time())
        else:
            self.elapsed = float(serializer('elapsed', self.elapsed))
        self.n_evals = int(serializer('n_evals', self.n_evals))
        if self.reports is not None:
            self.reports.serialize(serializer['reports'])


def manifests(out):
    """``[(iteration, path)]`` of the manifests in ``out``, newest first."""
    sets = []
    for path in glob.glob(os.path.join(out, 'snapshot_iter_*.json')):
        match = SNAPSHOT_RE.match(os.path.basename(path))
        if match:
            sets.append((int(match.group(1)), path))
    return sorted(sets, reverse=True)


def _read_set(path):
    """A manifest with its files' paths, each file read back whole.

    Returns:
        dict or None: ``None`` if a file is missing (an incomplete set).
    """
    with open(path) as f:
        manifest = json.load(f)
    where = os.path.dirname(path)
    files = [os.path.join(where, name) for name in manifest['files']]
    if not all(os.path.isfile(p) for p in files):
        return None
    for p in files:
        folder.read_npz(p)
    manifest['files'] = files
    manifest['path'] = path
    return manifest


def _check_fits(manifest, n_ranks, placement):
    path = manifest['path']
    if manifest['ranks'] != n_ranks:
        raise UserError(
            'snapshot set %s has %d ranks but this run has %d: launch with '
            'mpiexec -n %d (or --no-autoload)'
            % (path, manifest['ranks'], n_ranks, manifest['ranks']))
    saved = manifest.get('synth_placement', 'below')
    if placement is not None and saved not in (None, placement):
        raise UserError(
            'snapshot set %s was trained with --synth-placement %s (each '
            'rank saved the synthesizers it held): resume with the same '
            'option (or --no-autoload)' % (path, saved))


def find(out, resume, n_ranks, placement=None):
    """Rank 0: the manifest of the set to resume, or ``None``.

    ``resume`` names a set (``OUT/snapshot_iter_N.json``); ``None`` looks
    for the newest complete and readable one in ``out``, falling back past
    a corrupt one with one line.
    """
    if resume is not None:
        path = resume if resume.endswith('.json') else resume + '.json'
        if not os.path.isfile(path):
            raise UserError('--resume %s: no such snapshot set (give '
                            'OUT/snapshot_iter_N.json)' % resume)
        candidates = [path]
    else:
        candidates = [path for _, path in manifests(out)]
    for i, path in enumerate(candidates):
        try:
            manifest = _read_set(path)
        except (ValueError, KeyError, TypeError, OSError,
                folder.CorruptSnapshot) as e:
            if resume is not None:
                raise UserError('--resume: snapshot set %s is corrupt (%s)'
                                % (path, e))
            later = candidates[i + 1] if i + 1 < len(candidates) else None
            print('snapshot set %s is corrupt (%s); %s' % (
                path, e, 'falling back to %s' % later if later else
                'no older snapshot: starting afresh'), flush=True)
            continue
        if manifest is not None:
            _check_fits(manifest, n_ranks, placement)
            return manifest
        if resume is not None:
            raise UserError('snapshot set %s is incomplete' % path)
    return None


def save(out, state, iteration, rank):
    """This rank's file of the set at ``iteration``; returns its name."""
    name = 'snapshot_iter_%d.rank%d.npz' % (iteration, rank)
    tmp = os.path.join(out, name + '.tmp.npz')
    chainer.serializers.save_npz(tmp, state)
    os.replace(tmp, os.path.join(out, name))
    return name


def write_manifest(out, iteration, files, info):
    """Rank 0, once every rank saved: the manifest; keep N_RETAINS sets."""
    manifest = dict(info, iteration=iteration, ranks=len(files), files=files)
    write_json(os.path.join(out, 'snapshot_iter_%d.json' % iteration),
               manifest)
    for _, path in manifests(out)[N_RETAINS:]:
        with open(path) as f:
            old = json.load(f)
        os.remove(path)  # the marker first: a half-deleted set is incomplete
        for name in old['files']:
            p = os.path.join(out, os.path.basename(name))
            if os.path.exists(p):
                os.remove(p)


def newest(out):
    """Path of the newest manifest in ``out``, or ``None``."""
    sets = manifests(out)
    return sets[0][1] if sets else None
