"""A run's configuration, resolved once from the command line's options.

``train/train_cifar.py`` parses and checks its options, then
:meth:`RunConfig.from_options` turns them into values once: the device
spec, the cut points ``split_at`` (a tuple of layer names, dotted paths or
step indices, ``None`` for the model's own ``default_split``) and where a
decoupled run trains its synthesizers. What the science defaults itself is
taken from what it built (:meth:`RunConfig.resolved`: the synthesizers'
``alpha_gs``). Both runners, the synchronous trainer
(:mod:`chainer_vfbn.runs.trainer`) and the decoupled MPI runner
(:mod:`chainer_vfbn.runs.decoupled`), read this one frozen object and never
an ``argparse.Namespace``.
"""
import dataclasses
import types
import typing

from chainer_vfbn import methods
from chainer_vfbn.auxiliary import registry as auxiliary
from chainer_vfbn.decoupled.placement import synth_placement

# Options a resumed run may change: its length, where its data and device
# are, and how it logs. Any other difference means another run.
RESUMABLE = ('epoch', 'iterations', 'frequency', 'eval_interval',
             'tta_interval', 'progress', 'test_batchsize', 'data_dir',
             'download', 'device', 'gpu', 'resume', 'autoload', 'out',
             'force_new', 'mpi_timeout')
# Exit status of a run stopped by a non-finite loss or gradient.
EXIT_DIVERGED = 3


class UserError(Exception):
    """Bad input: reported as one line, exit status 2."""


def device_spec(spec):
    """A device spec as Chainer's: an integer is a GPU id, and -1 the CPU.

    ``None`` is the CPU (``'@numpy'``).

    Example:
        >>> device_spec(-1), device_spec('0'), device_spec('@cupy:1')
        ('@numpy', '@cupy:0', '@cupy:1')
    """
    text = '@numpy' if spec is None else str(spec)
    if text.lstrip('-').isdigit():
        text = '@numpy' if int(text) < 0 else '@cupy:%s' % text
    return text


def parse_split_at(text):
    """``--split-at``'s comma-separated text as a tuple, ``None`` if empty.

    The points are checked against the model where it is cut
    (:func:`chainer_vfbn.sequential.resolve_split_at`).

    Example:
        >>> parse_split_at('stage1_unit3,stage2_unit2'), parse_split_at(None)
        (('stage1_unit3', 'stage2_unit2'), None)
    """
    return tuple(text.split(',')) if text else None


