#!/usr/bin/env python
"""Why do the closed-form VFBNs agree best with δ and train worst?

Three explanations are possible:

* **scale**: δ̂ is too large or too small;
* **α**: the virtual network ``v_f`` moves too fast;
* **initialization**: ``v_f`` starts badly.

This script separates them for ``vfbn-linear`` (Eq. 8) and ``vfbn-mlp``
(Eq. 9). Each variant changes one of the three, and trains ResNet-8
``paper`` from the same initial weights on the same batches. For each one it
prints the training accuracy, the validation error, and cos(δ̂, δ) and
‖δ̂‖/‖δ‖ over the run. The variants:

``alpha=A``        v_f trained by Adam with step size A (the tuning grid's
                   values);
``alpha=0``        v_f fixed at its random initialization;
``alpha=0+W/4``    fixed, with v_f's output layer scaled by 1/4: the same
                   direction as ``alpha=0`` at a quarter of the scale.

Example (minutes on one core)::

    OMP_NUM_THREADS=1 python train/closed_form_diagnosis.py \\
        --data-dir ../shared/data/cifar-10-mini --iterations 132 --seeds 0,1
"""
import argparse
import json
import sys

import chainer_vfbn  # NOQA  (compatibility shims before chainer)

import chainer  # NOQA
import numpy  # NOQA

from chainer_vfbn import datasets  # NOQA
from chainer_vfbn.runs.evaluation import evaluate_views  # NOQA
from chainer_vfbn.models import resnet_cifar  # NOQA
from chainer_vfbn.methods import build_method  # NOQA

VARIANTS = ('alpha=1e-3', 'alpha=1e-5', 'alpha=0', 'alpha=0+W/4')


def _output_layer(synth):
    return synth.fc if hasattr(synth, 'fc') else synth.l2


def run(method, variant, seed, data, iterations, batchsize):
    """Train one variant; returns its figures."""
    (train_x, train_t), (val_x, val_t) = data
    alpha = 0. if variant.startswith('alpha=0') else float(variant[6:])
    numpy.random.seed(seed)
    net = resnet_cifar('resnet8-paper')
    built = build_method(method, net, alpha_gs=alpha)
    synth = built.synthesizers[0]
    if variant.endswith('W/4'):
        _output_layer(synth).W.array *= 0.25
    it = datasets.AugmentedIterator(train_x, train_t, batchsize, seed=seed)
    updater = built.make_updater(it, chainer.dataset.concat_examples, None)
    seen = []
    for _ in range(iterations):
        obs = {}
        with chainer.Reporter().scope(obs):
            updater.update()
        seen.append({k: float(chainer.as_array(v)) for k, v in obs.items()})
    last = seen[-max(1, len(seen) // 4):]   # the last quarter of the run

    def mean(key, part):
        return float(numpy.mean([s[key] for s in part]))
    ev = evaluate_views(built.predictor, val_x, val_t, tta=False)
    return dict(method=method, variant=variant, seed=seed,
                train_accuracy_last_quarter=mean('main/accuracy', last),
                val_error=ev['error'],
                cos_first=seen[0]['synth/cos'],
                cos_last_quarter=mean('synth/cos', last),
                norm_ratio_first=seen[0]['synth/norm_ratio'],
                norm_ratio_last_quarter=mean('synth/norm_ratio', last))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data-dir', required=True,
                   help='folder of cifar-10-python.tar.gz (e.g. the mini set)')
    p.add_argument('--iterations', type=int, default=132)
    p.add_argument('--batchsize', type=int, default=128)
    p.add_argument('--seeds', default='0,1')
    p.add_argument('--methods', default='vfbn-linear,vfbn-mlp')
    p.add_argument('--variants', default=','.join(VARIANTS))
    p.add_argument('--json', default=None)
    args = p.parse_args(argv)
    (train_x, train_t), _ = datasets.load_cifar10(args.data_dir,
                                                  download=False)
    keep, held = datasets.validation_split(train_t, 0.1)
    data = ((train_x[keep], train_t[keep]), (train_x[held], train_t[held]))
    rows = []
    print('| method | variant | seed | train acc. (last 1/4) | val. error | '
          'cos first → last 1/4 | ‖δ̂‖/‖δ‖ first → last 1/4 |')
    print('|---|---|---:|---:|---:|---:|---:|')
    for method in args.methods.split(','):
        for variant in args.variants.split(','):
            for seed in [int(s) for s in args.seeds.split(',')]:
                r = run(method, variant, seed, data, args.iterations,
                        args.batchsize)
                rows.append(r)
                print('| %s | %s | %d | %.3f | %.3f | %.3f → %.3f | '
                      '%.2f → %.2f |' % (
                          method, variant, seed,
                          r['train_accuracy_last_quarter'], r['val_error'],
                          r['cos_first'], r['cos_last_quarter'],
                          r['norm_ratio_first'], r['norm_ratio_last_quarter']),
                      flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), rows=rows), f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
