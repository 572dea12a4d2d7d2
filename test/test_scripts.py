"""The measurement scripts under scripts/ on tiny generated inputs (they time nothing here)."""
import importlib.util
import json
import os

import pytest

from test_evaluate import _write_scene

SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'scripts')


def _script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(SCRIPTS, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_graphs_times_every_graph_at_every_size(tiny_model_path, tmp_path, capsys):
    out = str(tmp_path / 'times.json')
    rc = _script('compare_graphs').main(['a=' + tiny_model_path, 'b=' + tiny_model_path,
                                         '--sizes', '20x30,17x23', '--rounds', '2', '--out', out])
    assert rc == 0
    with open(out) as f:
        report = json.load(f)
    assert set(report['times']) == {'30x20 a', '30x20 b', '23x17 a', '23x17 b'}
    for row in report['times'].values():
        assert row['n'] == 2 and 0 < row['min_ms'] <= row['p50_ms']
    assert report['graphs'] == {'a': tiny_model_path, 'b': tiny_model_path}
    assert '| 23x17 b |' in capsys.readouterr().out
    assert os.path.isfile(str(tmp_path / 'times.png'))


def test_compare_graphs_refuses_a_missing_file(tmp_path):
    with pytest.raises(SystemExit) as exc:
        _script('compare_graphs').main(['a=' + str(tmp_path / 'missing.onnx')])
    assert exc.value.code == 2


def test_network_gain_bands_add_up_to_the_change_of_the_error(tiny_model_path, tmp_path):
    root = tmp_path / 'middlebury'
    for i, scene in enumerate(('SceneA', 'SceneB')):
        _write_scene(str(root / 'ThirdSize' / scene), seed=i)
    out = str(tmp_path / 'gain.json')
    rc = _script('network_gain_by_distance').main(['--model', tiny_model_path, '--scenes', 'SceneA,SceneB',
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


def test_choose_checkpoint_validates_on_the_scenes_training_held_out(tmp_path, capsys):
    from ros2_depth_interp import train
    root = tmp_path / 'middlebury'
    for i, scene in enumerate(('Alpha', 'Beta', 'Gamma')):
        _write_scene(str(root / 'ThirdSize' / scene), seed=i)
    out = str(tmp_path / 'run')
    assert train.main(['--out', out, '--preset', 'tiny', '--sources', 'middlebury', '--middlebury', str(root),
                       '--val-scenes', 'Beta,Gamma', '--crop', '32x32', '--batch', '2', '--workers', '0',
                       '--steps', '1', '--val-samples', '1', '--threads', '1']) == 0
    checkpoint = os.path.join(out, 'last.pt')
    choose = _script('choose_checkpoint')
    assert choose.held_out_scenes(checkpoint) == ('Beta', 'Gamma')
    capsys.readouterr()
    assert choose.main([checkpoint, '--data', str(root), '--prefill']) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith('| ') and not line.startswith('| checkpoint |')]
    assert len(rows) == 2                          # the pre-fill and the checkpoint
    for row in rows:
        cells = row.strip('| ').split(' | ')[1:-1]  # one cell per protocol: 'mean (Beta/Gamma)'
        assert len(cells) == 3 and all(cell.split('(')[1].count('/') == 1 for cell in cells)
