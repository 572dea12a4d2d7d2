"""``scripts/device_check.sh`` run for real on the CPU with a tiny budget and tiny sizes.

On this machine the script takes its CPU branch (no CUDA graphs, no torch.compile, no
onnxruntime-gpu); the stages, the files and the JSON it writes are the same as on the lent GPU.
Nothing here checks a speed.
"""
import json
import os
import subprocess
import sys
import time

import pytest

from ros2_depth_interp.tools import device_check

from node_helpers import needs_torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_TRAINING = '--preset tiny --batch 2 --crop 32x32 --workers 0 --val-samples 1 --threads 1 --sources synthetic'


@needs_torch
def test_device_check_script_on_the_cpu_writes_its_files_and_json(tiny_model_path, tmp_path):
    out = tmp_path / 'device_out'
    env = dict(os.environ, PYTHON=sys.executable, DEVICE='cpu', MODEL=tiny_model_path, SIZES='24x40',
               REPEATS='2', WARMUP='1', TRAIN_ARGS=TINY_TRAINING, MAX_SECONDS='400')
    env.pop('OUT', None)
    proc = subprocess.run(['bash', os.path.join(ROOT, 'scripts', 'device_check.sh'), str(out), '3'],
                          env=env, capture_output=True, text=True, timeout=420, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(os.listdir(out)) == sorted(device_check.OUTPUT_FILES)
    with open(out / 'device_check.json') as f:
        report = json.load(f)
    assert report['device'] == 'cpu' and report['budget_s'] == 3 and report['model'] == tiny_model_path
    assert {name: stage['status'] for name, stage in report['stages'].items()} == {
        'environment': 'ok', 'bench': 'ok', 'graphs': 'skipped', 'compile': 'skipped', 'train': 'ok',
        'export': 'ok'}
    assert report['environment']['cuda_available'] is False
    assert 'CPUExecutionProvider' in report['environment']['onnxruntime_providers']
    rows = {(r['backend'], r['precision']): r for r in report['bench']}
    assert set(rows) == {('torch', 'fp32'), ('onnx', 'fp32')}
    for row in rows.values():
        assert (row['height'], row['width']) == (24, 40)
        for key in ('infer', 'frame'):
            assert row[key]['n'] == 2 and 0 < row[key]['p50_ms'] <= row[key]['p99_ms']
    train = report['train']
    assert train['steps'] > 0 and train['training_seconds'] == pytest.approx(3.0)
    assert train['last_training_row']['loss'] > 0 and train['validation'][-1]['val_rmse'] > 0
    assert '--time-limit' in train['command'] and '--preset' in train['command']
    reports = report['export']['reports']
    assert [r['fp16'] for r in reports] == [False, True]
    assert reports[0]['max_abs_error_random'] < 1e-3
    for name in ('depth_interp.onnx', 'depth_interp_fp16.onnx'):
        graph = report['export']['graphs'][name]
        assert graph['nodes'] > 0 and graph['op_types']['Conv'] > 0
    assert report['files'] == sorted(device_check.OUTPUT_FILES)
    assert report['checks'] == ['- GPU targets: no GPU rows at 640x480']
    assert 0 < report['seconds'] < 400
    with open(out / 'device_check.log') as f:
        text = f.read()
    assert 'device_check: train:' in text and 'stage export      ok' in text
    # the exported model is one the node can load
    from ros2_depth_interp.core.inference import DepthInterpolator
    assert DepthInterpolator(str(out / 'depth_interp.onnx')).active_provider == 'CPUExecutionProvider'


def test_run_stage_stops_a_stage_that_outlives_its_timeout(tmp_path):
    command = [sys.executable, '-c', 'import time\nprint("started", flush=True)\ntime.sleep(60)']
    started = time.time()
    rc, seconds, tail = device_check.run_stage(command, 1.5, str(tmp_path / 'stage.log'))
    assert rc is None and tail == ['started'] and time.time() - started < 40
    rc, _, tail = device_check.run_stage([sys.executable, '-c', 'print("a\\rb\\nc")'], 30, str(tmp_path / 'b.log'))
    assert rc == 0 and tail == ['a', 'b', 'c']
    with open(tmp_path / 'stage.log') as f:
        assert f.read() == 'started\n'


def test_json_documents_and_gpu_checks():
    assert device_check.json_documents('noise {"a": 1}\n{bad\n{"b": {"c": 2}} end') == [{'a': 1}, {'b': {'c': 2}}]
    timing = {'p50_ms': 2.0}
    rows = [{'backend': 'torch_graphs', 'precision': 'fp16', 'device': 'cuda', 'height': 480, 'width': 640,
             'infer': timing, 'frame': {'p50_ms': 9.0}, 'frame_gpu_cloud': {'p50_ms': 9.5}},
            {'backend': 'onnx', 'precision': 'fp32', 'device': 'CPUExecutionProvider', 'height': 480,
             'width': 640, 'infer': {'p50_ms': 0.5}, 'frame': {'p50_ms': 1.0}},
            {'backend': 'torch', 'precision': 'fp32', 'device': 'cuda', 'height': 480, 'width': 640,
             'error': 'RuntimeError: x'}]
    lines = device_check.gpu_checks(rows)
    assert lines[0].startswith('- 640x480 network alone: best p50 2.00 ms (torch_graphs fp16)')
    assert lines[0].endswith(': met')
    assert lines[1].endswith('NOT met')


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        device_check.parse_args(['--out', str(tmp_path), '--skip', 'everything'])
    with pytest.raises(SystemExit):
        device_check.parse_args(['--out', str(tmp_path), '--model', str(tmp_path / 'missing.onnx')])


@needs_torch
def test_bench_device_records_a_backend_that_cannot_run_here_and_goes_on(tiny_model_path, tmp_path):
    from ros2_depth_interp.tools import bench_device
    out = str(tmp_path / 'bench.json')
    assert bench_device.main(['--model', tiny_model_path, '--backends', 'torch,graphs,onnx', '--sizes', '24x40',
                              '--repeats', '2', '--warmup', '1', '--device', 'cpu', '--out', out]) == 0
    with open(out) as f:
        rows = json.load(f)['results']
    assert [r['backend'] for r in rows] == ['torch', 'torch_graphs', 'onnx']
    assert rows[1]['error'] == 'RuntimeError: CUDA graphs need a CUDA device' and 'infer' not in rows[1]
    assert rows[0]['setup_s'] >= 0 and rows[2]['device'] == 'CPUExecutionProvider'
    for row in (rows[0], rows[2]):
        assert row['infer']['min_ms'] <= row['infer']['p50_ms'] <= row['infer']['p99_ms']
    with pytest.raises(SystemExit):
        bench_device.main(['--model', tiny_model_path, '--backends', 'tensorflow', '--out', out])


def test_left_out_stages_are_recorded_and_a_stage_that_raises_does_not_stop_the_rest(tiny_model_path, tmp_path,
                                                                                   monkeypatch):
    def broken(*args):
        raise RuntimeError('no such thing')
    monkeypatch.setattr(device_check, 'run_train', broken)
    out = tmp_path / 'out'
    rc = device_check.main(['--out', str(out), '--device', 'cpu', '--model', tiny_model_path, '--skip', 'bench',
                            '--work', str(tmp_path / 'work')])
    assert rc == 1
    with open(out / 'device_check.json') as f:
        stages = json.load(f)['stages']
    assert stages['bench'] == {'status': 'skipped', 'seconds': 0.0, 'note': 'left out'}
    assert stages['graphs']['note'] == stages['compile']['note'] == 'CUDA only'
    assert stages['train']['status'] == 'failed' and stages['train']['error'] == 'RuntimeError: no such thing'
    assert stages['export'] == {'status': 'skipped', 'seconds': 0.0, 'note': 'no checkpoint'}
    assert os.listdir(out) == ['device_check.json'] and (tmp_path / 'work').is_dir()
