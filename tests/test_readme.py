"""The README's code blocks run as written, so that they cannot go stale."""
import os
import re

import numpy

from support import REPO


def section_code(title):
    """The ```python block of the README section ``## <title>``."""
    with open(os.path.join(REPO, 'README.md')) as f:
        text = f.read()
    section = text.split('\n## %s\n' % title, 1)[1].split('\n## ', 1)[0]
    blocks = re.findall(r'```python\n(.*?)```', section, re.S)
    assert len(blocks) == 1, 'expected one python block in ## %s' % title
    return blocks[0]


def test_use_it_on_your_own_model_runs(capsys):
    code = section_code('Use it on your own model')
    assert len(code.splitlines()) <= 25
    scope = {}
    exec(compile(code, 'README.md', 'exec'), scope)
    # It trained the user's model with VFBN: one epoch of the sample,
    # updating the model's own parameters through the split's modules.
    trainer, model, method = scope['trainer'], scope['model'], scope['method']
    assert trainer.updater.iteration == 10          # 500 images / batch 50
    assert method.name == 'vfbn' and len(method.synthesizers) == 1
    assert numpy.isfinite(trainer.observation['main/loss'].array)
    assert {id(p) for m in method.modules for p in m.params()} == \
        {id(p) for p in model.params()}
    assert capsys.readouterr().out.strip().endswith('(32, 8, 8)')
