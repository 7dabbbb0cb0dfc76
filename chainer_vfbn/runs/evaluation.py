"""Test-set evaluation: the single test view and test-time augmentation.

Sec. 4 of the paper: "For the evaluation of test error, we produced
augmented dataset for each test sample, fed the resulting augmented dataset
to the model and averaged the output." We average the softmax
probabilities over the views (36 for the paper preset, {as is, flipped} for
the standard one) and report both that TTA error and the error of the single
centre view (the 24x24 crop at offset (4, 4); the plain image for the
standard preset).

Views are evaluated one view index at a time over the whole set, in batches
of ``batch_size`` images, so memory stays that of a single-view pass.
"""
import numpy

import chainer
import chainer.functions as F
from chainer import reporter as reporter_module
from chainer.training import extension

from chainer_vfbn.datasets import augment as A
from chainer_vfbn.runs.triggers import tta_due

#: A run folder's file with the final evaluation's per-image predictions.
PREDICTIONS_FILE = 'predictions.json'
_BASE36 = '0123456789abcdefghijklmnopqrstuvwxyz'


#: The prefix of a log's evaluation figures (``test/main/error``, ...):
#: named for the set they were measured on.
TEST_PREFIX = 'test'
VAL_PREFIX = 'val'
#: The prefix that logs before 2026-12-03, and the run records of
#: :mod:`chainer_vfbn.experiments.records` (whose format stays stable), use for both.
RECORD_PREFIX = 'validation'


def eval_prefix(validation_split):
    """``'val'`` for a run evaluated on a held-out share of the training
    images (``validation_split > 0``), ``'test'`` for one evaluated on the
    test set.

    Example::

        >>> eval_prefix(0.1), eval_prefix(0)
        ('val', 'test')
    """
    return VAL_PREFIX if validation_split else TEST_PREFIX


def eval_value(entry, key):
    """``entry``'s evaluation figure ``key`` (e.g. ``'error'``) under any of
    the prefixes (test, val, or an older log's validation), or ``None``."""
    for prefix in (TEST_PREFIX, VAL_PREFIX, RECORD_PREFIX):
        value = entry.get('%s/main/%s' % (prefix, key))
        if value is not None:
            return value
    return None


def record_keys(entry):
    """A log entry with its ``test/`` or ``val/`` figures renamed
    ``validation/``, as the run records of :mod:`chainer_vfbn.experiments.records`
    store them (so that their format does not change)."""
    out = {}
    for k, v in entry.items():
        head, _, rest = k.partition('/')
        if head in (TEST_PREFIX, VAL_PREFIX) and rest.startswith('main/'):
            k = '%s/%s' % (RECORD_PREFIX, rest)
        out[k] = v
    return out


def _resolve_device(device, predictor):
    if device is None:
        # A Link knows its device; anything else runs on NumPy.
        device = getattr(predictor, 'device', None)
        if device is None:
            return chainer.get_device('@numpy')
    if isinstance(device, chainer.backend.Device):
        return device
    return chainer.get_device(device)


