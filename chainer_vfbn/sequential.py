"""Cut any sequential Chainer model into modules that share its parameters.

A chain is *sequential* when its forward pass runs its layers one after the
other. Its order is read, by one rule, from:

``chainer.Sequential``
    Its steps, by index: ``split(model, 3)`` cuts after step 3.
``layer_names``
    Its children (links or plain functions) run in that order, the
    convention of chainercv's ``PickableSequentialChain`` (whose ``pick``,
    where set to one layer, ends the forward pass there):
    ``split(model, 'block2')`` cuts after the layer named ``block2``.
    :class:`Sequence` is one, and so is the project's own ResNet
    (:class:`~chainer_vfbn.models.ResNetCIFAR`).
one traced forward pass
    A chain that declares no order (e.g. chainercv2's ``CIFARResNet``,
    whose forward runs ``features`` then ``output``): the order in which
    one forward pass of a sample batch calls its children, accepted only
    if the parts cut by it give exactly the model's output on that batch.
    This needs the input's shape (``in_shape``).

A *split point* is a path to any layer but the last: a layer's key at the
top (a step index or a name), or a dotted path into nested sequential
chains, ``'features.stage2.unit2'`` (a ``chainer.Sequential``'s step is
named by its index, ``'1.3'``). A cut inside a layer cuts that layer at every
level on the way down; the parts keep the model's nesting, so their
parameters are named as in the model. The activation ``h`` a split point
hands to the part above has the shape that one forward pass of a sample
batch gives (:func:`forward_shapes`).
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
        >>> import chainer.functions as F
        >>> import chainer.links as L
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


def _declared(chain):
    """A chain's own order as ``(key, name, layer)``, or ``None`` if it
    declares none; ValueError for a declaration that cannot be followed."""
    if isinstance(chain, chainer.Sequential):
        # A Sequential's links are its children '0', '1', .. (their index
        # among the links); a function step gets a name of its own.
        return [(i, layer.name if isinstance(layer, chainer.Link)
                 else 'step%d' % i, layer) for i, layer in enumerate(chain)]
    names = getattr(chain, 'layer_names', None)
    if not isinstance(chain, chainer.Link) or names is None:
        return None
    names = list(names)
    pick = getattr(chain, 'pick', None)
    if pick is not None:   # chainercv: the forward pass ends at pick
        if not isinstance(pick, str) or pick not in names:
            raise ValueError(
                '%s picks %r: a split needs one output, set its pick to the '
                'layer of the class scores' % (_describe(chain), pick))
        names = names[:names.index(pick) + 1]
    out = []
    for name in names:
        layer = getattr(chain, name, None)
        if not callable(layer):
            raise ValueError('%s.layer_names has %r, which is not a layer of '
                             'it' % (_describe(chain), name))
        out.append((name, name, layer))
    return out


def _probe(chain, in_shape, n=2):
    """A batch of ``n`` examples for the probing passes, drawn from a
    generator of its own (the global ones stay as they were)."""
    in_shape = tuple(int(d) for d in in_shape)
    if len(in_shape) == 3 and in_shape[-1] in (1, 3, 4) and \
            in_shape[0] > 4:
        raise ValueError(
            'in_shape %s looks channels-last; Chainer takes (C, H, W), e.g. '
            '(%d, %d, %d)' % ((in_shape, in_shape[2]) + in_shape[:2]))
    x = numpy.random.RandomState(0).standard_normal((n,) + in_shape)
    return chain.xp.asarray(x.astype(_input_dtype(chain)))


def _forward(call, x, what):
    """``call(x)`` in test mode without a graph; one line if it fails."""
    try:
        with chainer.no_backprop_mode(), \
                chainer.using_config('train', False):
            return call(x)
    except Exception as e:  # whatever the user's forward raises
        raise ValueError('%s failed on a batch of shape %s: %s: %s'
                         % (what, x.shape, type(e).__name__,
                            str(e).strip().splitlines()[0] if str(e)
                            else ''))


def _traced(root, chain, path, x):
    """The order in which one forward pass of ``root`` calls ``chain``'s
    children (each must be called once)."""
    where = '.'.join(path) or _describe(chain)
    how = ('declare its order: give %s a layer_names attribute, the names '
           'of its children (%s) in forward order, or make it a '
           'chainer.Sequential' % ('model' + ''.join('.' + p for p in path),
                                   ', '.join(sorted(c.name for c in
                                                    chain.children()))))
    if x is None:
        raise ValueError('cannot split %s: its forward pass does not declare '
                         'the order of its layers; give in_shape to learn '
                         'it from one forward pass, or %s' % (where, how))
    children = {c.name: c for c in chain.children()}
    calls = []

    def recorder(name, link):
        def call(*args, **kwargs):
            calls.append(name)
            return link(*args, **kwargs)
        return call
    try:
        # The model's forward reaches a child as an attribute: a recorder
        # stands in for it during the one pass.
        for name, link in children.items():
            chain.__dict__[name] = recorder(name, link)
        _forward(root, x, 'the traced forward pass')
    finally:
        for name, link in children.items():
            chain.__dict__[name] = link
    if not calls or len(set(calls)) != len(calls):
        raise ValueError('cannot split %s: one forward pass calls its '
                         'children %s, not each once in a row; %s'
                         % (where, ', '.join(calls) or 'never', how))
    return [(name, name, children[name]) for name in calls], how


def _key(point):
    """A split point as the tuple of its path's components."""
    if isinstance(point, (bool, numpy.bool_)) or \
            not isinstance(point, (str, int, numpy.integer)):
        raise ValueError('a split point is a layer name, a dotted path or a '
                         'step index, got %r' % (point,))
    return (int(point),) if not isinstance(point, str) else \
        tuple(point.split('.'))


