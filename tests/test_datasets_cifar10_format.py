"""The official CIFAR-10 python format: one batch parsed and checked."""
import doctest
import io
import pickle

import numpy
import pytest

from chainer_vfbn.datasets import cifar10_format
from chainer_vfbn.datasets.cifar10_format import DatasetError
from chainer_vfbn.datasets.cifar10_format import parse_batch


def test_docstring_examples():
    result = doctest.testmod(cifar10_format)
    assert result.attempted > 0 and result.failed == 0, result


def test_pixels_are_planar_rgb():
    # 1024 red, then 1024 green, then 1024 blue values, row-major.
    data = numpy.zeros((1, 3072), numpy.uint8)
    data[0, 1024 + 32 * 2 + 5] = 7          # green, row 2, column 5
    x, t = parse_batch({'data': data, 'labels': [9]}, 'test_batch', 'src')
    assert x[0, 1, 2, 5] == 7 and x.sum() == 7
    assert t.dtype == numpy.int32 and t.tolist() == [9]


@pytest.mark.parametrize('raw, why', [
    ([], 'is a list, not a dict'),
    ({'data': numpy.zeros((1, 3072), numpy.uint8)}, "has no 'labels' entry"),
    ({'data': numpy.zeros((1, 3072), numpy.uint8), 'labels': [10]},
     r'has labels outside 0\.\.9 \(min 10, max 10\)'),
    ({'data': numpy.zeros((2, 3072), numpy.uint8), 'labels': [1]},
     r"has 2 images but 'labels' has shape \(1,\)"),
    ({'data': numpy.zeros((1, 3071), numpy.uint8), 'labels': [1]},
     r"'data' should be a uint8 array of shape \(N, 3072\), got uint8 "
     r'\(1, 3071\)'),
])
def test_a_malformed_batch_is_a_one_line_error(raw, why):
    with pytest.raises(DatasetError,
                       match=r'^wrong contents in src: data_batch_1 ' + why):
        parse_batch(raw, 'data_batch_1', 'src')


def test_a_pickle_naming_other_globals_is_refused(tmp_path):
    folder = tmp_path / cifar10_format.FOLDER_NAME
    folder.mkdir()
    (folder / 'test_batch').write_bytes(pickle.dumps(io.StringIO()))
    with pytest.raises(pickle.UnpicklingError,
                       match='unexpected object _io.StringIO'):
        cifar10_format.read_batches(str(folder), ('test_batch',))
