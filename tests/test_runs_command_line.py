"""train_cifar.py's command line (chainer_vfbn/runs/command_line.py): the
parser the script parses with, and the one way from option values back to
an argument list."""
import pytest

import train_cifar
from chainer_vfbn.runs import command_line
from chainer_vfbn.runs.command_line import Written


def test_the_script_parses_with_the_packages_parser():
    assert train_cifar.build_parser is command_line.build_parser
    assert train_cifar.__doc__.split('\n')[0] == command_line.DESCRIPTION


def test_every_value_is_written_as_the_parser_reads_it():
    options = {'method': 'vfbn', 'alpha_gs': Written('1e-3'),
               'batchsize': 128, 'lr_step': 10.0, 'learnrate': 0.1,
               'validation_split': 0.1, 'local_weight': 0,
               'download': False, 'autoload': False, 'force_new': True}
    argv = command_line.command_line(options)
    assert argv == ['--method', 'vfbn', '--alpha-gs', '1e-3',
                    '--batchsize', '128', '--lr-step', '10.0',
                    '--learnrate', '0.1', '--validation-split', '0.1',
                    '--local-weight', '0', '--no-download',
                    '--no-autoload', '--force-new']
    parsed = vars(command_line.build_parser().parse_args(argv))
    assert {k: parsed[k] for k in options} == options
    assert repr(Written('1e-3')) == '1e-3' and Written('1e-3') == 0.001


@pytest.mark.parametrize('options,error,message', [
    ({'alpha': 1e-3}, ValueError, 'no option alpha that takes a value'),
    ({'download': True}, ValueError, 'download that takes a flag that '
                                     'stores True'),
    ({'epoch': '24'}, TypeError, "--epoch takes int, got '24'"),
    ({'epoch': 24.0}, TypeError, '--epoch takes int, got 24.0'),
    ({'arch': 8}, TypeError, '--arch takes text, got 8'),
    ({'batchsize': True}, ValueError, 'batchsize that takes a flag'),
])
def test_an_option_the_parser_lacks_or_a_wrong_type_is_refused(
        options, error, message):
    with pytest.raises(error, match=message):
        command_line.command_line(options)


def test_flags_come_from_the_option_table():
    assert command_line.flag('data_dir') == '--data-dir'
    assert command_line.flag('batchsize') == '--batchsize'   # not -b
    with pytest.raises(ValueError, match='no option progress that takes a '
                                         'value'):
        command_line.flag('progress')
