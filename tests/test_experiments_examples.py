"""The examples in the experiment wing's docstrings run, module by module,
and every module of the wing is in a subpackage of its concern."""
import doctest
import importlib
import pkgutil

import pytest

from chainer_vfbn import experiments

MODULES = [m.name for m in pkgutil.walk_packages(
    experiments.__path__, experiments.__name__ + '.')]


@pytest.mark.parametrize('name', MODULES)
def test_the_examples_run(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0, name


def test_the_wing_is_grouped_by_concern():
    top = {m.split('.')[2] for m in MODULES}
    assert top == {'protocol', 'records', 'running', 'statistics',
                   'reporting', 'execute'}