def _key_of(text):
    """A one-component path as the user wrote it (an index stays one)."""
    return int(text) if text.isdigit() else text


def _matches(key, part):
    return key == part or (isinstance(key, int) and str(key) == part)


def _show(points):
    points = [str(p) for p in points]
    if len(points) > 8:
        points = points[:3] + ['..'] + points[-2:]
    return ', '.join(points)


class _Layout(object):
    """A model flattened down to its split points.

    ``leaves`` are ``(path, layer)`` in forward order, ``path`` the ``(key,
    name)`` of each level; a layer on the way to a split point is replaced
    by its own layers. ``hows`` holds how to declare each order that was
    learned from a traced pass.
    """

    def __init__(self, root, paths, x):
        self.root, self.x, self.hows = root, x, []
        self.leaves = self._expand(root, (), paths)

    def _order(self, chain, path):
        steps = _declared(chain)
        if steps is not None:
            return steps
        if not isinstance(chain, chainer.Chain) or \
                not list(chain.children()):
            raise ValueError(
                'cannot split %s: it is not a sequential chain (a '
                'chainer.Sequential, or a chain whose layer_names lists its '
                "layers in forward order, as chainercv's "
                'PickableSequentialChain)'
                % ('.'.join(path) or _describe(chain)))
        steps, how = _traced(self.root, chain, path, self.x)
        self.hows.append(how)
        return steps

    def _expand(self, chain, path, paths):
        steps = self._order(chain, [str(k) for k, _ in path])
        for p in paths:
            if not any(_matches(key, p[0]) for key, _, _ in steps):
                keys = [key for key, _, _ in steps]
                given = '.'.join([str(k) for k, _ in path] + list(map(str, p)))
                if not path:
                    raise ValueError(
                        'cannot split %s after %r: no such layer (split '
                        'points: %s)' % (_describe(chain), _key_of(given),
                                         _show(keys[:-1])))
                raise ValueError(
                    'cannot split %s after %r: %s has no layer %r (its '
                    'layers: %s)' % (_describe(self.root), given,
                                     '.'.join(str(k) for k, _ in path),
                                     p[0], _show(keys)))
        leaves = []
        for key, name, layer in steps:
            deeper = [p[1:] for p in paths if _matches(key, p[0]) and
                      len(p) > 1]
            if deeper:
                leaves += self._expand(layer, path + ((key, name),), deeper)
            else:
                leaves.append((path + ((key, name),), layer))
        return leaves

    def index(self, key):
        """The last leaf at or under ``key`` (a path tuple) and its
        canonical name."""
        found = [i for i, (path, _) in enumerate(self.leaves)
                 if len(path) >= len(key) and
                 all(_matches(k, c) for (k, _), c in zip(path, key))]
        path = self.leaves[found[-1]][0][:len(key)]
        name = path[0][0] if len(path) == 1 else \
            '.'.join(str(k) for k, _ in path)
        return found[-1], name

    def outputs(self, x):
        """Every leaf's output on ``x`` (test mode, no graph)."""
        def run(h):
            out = []
            for _, layer in self.leaves:
                h = layer(h)
                out.append(h)
            return out
        return _forward(run, x, 'one forward pass')


