"""Training: a few steps on synthetic data lower the loss; the command checkpoints and resumes."""
import json
import os

import numpy as np
import pytest
import torch

from ros2_depth_interp.learning import train
from ros2_depth_interp.learning.datasets import SyntheticSource, TrainingSampler
from ros2_depth_interp.learning.losses import CombinedLoss
from ros2_depth_interp.learning.model import build_model


def _batch(n=4, seed=0):
    sampler = TrainingSampler([SyntheticSource(80, 96)], crop=(64, 64), seed=seed)
    rng = np.random.default_rng(seed)
    examples = [train.to_training_example(sampler.sample(rng), 8) for _ in range(n)]
    return [torch.from_numpy(np.stack(parts)) for parts in zip(*examples)]


def test_a_few_adam_steps_lower_the_loss():
    torch.manual_seed(0)
    model = build_model({'stem_width': 4, 'width': 8, 'dilations': [1, 2], 'prefill_levels': 3,
                         'prefill_iterations': [1, 1, 2, 2], 'dropout': 0.0})
    criterion = CombinedLoss(l1=1.0, grad=0.5, confidence=0.1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, gt, valid = _batch()
    with torch.no_grad():
        before, _ = criterion(*model(x), gt, valid)
    for _ in range(40):
        loss, _ = criterion(*model(x), gt, valid)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after, _ = criterion(*model(x), gt, valid)
    assert float(after) < 0.9 * float(before)


def test_training_example_uses_the_inference_normalization():
    x, gt, valid = _batch(n=1)
    known = x[0, 1] > 0
    assert torch.allclose(x[0, 0][known].median(), torch.tensor(1.0), atol=0.05)
    assert valid.any() and gt[valid].min() > 0


def test_train_command_writes_checkpoint_metrics_and_resumes(tmp_path):
    out = str(tmp_path / 'run')
    common = ['--out', out, '--preset', 'tiny', '--sources', 'synthetic', '--crop', '48x64', '--batch', '2',
              '--workers', '0', '--val-every', '3', '--ckpt-every', '3', '--val-samples', '2', '--threads', '1']
    assert train.main(common + ['--steps', '3']) == 0
    ckpt = os.path.join(out, 'last.pt')
    blob = torch.load(ckpt, weights_only=False)
    assert blob['step'] == 3 and 'l1' in blob['training']['loss']
    assert blob['training']['val_scenes'] == list(train.VAL_SCENES)
    assert 'tilt' not in blob['training']
    assert train.main(common + ['--steps', '5', '--resume', ckpt]) == 0
    assert torch.load(ckpt, weights_only=False)['step'] == 5
    # fine-tuning from it records where the weights came from
    out2 = str(tmp_path / 'finetune')
    common2 = [out2 if a == out else a for a in common]
    assert train.main(common2 + ['--steps', '2', '--init', ckpt, '--tilt', '0.5']) == 0
    training = torch.load(os.path.join(out2, 'last.pt'), weights_only=False)['training']
    assert training['history'][0]['steps'] == 5 and training['total_steps'] == 7
    assert training['tilt'] == 0.5   # the random depth planes are part of the training record
    lines = [json.loads(line) for line in open(os.path.join(out, 'metrics.jsonl'))]
    assert any('val_rmse' in line for line in lines)
    assert os.path.isfile(os.path.join(out, 'val_000003.png'))


def test_missing_vgg_weights_stop_training_with_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    rc = train.main(['--out', str(tmp_path / 'run'), '--preset', 'tiny', '--sources', 'synthetic',
                     '--w-perceptual', '1', '--steps', '1', '--workers', '0'])
    assert rc == 2
    assert 'VGG-16 weights not found' in capsys.readouterr().err


def test_ddp_through_torchrun_on_cpu(tmp_path):
    """Two processes (gloo on loopback) train the same model; rank 0 writes the checkpoint."""
    import subprocess
    import sys
    out = str(tmp_path / 'ddp')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
           '-m', 'ros2_depth_interp.learning.train', '--out', out, '--preset', 'tiny', '--sources', 'synthetic',
           '--crop', '48x64', '--batch', '2', '--workers', '0', '--steps', '4', '--val-every', '4',
           '--ckpt-every', '4', '--val-samples', '1', '--device', 'cpu', '--threads', '1']
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'world size 2' in proc.stdout
    assert torch.load(os.path.join(out, 'last.pt'), weights_only=False)['step'] == 4


def test_prefill_options_reach_the_model_config():
    from ros2_depth_interp.learning.model import PRESETS
    from ros2_depth_interp.learning.train import build_parser, make_config
    args = build_parser().parse_args(['--preset', 'prefill_cnn', '--prefill-levels', '2',
                                      '--prefill-variance-scale', '0.5', '--prefill-iterations', '4,10,15',
                                      '--prefill-dt-clamp', '0'])
    config = make_config(args)
    assert (config.prefill_levels, config.prefill_variance_scale, config.prefill_dt_clamp) == (2, 0.5, 0.0)
    assert config.prefill_iterations == (4, 10, 15)
    assert make_config(build_parser().parse_args([])) == PRESETS['default']
    with pytest.raises(SystemExit):     # an option of an earlier pre-fill
        build_parser().parse_args(['--prefill-solver', 'heavy_ball'])


