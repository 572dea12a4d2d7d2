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


@needs_torch
def test_network_gain_bands_add_up_to_the_change_of_the_error(tiny_model_path, tmp_path):
    root = tmp_path / 'middlebury'
    for i, scene in enumerate(('SceneA', 'SceneB')):
        _write_scene(str(root / 'ThirdSize' / scene), seed=i)
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


def _shipped_training_phases():
    """The ``train`` command lines of scripts/train_shipped_model.sh, arrays expanded, as argv lists."""
    import re
    import shlex
    with open(os.path.join(SCRIPTS, 'train_shipped_model.sh')) as f:
        text = f.read().replace('\\\n', ' ')
    arrays = {name: shlex.split(body) for name, body in re.findall(r'^(\w+)=\((.*)\)$', text, re.M)}
    # what the script's train() function adds to every phase, less the options it takes from the environment
    common = shlex.split(re.search(r'^train\(\) \{.*?ros2_depth_interp\.learning\.train (.*?) "\$@"', text, re.M).group(1))
    fixed = [w for flag, value in zip(common[::2], common[1::2]) if '$' not in value for w in (flag, value)]
    phases = []
    for line in text.splitlines():
        if line.startswith('train '):
            words = []
            for word in shlex.split(line)[1:]:
                match = re.fullmatch(r'\$\{(\w+)\[@\]\}', word)
                words += arrays[match.group(1)] if match else [word.replace('$out', 'runs/x').replace('$workers', '1')]
            phases.append(fixed + words)
    return phases


@needs_torch
def test_the_shipped_models_training_script_trains_what_the_shipped_model_records():
    # every `train` line parses, each phase starts from the one before it, each phase whose config
    # the shipped checkpoint records (phases 4a-10) trains that config (4a-4b ran on an intermediate
    # pre-fill that was dropped; the script runs them on the heavy-ball one, see its header), and
    # the last phase trains the default preset's graph
    import torch
    from ros2_depth_interp.learning.model import PRESETS, NetConfig
    from ros2_depth_interp.core.resources import default_model_path
    from ros2_depth_interp.learning.train import build_parser, make_config
    phases = _shipped_training_phases()
    configs = [make_config(build_parser().parse_args(argv)).to_dict() for argv in phases]
    for before, after in zip(phases, phases[1:]):
        assert after[after.index('--init') + 1] == before[before.index('--out') + 1] + '/last.pt'
    shipped = torch.load(default_model_path().replace('.onnx', '.pt'), map_location='cpu', weights_only=False)
    runs = shipped['training']['history'] + [shipped['training']]
    assert len(runs) == len(phases) == 12          # phases 1-10, phases 3 and 4 in two runs each
    checked = 0
    for i, (run, config) in enumerate(zip(runs, configs)):
        if 'config' not in run or run.get('phase', '').startswith('phase 4'):
            continue
        recorded = NetConfig.from_dict(run['config']).to_dict()
        differing = sorted(k for k in recorded if recorded[k] != config[k])
        assert not differing, 'phase %d of the script: %s' % (i + 1, [(k, recorded[k], config[k]) for k in differing])
        checked += 1
    assert checked == 6
    # the export line's pre-fill options on top of the last phase give the default preset's graph,
    # which is what the shipped checkpoint carries
    import argparse
    import re
    import shlex
    from ros2_depth_interp.learning.prefill_options import add_prefill_arguments, apply_prefill_arguments
    with open(os.path.join(SCRIPTS, 'train_shipped_model.sh')) as f:
        export_line = [line for line in f if 'ros2_depth_interp.learning.export' in line][-1]
    parser = argparse.ArgumentParser()
    add_prefill_arguments(parser)
    exported = dict(configs[-1])
    apply_prefill_arguments(exported, parser.parse_known_args(shlex.split(re.sub(r'"[^"]*"', 'x', export_line)))[0])
    default = PRESETS['default'].to_dict()
    assert not sorted(k for k in default if k != 'dropout' and exported[k] != default[k])
    assert not sorted(k for k in default if k != 'dropout' and shipped['config'][k] != default[k])


@needs_torch
def test_prefill_table_writes_numbers_a_chart_and_pictures(tmp_path, capsys):
    root = tmp_path / 'middlebury'
    for i, scene in enumerate(('Alpha', 'Beta')):
        _write_scene(str(root / 'ThirdSize' / scene), seed=i)
    table = _script('prefill_table', EXPERIMENTS)
    only = 'domain transform at half resolution, then CG 20/40|model 0.6.0, shipped'
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
def test_prefill_table_row_named_the_default_graph_is_the_default_presets_prefill():
    from ros2_depth_interp.learning.model import PyramidPrefill, build_model
    settings = _script('prefill_table', EXPERIMENTS).SETTINGS
    (options,) = [v for k, v in settings.items() if 'model 0.6.0, shipped' in k]
    row, default = PyramidPrefill(**{'levels': 5, **options}), build_model('default').prefill
    names = [k for k in vars(default) if not k.startswith('_') and k != 'training']
    assert names and {k: getattr(row, k) for k in names} == {k: getattr(default, k) for k in names}
