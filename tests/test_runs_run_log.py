"""A run's plots and progress display (chainer_vfbn.runs.run_log)."""
import io
import types

import pytest

from chainer_vfbn.runs import run_log


class _Trainer(object):
    """What the report extensions read of a trainer."""

    def __init__(self, out):
        self.out = out
        self.extensions = []
        self.observation = {}
        self.is_before_training = False
        self.updater = types.SimpleNamespace(iteration=0, epoch=0,
                                             epoch_detail=0.)

    def extend(self, extension, **kwargs):
        self.extensions.append(extension)


def _figures(tmp_path, monkeypatch, eval_prefix, entries, split_at=()):
    """Drive extend_reports' PlotReports over ``entries`` (one per epoch);
    the last figure each one saved, by file name."""
    pytest.importorskip('matplotlib')
    import matplotlib.figure
    saved = {}

    def savefig(figure, path, **kwargs):
        saved[path.rsplit('/', 1)[-1]] = figure
    monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', savefig)
    trainer = _Trainer(str(tmp_path))
    run_log.extend_reports(trainer, ['synth'], (1, 'epoch'),
                           eval_prefix=eval_prefix,
                           run='vfbn on resnet20-paper (sample-vfbn)',
                           split_at=split_at)
    plots = [e for e in trainer.extensions
             if isinstance(e, run_log.extensions.PlotReport)]
    assert len(plots) == 5
    for epoch, entry in enumerate(entries, 1):
        trainer.updater.epoch = trainer.updater.epoch_detail = epoch
        trainer.updater.iteration = 10 * epoch
        trainer.observation = entry
        for plot in plots:
            plot(trainer)
    return saved


def test_plots_say_what_they_show(tmp_path, monkeypatch):
    entries = [{'main/loss': 2.3, 'test/main/loss': 2.4,
                'test/main/error': 0.9, 'synth/cos': 0.1,
                'synth/relerr': 1.02, 'synth/norm_ratio': 0.3},
               {'main/loss': 2.0, 'test/main/loss': 2.1,
                'test/main/error': 0.8, 'test/main/tta_error': 0.75,
                'synth/cos': 0.2, 'synth/relerr': 0.99,
                'synth/norm_ratio': 0.4},
               {'main/loss': 1.9, 'test/main/loss': 2.0,
                'test/main/error': 0.7, 'synth/cos': 0.2,
                'synth/relerr': 0.98, 'synth/norm_ratio': 0.5},
               {'main/loss': 1.8, 'test/main/loss': 1.9,
                'test/main/error': 0.6, 'test/main/tta_error': 0.55,
                'synth/cos': 0.3, 'synth/relerr': 0.97,
                'synth/norm_ratio': 0.6}]
    saved = _figures(tmp_path, monkeypatch, 'test', entries)
    assert set(saved) == {'loss.png', 'error.png', 'synth_cos.png',
                          'synth_relerr.png', 'synth_norm_ratio.png'}
    ax = saved['error.png'].axes[0]
    assert ax.get_title() == ('vfbn on resnet20-paper (sample-vfbn): error '
                              'on the test set')
    assert ax.get_ylabel() == 'error (%)' and ax.get_xlabel() == 'epoch'
    lines = {line.get_label(): line for line in ax.lines}
    centre = lines['test set, centre view']
    tta = lines['test set, multi-view TTA']
    # In percent, as in the terminal; the two TTA points unjoined.
    assert list(centre.get_ydata()) == pytest.approx([90, 80, 70, 60])
    assert list(tta.get_xdata()) == [2, 4]
    assert list(tta.get_ydata()) == pytest.approx([75, 55])
    assert tta.get_linestyle() == 'None' and tta.get_marker() == 'o'
    assert centre.get_linestyle() == '-'
    ax = saved['loss.png'].axes[0]
    assert ax.get_title().startswith('vfbn on resnet20-paper')
    assert ax.get_ylabel() == 'softmax cross-entropy loss'
    assert {line.get_label() for line in ax.lines} == {
        'training (mean over the epoch)', 'test set, centre view'}
    ax = saved['synth_relerr.png'].axes[0]
    assert 'relerr' in ax.get_title()
    assert ax.get_ylabel() == '||grad_synth - grad_true|| / ||grad_true||'
    assert ax.get_xlabel() == 'iteration'


