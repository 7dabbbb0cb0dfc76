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
    # through the split's modules, and evaluated method.predictor on the
    # test images.
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


def _readme():
    with open(os.path.join(REPO, 'README.md')) as f:
        return f.read()


def _bash_commands(text):
    """Every command line of the README's ```bash blocks, in order, with
    continuation lines joined and comments dropped."""
    commands = []
    for block in re.findall(r'```bash\n(.*?)```', text, re.S):
        for line in block.replace('\\\n', ' ').splitlines():
            line = line.split('  #')[0].strip()
            if line and not line.startswith('#'):
                commands.append(line)
    return commands


def test_the_first_screen_has_the_command_and_the_table():
    lines = _readme().splitlines()
    first = next(i for i, l in enumerate(lines) if 'train/train_cifar.py' in l)
    assert first < 40 and 'pip install' in lines[first]
    table = next(i for i, l in enumerate(lines)
                 if l.startswith('| method (`--method`) | paper'))
    assert table < 80
    assert lines.index('## Quick start') < first < \
        lines.index('## Results at a glance') < table


def test_compare_runs_reads_folders_that_earlier_commands_make():
    made = set()
    compared = 0
    for command in _bash_commands(_readme()):
        words = command.split()
        if 'train/compare_runs.py' in words:
            folders = words[words.index('train/compare_runs.py') + 1:]
            assert folders and set(folders) <= made, (command, made)
            compared += 1
        made.update(words[i + 1] for i, w in enumerate(words[:-1])
                    if w == '--out')
    assert compared


def test_the_test_command_is_the_one_ci_runs():
    """Set-up is two commands, (1) install-and-run and (2) the tests, and
    .ci/run runs the README's test command, whose last line counts the
    tests (pytest -q), one test process per core (-n auto)."""
    commands = _bash_commands(_readme().split('## Results at a glance')[0])
    setup = [c for c in commands if 'pip install' in c or 'pytest' in c]
    assert len(setup) == 2
    assert setup[1] == '.venv/bin/python -m pytest -q -n auto'
    with open(os.path.join(REPO, '.ci', 'run')) as f:
        ci = f.read()
    assert re.search(r'^\s*"\$3/bin/python" -m pytest -q -n auto \|\|', ci, re.M)
