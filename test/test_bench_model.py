"""``depth_interp bench --model-only`` and the ONNX graph/profile reader, on a tiny exported model.

Tiny sizes and a few rounds: the files are written with the right structure and the profile adds
up; the speed itself is never checked here.
"""
import json
import math
import os
import time

import numpy as np
import pytest

from ros2_depth_interp.tools import bench, bench_model, onnx_profile


def _event(cat, name, ts, dur, op=None):
    event = {'cat': cat, 'name': name, 'ts': ts, 'dur': dur, 'ph': 'X', 'args': {}}
    if op:
        event['args']['op_name'] = op
    return event


def test_parse_profile_leaves_out_the_first_run_and_shares_add_up():
    events = [_event('Session', 'session_initialization', 0, 50)]
    for run, start in enumerate((100, 200, 300)):
        events.append(_event('Session', 'model_run', start, 90))
        slow = 1000 if run == 0 else 0               # the first run pays for allocation
        events += [_event('Node', 'conv_%d_kernel_time' % run, start + 1, 30 + slow, 'FusedConv'),
                   _event('Node', 'mm_%d_kernel_time' % run, start + 2, 10, 'MatMul'),
                   _event('Node', 'mul_a_%d_kernel_time' % run, start + 3, 5, 'Mul'),
                   _event('Node', 'mul_b_%d_kernel_time' % run, start + 4, 15, 'Mul'),
                   _event('Node', 'mul_b_%d_fence_before' % run, start + 4, 99, 'Mul')]
    report = onnx_profile.parse_profile(events)
    assert report['runs'] == 2
    assert report['node_ms_per_run'] == pytest.approx(0.060)
    assert list(report['ops']) == ['FusedConv', 'Mul', 'MatMul']     # slowest first
    assert report['ops']['Mul']['calls_per_run'] == 2
    assert report['ops']['FusedConv']['share'] == pytest.approx(0.5)
    assert report['compute_ops'] == ['FusedConv', 'MatMul']
    assert report['compute_share'] == pytest.approx(40 / 60)
    assert sum(v['share'] for v in report['ops'].values()) == pytest.approx(1.0)


def test_graph_stats_and_profile_of_an_exported_model(tiny_model_path):
    import numpy as np
    from ros2_depth_interp.core.inference import DepthInterpolator
    from ros2_depth_interp.core.preprocess import prepare
    stats = onnx_profile.graph_stats(tiny_model_path)
    assert stats['nodes'] == sum(stats['op_types'].values()) == stats['nodes_with_subgraphs']
    assert stats['op_types']['Conv'] > 0 and stats['opset'] >= 17 and stats['parameters'] > 0
    rng = np.random.default_rng(0)
    depth = rng.uniform(1, 2, (24, 40)).astype(np.float32)
    tensor = prepare(depth, rng.random((24, 40)) < 0.2, np.zeros((24, 40), np.uint8),
                     DepthInterpolator(tiny_model_path, warmup=False).stride).tensor
    profile = onnx_profile.operator_profile(tiny_model_path, tensor, runs=2, threads=1)
    assert profile['runs'] == 2 and profile['providers'] == ['CPUExecutionProvider']
    assert sum(v['share'] for v in profile['ops'].values()) == pytest.approx(1.0)
    assert any('Conv' in op for op in profile['compute_ops']) and 0 < profile['compute_share'] <= 1


def test_parse_compare_labels_and_missing_files(tmp_path):
    a = tmp_path / 'prev.onnx'
    a.write_bytes(b'')
    assert bench_model.parse_compare('%s, old=%s' % (a, a)) == [('prev', str(a)), ('old', str(a))]
    assert bench_model.parse_compare('') == []
    with pytest.raises(SystemExit):
        bench_model.parse_compare(str(tmp_path / 'missing.onnx'))
    with pytest.raises(SystemExit):
        bench_model.parse_compare('old=git:no-such-revision', str(tmp_path))
    assert bench_model.unique_labels(['a', 'b', 'a', 'a']) == ['a', 'b', 'a#2', 'a#3']
    assert bench_model.rotated([1, 2, 3], 4) == [2, 3, 1]


class FakeMethod:
    """A method for ``time_interleaved`` that records (label, frame, start time) in ``calls``."""

    def __init__(self, label, kind, calls):
        self.label, self.kind, self.calls = label, kind, calls

    def __call__(self, frame):
        self.calls.append((self.label, frame, time.perf_counter()))
        return 0.002, (0.001 if self.kind == 'onnx' else None)