def test_smoothing_and_resolution_options_reach_the_geodesic_config():
    from ros2_depth_interp.learning.model import PRESETS
    from ros2_depth_interp.learning.train import build_parser, make_config
    config = make_config(build_parser().parse_args(['--preset', 'geodesic', '--smoothing', '4,1',
                                                    '--smoothing-rounds', '2']))
    assert (config.smoothing, config.smoothing_rounds) == ((4, 1), 2)
    assert make_config(build_parser().parse_args(['--preset', 'geodesic_harmonic'])) == PRESETS['geodesic_harmonic']
    off = make_config(build_parser().parse_args(['--preset', 'geodesic_harmonic', '--smoothing-rounds', '0']))
    assert off.smoothing_rounds == 0 and off.distances == PRESETS['geodesic_harmonic'].distances
    assert make_config(build_parser().parse_args(['--preset', 'geodesic_half'])) == PRESETS['geodesic_half']
    full = make_config(build_parser().parse_args(['--preset', 'geodesic_half', '--propagation-scale', '1',
                                                  '--colorization-steps', '0', '--colorization-neighbours', '8']))
    assert (full.propagation_scale, full.colorization_steps, full.colorization_neighbours) == (1, 0, 8)
    assert make_config(build_parser().parse_args(['--preset', 'geodesic_mixed'])) == PRESETS['geodesic_mixed']
    fine = make_config(build_parser().parse_args(['--preset', 'geodesic_half', '--fine-distances', '2,1',
                                                  '--fine-smoothing', '1', '--fine-smoothing-rounds', '3']))
    assert (fine.fine_distances, fine.fine_smoothing, fine.fine_smoothing_rounds) == ((2, 1), (1,), 3)
    none = make_config(build_parser().parse_args(['--preset', 'geodesic_mixed', '--fine-distances', '']))
    assert none.fine_distances == () and none.distances == PRESETS['geodesic_mixed'].distances
    assert make_config(build_parser().parse_args(['--preset', 'geodesic_corrected'])) == PRESETS['geodesic_corrected']
    corrected = make_config(build_parser().parse_args(['--preset', 'geodesic_swept', '--correction-width', '8',
                                                       '--correction-dilations', '1,2']))
    assert (corrected.correction_width, corrected.correction_dilations) == (8, (1, 2))


def test_val_scenes_are_held_out_of_training(tmp_path):
    from test_evaluate import _write_scene
    root = tmp_path / 'middlebury'
    for i, scene in enumerate(('Alpha', 'Beta', 'Gamma')):
        _write_scene(str(root / 'ThirdSize' / scene), seed=i)
    args = train.build_parser().parse_args(['--middlebury', str(root), '--sources', 'middlebury',
                                            '--val-scenes', 'Beta, Gamma', '--crop', '32x32'])
    assert args.val_scenes == ('Beta', 'Gamma')

    def scenes(sampler):
        return {os.path.basename(d) for source in sampler.sources for d in source.scene_dirs}
    assert scenes(train.make_sampler(args, train.EVAL_SCENES + args.val_scenes)) == {'Alpha'}
    assert scenes(train.make_sampler(args, (), only_scenes=args.val_scenes)) == {'Beta', 'Gamma'}
    assert len(train.validation_set(args, 8)) == args.val_samples
    with pytest.raises(SystemExit):
        train.build_parser().parse_args(['--val-scenes', ' , '])


def test_tilt_reaches_the_training_sampler_and_not_validation(tmp_path):
    from test_evaluate import _write_scene
    root = tmp_path / 'middlebury'
    for i, scene in enumerate(('Alpha', 'Beta')):
        _write_scene(str(root / 'ThirdSize' / scene), seed=i)
    args = train.build_parser().parse_args(['--middlebury', str(root), '--sources', 'middlebury', '--tilt', '0.5',
                                            '--val-scenes', 'Beta', '--crop', '32x32', '--val-samples', '2'])
    assert train.make_sampler(args, train.EVAL_SCENES + args.val_scenes).tilt == 0.5
    assert train.build_parser().parse_args([]).tilt == 0.0
    # validation examples are the scenes as they are: the same with and without --tilt
    plain = train.build_parser().parse_args(['--middlebury', str(root), '--sources', 'middlebury',
                                             '--val-scenes', 'Beta', '--crop', '32x32', '--val-samples', '2'])
    for a, b in zip(train.validation_set(args, 8), train.validation_set(plain, 8)):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