def _layout(chain, at, in_shape):
    """``(points, layout)``: ``at`` checked against ``chain``; ``at=()``
    cuts nowhere (the whole model, one part)."""
    x = None if in_shape is None else _probe(chain, in_shape)
    if at is None:
        if getattr(chain, 'default_split', None) is None:
            steps = _Layout(chain, [], x).leaves
            raise ValueError('%s has no default split point: give split_at, '
                             'one of %s' % (_describe(chain), _show(
                                 [p[0][0] for p, _ in steps][:-1])))
        at = chain.default_split
    points = list(at) if isinstance(at, (list, tuple)) else [at]
    keys = [_key(p) for p in points]
    layout = _Layout(chain, keys, x)
    index, names = zip(*[layout.index(k) for k in keys]) if keys else ((), ())
    last = len(layout.leaves) - 1
    for i, name in zip(index, names):
        if i == last:
            raise ValueError(
                'cannot split %s after %r, its last layer: nothing would be '
                'above the cut' % (_describe(chain), name))
    if any(b <= a for a, b in zip(index, index[1:])):
        raise ValueError('split points must be distinct and in forward '
                         'order, got %s' % ', '.join(map(str, points)))
    layout.bounds = [0] + [i + 1 for i in index] + [len(layout.leaves)]
    if layout.hows:
        _check_composes(chain, layout, x)
    return tuple(names), layout


def _check_composes(chain, layout, x):
    """A learned order is accepted only if the leaves give exactly the
    model's output."""
    want = _forward(chain, x, 'one forward pass')
    got = layout.outputs(x)[-1]
    if not isinstance(want, chainer.Variable) or \
            want.shape != got.shape or \
            not bool((want.array == got.array).all()):
        raise ValueError('cannot split %s: the order learned from one '
                         'forward pass does not give its output; %s'
                         % (_describe(chain), layout.hows[0]))


def _nest(leaves, depth=0):
    """``(name, layer)`` of consecutive leaves, regrouped as the model
    nests them."""
    out, i = [], 0
    while i < len(leaves):
        path = leaves[i][0]
        if len(path) == depth + 1:
            out.append((path[depth][1], leaves[i][1]))
            i += 1
            continue
        j = i
        while j < len(leaves) and len(leaves[j][0]) > depth + 1 and \
                leaves[j][0][depth] == path[depth]:
            j += 1
        out.append((path[depth][1], Sequence(_nest(leaves[i:j], depth + 1))))
        i = j
    return out


def layers(chain, in_shape=None):
    """The top-level layers of a sequential model, in forward order.

    Returns:
        list: ``(key, name, layer)``: ``key`` is how :func:`split` names the
        layer (a step index for a ``chainer.Sequential``, else its name),
        ``name`` its attribute name in a :class:`Sequence` part.

    Raises:
        ValueError: The model is not sequential (or declares no order and no
            ``in_shape`` is given to learn it), or a name in its
            ``layer_names`` is not one of its callable attributes.
    """
    x = None if in_shape is None else _probe(chain, in_shape)
    return [(path[0][0], path[0][1], layer)
            for path, layer in _Layout(chain, [], x).leaves]


def split_points(chain, in_shape=None):
    """Where ``chain`` may be cut at the top: every layer's key but the
    last (a dotted path cuts deeper)."""
    return [key for key, _, _ in layers(chain, in_shape)][:-1]


def resolve_split_at(chain, at=None, in_shape=None):
    """``at`` (a run's ``split_at``) as validated split points, in forward
    order: the one place where cut points are defaulted and checked.

    Args:
        chain: A sequential model (see the module's docstring).
        at: A split point (a step index of a ``chainer.Sequential``, a
            layer name, or a dotted path), a list of them, or ``None`` for
            the chain's own ``default_split`` (e.g. the paper's point of the
            ResNet).
        in_shape (tuple of int): One input example's shape; needed only
            where an order must be learned from a forward pass.

    Returns:
        tuple: The points, each as its key at the top (an index or a name)
        or its dotted path.

    Raises:
        ValueError: One line: no ``at`` and no default, an unknown layer, a
            cut after the last layer, or points out of order.
    """
    return _layout(chain, _some(at), in_shape)[0]


