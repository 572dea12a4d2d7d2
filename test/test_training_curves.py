"""``curves.save_training_curves`` / ``read_metrics`` on metrics files in the format ``train`` writes."""
import json

import numpy as np
import pytest

from ros2_depth_interp.learning.curves import read_metrics, save_training_curves


def _write(path, rows, garbage=False):
    with open(path, 'w') as f:
        for row in rows:
            f.write(json.dumps(row) + '\n')
        if garbage:
            f.write('{"step": 9')               # a run killed mid-line


def _run_rows(steps, val_every, psnr=True, offset=0.0):
    rows = []
    for step in steps:
        rows.append(dict(step=step, loss=1.0 / step + offset, lr=1e-4, samples_per_s=10.0, l1=0.5))
        if step % val_every == 0:
            val = dict(step=step, val_rmse=0.1 / step, val_mae=0.05 / step, val_loss=0.2)
            if psnr:
                val['val_psnr'] = 20.0 + np.log(step)
            rows.append(val)
    return rows


def test_resumed_runs_keep_the_row_written_last_per_step(tmp_path):
    path = str(tmp_path / 'metrics.jsonl')
    # a first sitting to step 100, killed after its checkpoint at 60; the second resumes from 60
    _write(path, _run_rows(range(20, 101, 20), 40) + _run_rows(range(80, 161, 20), 40, offset=1.0), garbage=True)
    train, val = read_metrics(path)
    assert [r['step'] for r in train] == list(range(20, 161, 20))
    assert train[2]['loss'] == pytest.approx(1 / 60) and train[3]['loss'] == pytest.approx(1 / 80 + 1.0)
    assert [r['step'] for r in val] == [40, 80, 120, 160]


def test_curves_with_and_without_psnr(tmp_path):
    for psnr in (True, False):
        metrics = str(tmp_path / ('m_%s.jsonl' % psnr))
        _write(metrics, _run_rows(range(20, 2001, 20), 500, psnr=psnr))
        png = str(tmp_path / 'out' / ('curves_%s.png' % psnr))
        assert save_training_curves(metrics, png, title='run') == png
        with open(png, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
        assert (tmp_path / 'out' / ('curves_%s.png' % psnr)).stat().st_size > 20000


def test_training_rows_only_and_empty_files(tmp_path):
    metrics = str(tmp_path / 'metrics.jsonl')
    _write(metrics, [dict(step=s, loss=0.5) for s in (20, 40)])
    save_training_curves(metrics, str(tmp_path / 'c.png'))
    assert (tmp_path / 'c.png').stat().st_size > 10000
    _write(metrics, [])
    with pytest.raises(ValueError):
        save_training_curves(metrics, str(tmp_path / 'd.png'))
