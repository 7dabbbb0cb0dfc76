"""The README's code blocks run as written, so that they cannot go stale."""
import os
import re

import numpy
import pytest

from support import REPO


def section_blocks(title):
    """The ```python blocks of the README section ``## <title>``."""
    with open(os.path.join(REPO, 'README.md')) as f:
        text = f.read()
    section = text.split('\n## %s\n' % title, 1)[1].split('\n## ', 1)[0]
    return re.findall(r'```python\n(.*?)```', section, re.S)


def section_code(title):
    """The one ```python block of the README section ``## <title>``."""
    blocks = section_blocks(title)
    assert len(blocks) == 1, 'expected one python block in ## %s' % title
    return blocks[0]


def test_use_it_on_your_own_model_runs():
    pytest.importorskip('chainercv2')
    code, _ = section_blocks('Use it on your own model')
    assert len(code.splitlines()) <= 25
    scope = {}
    exec(compile(code, 'README.md', 'exec'), scope)
    # It trained chainercv2's ResNet-20, cut mid stage 2, with VFBN: one
    # epoch of 100 sample images, updating the model's own parameters
    # through the split's modules, and evaluated method.predictor on the test images.
    trainer, model, method = scope['trainer'], scope['model'], scope['method']
    assert trainer.updater.iteration == 4           # 100 images / batch 25
    assert method.name == 'vfbn' and len(method.synthesizers) == 1
    assert method.split_at == ('features.stage2.unit2',)
    assert {id(p) for m in method.modules for p in m.params()} == \
        {id(p) for p in model.params()}
    log = trainer.get_extension('LogReport').log
    assert len(log) == 1 and numpy.isfinite(log[0]['main/loss'])
    assert -1 <= log[0]['synth/cos'] <= 1
    assert 0 <= log[0]['validation/main/accuracy'] <= 1
    # What it prints, one line an epoch (PrintReport binds the stdout of
    # chainer's import, so its entries are checked, not the capture).
    assert trainer.get_extension('PrintReport')._entries == [
        'epoch', 'main/loss', 'synth/cos', 'validation/main/accuracy']


def test_a_chainercv_backbone_runs(capsys):
    """Skipped where chainercv is not installed (0.13's sdist does not
    build on Python 3.11 with NumPy 2 without a rebuilt extension)."""
    pytest.importorskip('chainercv.links')
    _, code = section_blocks('Use it on your own model')
    exec(compile(code, 'README.md', 'exec'), {})
    out = capsys.readouterr().out.strip()
    assert out == code.strip().splitlines()[-1].lstrip('# ')
