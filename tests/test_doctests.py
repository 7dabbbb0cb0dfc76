"""Every docstring example in chainer_vfbn runs and prints what it shows.

One case per module of the package (found by walking it), so that a
failure names the module; the message is doctest's report of each failed
example. A module that needs an optional dependency that is not installed
(PyTorch for the benchmark's twin, CuPy, mpi4py, ...) is skipped, with the
dependency's name. An example that cannot run on every machine (a GPU, the
network, a data file only some machines have) is marked ``# doctest: +SKIP``
where it is written.
"""
import doctest
import importlib
import inspect
import pkgutil
import re
import types

import pytest

import chainer_vfbn

# What a module may import that the package does not require: setup.py's
# extras, and PyTorch for the benchmark's twin (bench/torch_resnet.py).
OPTIONAL = ('chainercv', 'chainercv2', 'cupy', 'cupyx', 'matplotlib',
            'mpi4py', 'scipy', 'torch')

PROMPT = re.compile(r'^\s*>>>', re.M)


def module_names():
    """The package and every module and subpackage under it, sorted."""
    prefix = chainer_vfbn.__name__ + '.'
    return sorted([chainer_vfbn.__name__] + [
        info.name for info in pkgutil.walk_packages(chainer_vfbn.__path__,
                                                    prefix)])


def run_examples(module):
    """Run a module's docstring examples as ``doctest.testmod`` would.

    Returns:
        tuple: ``(results, found, report)``: the examples failed and tried
        (``doctest.TestResults``; one marked ``+SKIP`` is not tried), the
        number found, and doctest's report of the failures.
    """
    runner = doctest.DocTestRunner(optionflags=0)
    report = []
    tests = doctest.DocTestFinder().find(module)
    for test in tests:
        runner.run(test, out=report.append)
    return (doctest.TestResults(runner.failures, runner.tries),
            sum(len(test.examples) for test in tests), ''.join(report))


def import_or_skip(name):
    try:
        return importlib.import_module(name)
    except ImportError as e:
        missing = (e.name or '').split('.')[0]
        if missing in OPTIONAL:
            pytest.skip('%s needs %s, which is not installed'
                        % (name, missing))
        raise


@pytest.mark.parametrize('name', module_names())
def test_examples(name):
    module = import_or_skip(name)
    results, found, report = run_examples(module)
    assert results.failed == 0, '%d of %d examples of %s failed:\n%s' % (
        results.failed, results.attempted, name, report)
    # Every prompt in the file is an example that doctest finds: none sits
    # where the finder does not look (a comment, a string that is no
    # docstring, a nested function's docstring).
    prompts = len(PROMPT.findall(inspect.getsource(module)))
    assert found == prompts, (
        '%s has %d ">>>" lines but %d examples that doctest finds'
        % (name, prompts, found))


def test_the_walk_finds_the_package_and_its_subpackages():
    names = module_names()
    assert len(names) == len(set(names))
    assert {'chainer_vfbn', 'chainer_vfbn.sequential',
            'chainer_vfbn.datasets.subset', 'chainer_vfbn.runs.config',
            'chainer_vfbn.experiments.bench.torch_resnet'} <= set(names)


def test_a_wrong_example_fails_with_its_report():
    module = types.ModuleType('wrong', '''A module with one wrong example.

    >>> 1 + 1
    3
    >>> len('ok')
    2
    ''')
    results, found, report = run_examples(module)
    assert results == (1, 2) and found == 2
    assert 'Failed example:\n    1 + 1\nExpected:\n    3\nGot:\n    2' \
        in report