def evaluate_views(predictor, images, labels, augment='paper', batch_size=128,
                   device=None, tta=True, mean=None, std=None):
    """Loss and error of the centre view and of the views' averaged softmax.

    Runs with ``chainer.config.train = False`` (BatchNorm uses its
    population statistics) and without building a graph.

    Args:
        predictor (callable): ``x -> class scores`` of shape
            ``(B, n_class)`` (a ``Variable`` or an array), e.g. the whole
            network or ``lambda x: head(bottom(x))``.
        images (numpy.ndarray): ``uint8`` ``(N, 3, 32, 32)``.
        labels (numpy.ndarray): Integer labels ``(N,)``.
        augment (str): ``'paper'`` (36 views of 24x24) or ``'standard'``
            (as is and flipped, 32x32).
        batch_size (int): Images per forward pass.
        device: A chainer device or its spec (``'@numpy'``, ``'@cupy:0'``);
            ``None``: the predictor's ``device`` if it has one, else NumPy.
        tta (bool): Also average over all the views.
        mean, std (numpy.ndarray): Training-set per-channel statistics,
            needed by ``'standard'``.

    Returns:
        dict: ``loss`` (mean softmax cross entropy of the centre view),
        ``accuracy``, ``error`` (= 1 - accuracy) of the centre view, and
        ``tta_accuracy``, ``tta_error`` of the averaged softmax (``None``
        when ``tta`` is false); ``predictions`` and ``tta_predictions``:
        the predicted class of each image (``int32`` ``(N,)``; the latter
        ``None`` without TTA), for paired comparisons of two runs.
    """
    device = _resolve_device(device, predictor)
    labels = _checked_labels(images, labels)
    n = len(images)
    center = A.center_view_index(augment)
    views = [center] + [v for v in range(A.n_views(augment)) if v != center]
    if not tta:
        views = views[:1]
    loss_sum, prob_sum = 0., None
    predictions = numpy.empty(n, dtype=numpy.int32)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for v in views:
            for start, stop, y in _view_scores(predictor, images, augment, v,
                                               mean, std, batch_size, device):
                if v == center:
                    loss, predictions[start:stop] = _center_batch(
                        y, device.send(labels[start:stop]))
                    loss_sum += loss
                if tta:
                    prob_sum = _add_probabilities(prob_sum, y, start, stop, n)
    return _result(loss_sum, predictions, prob_sum, labels)


def _checked_labels(images, labels):
    """``labels`` as int32, after checking there is one per image."""
    labels = numpy.asarray(labels, dtype=numpy.int32)
    n = len(images)
    if n == 0 or labels.shape != (n,):
        raise ValueError('need N > 0 images and N labels, got %d and %s'
                         % (n, labels.shape))
    return labels


def _view_scores(predictor, images, augment, view, mean, std, batch_size,
                 device):
    """``(start, stop, y)`` per batch: the scores ``y`` of view ``view`` of
    ``images[start:stop]``."""
    n = len(images)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        x = A.eval_view(images[start:stop], augment, view, mean, std)
        yield start, stop, predictor(device.send(x))


def _center_batch(y, t):
    """Summed softmax cross entropy and the predicted classes (on the CPU)
    of scores ``y``."""
    loss = F.softmax_cross_entropy(y, t, reduce='no')
    predicted = chainer.get_device('@numpy').send(F.argmax(y, axis=1).array)
    return float(F.sum(loss).array), predicted


def _add_probabilities(prob_sum, y, start, stop, n):
    """Add the softmax of ``y`` (float64, on the CPU) to rows
    ``start:stop`` of ``prob_sum`` (``(n, n_class)``, made if None)."""
    p = chainer.get_device('@numpy').send(
        F.softmax(y).array).astype(numpy.float64)
    if prob_sum is None:
        prob_sum = numpy.zeros((n, p.shape[1]))
    prob_sum[start:stop] += p
    return prob_sum


def _result(loss_sum, predictions, prob_sum, labels):
    """:func:`evaluate_views`' dict from the centre view's predictions and
    the sums over the views (``prob_sum`` is None without TTA)."""
    n = len(labels)
    accuracy = int((predictions == labels).sum()) / n
    result = dict(loss=loss_sum / n, accuracy=accuracy, error=1. - accuracy,
                  tta_accuracy=None, tta_error=None, predictions=predictions,
                  tta_predictions=None)
    if prob_sum is not None:
        # argmax of the sum = argmax of the mean over the views
        tta_predictions = prob_sum.argmax(axis=1).astype(numpy.int32)
        tta_accuracy = float((tta_predictions == labels).mean())
        result.update(tta_accuracy=tta_accuracy, tta_error=1. - tta_accuracy,
                      tta_predictions=tta_predictions)
    return result


def encode_classes(classes):
    """Class indices as a string, one base-36 character per image.

    Example:
        >>> encode_classes([3, 0, 9, 11])
        '309b'
    """
    classes = numpy.asarray(classes)
    if classes.size and (classes.min() < 0 or classes.max() >= 36):
        raise ValueError('encode_classes takes class indices 0..35, got %d..%d'
                         % (classes.min(), classes.max()))
    return ''.join(_BASE36[c] for c in classes.tolist())


