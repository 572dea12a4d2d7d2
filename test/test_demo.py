"""``depth_interp demo``: runs the three processes and writes its figure, cloud and metrics.

With a tiny untrained model (exported by the project's export code) at a small size, so it is quick;
the demo must say that such a model is untrained.
"""
import json

import matplotlib.image
import numpy as np

from ros2_depth_interp.tools import demo
from ros2_depth_interp.core.geometry import read_ply


def test_demo_writes_figure_cloud_and_metrics(tmp_path, tiny_model_path, capsys):
    out = tmp_path / 'demo'
    rc = demo.main(['--model', tiny_model_path, '--frames', '5', '--size', '96x64', '--rate', '5',
                    '--out', str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    figure = matplotlib.image.imread(str(out / 'figure1.png'))
    assert figure.ndim == 3 and figure.shape[0] > 100 and figure.shape[1] > 4 * figure.shape[0]
    cloud = read_ply(str(out / 'cloud.ply'))
    assert cloud.shape[1] == 4 and 0 < cloud.shape[0] <= 96 * 64 and np.isfinite(cloud).all()
    report = json.loads((out / 'metrics.json').read_text())
    assert report['trained'] is False and 'UNTRAINED' in report['model_label']
    assert report['frames_published'] == 5 and 1 <= report['frames_evaluated'] <= 5
    for key in ('model_metrics', 'nearest_metrics'):
        assert report[key]['rmse'] >= 0 and 0 <= report[key]['delta1'] <= 1 and report[key]['count'] > 0
    assert report['ply']['points'] == cloud.shape[0]
    assert report['figure_frame']['stamp_ns'] == report['ply']['stamp_ns']
    # it prints per-stage latency, rates and the metrics line, flagged as not a result
    for stage in ('convert', 'normalize', 'infer', 'cloud', 'publish'):
        assert '\n        %s' % stage in printed
    assert 'end-to-end latency' in printed and 'UNTRAINED MODEL, not a result' in printed


def test_demo_refuses_to_run_without_a_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('DEPTH_INTERP_MODEL', str(tmp_path / 'missing.onnx'))
    assert demo.main(['--out', str(tmp_path / 'out')]) == demo.EXIT_NO_MODEL
    assert 'no model at' in capsys.readouterr().err


def test_trained_means_recorded_training_steps(tiny_model_path):
    assert demo.model_training(tiny_model_path).get('steps') is None
    assert not demo.is_trained(demo.model_training(tiny_model_path))
    assert demo.is_trained({'steps': 1200}) and not demo.is_trained({'steps': 0})
    assert not demo.is_trained({'steps': 'many'})


def test_demo_replays_a_folder_of_real_style_frames(tmp_path, tiny_model_path, capsys):
    """--data: TUM-style pairs written here; ground truth = the sensor depth; a looped frame counts once."""
    import cv2
    rng = np.random.default_rng(1)
    data = tmp_path / 'tum'
    data.mkdir()
    for name in ('1', '2'):
        rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        depth = (np.linspace(1.0, 3.0, 64)[None, :] * 5000 * np.ones((48, 1))).astype(np.uint16)
        depth[:6] = 0
        cv2.imwrite(str(data / (name + '.png')), rgb)
        cv2.imwrite(str(data / (name + '_depth.png')), depth)
    out = tmp_path / 'out'
    rc = demo.main(['--model', tiny_model_path, '--data', str(data), '--size', '64x48', '--frames', '3',
                    '--rate', '5', '--intrinsics', '60,60,31.5,23.5', '--out', str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    report = json.loads((out / 'metrics.json').read_text())
    assert report['source'].startswith('folder ') and report['frames_published'] == 3
    assert 1 <= report['frames_evaluated'] <= 2
    assert report['nearest_metrics']['count'] > 0
    cloud = read_ply(str(out / 'cloud.ply'))
    assert cloud.shape[0] > 0 and np.isfinite(cloud).all()
