"""chainer_vfbn.runs.triggers: the evaluation, TTA and snapshot schedule."""
import types

from chainer_vfbn.runs.triggers import epochs_or_end
from chainer_vfbn.runs.triggers import EpochsOrEnd
from chainer_vfbn.runs.triggers import tta_due


def test_epochs_or_end_minus_one_is_the_end_only():
    assert not epochs_or_end(10, 30, True, 1, -1)
    assert epochs_or_end(30, 30, True, 3, -1)
    assert epochs_or_end(10, 30, True, 1, 1)


def test_epochs_or_end_every_kth_epoch_and_the_end():
    # 10 iterations per epoch, 35 in all: epochs end at 10, 20, 30.
    due = [i for i in range(1, 36)
           if epochs_or_end(i, 35, i % 10 == 0, i // 10, 2)]
    assert due == [20, 35]


def test_tta_every_kth_evaluation_and_at_the_end():
    assert [n for n in range(1, 8) if tta_due(n, 3, at_end=False)] == [3, 6]
    assert tta_due(7, 3, at_end=True)
    assert not tta_due(7, 0, at_end=True)      # 0: never


def test_trigger_reads_the_updater():
    trigger = EpochsOrEnd(2, last_iteration=35)
    fired = []
    for i in range(1, 36):
        updater = types.SimpleNamespace(iteration=i, is_new_epoch=i % 10 == 0,
                                        epoch=i // 10)
        if trigger(types.SimpleNamespace(updater=updater)):
            fired.append(i)
    assert fired == [20, 35]
