"""chainer_vfbn.experiments.bench.steps: the type-check switch of the step timing."""
import chainer

from chainer_vfbn.experiments.bench import steps


def test_type_checks_alternate_on_and_off():
    seen = []

    class FakeStep(object):
        def __call__(self):
            seen.append(chainer.config.type_check)

        def synchronize(self):
            pass

    res = steps.chainer_step_times(FakeStep(), iters=2, warmup=1)
    default = chainer.config.type_check
    assert seen == [default, True, False, True, False]
    assert set(res) == {'type_check_on', 'type_check_off'}
    assert all(len(r['times_s']) == 2 and r['median_s'] >= 0
               for r in res.values())


def test_chainer_step_is_one_training_step():
    """A step updates the network as training does: the same weights after
    one step as the method's own updater on the same batch."""
    import numpy
    from chainer_vfbn.methods import build_method
    from chainer_vfbn.models import resnet_cifar
    device = chainer.get_device('@numpy')
    x, t = steps.random_batch('resnet8-paper', 4, seed=0)
    step = steps.ChainerStep('vfbn', 'resnet8-paper', (x, t), device,
                             lr=0.1, alpha_gs=1e-3, seed=3)
    step()
    numpy.random.seed(3)
    built = build_method('vfbn', resnet_cifar('resnet8-paper'), lr=0.1,
                         momentum=0.9, weight_decay=1e-4, alpha_gs=1e-3)
    updater = built.make_updater(
        chainer.iterators.SerialIterator(list(zip(x, t)), 4, shuffle=False),
        chainer.dataset.concat_examples, None)
    with chainer.Reporter().scope({}):
        updater.update()
    got = {name: opt.target for name, opt in
           step.updater.get_all_optimizers().items()}
    for name, opt in updater.get_all_optimizers().items():
        for (path, p), (_, q) in zip(opt.target.namedparams(),
                                     got[name].namedparams()):
            numpy.testing.assert_allclose(q.array, p.array, rtol=1e-5,
                                          atol=1e-6, err_msg=path)
