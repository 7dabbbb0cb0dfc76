"""InfoPro's local objective, softmax variant: classify ``h`` and rebuild ``x``.

Wang, Ni, Song, Yang and Huang, "Revisiting Locally Supervised Learning: an
Alternative to End-to-end Training" (ICLR 2021) train each module on

    L = λ1 · L_rec(x, decoder(h)) + λ2 · L_ce(t, classifier(h))

so that ``h`` keeps the information about the input that the layers above
may need (the reconstruction, a bound on I(h, x)) besides what the labels
ask for (the cross-entropy, a bound on I(h, y)). Their code
(blackfeather-wang/InfoPro-Pytorch, ``Experiments on CIFAR-SVHN-STL10``),
read here and rewritten:

classifier (``networks/auxiliary_nets.py``, ``AuxClassifier``, ``1c2f``)
    3x3 convolution (no bias), batch normalization, ReLU, global average
    pooling, ``Linear(., 128)``, ReLU, ``Linear(128, n_class)``. Their code
    fixes the convolution per width of a CIFAR ResNet: 16 and 32 maps go to
    twice the maps at stride 2, 64 maps (the last stage, 8x8) stay at stride
    1. Here the rule is read off ``h``'s shape: twice the maps at stride 2
    while ``h`` is larger than 8x8, the same maps at stride 1 from 8x8 down.
    A flat ``h`` gets the two linear layers alone.
decoder (``Decoder``)
    ``h`` resized bilinearly (corners aligned) to the input's size, 3x3
    convolution to 12 maps, batch normalization, ReLU, 3x3 convolution to
    the input's channels, a sigmoid; scored by the binary cross-entropy
    against the image in ``[0, 1]`` (here the sigmoid is folded into the
    loss, :func:`binary_cross_entropy_with_logits`). Where ``h`` or the input is flat, an
    MLP (``Linear(., 128)``, batch normalization, ReLU, a linear map to the
    input's size) takes the convolutions' place.
the weights (``comand.sh``, ResNet-110 on CIFAR-10, ``--local_module_num
2``)
    ``--ixx_1 5 --ixy_1 0.5``: λ1 = 5 on the reconstruction, λ2 = 0.5 on the
    classifier's loss. Their published commands are for the contrastive
    variant; the softmax one (``--local_loss_mode cross_entropy``) is the
    same script and loss with the cross-entropy in the contrastive loss's
    place, and no other weights are published for it. Their K = 2 commands
    for CIFAR-10 all keep λ1 = 5 and move λ2 (1 for ResNet-32, 0.5 for
    ResNet-110, 0.1 for InfoPro*), so λ2 is the weight exposed for tuning
    (``local_weight``, ``--local-weight``) and λ1 stays fixed.

One change, because there is no fixed image to rebuild: InfoPro restores
the image in ``[0, 1]`` by inverting its data set's fixed normalization, but
this project's recipe standardises each crop by its own statistics and a
user's model may take anything. The target is therefore the input itself,
brought into ``[0, 1]`` per example and channel by its own minimum and
maximum (:func:`unit_range`): the same picture up to contrast, with the
binary cross-entropy and λ1 on the scale they have in InfoPro.
"""
import chainer
import chainer.functions as F
import chainer.links as L
import numpy

from chainer_vfbn.auxiliary.resampling import resize_bilinear

# blackfeather-wang/InfoPro-Pytorch, "Experiments on CIFAR-SVHN-STL10/
# comand.sh", ResNet-110 + InfoPro on CIFAR-10 with two local modules
# (K = 2): --ixx_1 5 --ixy_1 0.5.
RECONSTRUCTION_WEIGHT = 5.0   # λ1, fixed
CLASSIFIER_WEIGHT = 0.5       # λ2, the default of the tunable weight
FEATURE_DIM = 128   # hidden units of the classifier (aux_net_feature_dim)
DECODER_MAPS = 12   # hidden maps of the decoder (Decoder, widen = 1)
LAST_STAGE_SIZE = 8   # a CIFAR ResNet's last stage: from here, stride 1
MLP_HIDDEN = 128    # hidden units of the decoder's MLP, for a flat h or x


def unit_range(x):
    """``x`` brought into ``[0, 1]`` per example and channel, by its own
    minimum and maximum (over the spatial axes; over the features of a flat
    ``(B, D)`` input). A constant channel gives zeros.

    Example:
        >>> unit_range(numpy.array([[-1., 0., 3.]], numpy.float32))
        array([[0.  , 0.25, 1.  ]], dtype=float32)
    """
    x = chainer.as_array(x)
    xp = chainer.backend.get_array_module(x)
    axes = tuple(range(2, x.ndim)) if x.ndim > 2 else (1,)
    low = x.min(axis=axes, keepdims=True)
    span = x.max(axis=axes, keepdims=True) - low
    span = xp.maximum(span, xp.finfo(x.dtype).tiny)
    return ((x - low) / span).astype(x.dtype)


def binary_cross_entropy_with_logits(logits, target):
    """Mean over every element of ``BCE(sigmoid(logits), target)``.

    Written as ``softplus(z) - target · z``, which equals
    ``-target·log σ(z) - (1 - target)·log(1 - σ(z))`` without rounding
    ``σ(z)`` to 0 or 1 first.
    """
    return F.mean(F.softplus(logits) - target * logits)


