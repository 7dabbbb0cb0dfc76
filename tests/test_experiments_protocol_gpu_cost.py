"""The one GPU-hours estimate (chainer_vfbn.experiments.protocol.gpu_cost): the
measured step, the arithmetic, and the same words wherever it is shown."""
import json
import os
import re
import subprocess
import sys

from chainer_vfbn.experiments.protocol import gpu_cost
from chainer_vfbn.experiments.protocol.schedules import SCHEDULES
from chainer_vfbn.runs.command_line import option_defaults
from support import REPO

MEASURED = os.path.join(REPO, 'docs', 'benchmarks', 'gpu_h200_2026-11-30',
                        'vs_pytorch.json')


def _words(text):
    return ' '.join(text.split())


def test_the_step_is_the_measured_one():
    with open(MEASURED) as f:
        measured = json.load(f)
    assert measured['device'] == 'NVIDIA H200'
    assert measured['config']['arch'] == 'resnet110-paper'
    assert measured['config']['batchsize'] == 128
    assert gpu_cost.STEP_S == {
        'bp': measured['results']['chainer-bp']['median_s'],
        'vfbn': measured['results']['chainer-vfbn']['median_s']}


def test_the_paper_schedule_by_hand():
    cost = gpu_cost.table_cost(SCHEDULES['paper']['options'])
    # 432 epochs x 50,000 images / batch 128
    assert cost['iterations'] == 168750
    assert abs(cost['train_h']['vfbn'] - 168750 * 0.3104908694 / 3600) < 1e-6
    assert abs(cost['train_h']['bp'] - 168750 * 0.2267539836 / 3600) < 1e-6
    # every 6th of 432 epochs: 72 evaluations of 10,000 images, 12 of them
    # with 36 views, against 432 x 50,000 training images
    assert cost['eval_share'] == (72 + 36 * 12) * 10000 / (432 * 50000.)
    assert cost['runs'] == 9 * 3
    assert 286 < cost['low_h'] < 288 and 484 < cost['high_h'] < 485
    # train_cifar.py's own defaults evaluate every epoch: 432 + 36 x 12
    assert _defaults_cost()['eval_share'] == \
        (432 + 36 * 12) * 10000 / (432 * 50000.)


def _defaults_cost():
    """run_cost of train_cifar.py's defaults (the paper's recipe)."""
    return gpu_cost.run_cost(option_defaults())


def test_the_gpu_page_and_readme_quote_the_recipe_s_cost():
    """docs/gpu.md and the README: train_cifar.py's full recipe, by hand
    there, equal to run_cost of its defaults here."""
    c = _defaults_cost()
    vfbn, bp = c['train_h']['vfbn'], c['train_h']['bp']
    with open(os.path.join(REPO, 'docs', 'gpu.md')) as f:
        page = _words(f.read())
    assert '**%.1f h for VFBN** (%.1f h for BP)' % (vfbn, bp) in page
    assert 'at most %.2f × %.1f h ≈ %.1f h' % (
        c['eval_share'], vfbn, c['eval_share'] * vfbn) in page
    with open(os.path.join(REPO, 'README.md')) as f:
        readme = _words(f.read())
    assert 'about %.1f h for VFBN and %.1f h for BP' % (vfbn, bp) in readme
    assert 'add at most %.1f h' % (c['eval_share'] * vfbn) in readme


def test_help_and_docs_show_the_one_estimate():
    said = _words(gpu_cost.sentence(SCHEDULES['paper']['options']))
    assert 'about 290 to 480 GPU-hours' in said
    proc = subprocess.run([sys.executable, os.path.join(
        REPO, 'train', 'reproduce.py'), '--help'], capture_output=True,
        text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert said in _words(proc.stdout)
    assert 'days of gpu' not in proc.stdout.lower()
    with open(os.path.join(REPO, 'docs', 'cluster.md')) as f:
        assert said in _words(f.read())
    # Any page that quotes GPU-hours quotes this estimate, no other.
    for page in ('README.md', os.path.join('docs', 'cluster.md')):
        with open(os.path.join(REPO, page)) as f:
            text = _words(f.read())
        for figure in re.findall(r'[\d.,]+ to [\d.,]+ GPU-hours', text):
            assert figure == '290 to 480 GPU-hours', (page, figure)
