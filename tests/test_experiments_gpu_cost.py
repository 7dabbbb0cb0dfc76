"""The one GPU-hours estimate (chainer_vfbn.experiments.gpu_cost): the
measured step, the arithmetic, and the same words wherever it is shown."""
import json
import os
import re
import subprocess
import sys

from support import REPO
from chainer_vfbn.experiments import gpu_cost
from chainer_vfbn.experiments.schedules import SCHEDULES

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
    cost = gpu_cost.table_cost(SCHEDULES['paper']['args'])
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
    assert gpu_cost.run_cost([])['eval_share'] == \
        (432 + 36 * 12) * 10000 / (432 * 50000.)


def test_help_and_docs_show_the_one_estimate():
    said = _words(gpu_cost.sentence(SCHEDULES['paper']['args']))
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
