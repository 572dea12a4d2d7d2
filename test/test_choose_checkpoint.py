"""``depth_interp choose`` on generated scenes: it validates on the scenes training held out."""
import json
import os

from test_evaluate import _write_scene

from ros2_depth_interp.evaluation import choose_checkpoint as choose
from ros2_depth_interp.tools import cli


def test_choose_checkpoint_validates_on_the_scenes_training_held_out(tmp_path, capsys):
    from ros2_depth_interp.learning import train
    root = tmp_path / 'middlebury'
    for i, scene in enumerate(('Alpha', 'Beta', 'Gamma')):
        _write_scene(str(root / 'ThirdSize' / scene), seed=i)
    out = str(tmp_path / 'run')
    assert train.main(['--out', out, '--preset', 'tiny', '--sources', 'middlebury', '--middlebury', str(root),
                       '--val-scenes', 'Beta,Gamma', '--crop', '32x32', '--batch', '2', '--workers', '0',
                       '--steps', '1', '--val-samples', '1', '--threads', '1']) == 0
    checkpoint = os.path.join(out, 'last.pt')
    assert choose.held_out_scenes(checkpoint) == ('Beta', 'Gamma')
    capsys.readouterr()
    assert cli.main(['choose', checkpoint, '--data', str(root), '--prefill']) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith('| ') and not line.startswith('| checkpoint |')]
    assert len(rows) == 2                          # the pre-fill and the checkpoint
    for row in rows:
        cells = row.strip('| ').split(' | ')[1:-1]  # one cell per protocol: 'mean (Beta/Gamma)'
        assert len(cells) == 3 and all(cell.split('(')[1].count('/') == 1 for cell in cells)

    # --out: the same numbers as JSON with each checkpoint's step, the table and the step chart beside it
    out_json = str(tmp_path / 'scores' / 'choose.json')
    assert cli.main(['choose', checkpoint, '--data', str(root), '--out', out_json]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith('| %s' % checkpoint)]
    with open(out_json) as f:
        saved = json.load(f)
    assert saved['scenes'] == ['Beta', 'Gamma'] and saved['protocols'] == list(choose.PROTOCOLS)
    row = saved['checkpoints'][checkpoint]
    assert row['step'] == 1
    for proto, cell in zip(choose.PROTOCOLS, printed[0].strip('| ').split(' | ')[1:-1]):
        scenes = row['protocols'][proto]['scenes']
        assert cell == '%.2f (%s)' % (row['protocols'][proto]['mean'], '/'.join('%.2f' % scenes[n] for n in ('Beta', 'Gamma')))
    base = str(tmp_path / 'scores' / 'choose')
    with open(base + '.md') as f:
        assert printed[0] in f.read()
    with open(base + '.png', 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_choose_is_listed_by_depth_interp_help(capsys):
    assert cli.main(['--help']) == 0
    assert 'choose' in capsys.readouterr().out
