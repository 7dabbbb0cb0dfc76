"""A fixed, stratified validation split carved from the training images."""
import numpy

# The split's own seed: the same held-out images for every run, method and
# training seed, so that choices made on them are comparable.
SPLIT_SEED = 20170224


def validation_split(labels, fraction, seed=SPLIT_SEED):
    """Indices of a stratified train/validation split.

    From each class, ``round(fraction * n_class_images)`` images (at least
    one where the class has two or more) are held out, chosen by a random
    permutation that depends only on ``seed`` and the labels.

    Args:
        labels (array): Integer labels, ``(N,)``.
        fraction (float): Share of each class held out, in ``(0, 1)``.
        seed (int): Seed of the permutation.

    Returns:
        tuple: ``(train_idx, val_idx)``, sorted ``int64`` arrays that are
        disjoint and cover ``range(N)``.
    """
    labels = numpy.asarray(labels)
    if not 0 < fraction < 1:
        raise ValueError('the validation fraction must be in (0, 1), got %r'
                         % (fraction,))
    rng = numpy.random.RandomState(seed)
    held = []
    for c in numpy.unique(labels):
        members = numpy.flatnonzero(labels == c)
        n_val = int(round(fraction * len(members)))
        if len(members) > 1:
            n_val = min(max(n_val, 1), len(members) - 1)
        held.append(rng.permutation(members)[:n_val])
    val_idx = numpy.sort(numpy.concatenate(held)).astype(numpy.int64)
    mask = numpy.ones(len(labels), dtype=bool)
    mask[val_idx] = False
    return numpy.flatnonzero(mask).astype(numpy.int64), val_idx
