"""data/download_cifar10.py: fetch or verify CIFAR-10, one line per error."""
import hashlib
import importlib.util
import os
import urllib.error

import pytest

from chainer_vfbn.datasets import cifar10

from support import REPO
from support import SAMPLE


@pytest.fixture(scope='module')
def script():
    spec = importlib.util.spec_from_file_location(
        'download_cifar10',
        os.path.join(REPO, 'data', 'download_cifar10.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_on_sample(script, capsys):
    assert script.main(['--data-dir', os.path.dirname(SAMPLE),
                        '--no-download']) == 0
    out = capsys.readouterr().out
    with open(SAMPLE, 'rb') as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    assert 'md5: %s unknown' % md5 in out
    assert 'train: 500 images, uint8 (500, 3, 32, 32), labels 0..9' in out
    assert 'test: 150 images' in out
    assert out.count('airplane 50, automobile 50') == 1
    assert out.count('ship 15, truck 15') == 1
    assert script.main(['--data-dir', SAMPLE, '--require-official']) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'not the official archive' in err


def test_script_on_mini(script, capsys, mini_archive):
    assert script.main(['--data-dir', mini_archive]) == 0
    out = capsys.readouterr().out
    assert 'train: 4660 images' in out and 'test: 846 images' in out
    assert 'airplane 479, automobile 479, bird 444' in out


def test_script_errors(script, capsys, tmp_path, monkeypatch):
    assert script.main(['--data-dir', str(tmp_path), '--no-download']) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1
    assert err.startswith('download_cifar10.py: error: ')
    assert 'not found' in err

    def fail(url, timeout=None):
        raise urllib.error.URLError('offline')
    monkeypatch.setattr(cifar10, 'urlopen', fail)
    assert script.main(['--data-dir', str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'cannot download' in err
    (tmp_path / 'cifar-10-python.tar.gz').write_bytes(b'garbage')
    assert script.main(['--data-dir', str(tmp_path)]) == 1
    assert 'corrupt or truncated' in capsys.readouterr().err
