"""Cut any sequential Chainer model into modules that share its parameters.

A model is *sequential* when its forward pass runs its layers one after the
other. Two kinds are understood, by one rule:

``chainer.Sequential``
    Its steps, by index: ``split(model, 3)`` cuts after step 3.
A chain with ``layer_names``
    Its children (links or plain functions) run in that order, the
    convention of chainercv's ``PickableSequentialChain``:
    ``split(model, 'block2')`` cuts after the layer named ``block2``.
    :class:`Sequence` is one, and so is the project's own ResNet
    (:class:`~chainer_vfbn.models.ResNetCIFAR`).

A *split point* is any layer but the last; the activation ``h`` a split
point hands to the part above has the shape that one forward pass of a
sample batch gives (:func:`forward_shapes`).
"""
import collections

import chainer
import numpy


class Sequence(chainer.Chain):
    """Consecutive named layers (links or functions) applied in order.

    :func:`split` returns these; the layers are the *same* objects as in the
    model, so a part shares the model's parameters.

    Args:
        layers (list): ``(name, layer)`` pairs in forward order; a layer is a
            :class:`~chainer.Link` or any callable.

    Example:
        >>> net = Sequence([('fc1', L.Linear(4, 8)), ('act', F.relu),
        ...                 ('fc2', L.Linear(8, 3))])
        >>> net.layer_names
        ['fc1', 'act', 'fc2']
    """

    def __init__(self, layers):
        super().__init__()
        self.layer_names = [name for name, _ in layers]
        with self.init_scope():
            for name, layer in layers:
                setattr(self, name, layer)

    def forward(self, x):
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return x

    def __repr__(self):
        first, last = self.layer_names[0], self.layer_names[-1]
        return '<Sequence %s..%s (%d layers)>' % (first, last,
                                                  len(self.layer_names))


def _describe(chain):
    return getattr(chain, 'arch', None) or type(chain).__name__


def layers(chain):
    """The layers of a sequential model, in forward order.

    Returns:
        list: ``(key, name, layer)``: ``key`` is how :func:`split` names the
        layer (a step index for a ``chainer.Sequential``, else its name in
        ``layer_names``), ``name`` its attribute name in a :class:`Sequence`
        part.

    Raises:
        ValueError: The model is not sequential, or a name in its
            ``layer_names`` is not one of its callable attributes.
    """
    if isinstance(chain, chainer.Sequential):
        # A Sequential's links are its children '0', '1', .. (their index
        # among the links); a function step gets a name of its own.
        return [(i, layer.name if isinstance(layer, chainer.Link)
                 else 'step%d' % i, layer) for i, layer in enumerate(chain)]
    names = getattr(chain, 'layer_names', None)
    if not isinstance(chain, chainer.Link) or names is None:
        raise ValueError(
            'cannot split %s: split needs a chainer.Sequential, or a chain '
            'whose layer_names lists its layers in forward order (as '
            "chainercv's PickableSequentialChain)" % _describe(chain))
    out = []
    for name in names:
        layer = getattr(chain, name, None)
        if not callable(layer):
            raise ValueError('%s.layer_names has %r, which is not a layer of '
                             'it' % (_describe(chain), name))
        out.append((name, name, layer))
    return out


def split_points(chain):
    """Where ``chain`` may be cut: the key of every layer but the last."""
    return [key for key, _, _ in layers(chain)][:-1]


def _show(points):
    points = [str(p) for p in points]
    if len(points) > 8:
        points = points[:3] + ['..'] + points[-2:]
    return ', '.join(points)


def resolve_split_at(chain, at=None):
    """``at`` (a run's ``split_at``) as a validated list of split points,
    in forward order: the one place where cut points are defaulted and
    checked.

    Args:
        chain: A sequential model (see the module's docstring).
        at: A split point (a step index of a ``chainer.Sequential``, as an
            int or its digits, a layer name otherwise), a list of them, or
            ``None`` for the chain's own ``default_split`` (e.g. the paper's
            point of the ResNet).

    Raises:
        ValueError: One line: no ``at`` and no default, an unknown layer, a
            cut after the last layer, or points out of order.
    """
    keys = [key for key, _, _ in layers(chain)]
    if at is None:
        if getattr(chain, 'default_split', None) is None:
            raise ValueError('%s has no default split point: give split_at, '
                             'one of %s' % (_describe(chain),
                                            _show(keys[:-1])))
        at = chain.default_split
    points = list(at) if isinstance(at, (list, tuple)) else [at]
    if isinstance(chain, chainer.Sequential):
        # A step index may come as text, from a command line.
        points = [int(p) if isinstance(p, str) and p.isdigit() else p
                  for p in points]
    if not points:
        raise ValueError('split needs at least one split point')
    for point in points:
        if point == keys[-1] and not isinstance(point, bool):
            raise ValueError(
                'cannot split %s after %r, its last layer: nothing would be '
                'above the cut' % (_describe(chain), point))
        if isinstance(point, bool) or point not in keys[:-1]:
            raise ValueError(
                'cannot split %s after %r: no such layer (split points: %s)'
                % (_describe(chain), point, _show(keys[:-1])))
    index = [keys.index(p) for p in points]
    if any(b <= a for a, b in zip(index, index[1:])):
        raise ValueError('split points must be distinct and in forward '
                         'order, got %s' % ', '.join(map(str, points)))
    return points


def split(chain, at=None):
    """Cut a sequential model into consecutive parts sharing its parameters.

    Args:
        chain: A ``chainer.Sequential``, or a chain with ``layer_names``.
        at: Split point(s), see :func:`resolve_split_at`.

    Returns:
        list of Sequence: ``len(points) + 1`` parts; applying them in order
        computes exactly ``chain(x)``.

    Example:
        >>> model = chainer.Sequential(L.Linear(4, 8), F.relu,
        ...                            L.Linear(8, 3))
        >>> bottom, top = split(model, 1)      # cut after F.relu
        >>> bottom.layer_names, top.layer_names
        (['0', 'step1'], ['1'])
    """
    points = resolve_split_at(chain, at)
    steps = layers(chain)
    keys = [key for key, _, _ in steps]
    bounds = [0] + [keys.index(p) + 1 for p in points] + [len(steps)]
    return [Sequence([(name, layer) for _, name, layer in steps[a:b]])
            for a, b in zip(bounds, bounds[1:])]


def _input_dtype(chain):
    for param in chain.params():
        if param.array is not None:
            return param.array.dtype
    return numpy.dtype(chainer.config.dtype)


def forward_shapes(chain, in_shape):
    """Each layer's output shape, for one example, from one forward pass.

    The pass runs on a batch of one zero example in test mode under
    ``chainer.no_backprop_mode()``: it records no graph, draws no random
    number and leaves batch-normalization statistics as they were.

    Args:
        chain: A sequential model.
        in_shape (tuple of int): One input example's shape, e.g. ``(3, 32,
            32)``.

    Returns:
        collections.OrderedDict: ``key -> shape`` (without the batch axis)
        of every layer, in forward order; the last is the model's output.

    Example:
        >>> forward_shapes(chainer.Sequential(L.Linear(4, 8), F.relu), (4,))
        OrderedDict([(0, (8,)), (1, (8,))])
    """
    steps = layers(chain)
    x = chain.xp.zeros((1,) + tuple(in_shape), _input_dtype(chain))
    shapes = collections.OrderedDict()
    with chainer.no_backprop_mode(), chainer.using_config('train', False):
        for key, _, layer in steps:
            x = layer(x)
            shapes[key] = tuple(x.shape[1:])
    return shapes