def decode_classes(text):
    """:func:`encode_classes`' inverse: an ``int32`` array."""
    return numpy.array([int(c, 36) for c in text], dtype=numpy.int32)


def predictions_record(result, labels):
    """The per-image predictions of an :func:`evaluate_views` result, with
    the labels they were scored against, compactly (one character per
    image): what two runs need for a paired test on the same images."""
    tta = result.get('tta_predictions')
    return {'encoding': 'one base-36 character per image: its class index',
            'n_images': len(labels), 'labels': encode_classes(labels),
            'centre': encode_classes(result['predictions']),
            'tta': None if tta is None else encode_classes(tta)}


class ViewEvaluator(extension.Extension):
    """Trainer extension reporting test loss/error, and TTA error sometimes.

    Every time it is triggered it reports ``<name>/main/loss``,
    ``<name>/main/accuracy`` and ``<name>/main/error`` of the centre view;
    on every ``tta_interval``-th trigger (``0``: never) it also reports
    ``<name>/main/tta_accuracy`` and ``<name>/main/tta_error`` of the
    averaged views, which costs 36 passes for the paper preset.

    Args:
        predictor (callable): ``x -> class scores`` (whole net, or bottom
            and head).
        images (numpy.ndarray): ``uint8`` ``(N, 3, 32, 32)`` test images.
        labels (numpy.ndarray): ``(N,)`` labels.
        augment (str): ``'paper'`` or ``'standard'``.
        batch_size (int): Images per forward pass.
        device: As in :func:`evaluate_views`.
        tta_interval (int): Compute TTA on every this many triggers.
        final_iteration (int or None): Also compute TTA (unless
            ``tta_interval`` is 0) when triggered at this iteration, so that
            a run always ends with its 36-view figure.
        mean, std (numpy.ndarray): Training-set statistics (``'standard'``).
        name (str): The extension's name (its key in snapshots).
        prefix (str): Prefix of the reported keys (default: the name), e.g.
            :func:`eval_prefix`'s.
        on_final (callable): Called with the :func:`evaluate_views` result
            of the evaluation at ``final_iteration`` (e.g. to keep its
            per-image predictions).
    """

    trigger = 1, 'epoch'
    default_name = 'validation'
    priority = extension.PRIORITY_WRITER

    def __init__(self, predictor, images, labels, augment='paper',
                 batch_size=128, device=None, tta_interval=1, mean=None,
                 std=None, name=None, final_iteration=None, prefix=None,
                 on_final=None):
        if tta_interval < 0:
            raise ValueError('tta_interval must be >= 0')
        if augment == 'standard' and (mean is None or std is None):
            raise ValueError("the 'standard' preset needs the training set's "
                             'mean and std')
        A.n_views(augment)  # validates augment
        self.images = images
        self.labels = labels
        self.predictor = predictor
        self.augment = augment
        self.batch_size = batch_size
        self.device = device
        self.tta_interval = tta_interval
        self.mean = mean
        self.std = std
        self.final_iteration = final_iteration
        self.on_final = on_final
        if name is not None:
            self.name = name
        self.prefix = prefix
        self.n_calls = 0

    def __call__(self, trainer=None):
        self.n_calls += 1
        at_end = (trainer is not None and self.final_iteration is not None
                  and trainer.updater.iteration == self.final_iteration)
        tta = tta_due(self.n_calls, self.tta_interval, at_end)
        result = evaluate_views(
            self.predictor, self.images, self.labels, self.augment,
            self.batch_size, self.device, tta=tta, mean=self.mean,
            std=self.std)
        prefix = (self.prefix or self.name or self.default_name) + '/main/'
        keys = ('loss', 'accuracy', 'error')
        if tta:
            keys += ('tta_accuracy', 'tta_error')
        observation = {prefix + k: result[k] for k in keys}
        if at_end and self.on_final is not None:
            self.on_final(result)
        reporter_module.report(observation)
        return observation

    def serialize(self, serializer):
        # Keeps the TTA schedule across a resume.
        self.n_calls = serializer('n_calls', self.n_calls)