@dataclasses.dataclass(frozen=True)
class RunConfig(object):
    """Every option of one run, resolved; what both runners receive.

    Build it with :meth:`from_options`. The fields without a default are
    the options every training script has; the decoupled ones are
    ``train_cifar.py``'s only.

    Attributes:
        split_at (tuple or None): Where the network is cut (layer names, or
            a ``chainer.Sequential``'s step indices as text); ``None`` for
            the model's ``default_split``.
        alpha_gs (float or None): The synthesizers' Adam step size; ``None``
            for the kind's default until :meth:`resolved`, and for a method
            without a synthesizer.
        model (str or None): ``module:factory`` of a user's model, ``None``
            for the project's ResNet (``arch``).
        device (str): A Chainer device spec (:func:`device_spec`).
        options (Mapping): The options as the run records them in
            ``args.json`` (``alpha_gs`` resolved, and only for a synthetic
            method): the run's identity.
        defaults (Mapping): The command line's defaults, for options a run
            recorded before they existed
            (:func:`chainer_vfbn.runs.provenance.differences`).
    """

    method: str
    arch: str
    split_at: typing.Optional[tuple]
    alpha_gs: typing.Optional[float]
    synth_target_scale: str
    n_hidden: int
    dataset: str
    data_dir: typing.Optional[str]
    download: bool
    validation_split: float
    augment: typing.Optional[str]
    batchsize: int
    epoch: int
    iterations: typing.Optional[int]
    learnrate: float
    momentum: float
    weight_decay: float
    lr_step: float
    lr_decay: float
    seed: int
    device: str
    out: str
    resume: typing.Optional[str]
    autoload: bool
    force_new: bool
    frequency: int
    eval_interval: int
    tta_interval: int
    test_batchsize: int
    progress: bool
    options: typing.Mapping
    defaults: typing.Mapping
    # train_cifar.py's --decoupled options (None where a script has none).
    decoupled: bool = False
    max_staleness: typing.Optional[int] = None
    synth_placement: typing.Optional[str] = None
    mpi_timeout: typing.Optional[float] = None
    # train_cifar.py's --model (None: the project's ResNet, --arch).
    model: typing.Optional[str] = None
    # The tunable weight of a local-learning method (infopro's lambda2):
    # None for its default until resolved(), and for a method without one.
    local_weight: typing.Optional[float] = None

    @classmethod
    def from_options(cls, options, defaults=None):
        """Resolve a command line's options (a dict, e.g. ``vars(args)``).

        Args:
            options (dict): ``{dest: value}`` of every option, as parsed
                and checked; ``split_at`` is the comma-separated text, and
                ``gpu`` (where given) stands for ``device``.
            defaults (dict): ``{dest: default}`` of the same options.

        Returns:
            RunConfig

        Example (the options every training script has, at
        ``train_cifar.py``'s defaults)::

            >>> options = dict(
            ...     method='vfbn', arch='resnet110-paper', split_at=None,
            ...     alpha_gs=None, synth_target_scale='batch-mean',
            ...     n_hidden=256, dataset='cifar10', data_dir=None,
            ...     download=True, validation_split=0., augment=None,
            ...     batchsize=128, epoch=432, iterations=None, learnrate=0.1,
            ...     momentum=0.9, weight_decay=1e-4, lr_step=180,
            ...     lr_decay=0.1, seed=0, device=None, out='result',
            ...     resume=None, autoload=True, force_new=False, frequency=1,
            ...     eval_interval=1, tta_interval=36, test_batchsize=128,
            ...     progress=True)
            >>> config = RunConfig.from_options(options, defaults=options)
            >>> config.alpha_gs, config.split_at, config.device
            (None, None, '@numpy')
            >>> config.options['device'], config.defaults['device']
            ('@numpy', None)
        """
        options = dict(options)
        method = options['method']
        if not methods.synthetic(method):
            # it means nothing without a synthesizer: not recorded
            options.pop('alpha_gs', None)
        if method not in auxiliary.weighted():
            # nor a local weight for a method without one
            options.pop('local_weight', None)
        device = options.get('device')
        if options.get('gpu') is not None:   # --gpu N, a deprecated alias
            device = options['gpu']
        options['device'] = device_spec(device)
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in options.items() if k in names}
        fields.update(
            split_at=parse_split_at(options.get('split_at')),
            alpha_gs=options.get('alpha_gs'),
            local_weight=options.get('local_weight'),
            options=types.MappingProxyType(options),
            defaults=types.MappingProxyType(dict(defaults or {})))
        return cls(**fields)

    def resolved(self, method):
        """This configuration with what building the method resolved: the
        synthesizers' ``alpha_gs`` and a local-learning method's
        ``local_weight`` (their defaults where none was given), in the
        fields and in the recorded options.

        Args:
            method (~chainer_vfbn.methods.Method): The method built from
                this configuration.
        """
        options = dict(self.options)
        for name in ('alpha_gs', 'local_weight'):
            if getattr(method, name, None) is not None:
                options[name] = getattr(method, name)
        return dataclasses.replace(
            self, alpha_gs=method.alpha_gs,
            local_weight=getattr(method, 'local_weight', None),
            options=types.MappingProxyType(options))

    @property
    def synthetic(self):
        """Whether the method trains gradient synthesizers."""
        return methods.synthetic(self.method)

    @property
    def placement(self):
        """Where a decoupled run trains synthesizer k: ``'above'``,
        ``'below'``, or ``None`` for model-parallel BP (it has none)."""
        return synth_placement(self.synthetic, self.synth_placement)

    def stop_iteration(self, n_train):
        """The run's last iteration, for ``n_train`` training images."""
        if self.iterations is not None:
            return self.iterations
        return -(-self.epoch * n_train // self.batchsize)
