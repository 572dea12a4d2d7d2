"""The scripts under scripts/ and experiments/ on tiny generated inputs (they time nothing here)."""
import importlib.util
import json
import os

import pytest

from node_helpers import needs_torch
from test_evaluate import _write_scene

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, 'scripts')
EXPERIMENTS = os.path.join(ROOT, 'experiments')


def _script(name, folder=SCRIPTS):
    spec = importlib.util.spec_from_file_location(name, os.path.join(folder, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _middlebury(tmp_path, scenes=('Alpha', 'Beta')):
    """A Middlebury root under ``tmp_path`` with small generated third-size ``scenes``."""
    root = tmp_path / 'middlebury'
    for i, scene in enumerate(scenes):
        _write_scene(str(root / 'ThirdSize' / scene), seed=i)
    return root


@needs_torch
def test_network_gain_bands_add_up_to_the_change_of_the_error(tiny_model_path, tmp_path):
    root = _middlebury(tmp_path, ('SceneA', 'SceneB'))
    out = str(tmp_path / 'gain.json')
    rc = _script('network_gain_by_distance', EXPERIMENTS).main(['--model', tiny_model_path, '--scenes', 'SceneA,SceneB',
                                                   '--data', str(root), '--out', out])
    assert rc == 0
    with open(out) as f:
        report = json.load(f)
    assert os.path.isfile(str(tmp_path / 'gain.png'))
    assert set(report['scenes']) == {'SceneA', 'SceneB'}
    for row in report['scenes'].values():
        assert len(row['bands']) == 5 and 'known pixels' in row['bands']
        # mean squared error / peak^2 = 10^(-PSNR / 10): the bands split its change, in 1e-6 units
        total = 1e6 * (10 ** (-row['prefill_psnr'] / 10) - 10 ** (-row['model_psnr'] / 10))
        assert sum(row['bands'].values()) == pytest.approx(total, rel=1e-3, abs=1e-3)


def _recipe_argv(script=os.path.join(SCRIPTS, 'train_shipped_model.sh'), preset=None):
    """The ``train`` command of a training script (default scripts/train_shipped_model.sh) as an argv
    list, the values it takes from the environment at their CPU defaults (and ``preset`` for a
    script that takes one)."""
    import shlex
    with open(script) as f:
        text = f.read().replace('\\\n', ' ')
    (line,) = [line for line in text.splitlines() if 'ros2_depth_interp.learning.train ' in line]
    values = {'"$out"': 'runs/x', '"$device"': 'cpu', '"$minutes"': '120', '"$drop"': '0.8', '"$mb"': 'data',
              '"$batch"': '4',
              '"$crop"': '256x320', '"$workers"': '1', '"$preset"': preset,
              '"$lr"': '5e-4', '"$lr_after"': '5e-5', '"$tilt"': '0', '"$keep"': '2000'}
    words = [values.get(w, w) for w in line.split('ros2_depth_interp.learning.train', 1)[1].split()]
    return shlex.split(' '.join(w for w in words if not w.startswith('"${')))


@needs_torch
def test_the_training_recipe_trains_the_shipped_models_tensors_and_exports_the_shipped_config(tmp_path):
    # the recipe's train command parses, trains geodesic_swept (the shipped model's tensors), stops on a
    # time budget and keeps the held-out families out of training; its export command turns such a
    # checkpoint into the shipped config (the default preset), which is the shipped checkpoint's
    import shlex
    import torch
    from ros2_depth_interp.core.resources import default_model_path
    from ros2_depth_interp.learning import export
    from ros2_depth_interp.learning.datasets import HELD_OUT_SCENES
    from ros2_depth_interp.learning.model import PRESETS, build_model, config_from_dict
    from ros2_depth_interp.learning.train import build_parser, make_config
    args = build_parser().parse_args(_recipe_argv())
    assert make_config(args) == PRESETS['geodesic_swept']
    assert args.time_limit == 120 and 0 < args.lr_drop_fraction < 1 and args.lr_after < args.lr
    assert set(HELD_OUT_SCENES) <= set(args.val_scenes)
    shipped = torch.load(default_model_path().replace('.onnx', '.pt'), map_location='cpu', weights_only=False)
    assert config_from_dict(shipped['config']) == PRESETS['default']
    trained = build_model('geodesic_swept')
    assert {k: v.shape for k, v in trained.state_dict().items()} == \
        {k: v.shape for k, v in shipped['model'].items()}
    with open(os.path.join(SCRIPTS, 'train_shipped_model.sh')) as f:
        text = f.read()
    assert '--resume "$out/last.pt"' in text     # a second sitting continues the first
    (export_line,) = [line for line in text.replace('\\\n', ' ').splitlines()
                      if 'ros2_depth_interp.learning.export' in line]
    words = shlex.split(export_line.split('ros2_depth_interp.learning.export', 1)[1])
    # the settings only: not the checkpoint, --out and its path, --fp16
    options = [w for w in words if '$out' not in w and w not in ('--out', '--fp16')]
    assert options and len(options) == len(words) - 4
    checkpoint = str(tmp_path / 'last.pt')
    torch.save({'config': PRESETS['geodesic_swept'].to_dict(), 'model': trained.state_dict()}, checkpoint)
    onnx_path = str(tmp_path / 'exported.onnx')
    assert export.main([checkpoint, '--out', onnx_path] + options) == 0
    exported = torch.load(str(tmp_path / 'exported.pt'), map_location='cpu', weights_only=False)
    assert config_from_dict(exported['config']) == PRESETS['default']


@needs_torch
@pytest.mark.parametrize('preset', ['spn_coarse', 'geodesic', 'geodesic_light'])
def test_the_candidate_recipe_trains_its_preset_on_held_out_safe_data_and_continues(preset):
    from ros2_depth_interp.learning.datasets import HELD_OUT_SCENES
    from ros2_depth_interp.learning.model import PRESETS
    from ros2_depth_interp.learning.train import build_parser, make_config
    script = os.path.join(EXPERIMENTS, 'train_candidate.sh')
    args = build_parser().parse_args(_recipe_argv(script, preset))
    assert make_config(args) == PRESETS[preset]
    assert args.time_limit > 0 and 0 < args.lr_drop_fraction < 1 and args.lr_after < args.lr
    assert set(HELD_OUT_SCENES) <= set(args.val_scenes)
    with open(script) as f:
        assert '--resume "$out/last.pt"' in f.read()


@needs_torch
def test_prefill_table_writes_numbers_a_chart_and_pictures(tmp_path, capsys):
    root = _middlebury(tmp_path)
    table = _script('prefill_table', EXPERIMENTS)
    only = 'CG 15/40|model 0.6.0, shipped'
    out = str(tmp_path / 'prefill.json')
    assert table.main(['--scenes', 'Alpha,Beta', '--data', str(root), '--only', only, '--out', out,
                       '--figure-scenes', 'Beta']) == 0
    with open(out) as f:
        report = json.load(f)
    assert report['scenes'] == ['Alpha', 'Beta'] and len(report['table']) == 2
    for per_protocol in report['table'].values():
        for protocol in ('uniform@0.10', 'gradient@0.10'):
            assert set(per_protocol[protocol]) == {'Alpha', 'Beta'}
            assert all(10.0 < row['psnr'] < 100.0 for row in per_protocol[protocol].values())
    for name in ('prefill.png', 'prefill_Beta_gradient_0.10.png'):
        assert os.path.getsize(tmp_path / name) > 10000
    assert not (tmp_path / 'prefill_Alpha_gradient_0.10.png').exists()


@needs_torch
def test_prefill_table_row_named_model_0_6_0_is_the_prefill_cnn_presets_prefill():
    from ros2_depth_interp.learning.model import build_model
    from ros2_depth_interp.learning.prefill import PyramidPrefill
    settings = _script('prefill_table', EXPERIMENTS).SETTINGS
    (options,) = [v for k, v in settings.items() if 'model 0.6.0, shipped' in k]
    row, default = PyramidPrefill(**options), build_model('prefill_cnn').prefill
    names = [k for k in vars(default) if not k.startswith('_') and k != 'training']
    assert names and {k: getattr(row, k) for k in names} == {k: getattr(default, k) for k in names}


@needs_torch
def test_loss_ablation_fine_tunes_each_loss_from_one_checkpoint_and_scores_them(tmp_path):
    # the real script on a tiny network and generated scenes named like the held-out families
    import subprocess
    import sys
    import torch
    from ros2_depth_interp.learning import train
    from ros2_depth_interp.learning.datasets import HELD_OUT_SCENES
    root = _middlebury(tmp_path, HELD_OUT_SCENES)
    small = ['--preset', 'unet_tiny', '--sources', 'synthetic', '--crop', '64x64', '--batch', '2',
             '--workers', '0', '--val-samples', '1', '--threads', '1']
    assert train.main(small + ['--out', str(tmp_path / 'start'), '--steps', '1']) == 0
    init = str(tmp_path / 'start' / 'last.pt')
    env = dict(os.environ, PYTHON=sys.executable, MIDDLEBURY=str(root), BATCH='2', CROP='64x64',
               EXTRA='--sources synthetic --steps 2 --workers 0 --val-samples 1 --threads 1')
    out = tmp_path / 'ablation'
    done = subprocess.run(['bash', os.path.join(EXPERIMENTS, 'loss_ablation.sh'), 'unet_tiny', init, str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    weights = {}
    for variant in ('l1', 'l1_grad', 'perceptual'):
        blob = torch.load(str(out / variant / 'last.pt'), weights_only=False)
        assert blob['training']['history'][0]['steps'] == 1 and blob['step'] == 2
        weights[variant] = blob['model']
    # three different losses moved the same start three different ways
    key = next(k for k in weights['l1'] if k.endswith('weight'))
    assert not torch.equal(weights['l1'][key], weights['perceptual'][key])
    assert not torch.equal(weights['l1'][key], weights['l1_grad'][key])
    table = (out / 'choose.txt').read_text()
    assert all(variant in table for variant in ('l1/last.pt', 'l1_grad/last.pt', 'perceptual/last.pt'))


@needs_torch
def test_propagation_ceiling_costs_only_the_depth_edges_and_reports_every_method(tmp_path, capsys):
    import numpy as np
    root = _middlebury(tmp_path)
    ceiling = _script('propagation_ceiling', EXPERIMENTS)
    # the cost map: a step across a disparity jump costs the edge cost, every other step (the slanted
    # background: 1/6 px per pixel) the flat cost; the padding is flat
    gt = np.array([[1.0, 1.0, 3.0, 3.2], [1.0, 1.0, 3.0, 3.2]])
    steps = ceiling.depth_edge_steps(gt, gt > 0, (3, 5), 7.0).numpy()[0]
    flat = ceiling.FLAT_COST
    assert np.allclose(steps[0, 0], [flat, flat, 7.0, flat, flat]) and np.allclose(steps[1], flat)
    out = tmp_path / 'ceiling.json'
    assert ceiling.main(['--scenes', 'Alpha,Beta', '--data', str(root), '--weights', '', '--out', str(out),
                         '--figure-scenes', 'Beta']) == 0
    with open(out) as f:
        table = json.load(f)['table']
    assert set(table) == {'colorization', 'image edges (untrained)', 'image edges (untrained), first order',
                          'depth edges (ground truth)', 'depth edges (ground truth), first order'}
    for per in table.values():
        assert set(per) == {'uniform@0.10', 'gradient@0.10'}
        assert all(set(v) == {'Alpha', 'Beta'} and all(10.0 < x < 100.0 for x in v.values()) for v in per.values())
    # on a disk before a slanted wall, with noise texture everywhere, knowing the depth edges beats the
    # image's edges on uniform masks
    hard, image = table['depth edges (ground truth)']['uniform@0.10'], table['image edges (untrained)']['uniform@0.10']
    assert np.mean(list(hard.values())) > np.mean(list(image.values()))
    assert '| colorization |' in (tmp_path / 'ceiling.md').read_text()
    for name in ('ceiling.png', 'ceiling_Beta_gradient_0.10.png'):
        assert os.path.getsize(tmp_path / name) > 10000


@needs_torch
def test_harmonic_smoothing_reports_every_round_count_for_the_weights_and_the_image_edges(tmp_path):
    import numpy as np
    import torch
    from ros2_depth_interp.learning.export import save_torch_weights
    from ros2_depth_interp.learning.geodesic import DepthGeodesic, GeodesicConfig
    root = _middlebury(tmp_path)
    smoothing = _script('harmonic_smoothing', EXPERIMENTS)
    torch.manual_seed(0)
    weights = str(tmp_path / 'small.pt')
    save_torch_weights(DepthGeodesic(GeodesicConfig(widths=(4, 6), blocks=(0, 1))), weights, training=dict(steps=1))
    out = tmp_path / 'smoothing.json'
    assert smoothing.main(['--scenes', 'Alpha,Beta', '--data', str(root), '--weights', weights,
                           '--rounds', '0,2,3', '--smoothing', '4,1', '--out', str(out)]) == 0
    with open(out) as f:
        result = json.load(f)
    table = result['table']
    assert result['rounds'] == [0, 2, 3] and result['smoothing'] == [4, 1]
    assert set(table) == {'colorization', 'image edges (untrained), 0 rounds', 'image edges (untrained), 2 rounds',
                          'small.pt, 0 rounds', 'small.pt, 2 rounds', 'small.pt, 3 rounds'}
    for per in table.values():
        assert all(set(v) == {'Alpha', 'Beta'} and all(10.0 < x < 100.0 for x in v.values()) for v in per.values())
    # the smoothing changes the fill: its rounds are not a no-op
    assert table['small.pt, 0 rounds']['uniform@0.10'] != table['small.pt, 2 rounds']['uniform@0.10']
    assert '| colorization |' in (tmp_path / 'smoothing.md').read_text()
    assert os.path.getsize(tmp_path / 'smoothing.png') > 10000
    assert np.isfinite([x for per in table.values() for v in per.values() for x in v.values()]).all()


@needs_torch
def test_the_first_order_fill_of_the_propagation_ceiling_keeps_a_slanted_plane():
    # twelve samples of a plane, no edges: the plane fit returns the plane everywhere, the weighted
    # mean of the zeroth-order propagation does not
    import numpy as np
    import torch
    from ros2_depth_interp.learning.geodesic import GeodesicPropagation
    ceiling = _script('propagation_ceiling', EXPERIMENTS)
    h, w = 40, 48
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    plane = torch.from_numpy(2.0 + 0.05 * xx - 0.03 * yy)[None, None]
    mask = torch.zeros(1, 1, h, w)
    for y, x in ((3, 4), (5, 40), (20, 22), (35, 6), (36, 44), (12, 30), (28, 12), (30, 33), (8, 15), (25, 45),
                 (15, 2), (38, 25)):
        mask[0, 0, y, x] = 1.0
    steps = torch.full((1, 2, h, w), 0.0025)
    distances = (32, 16, 8, 4, 2, 1, 2, 1)
    first = ceiling.PlanePropagation(distances, ridge_px=0.1)(plane * mask, mask, plane.mean().expand(1, 1, h, w), steps)
    zeroth = GeodesicPropagation(distances)(plane * mask, mask, plane.mean().expand(1, 1, h, w), steps)
    assert float((first - plane).abs().max()) < 1e-2
    assert float((zeroth - plane).abs().max()) > 0.3


@needs_torch
def test_the_clamped_first_order_fill_does_not_extrapolate_a_slope_beyond_the_samples():
    # samples of a steep plane in the left quarter only: unclamped, the fitted plane runs on across the
    # frame, far beyond the sampled depths; clamped to one standard deviation of the depths that reach
    # a pixel, it stays within half their range of them (a weighted mean lies among the samples, and
    # their standard deviation is at most half their range)
    import numpy as np
    import torch
    ceiling = _script('propagation_ceiling', EXPERIMENTS)
    h, w = 32, 64
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    plane = torch.from_numpy(1.0 + 0.1 * xx)[None, None]
    mask = torch.zeros(1, 1, h, w)
    mask[0, 0, 2:30:3, 1:16:3] = 1.0
    steps = torch.full((1, 2, h, w), 0.0025)
    distances = (64, 32, 16, 8, 4, 2, 1)
    fallback = plane.mean().expand(1, 1, h, w)
    free = ceiling.PlanePropagation(distances, ridge_px=0.1)(plane * mask, mask, fallback, steps)
    clamped = ceiling.PlanePropagation(distances, ridge_px=0.1, clamp=1.0)(plane * mask, mask, fallback, steps)
    low, high = float(plane[mask > 0].min()), float(plane[mask > 0].max())
    assert float(free[..., -1].min()) > high + 2.0
    assert float(clamped.max()) <= high + (high - low) / 2 + 1e-3
    assert float(clamped.min()) >= low - (high - low) / 2 - 1e-3


@needs_torch
def test_fill_cost_scores_and_times_the_parameter_free_fills(tmp_path):
    root = _middlebury(tmp_path)
    fill_cost = _script('fill_cost', EXPERIMENTS)
    out = tmp_path / 'fills.json'
    assert fill_cost.main(['--scenes', 'Alpha,Beta', '--data', str(root), '--only', 'zeroth|transform alone|converged',
                           '--time', '--rounds', '1', '--out', str(out)]) == 0
    with open(out) as f:
        report = json.load(f)
    assert set(report['table']) == {'colorization', 'geodesic, zeroth order (gain 30)', 'pre-fill 0.6.0: transform alone',
                                    fill_cost.CONVERGED}
    for per in report['table'].values():
        assert all(set(v) == {'Alpha', 'Beta'} and all(10.0 < x < 100.0 for x in v.values()) for v in per.values())
    # timed: every fill but colorization and the converged solve, with its ONNX node count
    assert set(report['timing']) == {'geodesic, zeroth order (gain 30)', 'pre-fill 0.6.0: transform alone'}
    assert all(t['p50_s'] > 0 and t['nodes'] > 50 for t in report['timing'].values())
    assert '| colorization |' in (tmp_path / 'fills.md').read_text()
    assert os.path.getsize(tmp_path / 'fills.png') > 10000
