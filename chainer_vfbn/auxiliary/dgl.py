"""DGL's auxiliary network: spatial reduction, then a small MLP.

Decoupled Greedy Learning (Belilovsky, Eickenberg and Oyallon, "Decoupled
Greedy Learning of CNNs", ICML 2020) trains each module on the
cross-entropy of a small auxiliary classifier at its output. The one its
CIFAR experiments default to, "MLP-SR" (eugenium/DGL,
auxiliary_nets_study/models.py, ``auxillary_classifier2`` with
``aux_type='mlp-sr'``), read here and rewritten:

1. spatial reduction: adaptive average pooling of ``h`` (``C x H x W``) to
   ``ceil(H/4) x ceil(W/4)``;
2. three 1x1 convolutions ``C -> C`` (no bias), each with batch
   normalization and ReLU;
3. adaptive average pooling to 2x2, flattened to ``4C`` features;
4. an MLP: three ``4C -> 4C`` linear layers with batch normalization and
   ReLU, then a linear map to the class scores.

A flat ``h`` (``D`` features) has no spatial part: steps 1-3 are skipped and
the MLP is ``D`` wide.
"""
import math

import chainer
import chainer.functions as F
import chainer.links as L

from chainer_vfbn.auxiliary.resampling import adaptive_average_pooling_2d

N_CONV = 3   # 1x1 convolutions after the spatial reduction (DGL: nlin = 3)
N_MLP = 3    # hidden linear layers of the MLP (DGL: mlp_layers = 3)
REDUCTION = 4   # the first pooling divides each spatial size by this
GRID = (2, 2)   # the second pooling's grid, whatever h's size


class DGLAuxiliary(chainer.Chain):
    """DGL's "MLP-SR" auxiliary classifier for activations of one shape.

    Args:
        h_shape (tuple of int): One example's ``h``: ``(C, H, W)`` or
            ``(D,)``.
        n_class (int): Number of classes.
        loss_func: The local loss ``loss_func(y, t)``: the network's own,
            the mean softmax cross-entropy in DGL.

    Example:
        >>> import numpy
        >>> aux = DGLAuxiliary((32, 22, 22), 10)
        >>> aux(numpy.zeros((2, 32, 22, 22), numpy.float32)).shape
        (2, 10)
    """

    def __init__(self, h_shape, n_class, loss_func=F.softmax_cross_entropy):
        super().__init__()
        self.h_shape = tuple(h_shape)
        self.loss_func = loss_func
        spatial = len(self.h_shape) == 3
        if spatial:
            channels, height, width = self.h_shape
            self.reduced = (math.ceil(height / REDUCTION),
                            math.ceil(width / REDUCTION))
            width_mlp = channels * GRID[0] * GRID[1]
        else:
            width_mlp = self.h_shape[0]
        with self.init_scope():
            if spatial:
                self.convs = chainer.ChainList(*[
                    L.Convolution2D(channels, channels, 1, nobias=True)
                    for _ in range(N_CONV)])
                self.conv_bns = chainer.ChainList(*[
                    L.BatchNormalization(channels) for _ in range(N_CONV)])
            self.fcs = chainer.ChainList(*[
                L.Linear(width_mlp, width_mlp) for _ in range(N_MLP)])
            self.fc_bns = chainer.ChainList(*[
                L.BatchNormalization(width_mlp) for _ in range(N_MLP)])
            self.out = L.Linear(width_mlp, n_class)

    def forward(self, h):
        """Class scores ``(B, n_class)`` from ``h`` ``(B,) + h_shape``."""
        if len(self.h_shape) == 3:
            h = adaptive_average_pooling_2d(h, self.reduced)
            for conv, bn in zip(self.convs, self.conv_bns):
                h = F.relu(bn(conv(h)))
            h = adaptive_average_pooling_2d(h, GRID)
        h = F.reshape(h, (h.shape[0], -1))
        for fc, bn in zip(self.fcs, self.fc_bns):
            h = F.relu(bn(fc(h)))
        return self.out(h)

    def local_loss(self, h, x, t):
        """DGL's local objective: ``loss_func(self(h), t)``.

        Args:
            h: The activation at the split, in the bottom's graph.
            x: The network's input (unused: DGL's objective is the labels').
            t: Labels.

        Returns:
            tuple: ``(loss, y, values)``: the loss Variable, the class
            scores, and no further figures (``{}``).
        """
        y = self(h)
        return self.loss_func(y, t), y, {}