def test_interleaved_rounds_sample_every_method_and_baselines_every_nth_round():
    calls = []
    methods = [FakeMethod('a', 'onnx', calls), FakeMethod('b', 'onnx', calls), FakeMethod('c', 'baseline', calls)]
    samples = bench_model.time_interleaved(methods, {(8, 8): 's1', (9, 9): 's2'}, rounds=6, warmup_rounds=2,
                                           baseline_every=3, progress=False, settle=0.0)
    assert len(samples[('a', (8, 8))]['total']) == 6 and len(samples[('b', (9, 9))]['network']) == 6
    assert len(samples[('c', (8, 8))]['total']) == 2 and samples[('c', (8, 8))]['network'] == []
    first_round = [label for label, frame, _ in calls[:4] if frame == 's1']
    second_round = [label for label, frame, _ in calls[4:8] if frame == 's1']
    assert first_round == ['a', 'b'] and second_round == ['b', 'a']     # order rotates
    stats = bench_model.latency_stats([0.001, 0.002, 0.003])
    assert stats['p50_ms'] == pytest.approx(2.0) and stats['n'] == 3 and stats['p99_over_p50'] > 1
    assert bench_model.latency_stats([]) is None


def test_every_call_waits_for_the_previous_session_to_settle():
    # the pause comes before each call, baselines included, so no session's threads still spin
    calls = []
    bench_model.time_interleaved([FakeMethod('a', 'onnx', calls), FakeMethod('b', 'baseline', calls)], {(8, 8): 's'},
                                 rounds=2, warmup_rounds=0, baseline_every=1, progress=False, settle=0.03)
    starts = [start for _, _, start in calls]
    assert len(starts) == 4 and min(np.diff(starts)) >= 0.03


def test_model_only_run_writes_json_markdown_and_plot(tiny_model_path, tmp_path, capsys):
    out = str(tmp_path / 'bench')
    rc = bench.main(['--model-only', '--model', tiny_model_path, '--compare', 'again=' + tiny_model_path,
                     '--sizes', '40x24,33x17', '--rounds', '2', '--warmup-rounds', '1', '--baseline-every', '2',
                     '--profile-runs', '1', '--threads', '1', '--out', out])
    assert rc == 0
    with open(os.path.join(out, 'model_only.json')) as f:
        report = json.loads(f.read(), parse_constant=lambda c: pytest.fail('not strict JSON: %s' % c))
    labels = ['tiny', 'again', 'colorization']
    assert [m['label'] for m in report['methods']] == labels
    assert [m['kind'] for m in report['methods']] == ['onnx', 'onnx', 'baseline']
    assert report['sizes'] == ['40x24', '33x17'] and report['frame']['mask'] == 'gradient'
    assert report['settle_ms'] == 50.0
    for label in labels:
        for size in report['sizes']:
            row = report['latency'][label][size]
            assert row['total']['n'] == (1 if label == 'colorization' else 2)
            assert row['total']['min_ms'] <= row['total']['p50_ms'] <= row['total']['p90_ms'] <= row['total']['p99_ms']
            assert (row['network'] is None) == (label == 'colorization')
            if row['network']:
                assert row['network']['p50_ms'] <= row['total']['p99_ms']
    assert set(report['models']) == {'tiny', 'again'}
    for model in report['models'].values():
        assert model['graph']['nodes'] > 0 and model['graph']['op_types']
        assert set(model['profile']) == set(report['sizes'])
        for profile in model['profile'].values():
            assert sum(v['share'] for v in profile['ops'].values()) == pytest.approx(1.0)
            assert not math.isnan(profile['compute_share'])
    assert any('graph: %d nodes' % report['models']['tiny']['graph']['nodes'] in line for line in report['checks'])
    with open(os.path.join(out, 'model_only.md')) as f:
        text = f.read()
    for heading in ('## Latency per frame', '## Graphs', '## ONNX Runtime per-operator profile', '## Checks'):
        assert heading in text
    assert '| colorization | 33x17 |' in text
    assert os.path.getsize(os.path.join(out, 'model_only.png')) > 5000
    printed = capsys.readouterr().out
    assert 'Conv/ConvTranspose/MatMul/Gemm' in printed and '| again | 40x24 |' in printed


def test_model_only_refuses_bad_options(tmp_path):
    with pytest.raises(SystemExit):
        bench_model.parse_args(['--sizes', '4x4'])
    with pytest.raises(SystemExit):
        bench_model.parse_args(['--rounds', '0'])
    with pytest.raises(SystemExit):
        bench_model.parse_args(['--settle-ms', '-1'])
    with pytest.raises(SystemExit):
        bench_model.main(['--model', str(tmp_path / 'missing.onnx'), '--out', str(tmp_path)])


def test_compare_with_the_shipped_model_of_a_git_revision(tmp_path):
    import subprocess
    from ros2_depth_interp.core.resources import CHECKOUT
    if subprocess.run(['git', '-C', CHECKOUT, 'cat-file', '-e', 'HEAD:models/depth_interp.onnx']).returncode:
        pytest.skip('not a git checkout with a committed models/depth_interp.onnx')
    ((label, path),) = bench_model.parse_compare('git:HEAD', str(tmp_path))
    assert label == 'HEAD' and path == str(tmp_path / 'compare' / 'HEAD_depth_interp.onnx')
    committed = subprocess.run(['git', '-C', CHECKOUT, 'show', 'HEAD:models/depth_interp.onnx'],
                               capture_output=True, check=True).stdout
    with open(path, 'rb') as f:
        assert f.read() == committed
    assert bench_model.parse_compare('before=git:HEAD', str(tmp_path))[0][0] == 'before'
