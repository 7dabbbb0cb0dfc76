"""Fakes of a ``train_cifar.py`` subprocess for the experiment harness's
tests (not a test module): each writes what a finished run leaves in its
``--out`` (``summary.json``, ``args.json``, ``log``, the predictions), with
errors known in advance, and is used as the pool's ``popen``.

Run as a script, it stands in for ``train_cifar.py`` in a real process
(:func:`main`): it locks its ``--out`` as train_cifar.py does, sleeps
``$FAKE_TRAIN_SECONDS``, snapshots-and-exits 143 on SIGTERM, and then
writes a finished run; each start is appended to ``$FAKE_TRAIN_LEDGER``.
"""
import json
import math
import os
import signal
import sys
import time

import numpy

from chainer_vfbn.runs import folder
from chainer_vfbn.runs.config import UserError
from chainer_vfbn.runs.evaluation import predictions_record


def wrong_first(labels, err):
    """Predictions wrong on the first ``100 * err`` images only."""
    pred = labels.copy()
    k = int(round(100 * err))
    pred[:k] = (labels[:k] + 1) % 10
    return pred


#: The machine a fake run names; ``OTHER_MACHINE`` for the fake
#: ``vfbn-alpha0``'s seed 2 where the BLAS kernel is not pinned
#: (FakeProcess).
MACHINE = {'cpu': 'Fake CPU', 'cpu_count': 2, 'blas': [
    {'internal_api': 'openblas', 'architecture': 'Haswell'}]}
OTHER_MACHINE = dict(MACHINE, blas=[{'internal_api': 'openblas',
                                     'architecture': 'SkylakeX'}])


def planned(argv, flag):
    """The value after ``flag`` in ``argv``, as an int, or None."""
    return int(argv[argv.index(flag) + 1]) if flag in argv else None


def write_finished_run(out, err, tta, extra_summary=None, machine=MACHINE,
                       argv=None):
    """The files of a finished run in ``out``, 100 test images;
    ``argv``: the train_cifar.py arguments it ran with (its args.json's
    command and its summary's length, as a real run's)."""
    argv = list(argv or [])
    summary = {'test_error': err, 'tta_error': tta,
               'train_accuracy': 0.9, 'synth_cos': 0.5,
               'synth_norm_ratio': 1.0, 'epochs': planned(argv, '--epoch')
               or 1, 'iterations': planned(argv, '--iterations') or 2,
               'images_per_sec': 10., 'status': 'finished'}
    summary.update(extra_summary or {})
    with open(os.path.join(out, 'args.json'), 'w') as f:
        json.dump({'code_version': 'test',
                   'environment': {'machine': machine},
                   'command': ' '.join(['train_cifar.py'] + argv)}, f)
    with open(os.path.join(out, 'summary.json'), 'w') as f:
        json.dump(summary, f)
    with open(os.path.join(out, 'log'), 'w') as f:
        json.dump([{'epoch': 1, 'iteration': 2,
                    'validation/main/error': err, 'other': 1}], f)
    # the first 100 * err images wrong (nested, so that a lower error errs
    # on a subset of the images a higher one does)
    labels = numpy.arange(100) % 10
    with open(os.path.join(out, 'predictions.json'), 'w') as f:
        json.dump(predictions_record(dict(
            predictions=wrong_first(labels, err),
            tta_predictions=wrong_first(labels, tta)), labels), f)


class FakeProcess(object):
    """Writes what train_cifar.py leaves behind, then exits 0.

    The validation/test error is 0.5 - 0.01 * seed, plus a penalty that
    grows with ``|log10(alpha_gs) + 4|`` and one per pilot cut. The runs at
    alpha_gs = 0 (``vfbn-alpha0``) of seed 2 name another BLAS kernel,
    unless the environment pins it (``OPENBLAS_CORETYPE``), as OpenBLAS
    does.
    """

    calls = []
    cut_penalty = {'stem': 0.2, 'stage1_unit1': 0.08}

    def __init__(self, argv, stdout=None, stderr=None, env=None,
                 start_new_session=False, **kw):
        FakeProcess.calls.append(argv)
        self.env = env
        out = argv[argv.index('--out') + 1]
        seed = int(argv[argv.index('--seed') + 1])
        err = 0.5 - 0.01 * seed
        if '--alpha-gs' in argv:
            err += abs(math.log10(float(argv[argv.index('--alpha-gs') + 1])
                           + 1e-30) + 4) / 100.
        if '--split-at' in argv:   # the pilot's bottom halves
            err += FakeProcess.cut_penalty.get(
                argv[argv.index('--split-at') + 1], 0.)
        alpha0 = '--alpha-gs' in argv and float(
            argv[argv.index('--alpha-gs') + 1]) == 0
        pinned = (env or {}).get('OPENBLAS_CORETYPE')
        machine = OTHER_MACHINE if alpha0 and seed == 2 else MACHINE
        if pinned:
            machine = dict(machine, blas=[dict(machine['blas'][0],
                                               architecture=pinned)])
        write_finished_run(out, err, err - 0.02, machine=machine,
                           argv=argv[2:])
        self.returncode = 0

    def poll(self):
        return self.returncode


class DivergingProcess(FakeProcess):
    """Diverges (exit 3, as train_cifar.py) at alpha_gs >= 1e-3, before
    its first log entry; otherwise as FakeProcess."""

    def __init__(self, argv, **kw):
        alpha = (float(argv[argv.index('--alpha-gs') + 1])
                 if '--alpha-gs' in argv else 0.)
        if alpha < 1e-3:
            super().__init__(argv, **kw)
            return
        FakeProcess.calls.append(argv)
        out = argv[argv.index('--out') + 1]
        with open(os.path.join(out, 'summary.json'), 'w') as f:
            json.dump({'status': 'diverged', 'test_error': None,
                       'diverged': {'iteration': 7}}, f)
        with open(os.path.join(out, 'args.json'), 'w') as f:
            json.dump({'code_version': 'test', 'command': ' '.join(
                ['train_cifar.py'] + argv[2:])}, f)
        self.returncode = 3


def main(argv):
    """``train_cifar.py``'s stand-in (see the module's docstring)."""
    out = argv[argv.index('--out') + 1]
    try:
        held = folder.claim_out(out)
    except UserError as e:
        sys.stderr.write('fake_train.py: error: %s\n' % e)
        return 2
    try:
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
        with open(os.path.join(out, 'pid'), 'w') as f:
            f.write(str(os.getpid()))
        ledger = os.environ.get('FAKE_TRAIN_LEDGER')
        if ledger:
            with open(ledger, 'a') as f:
                f.write('%s %d\n' % (out, os.getpid()))
        time.sleep(float(os.environ.get('FAKE_TRAIN_SECONDS', '0')))
        write_finished_run(out, 0.4, 0.35, argv=argv)
        return 0
    finally:
        folder.release_out(held, out)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