class InfoProClassifier(chainer.Chain):
    """InfoPro's auxiliary classifier (``1c2f``) for ``h`` of one shape.

    Args:
        h_shape (tuple of int): ``(C, H, W)`` or ``(D,)``.
        n_class (int): Number of classes.
    """

    def __init__(self, h_shape, n_class):
        super().__init__()
        self.spatial = len(h_shape) == 3
        with self.init_scope():
            if self.spatial:
                channels, height, width = h_shape
                shrink = max(height, width) > LAST_STAGE_SIZE
                maps = 2 * channels if shrink else channels
                self.conv = L.Convolution2D(channels, maps, 3,
                                            stride=2 if shrink else 1,
                                            pad=1, nobias=True)
                self.bn = L.BatchNormalization(maps)
            else:
                maps = h_shape[0]
            self.fc1 = L.Linear(maps, FEATURE_DIM)
            self.fc2 = L.Linear(FEATURE_DIM, n_class)

    def forward(self, h):
        if self.spatial:
            h = F.average(F.relu(self.bn(self.conv(h))), axis=(2, 3))
        return self.fc2(F.relu(self.fc1(h)))


class InfoProDecoder(chainer.Chain):
    """InfoPro's decoder: ``h`` to logits of the input, shaped like it.

    Args:
        h_shape (tuple of int): ``(C, H, W)`` or ``(D,)``.
        in_shape (tuple of int): One input example's shape.
    """

    def __init__(self, h_shape, in_shape):
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.spatial = len(h_shape) == 3 and len(self.in_shape) == 3
        with self.init_scope():
            if self.spatial:
                self.conv1 = L.Convolution2D(h_shape[0], DECODER_MAPS, 3,
                                             pad=1)
                self.bn = L.BatchNormalization(DECODER_MAPS)
                self.conv2 = L.Convolution2D(DECODER_MAPS, in_shape[0], 3,
                                             pad=1)
            else:
                self.fc1 = L.Linear(int(numpy.prod(h_shape)), MLP_HIDDEN)
                self.bn = L.BatchNormalization(MLP_HIDDEN)
                self.fc2 = L.Linear(MLP_HIDDEN,
                                    int(numpy.prod(self.in_shape)))

    def forward(self, h):
        if not self.spatial:
            y = self.fc2(F.relu(self.bn(self.fc1(h))))
            return F.reshape(y, (h.shape[0],) + self.in_shape)
        size = self.in_shape[1:]
        if h.shape[2:] != size:
            h = resize_bilinear(h, size)
        return self.conv2(F.relu(self.bn(self.conv1(h))))


class InfoProAuxiliary(chainer.Chain):
    """InfoPro's two auxiliary networks and their local loss (softmax).

    ``local_loss(h, x, t) = λ1 · BCE(σ(decoder(h)), unit_range(x))
    + λ2 · loss_func(classifier(h), t)``, with λ1 =
    :data:`RECONSTRUCTION_WEIGHT` and λ2 = ``weight``.

    Args:
        h_shape (tuple of int): ``(C, H, W)`` or ``(D,)``.
        in_shape (tuple of int): One input example's shape.
        n_class (int): Number of classes.
        loss_func: The classifier's loss ``loss_func(y, t)``: the network's
            own, the mean softmax cross-entropy in InfoPro's softmax variant.
        weight (float): λ2, the classifier's weight against the
            reconstruction's λ1 = 5: 0 trains the bottom as an auto-encoder
            alone, a large λ2 makes it the greedy supervised loss of the
            classifier. Default :data:`CLASSIFIER_WEIGHT`.

    Example:
        >>> import numpy
        >>> aux = InfoProAuxiliary((32, 22, 22), (3, 24, 24), 10)
        >>> h = numpy.zeros((2, 32, 22, 22), numpy.float32)
        >>> x = numpy.zeros((2, 3, 24, 24), numpy.float32)
        >>> t = numpy.array([3, 7], numpy.int32)
        >>> loss, y, values = aux.local_loss(h, x, t)
        >>> loss.shape, y.shape
        ((), (2, 10))
        >>> sorted(values)
        ['classification', 'reconstruction']
    """

    def __init__(self, h_shape, in_shape, n_class,
                 loss_func=F.softmax_cross_entropy,
                 weight=CLASSIFIER_WEIGHT):
        super().__init__()
        self.loss_func = loss_func
        self.weight = weight
        with self.init_scope():
            self.classifier = InfoProClassifier(h_shape, n_class)
            self.decoder = InfoProDecoder(h_shape, in_shape)

    def forward(self, h):
        """The classifier's scores ``(B, n_class)``."""
        return self.classifier(h)

    def local_loss(self, h, x, t):
        """InfoPro's local objective on one batch.

        Args:
            h: The activation at the split, in the bottom's graph.
            x: The network's input batch, the reconstruction's target.
            t: Labels.

        Returns:
            tuple: ``(loss, y, values)``: the weighted sum, the classifier's
            scores, and ``{'reconstruction': BCE, 'classification':
            loss_func(y, t)}`` (each unweighted).
        """
        y = self.classifier(h)
        classification = self.loss_func(y, t)
        reconstruction = binary_cross_entropy_with_logits(
            self.decoder(h), unit_range(x))
        loss = (RECONSTRUCTION_WEIGHT * reconstruction
                + self.weight * classification)
        return loss, y, {'reconstruction': reconstruction,
                         'classification': classification}
