"""chainer_vfbn.runs.config: the options resolved once into a RunConfig."""
import dataclasses

import pytest

from chainer_vfbn.runs.config import device_spec
from chainer_vfbn.runs.config import parse_split_at
from chainer_vfbn.runs.config import RunConfig

# A script's options as parsed (a set without the decoupled ones).
OPTIONS = dict(
    method='vfbn', arch='vgg-own', split_at='1', alpha_gs=None,
    synth_target_scale='batch-mean', n_hidden=256, dataset='sample',
    data_dir=None, download=True, validation_split=0., augment='standard',
    batchsize=10, epoch=3, iterations=None, learnrate=0.05, momentum=0.9,
    weight_decay=5e-4, lr_step=1000, lr_decay=0.1, seed=0, device=None,
    out='o', resume=None, autoload=True, force_new=False, frequency=1,
    eval_interval=1, tta_interval=0, test_batchsize=128, progress=False)


class Built(object):
    """What a built method tells the run: its resolved alpha_gs."""

    def __init__(self, alpha_gs):
        self.alpha_gs = alpha_gs


def test_alpha_gs_resolved_by_the_method_recorded_where_it_means_something():
    vfbn = RunConfig.from_options(OPTIONS)
    # Not defaulted here: build_method resolves it, once.
    assert vfbn.alpha_gs is None and vfbn.options['alpha_gs'] is None
    resolved = vfbn.resolved(Built(1e-3))
    assert resolved.alpha_gs == resolved.options['alpha_gs'] == 1e-3
    assert list(resolved.options) == list(vfbn.options)   # same key order
    given = RunConfig.from_options(dict(OPTIONS, alpha_gs=0.01))
    assert given.alpha_gs == given.options['alpha_gs'] == 0.01
    bp = RunConfig.from_options(dict(OPTIONS, method='bp', alpha_gs=0.5))
    assert bp.alpha_gs is None and 'alpha_gs' not in bp.options
    bp = bp.resolved(Built(None))
    assert bp.alpha_gs is None and 'alpha_gs' not in bp.options
    assert not bp.synthetic and vfbn.synthetic


def test_the_options_given_are_not_changed():
    options = dict(OPTIONS, device='-1')
    config = RunConfig.from_options(options, {'device': None})
    assert options == dict(OPTIONS, device='-1')
    assert config.options['device'] == config.device == '@numpy'
    assert config.defaults == {'device': None}
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.split_at = None
    with pytest.raises(TypeError):
        config.options['seed'] = 1


def test_split_at_parsed_once():
    assert RunConfig.from_options(OPTIONS).split_at == ('1',)
    assert RunConfig.from_options(OPTIONS).options['split_at'] == '1'
    assert parse_split_at('stem,stage2_unit1') == ('stem', 'stage2_unit1')
    assert parse_split_at('') is None and parse_split_at(None) is None


def test_device_and_its_gpu_alias():
    assert device_spec(None) == device_spec(-1) == '@numpy'
    assert device_spec('2') == '@cupy:2'
    assert device_spec('@cupy:1') == '@cupy:1'
    config = RunConfig.from_options(dict(OPTIONS, gpu=1))
    assert config.device == config.options['device'] == '@cupy:1'
    assert config.options['gpu'] == 1


def test_placement_and_the_decoupled_options():
    own = RunConfig.from_options(OPTIONS)
    assert own.decoupled is False and own.max_staleness is None
    decoupled = dict(OPTIONS, decoupled=True, max_staleness=1,
                     synth_placement='below', mpi_timeout=60.)
    assert RunConfig.from_options(decoupled).placement == 'below'
    # Model-parallel back-propagation has no synthesizer to place.
    assert RunConfig.from_options(dict(decoupled, method='bp')).placement \
        is None


def test_stop_iteration():
    config = RunConfig.from_options(OPTIONS)
    assert config.stop_iteration(95) == 29          # ceil(3 * 95 / 10)
    assert RunConfig.from_options(dict(OPTIONS, iterations=7)) \
        .stop_iteration(95) == 7