def _some(at):
    if isinstance(at, (list, tuple)) and not at:
        raise ValueError('split needs at least one split point')
    return at


def split(chain, at=None, in_shape=None):
    """Cut a sequential model into consecutive parts sharing its parameters.

    Args:
        chain: A ``chainer.Sequential``, a chain with ``layer_names``, or one
            whose order one forward pass shows (give ``in_shape``).
        at: Split point(s), see :func:`resolve_split_at`.
        in_shape (tuple of int): One input example's shape, where an order
            must be learned.

    Returns:
        list of Sequence: ``len(points) + 1`` parts; applying them in order
        computes exactly ``chain(x)``.

    Example:
        >>> import chainer.functions as F
        >>> import chainer.links as L
        >>> model = chainer.Sequential(L.Linear(4, 8), F.relu,
        ...                            L.Linear(8, 3))
        >>> bottom, top = split(model, 1)      # cut after F.relu
        >>> bottom.layer_names, top.layer_names
        (['0', 'step1'], ['1'])
    """
    return _parts(_layout(chain, _some(at), in_shape)[1])


def _parts(layout):
    b = layout.bounds
    return [Sequence(_nest(layout.leaves[lo:hi]))
            for lo, hi in zip(b, b[1:])]


def _input_dtype(chain):
    for param in chain.params():
        if param.array is not None:
            return param.array.dtype
    return numpy.dtype(chainer.config.dtype)


def forward_shapes(chain, in_shape, at=()):
    """Each layer's output shape, for one example, from one forward pass.

    The pass runs in test mode under ``chainer.no_backprop_mode()`` on a
    probe batch from a generator of its own: it records no graph, changes
    no global random state and leaves batch-normalization statistics as
    they were.

    Args:
        chain: A sequential model.
        in_shape (tuple of int): One input example's shape, e.g. ``(3, 32,
            32)``.
        at: Split point(s) whose layers are opened down to them (their
            shapes are keyed by dotted path).

    Returns:
        collections.OrderedDict: ``key -> shape`` (without the batch axis)
        of every layer, in forward order; the last is the model's output.

    Example:
        >>> import chainer.functions as F
        >>> import chainer.links as L
        >>> dict(forward_shapes(chainer.Sequential(L.Linear(4, 8), F.relu), (4,)))
        {0: (8,), 1: (8,)}
    """
    return Cut(chain, at, in_shape).shapes


class Cut(object):
    """A model cut at its split points, from one probing forward pass.

    What :func:`chainer_vfbn.methods.build_method` needs, computed once:
    the checked points, the parts, the shape of ``h`` at each point and the
    model's output on the probe batch.

    Args:
        chain: A sequential model.
        at: Split point(s) (:func:`resolve_split_at`).
        in_shape (tuple of int): One input example's shape.

    Attributes:
        points (tuple): The checked split points.
        shapes (collections.OrderedDict): ``key -> shape`` of every layer of
            the flattened model (nested ones by dotted path).
        output: The model's output on the probe batch (an array).

    Example:
        >>> import chainer.functions as F
        >>> import chainer.links as L
        >>> features = Sequence([
        ...     ('conv1', L.Convolution2D(3, 4, 3, pad=1)), ('relu1', F.relu),
        ...     ('conv2', L.Convolution2D(4, 8, 3, stride=2, pad=1))])
        >>> model = Sequence([('features', features),
        ...                   ('output', L.Linear(None, 10))])
        >>> cut = Cut(model, 'features.relu1', (3, 8, 8))
        >>> cut.points, cut.shapes['features.relu1'], cut.shapes['output']
        (('features.relu1',), (4, 8, 8), (10,))
        >>> bottom, top = cut.parts()
        >>> bottom.features.layer_names, top.features.layer_names
        (['conv1', 'relu1'], ['conv2'])
        >>> top.layer_names
        ['features', 'output']
    """

    def __init__(self, chain, at, in_shape):
        self.points, self._layout = _layout(chain, at, in_shape)
        outputs = self._layout.outputs(_probe(chain, in_shape))
        self.shapes = collections.OrderedDict()
        for (path, _), y in zip(self._layout.leaves, outputs):
            key = path[0][0] if len(path) == 1 else \
                '.'.join(str(k) for k, _ in path)
            self.shapes[key] = tuple(y.shape[1:])
        self.output = outputs[-1].array

    def parts(self):
        """The parts (:class:`Sequence`), sharing the model's parameters."""
        return _parts(self._layout)
