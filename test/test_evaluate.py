"""``depth_interp eval`` end to end on tiny generated Middlebury-like and TUM-like folders."""
import json
import math
import os

import cv2
import numpy as np
import pytest

from ros2_depth_interp.evaluation import evaluate
from ros2_depth_interp.evaluation.baselines import BASELINES
from ros2_depth_interp.evaluation.figures import colorize, colour_range, figure1_array, save_grouped_bars

SCENES = ('SceneA', 'SceneB')
H, W = 45, 60


def _write_scene(folder, seed):
    """view1.png (RGB, two textured regions) and disp1.png (8-bit full-size disparity, 0 = unknown)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    near = (xx - 20) ** 2 + (yy - 22) ** 2 < 14 ** 2
    disp = np.where(near, 150, 60 + xx // 2).astype(np.uint8)  # stored in full-size pixels
    disp[:3, :5] = 0  # a few unknown pixels
    grey = np.where(near, 180, 70) + rng.integers(0, 40, (H, W))
    view = np.dstack([grey, grey * 0.8, grey * 0.6]).clip(0, 255).astype(np.uint8)
    os.makedirs(folder)
    assert cv2.imwrite(os.path.join(folder, 'view1.png'), view)
    assert cv2.imwrite(os.path.join(folder, 'disp1.png'), disp)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('middlebury')
    for i, scene in enumerate(SCENES):
        _write_scene(str(root / 'ThirdSize' / scene), seed=i)
    return str(root)


def _run(argv, capsys=None):
    rc = evaluate.main(argv)
    out = capsys.readouterr() if capsys else None
    return rc, out


def _load(out_dir):
    with open(os.path.join(out_dir, 'results.json')) as f:
        report = json.load(f)
    with open(os.path.join(out_dir, 'results.md')) as f:
        md = f.read()
    return report, md


def test_baselines_end_to_end(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('DEPTH_INTERP_MODEL', str(tmp_path / 'no_such_model.onnx'))
    out = str(tmp_path / 'eval')
    rc, text = _run(['--data', data, '--scenes', *SCENES, '--protocols', 'uniform@0.2', 'gradient@0.15',
                     '--out', out, '--no-progress', '--figure-scenes', 'SceneA', '--figure-protocols', 'uniform@0.2'],
                    capsys)
    assert rc == 0
    assert 'MODEL SKIPPED' in text.err and 'model file not found' in text.err
    report, md = _load(out)
    meta = report['meta']
    assert meta['model']['used'] is False and 'not found' in meta['model']['skipped']
    assert meta['methods'] == list(BASELINES)
    assert meta['psnr_peak'] == pytest.approx(85.0)  # 255 in file units = 255 / 3 px at third size
    assert list(report['results']) == ['uniform@0.20', 'gradient@0.15']
    for label, per_frame in report['results'].items():
        assert list(per_frame) == list(SCENES)
        for row in per_frame.values():
            assert set(row) == set(BASELINES)
            fractions = {r['known_fraction'] for r in row.values()}
            assert len(fractions) == 1  # the same mask for every method
            for r in row.values():
                assert math.isfinite(r['all']['psnr']) and r['all']['psnr'] > 10
                assert r['all']['count'] == H * W - 15  # the 15 unknown-disparity pixels are excluded
                assert r['unknown']['count'] < r['all']['count']
                assert r['time_s'] >= 0
        for name in BASELINES:
            mean = report['summary'][label][name]['all']['psnr']
            assert mean == pytest.approx(np.mean([per_frame[s][name]['all']['psnr'] for s in SCENES]))
    assert '**model skipped**' in md
    assert '## uniform@0.20: PSNR (dB) / RMSE' in md and '| **mean** |' in md and '| time (s/frame) |' in md
    assert md.count('| SceneA |') == 2
    # Figures only for the chosen frame and protocol.
    assert report['figures'] == ['fig_SceneA_uniform_0.20.png']
    pngs = sorted(f for f in os.listdir(out) if f.endswith('.png'))
    assert pngs == report['figures']


def test_figures_for_default_protocols(data, tmp_path):
    out = str(tmp_path / 'eval')
    rc, _ = _run(['--data', data, '--scenes', 'SceneB', '--protocols', 'uniform@0.10', 'gradient@0.10',
                  '--methods', 'nearest', 'linear', '--out', out, '--no-progress', '--repeat', '2'])
    assert rc == 0
    report, md = _load(out)
    assert report['meta']['repeat'] == 2 and '(median of 2)' in md
    row = report['results']['uniform@0.10']['SceneB']['linear']
    assert 0 < row['time_min_s'] <= row['time_s']
    assert row['cpu_s'] >= 0 and '| CPU time (s/frame) |' in md
    assert report['figures'] == ['fig_SceneB_uniform_0.10.png', 'fig_SceneB_gradient_0.10.png']
    img = cv2.imread(os.path.join(out, report['figures'][0]))
    assert img is not None and img.shape[0] > 100 and img.shape[1] > 300


def test_same_masks_for_every_method_and_reproducible(data):
    frames = evaluate.load_middlebury_frames(data, SCENES)
    seen = {}

    def recorder(name):
        def fn(depth, mask, intensity):
            seen.setdefault(name, []).append((depth.copy(), mask.copy()))
            return BASELINES['nearest'](depth, mask, intensity)
        return fn

    methods = {'a': recorder('a'), 'b': recorder('b')}
    first, _ = evaluate.evaluate(frames, ['uniform@0.20', 'lsd@0.20'], methods, seed=3, progress=False)
    assert len(seen['a']) == len(seen['b']) == 4
    for (da, ma), (db, mb) in zip(seen['a'], seen['b']):
        assert np.array_equal(ma, mb) and np.array_equal(da, db)
    # Protocols and frames draw different pixels.
    assert not np.array_equal(seen['a'][0][1], seen['a'][1][1])
    assert not np.array_equal(seen['a'][0][1], seen['a'][2][1])
    again, _ = evaluate.evaluate(frames, ['uniform@0.20', 'lsd@0.20'], {'a': BASELINES['nearest']}, seed=3,
                                 progress=False)
    assert again['uniform@0.20']['SceneA']['a']['all'] == first['uniform@0.20']['SceneA']['a']['all']
    other, _ = evaluate.evaluate(frames, ['uniform@0.20'], {'a': BASELINES['nearest']}, seed=4, progress=False)
    assert other['uniform@0.20']['SceneA']['a']['all'] != first['uniform@0.20']['SceneA']['a']['all']


def test_every_timed_call_comes_after_a_pause(data):
    # the previous method's ONNX Runtime threads may still spin: each call waits SETTLE_S first,
    # and the pause is not counted in the method's time
    import time
    frames = evaluate.load_middlebury_frames(data, SCENES[:1])
    starts = []

    def fn(depth, mask, intensity):
        starts.append(time.perf_counter())
        return BASELINES['nearest'](depth, mask, intensity)

    results, _ = evaluate.evaluate(frames, ['uniform@0.20'], {'a': fn, 'b': fn}, progress=False, repeat=2)
    assert len(starts) == 4 and min(np.diff(starts)) >= evaluate.SETTLE_S
    assert results['uniform@0.20']['SceneA']['a']['time_s'] < evaluate.SETTLE_S


def test_a_failing_method_is_reported_not_fatal(data):
    frames = evaluate.load_middlebury_frames(data, SCENES[:1])

    def broken(depth, mask, intensity):
        return np.full(depth.shape, np.nan, np.float32)

    results, _ = evaluate.evaluate(frames, ['uniform@0.20'], {'broken': broken, 'nearest': BASELINES['nearest']},
                                   progress=False)
    row = results['uniform@0.20']['SceneA']
    assert 'non-finite' in row['broken']['error']
    assert math.isfinite(row['nearest']['all']['psnr'])
    summary = evaluate.summarize(results, ['broken', 'nearest'])
    assert 'broken' not in summary['uniform@0.20'] and 'nearest' in summary['uniform@0.20']


def test_with_an_onnx_model(data, tmp_path):
    export = pytest.importorskip('ros2_depth_interp.learning.export', reason='exporting a model needs torch')
    model = export.export_tiny_model(str(tmp_path / 'tiny.onnx'))
    out = str(tmp_path / 'eval')
    rc, _ = _run(['--data', data, '--scenes', *SCENES, '--protocols', 'gradient@0.10', '--model', model,
                  '--methods', 'model', 'nearest', '--out', out, '--no-progress'])
    assert rc == 0
    report, md = _load(out)
    assert report['meta']['model']['used'] is True and report['meta']['methods'] == ['model', 'nearest']
    for row in report['results']['gradient@0.10'].values():
        assert math.isfinite(row['model']['all']['rmse']) and row['model']['all']['count'] > 0
    assert '| frame | model | nearest |' in md and 'model skipped' not in md
    assert os.path.isfile(os.path.join(out, 'fig_SceneA_gradient_0.10.png'))


def test_compared_models_run_on_the_same_masks(data, tmp_path, tiny_model_path):
    out = str(tmp_path / 'eval')
    rc, _ = _run(['--data', data, '--scenes', *SCENES, '--protocols', 'gradient@0.10', '--model', tiny_model_path,
                  '--compare', 'again=' + tiny_model_path, '--methods', 'model', '--out', out, '--no-progress'])
    assert rc == 0
    report, md = _load(out)
    assert report['meta']['methods'] == ['model', 'again'] and '| frame | model | again |' in md
    for row in report['results']['gradient@0.10'].values():  # the same network on the same input
        assert row['again']['all']['psnr'] == row['model']['all']['psnr']


def test_tum_kind(tmp_path):
    root = tmp_path / 'tum'
    os.makedirs(root / 'seq')
    yy, xx = np.mgrid[0:48, 0:64]
    depth = (5000 * (1.0 + 0.02 * xx)).astype(np.uint16)
    depth[:, :4] = 0  # sensor holes
    grey = (40 + 3 * xx + (yy % 5) * 10).astype(np.uint8)
    assert cv2.imwrite(str(root / 'seq' / 'f1.png'), np.dstack([grey] * 3))
    assert cv2.imwrite(str(root / 'seq' / 'f1_depth.png'), depth)
    out = str(tmp_path / 'eval')
    rc, _ = _run(['--data-kind', 'tum', '--data', str(root), '--methods', 'nearest', 'colorization',
                  '--out', out, '--no-progress'])
    assert rc == 0
    report, md = _load(out)
    assert report['meta']['frames'] == ['seq/f1'] and report['meta']['units'] == 'm'
    assert list(report['results']) == list(evaluate.TUM_PROTOCOLS)
    r = report['results']['uniform@0.10']['seq/f1']['colorization']['all']
    assert r['count'] == 48 * 60 and r['rmse'] < 0.05  # metres, a smooth ramp
    assert os.path.isfile(os.path.join(out, 'fig_seq_f1_uniform_0.10.png'))


@pytest.mark.parametrize('argv', [
    ['--protocols', 'bogus@0.1'],
    ['--protocols', 'uniform@1.5'],
    ['--scenes', 'NoSuchScene'],
    ['--methods', 'magic'],
    ['--model', '/no/such/model.onnx'],
    ['--views', '7'],
    ['--views', 'left'],
    ['--views', '5'],              # the generated scenes have no view5 / disp5
    ['--compare', 'nolabel.onnx'],
    ['--compare', 'nearest=/no/such/model.onnx'],
    ['--compare', 'x=/no/such/model.onnx'],
])
def test_bad_config_is_one_clear_error(data, tmp_path, capsys, argv):
    rc, text = _run(['--data', data, '--scenes', 'SceneA', '--out', str(tmp_path / 'e'), '--no-progress'] + argv,
                    capsys)
    assert rc == 2
    assert text.err.startswith('depth_interp eval: ') and len(text.err.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / 'e' / 'results.json')


def test_right_views_are_further_frames_of_the_same_scenes(tmp_path):
    # a scene whose right view (view5 / disp5) differs from its left one: both are evaluated, as
    # separate frames, on masks of their own
    root = tmp_path / 'middlebury'
    _write_scene(str(root / 'ThirdSize' / 'SceneA'), seed=0)
    folder = root / 'ThirdSize' / 'SceneA'
    view, disp = cv2.imread(str(folder / 'view1.png')), cv2.imread(str(folder / 'disp1.png'), cv2.IMREAD_GRAYSCALE)
    assert cv2.imwrite(str(folder / 'view5.png'), view[:, ::-1]) and cv2.imwrite(str(folder / 'disp5.png'), disp[:, ::-1] // 2)
    out = str(tmp_path / 'e')
    rc, _ = _run(['--data', str(root), '--scenes', 'SceneA', '--views', '1,5', '--methods', 'nearest',
                  '--protocols', 'uniform@0.10', '--out', out, '--no-progress', '--figure-scenes'])
    assert rc == 0
    per_frame = _load(out)[0]['results']['uniform@0.10']
    assert set(per_frame) == {'SceneA', 'SceneA/view5'}
    left, right = (per_frame[n]['nearest']['all'] for n in ('SceneA', 'SceneA/view5'))
    assert left['count'] == right['count'] and left['rmse'] != right['rmse']
    frames = evaluate.load_middlebury_frames(str(root), ('SceneA',), views=(5,))
    np.testing.assert_array_equal(frames[0]['gt'] * 3, (disp[:, ::-1] // 2).astype(np.float32))


def test_protocol_parsing():
    assert evaluate.parse_protocol('gradient@0.10') == ('gradient', 0.1)
    assert evaluate.parse_protocol('uniform@5%') == ('uniform', 0.05)
    assert evaluate.protocol_label('uniform', 0.1) == 'uniform@0.10'
    assert evaluate.protocol_label('lsd', 0.025) == 'lsd@0.025'


def test_figure_helpers():
    values = np.linspace(1.0, 2.0, 20 * 30, dtype=np.float32).reshape(20, 30)
    valid = np.ones_like(values, bool)
    valid[0, 0] = False
    lo, hi = colour_range(values, valid, percentiles=(0, 100))
    assert lo == pytest.approx(values.ravel()[1]) and hi == pytest.approx(2.0)
    rgb = colorize(values, lo, hi, valid)
    assert rgb.dtype == np.uint8 and rgb.shape == (20, 30, 3)
    assert not rgb[0, 0].any() and rgb[5, 5].any()
    assert not np.array_equal(rgb[1, 0], rgb[-1, -1])  # the scale spans the range
    mask = np.zeros_like(valid)
    mask[::4, ::4] = True
    img = figure1_array(np.zeros((20, 30), np.uint8), np.where(mask, values, 0), mask, {'x': values}, values, valid)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


def test_grouped_bars_picture(tmp_path):
    path = str(tmp_path / 'sub' / 'bars.png')
    series = {'gain': [1.0, -2.0, 300.0], 'loss': [-0.5, 0.0, 4.0]}
    assert save_grouped_bars(path, ['A', 'B', 'C'], series, 'dB', title='t', symlog=10) == path
    picture = cv2.imread(path)
    assert picture is not None and picture.shape[0] > 100 and picture.std() > 0
