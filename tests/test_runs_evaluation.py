"""Evaluation: centre view and TTA (softmax averaged over the views)."""
import math

import numpy
import pytest

import chainer
import chainer.links as L
from chainer import training
from chainer.training import extensions

from chainer_vfbn.datasets import augment as A
from chainer_vfbn.datasets import AugmentedIterator
from chainer_vfbn.datasets import get_cifar10
from chainer_vfbn.runs.evaluation import decode_classes
from chainer_vfbn.runs.evaluation import encode_classes
from chainer_vfbn.runs.evaluation import evaluate_views
from chainer_vfbn.runs.evaluation import predictions_record
from chainer_vfbn.runs.evaluation import ViewEvaluator
from chainer_vfbn.models import resnet_cifar


def _softmax(y):
    e = numpy.exp(y - y.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _ramps(increasing, decreasing):
    """Images brightening to the right (or to the left), all channels."""
    ramp = numpy.broadcast_to(8 * numpy.arange(32), (3, 32, 32))
    images = [ramp] * increasing + [ramp[:, :, ::-1]] * decreasing
    return numpy.array(images, dtype=numpy.uint8)


class FlipDetector(object):
    """Scores (3, 1) if the input brightens to the right, else (-3, 1).

    Unflipped views of a right-brightening image score class 0, flipped ones
    class 1, so the averaged softmax is known exactly and differs from the
    centre view's prediction. Records the config of every call.
    """

    def __init__(self):
        self.calls = []

    def __call__(self, x):
        self.calls.append((len(x), chainer.config.train,
                           chainer.config.enable_backprop))
        w = x.shape[3] // 2
        s = x[:, 0, :, w:].mean(axis=(1, 2)) - x[:, 0, :, :w].mean(axis=(1, 2))
        assert numpy.all(s != 0)
        y = numpy.stack([3 * numpy.sign(s), numpy.ones_like(s)], axis=1)
        return chainer.Variable(y.astype(numpy.float32))


@pytest.mark.parametrize('augment', ['paper', 'standard'])
def test_tta_averages_softmax(augment):
    images = _ramps(3, 2)
    labels = numpy.zeros(5, numpy.int32)
    mean, std = A.channel_mean_std(images)
    detector = FlipDetector()
    result = evaluate_views(detector, images, labels, augment, batch_size=2,
                            device='@numpy', mean=mean, std=std)
    # Centre view: right-brightening images are class 0, the others 1.
    assert result['accuracy'] == pytest.approx(0.6)
    assert result['error'] == pytest.approx(0.4)
    loss = (3 * math.log(1 + math.exp(-2)) + 2 * math.log(1 + math.exp(4)))
    assert result['loss'] == pytest.approx(loss / 5, rel=1e-6)
    # Half the views are flipped: mean p0 = (sigma(2) + sigma(-4)) / 2 < 1/2
    # for every image, so TTA predicts class 1 everywhere.
    p0 = (1 / (1 + math.exp(-2)) + 1 / (1 + math.exp(4))) / 2
    assert p0 < 0.5
    assert result['tta_accuracy'] == 0 and result['tta_error'] == 1
    # Every view, in batches of at most 2, in test mode without a graph.
    n = A.n_views(augment)
    assert sum(c[0] for c in detector.calls) == 5 * n
    assert max(c[0] for c in detector.calls) == 2
    assert {c[1:] for c in detector.calls} == {(False, False)}

    # The per-image predictions behind both figures.
    assert result['predictions'].tolist() == [0, 0, 0, 1, 1]
    assert result['tta_predictions'].tolist() == [1, 1, 1, 1, 1]

    detector.calls = []
    result = evaluate_views(detector, images, labels, augment, batch_size=8,
                            tta=False, mean=mean, std=std)
    assert result['tta_accuracy'] is None and result['tta_error'] is None
    assert result['tta_predictions'] is None
    assert result['predictions'].tolist() == [0, 0, 0, 1, 1]
    assert result['accuracy'] == pytest.approx(0.6)
    assert [c[0] for c in detector.calls] == [5]


def test_tta_matches_all_views_reference():
    """A random linear predictor, checked against paper_all_views."""
    (_, (images, labels)), _ = get_cifar10('sample')
    images, labels = images[:40], labels[:40]
    rng = numpy.random.RandomState(0)
    w = rng.normal(0, 0.02, (3 * 24 * 24, 10)).astype(numpy.float32)

    def predictor(x):
        return chainer.Variable(x.reshape(len(x), -1) @ w)

    views = A.paper_all_views(images).reshape(40 * 36, -1)
    p = _softmax((views @ w).astype(numpy.float64)).reshape(40, 36, 10)
    tta_accuracy = (p.mean(axis=1).argmax(axis=1) == labels).mean()
    centre = p[:, A.CENTER_VIEW]
    loss = -numpy.log(centre[numpy.arange(40), labels]).mean()
    accuracy = (centre.argmax(axis=1) == labels).mean()
    for batch_size in (7, 40):
        result = evaluate_views(predictor, images, labels, 'paper',
                                batch_size)
        assert result['loss'] == pytest.approx(loss, rel=1e-5)
        assert result['accuracy'] == pytest.approx(accuracy)
        assert result['tta_accuracy'] == pytest.approx(tta_accuracy)
    # The views matter here: the two figures differ.
    assert accuracy != tta_accuracy


def test_real_network_in_test_mode():
    (_, (images, labels)), _ = get_cifar10('sample')
    images, labels = images[:6], labels[:6]
    net = resnet_cifar('resnet8-paper')
    # Give BatchNorm non-trivial population statistics.
    with chainer.using_config('train', True):
        net(A.paper_views(images, numpy.arange(6)))
    result = evaluate_views(net, images, labels, 'paper', batch_size=64)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        y = net(A.paper_all_views(images).reshape(-1, 3, 24, 24)).array
    p = _softmax(y.astype(numpy.float64)).reshape(6, 36, -1)
    assert result['tta_accuracy'] == pytest.approx(
        (p.mean(axis=1).argmax(axis=1) == labels).mean())
    centre = p[:, A.CENTER_VIEW]
    assert result['loss'] == pytest.approx(
        -numpy.log(centre[numpy.arange(6), labels]).mean(), rel=1e-4)


def test_standard_needs_statistics():
    images = _ramps(1, 1)
    with pytest.raises(ValueError, match='mean and std'):
        evaluate_views(FlipDetector(), images, [0, 0], 'standard')
    with pytest.raises(ValueError, match='mean and std'):
        ViewEvaluator(FlipDetector(), images, [0, 0], 'standard')


def test_view_evaluator_reports():
    images = _ramps(3, 2)
    labels = numpy.zeros(5, numpy.int32)
    ext = ViewEvaluator(FlipDetector(), images, labels, 'paper',
                        batch_size=4, tta_interval=2)
    assert ext.default_name == 'validation'
    observed = []
    for _ in range(4):
        observation = {}
        with chainer.Reporter().scope(observation):
            ext()
        observed.append(observation)
    base = {'validation/main/loss', 'validation/main/accuracy',
            'validation/main/error'}
    tta = {'validation/main/tta_error', 'validation/main/tta_accuracy'}
    assert [set(o) for o in observed] == [base, base | tta, base, base | tta]
    assert observed[1]['validation/main/error'] == pytest.approx(0.4)
    assert observed[1]['validation/main/tta_error'] == 1
    # The TTA schedule survives a snapshot.
    target = {}
    ext.serialize(chainer.serializers.DictionarySerializer(target))
    fresh = ViewEvaluator(FlipDetector(), images, labels, 'paper',
                          tta_interval=2)
    fresh.serialize(chainer.serializers.NpzDeserializer(target))
    assert fresh.n_calls == 4
    never = ViewEvaluator(FlipDetector(), images, labels, tta_interval=0)
    for _ in range(3):
        observation = {}
        with chainer.Reporter().scope(observation):
            never()
        assert set(observation) == base


def test_predictions_record_is_compact_and_exact():
    rng = numpy.random.RandomState(0)
    labels = rng.randint(0, 10, size=846)
    pred = rng.randint(0, 10, size=846)
    rec = predictions_record(dict(predictions=pred, tta_predictions=None),
                             labels)
    assert rec['n_images'] == 846 and rec['tta'] is None
    assert len(rec['centre']) == 846     # one character per image
    numpy.testing.assert_array_equal(decode_classes(rec['centre']), pred)
    numpy.testing.assert_array_equal(decode_classes(rec['labels']), labels)
    assert encode_classes([3, 0, 9, 11, 35]) == '309bz'
    with pytest.raises(ValueError, match='0..35'):
        encode_classes([36])


def test_view_evaluator_hands_on_the_final_predictions_only():
    images = _ramps(3, 2)
    labels = numpy.zeros(5, numpy.int32)
    got = []

    class Updater(object):
        iteration = 0
    trainer = type('T', (), {'updater': Updater()})()
    ext = ViewEvaluator(FlipDetector(), images, labels, 'paper',
                        tta_interval=5, final_iteration=3,
                        on_final=got.append)
    for it in (1, 2, 3):
        trainer.updater.iteration = it
        with chainer.Reporter().scope({}):
            ext(trainer)
    assert len(got) == 1   # at the final iteration, with its TTA
    assert got[0]['predictions'].tolist() == [0, 0, 0, 1, 1]
    assert got[0]['tta_predictions'].tolist() == [1, 1, 1, 1, 1]


def test_view_evaluator_in_trainer(tmp_path):
    (train, test), _ = get_cifar10('sample')
    model = L.Classifier(L.Linear(3 * 24 * 24, 10))
    optimizer = chainer.optimizers.MomentumSGD(0.01)
    optimizer.setup(model)
    it = AugmentedIterator(train[0][:64], train[1][:64], 16, 'paper')
    updater = training.updaters.StandardUpdater(it, optimizer)
    trainer = training.Trainer(updater, (3, 'iteration'), out=str(tmp_path))
    trainer.extend(ViewEvaluator(model.predictor, test[0][:20], test[1][:20],
                                 'paper', batch_size=10, tta_interval=2),
                   trigger=(1, 'iteration'))
    trainer.extend(extensions.LogReport(trigger=(1, 'iteration')))
    trainer.run()
    log = trainer.get_extension('LogReport').log
    assert len(log) == 3
    assert ['validation/main/tta_error' in entry for entry in log] == [
        False, True, False]
    for entry in log:
        assert 0 <= entry['validation/main/error'] <= 1
        assert entry['validation/main/error'] == pytest.approx(
            1 - entry['validation/main/accuracy'])


@pytest.mark.gpu
def test_gpu_matches_cpu():
    (_, (images, labels)), _ = get_cifar10('sample')
    images, labels = images[:8], labels[:8]
    net = resnet_cifar('resnet8-paper')
    on_cpu = evaluate_views(net, images, labels, 'paper', batch_size=4)
    device = chainer.get_device('@cupy:0')
    net.to_device(device)
    on_gpu = evaluate_views(net, images, labels, 'paper', batch_size=4)
    for key in ('accuracy', 'tta_accuracy'):
        assert on_gpu[key] == on_cpu[key]
    assert on_gpu['loss'] == pytest.approx(on_cpu['loss'], rel=1e-4)
