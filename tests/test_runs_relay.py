"""Rank 0's RelayTrainer: Chainer's report extensions fed by report()."""
import io
import json
import os

import chainer
from chainer.training import extension
from chainer.training import extensions

from chainer_vfbn.runs import run_log
from chainer_vfbn.runs.relay import RelayTrainer
from chainer_vfbn.decoupled.transport import EpochInfo


class _Worker(object):
    def __init__(self):
        self.iteration = 0
        self.epoch_info = EpochInfo()


def _advance(worker, iteration, epoch):
    worker.iteration = iteration
    worker.epoch_info = EpochInfo(epoch=epoch, is_new_epoch=True,
                                  epoch_detail=float(epoch))


def _relay(tmp_path, worker, seconds):
    trainer = RelayTrainer(worker, str(tmp_path), lambda: seconds[0])
    trainer.extend(extensions.LogReport(trigger=(1, 'iteration')))

    @extension.make_extension(priority=extension.PRIORITY_WRITER)
    def add_lr(t):   # a writer registered after LogReport still runs first
        t.observation['lr'] = 0.5

    trainer.extend(add_lr)
    return trainer


def test_report_feeds_logreport_in_priority_order(tmp_path):
    worker, seconds = _Worker(), [7.0]
    trainer = _relay(tmp_path, worker, seconds)
    assert trainer.relayed_names() == ['add_lr', 'LogReport']
    _advance(worker, 3, 1)
    trainer.report({'main/loss': 2.0, 'synth/cos': 0.25})
    _advance(worker, 6, 2)
    seconds[0] = 9.5
    trainer.report({'main/loss': 1.0, 'synth/cos': 0.5})
    log = trainer.get_extension('LogReport').log
    assert [(e['iteration'], e['epoch'], e['elapsed_time'], e['main/loss'],
             e['lr']) for e in log] == [(3, 1, 7.0, 2.0, 0.5),
                                        (6, 2, 9.5, 1.0, 0.5)]
    with open(os.path.join(str(tmp_path), 'log')) as f:
        assert json.load(f) == log


def test_serialize_round_trip_keeps_the_log(tmp_path):
    worker, seconds = _Worker(), [1.0]
    trainer = _relay(tmp_path, worker, seconds)
    _advance(worker, 2, 1)
    trainer.report({'main/loss': 3.0})
    saved = chainer.serializers.DictionarySerializer()
    trainer.serialize(saved)
    again = _relay(tmp_path, _Worker(), seconds)
    again.serialize(chainer.serializers.NpzDeserializer(saved.target))
    assert again.get_extension('LogReport').log == \
        trainer.get_extension('LogReport').log


def test_repeated_names_get_ordinals(tmp_path):
    trainer = RelayTrainer(_Worker(), str(tmp_path), lambda: 0.0)
    trainer.extend(extensions.LogReport(log_name=None))
    trainer.extend(extensions.LogReport(log_name=None))
    assert trainer.relayed_names() == ['LogReport', 'LogReport_1']


def test_extend_reports_prints_the_synth_columns(tmp_path, monkeypatch):
    worker = _Worker()
    trainer = RelayTrainer(worker, str(tmp_path), lambda: 1.0)
    out = io.StringIO()
    monkeypatch.setattr('sys.stdout', out)
    run_log.extend_reports(trainer, ['synth'], (1, 'iteration'),
                           per_synth=('cos', 'staleness_max'))
    _advance(worker, 4, 1)
    trainer.report({'main/loss': 2.5, 'synth/cos': 0.125,
                    'synth/staleness_max': 1.0, 'synth/loss': 1.0,
                    'lr': 0.1})
    header, line = out.getvalue().splitlines()[:2]
    assert header.split() == [
        'epoch', 'iteration', 'main/loss', 'main/accuracy',
        'test/main/loss', 'test/main/error',
        'test/main/tta_error', 'synth/cos', 'synth/staleness_max', 'lr',
        'elapsed_time']
    # The entries the log lacks (accuracy, test figures) print blank.
    assert line.split() == ['1', '4', '2.5', '0.125', '1', '0.1', '1']
    assert '\033[J' not in out.getvalue()