def test_relerr_plot_marks_one_and_names_the_split(tmp_path, monkeypatch):
    entries = [{'synth/cos': 0.1, 'synth/relerr': 1.04,
                'synth/norm_ratio': 0.3},
               {'synth/cos': 0.2, 'synth/relerr': 1.02,
                'synth/norm_ratio': 0.4}]
    saved = _figures(tmp_path, monkeypatch, 'test', entries,
                     split_at=['stage2_unit9'])
    ax = saved['synth_relerr.png'].axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) == {'split after stage2_unit9',
                          '1: grad_synth as far from grad_true as zero is'}
    assert list(lines['split after stage2_unit9'].get_ydata()) == \
        pytest.approx([1.04, 1.02])
    one = lines['1: grad_synth as far from grad_true as zero is']
    assert list(one.get_ydata()) == [1, 1]
    # The legend (drawn by PlotReport after the style) shows both lines.
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        'split after stage2_unit9',
        '1: grad_synth as far from grad_true as zero is']
    # Only relerr has the reference; cos names the split too.
    ax = saved['synth_cos.png'].axes[0]
    assert [line.get_label() for line in ax.lines] == [
        'split after stage2_unit9']


def test_split_labels_name_the_cut_or_the_step():
    assert run_log.split_label('stage1_unit1') == 'split after stage1_unit1'
    assert run_log.split_label(1) == 'split after step 1'
    specs = run_log.plot_specs(['synth0', 'synth1'], split_at=[
        'stage1_unit9', 'stage2_unit9'])
    relerr = [style for keys, _, name, style in specs
              if name == 'synth_relerr.png'][0]
    assert relerr.series == {
        'synth0/relerr': ('split after stage1_unit9', 1, False),
        'synth1/relerr': ('split after stage2_unit9', 1, False)}
    # Without split points (or a count that does not match), the keys.
    assert [style.series['synth/cos'][0] for _, _, name, style in
            run_log.plot_specs(['synth']) if name == 'synth_cos.png'] == \
        ['synth']


def test_plots_of_a_validation_split_say_so(tmp_path, monkeypatch):
    saved = _figures(tmp_path, monkeypatch, 'val', [
        {'main/loss': 2.3, 'val/main/loss': 2.4, 'val/main/error': 0.9}])
    ax = saved['error.png'].axes[0]
    assert ax.get_title().endswith('error on the held-out validation split')
    assert [line.get_label() for line in ax.lines] == [
        'held-out validation split, centre view']


def test_printout_names_the_evaluation_set():
    assert run_log.columns([], eval_prefix='test')[4:7] == [
        'test/main/loss', 'test/main/error', 'test/main/tta_error']
    assert run_log.columns(['synth'], eval_prefix='val')[4:7] == [
        'val/main/loss', 'val/main/error', 'val/main/tta_error']


class _Tty(io.StringIO):
    def isatty(self):
        return True


def _drive(progress, iterations, dt):
    now = [0.]
    progress.clock = lambda: now[0]
    trainer = _Trainer('.')
    for i in iterations:
        now[0] += dt
        trainer.updater.iteration = i
        progress(trainer)


def test_progress_moves_within_an_epoch_on_a_terminal():
    out = _Tty()
    # 10 iterations per epoch, 20 in all; a call every second
    _drive(run_log.Progress(20, 10., out=out), range(1, 21), 1.)
    frames = [f.strip() for f in out.getvalue().split('\r') if f.strip()]
    assert frames[0].startswith('epoch 1 of 2 [##')
    assert ' 10% of it; iteration 1 of 20' in frames[0]
    assert ' 50% of it; iteration 5 of 20' in frames[4]
    assert '100% of it; iteration 10 of 20' in frames[9]
    assert frames[10].startswith('epoch 2 of 2') and ' 10% of it' in frames[10]
    assert '1.00 iters/s' in frames[5] and 'inf' not in out.getvalue()
    assert '\033' not in out.getvalue()


def test_progress_in_a_file_is_plain_and_sparse():
    out = io.StringIO()      # not a terminal
    # one call a second for 200 iterations: a line a minute and the last
    _drive(run_log.Progress(200, 50., out=out), range(1, 201), 1.)
    lines = out.getvalue().splitlines()
    assert '\033' not in out.getvalue() and '\r' not in out.getvalue()
    assert all(line.startswith('progress: epoch ') for line in lines)
    assert len(lines) == 5    # iterations 1, 61, 121, 181, 200
    assert 'iteration 61 of 200' in lines[1]
    assert lines[-1].startswith('progress: epoch 4 of 4') and \
        '100% of it; iteration 200 of 200 (100.0% of the run)' in lines[-1]
