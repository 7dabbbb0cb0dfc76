"""The rows of Table 1: each a method, its ``train_cifar.py`` options and
the paper's test error; and the orders in which the mini schedule runs
them."""
import collections

from chainer_vfbn.runs.command_line import Written
from chainer_vfbn.synthesizers import registry


class Row(collections.namedtuple('Row', 'label options paper')):
    """A row of the table: its ``label``, its ``train_cifar.py`` options
    (``{dest: value}``, :func:`chainer_vfbn.runs.command_line.command_line`)
    and the ``paper``'s test error (%, None where the paper has none)."""


# Table rows. VFBN's alpha_gs is written 1e-3, as the paper (and the
# records of these rows) write it.
ROWS = collections.OrderedDict([
    ('bp', Row('Back prop', {'method': 'bp'}, 5.15)),
    ('bottom-bp', Row('Bottom half with back prop', {'method': 'bottom-bp'},
                      5.76)),
    ('layerwise', Row('Layer-wise supervised loss', {'method': 'layerwise'},
                      5.71)),
    ('dni-resnet', Row("Jaderberg's small-ResNet", {'method': 'dni-resnet'},
                       20.45)),
    ('dni-linear', Row("Jaderberg's Linear", {'method': 'dni-linear'},
                       15.56)),
    ('vfbn-alpha0', Row('VFBN, alpha_gs = 0',
                        {'method': 'vfbn', 'alpha_gs': 0}, 5.73)),
    ('vfbn', Row('VFBN, alpha_gs = 1e-3',
                 {'method': 'vfbn', 'alpha_gs': Written('1e-3')}, 5.51)),
    ('vfbn-linear', Row('VFBN, linear v_f (Eq. 8)',
                        {'method': 'vfbn-linear'}, None)),
    ('vfbn-mlp', Row('VFBN, MLP v_f (Eq. 9)', {'method': 'vfbn-mlp'}, None)),
])
# Rows of the mini schedule only: VFBN at the paper's alpha_gs, untuned,
# where the tuning chose another value; and the local-learning peers DGL and
# InfoPro (issue 31), which the paper's table does not have. InfoPro's
# --local-weight (its lambda2, chainer_vfbn.auxiliary.registry) is the value
# its code sets for K = 2; DGL has no weight.
MINI_EXTRA_ROWS = collections.OrderedDict([
    ('vfbn-paper-alpha', Row("VFBN, alpha_gs = 1e-3 (the paper's, untuned)",
                             dict(ROWS['vfbn'].options), 5.51)),
    ('dgl', Row('DGL, MLP-SR auxiliary net (Belilovsky et al.)',
                {'method': 'dgl'}, None)),
    ('infopro', Row('InfoPro, softmax, lambda2 = 0.5 (Wang et al.)',
                    {'method': 'infopro', 'local_weight': 0.5}, None)),
])
MINI_ROWS = collections.OrderedDict(list(ROWS.items())
                                    + list(MINI_EXTRA_ROWS.items()))
# The mini table's label of a row that the protocol tunes, where the row's own
# says what the tuning changes.
MINI_LABELS = {'vfbn': 'VFBN, alpha_gs tuned (paper: 1e-3)',
               'infopro': 'InfoPro, softmax, lambda2 tuned (Wang et al.)'}
# The rows that a tuning sets, each with the train_cifar.py option it tunes
# (its dest): the synthesizer kinds of the registry that have a row (their
# step size alpha_gs), and InfoPro (its cross-entropy weight lambda2,
# Evidence III).
TUNED_OPTIONS = collections.OrderedDict(
    [(k, 'alpha_gs') for k in registry.names() if k in ROWS]
    + [('infopro', 'local_weight')])
TUNED_ROWS = tuple(TUNED_OPTIONS)
# The order in which the tuning runs start: the cheapest rows first, so that a
# chunk stopped early has complete grids for as many rows as it could.
TUNE_ORDER = ('vfbn-linear', 'vfbn-mlp', 'infopro', 'vfbn', 'dni-linear',
              'dni-resnet')
# The final runs start seed by seed, and within a seed first the rows that
# the questions of docs/RESULTS.md compare: a stopped schedule has the
# most-needed seeds.
FINAL_ORDER = ('bp', 'vfbn', 'vfbn-alpha0', 'dni-resnet', 'dni-linear',
               'bottom-bp', 'layerwise', 'vfbn-paper-alpha', 'vfbn-linear',
               'vfbn-mlp', 'dgl', 'infopro')
# The rows whose finals run only the schedule's ``closed_form_seeds``. Since
# Evidence II (issue 18) `vfbn-linear` is a tuned row with every seed; the MLP
# closed form, not one of its rows, keeps one seed.
ONE_SEED_ROWS = ('vfbn-mlp',)
# Rows whose network has no split: their runs never name the cut, so that
# one BP run serves every cut.
UNSPLIT_ROWS = ('bp',)


def default_rows(s):
    """The rows of a mini table unless named: Table 1's under Evidence II
    (whose settings name no protocol; a row of the mini schedule's own
    shows where it has records), every mini row under Evidence III, whose
    questions (issue 31) need the local-learning peers and the paper's
    alpha_gs beside the tuned one.

    Example:
        >>> default_rows({'protocol': 'evidence3'})[-3:]
        ('vfbn-paper-alpha', 'dgl', 'infopro')
    """
    return tuple(MINI_ROWS if s.get('protocol') == 'evidence3' else ROWS)
