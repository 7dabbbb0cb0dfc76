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
    tests (pytest -q)."""
    commands = _bash_commands(_readme().split('## Results at a glance')[0])
    setup = [c for c in commands if 'pip install' in c or 'pytest' in c]
    assert len(setup) == 2
    assert setup[1] == '.venv/bin/python -m pytest -q'
    with open(os.path.join(REPO, '.ci', 'run')) as f:
        ci = f.read()
    assert re.search(r'^\s*"\$3/bin/python" -m pytest -q \|\|', ci, re.M)
