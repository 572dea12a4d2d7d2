"""``depth_interp bench``: configuration matrix, analysis helpers, and one real short run.

The run uses a tiny untrained model at a small size for two seconds: it checks that the three
processes run and that the JSON, markdown and plots are written and well formed, never the speed.
"""
import json
import math

import numpy as np
import pytest

from ros2_depth_interp.tools import bench


def test_config_matrix():
    oat = bench.config_matrix([(640, 480), (1280, 960)], 'oat', rate=10, duration=5)
    assert [(c.size, c.name) for c in oat[:4]] == [
        ('640x480', 'base'), ('640x480', 'no_profile'), ('640x480', 'reliable'), ('640x480', 'no_cloud')]
    assert len(oat) == 8 and all(c.duration == 5 and c.rate == 10 for c in oat)
    base = oat[0]
    assert base.shm_profile and not base.reliable and base.cloud
    assert not oat[1].shm_profile and oat[2].reliable and not oat[3].cloud
    full = bench.config_matrix([(64, 48)], 'full')
    assert len(full) == 8 and len({(c.shm_profile, c.reliable, c.cloud) for c in full}) == 8
    assert len(bench.config_matrix([(64, 48)], 'base')) == 1
    with pytest.raises(ValueError):
        bench.config_matrix([(64, 48)], 'everything')


def test_node_arguments_follow_the_config():
    config = bench.BenchConfig('x', 64, 48, 10, 1, reliable=True, cloud=False)
    args = bench.node_arguments(config, '/m.onnx', 0.5, ['cloud_stride:=2'])
    assert args[0] == '--ros-args'
    params = args[2::2]
    assert 'reliable_outputs:=true' in params and 'publish_cloud:=false' in params
    assert 'model_path:=/m.onnx' in params and params[-1] == 'cloud_stride:=2'
    namespace = bench.run_namespace()
    assert namespace != bench.run_namespace() and namespace.startswith('/bench_')
    args = bench.node_arguments(config, '/m.onnx', namespace=namespace)
    assert args[1:3] == ['-r', '__ns:=' + namespace]
    assert bench.diagnostics_name('/a_1') == 'a_1/depth_interp:'


def test_latency_trend_and_rss_growth():
    t = np.arange(0, 60, 0.1)
    rising = [[int(s * 1e9), 100.0 + 2.0 * s] for s in t]     # +2 ms per second
    slope, first, second = bench.latency_trend(rising, warmup_s=1.0)
    assert slope == pytest.approx(120.0, rel=1e-6) and second > first
    flat = [[int(s * 1e9), 50.0] for s in t]
    assert bench.latency_trend(flat, 1.0)[0] == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(bench.latency_trend(rising[:3], 0.0)[0])
    samples = [(100.0 + s, 0.0, 1000 + (50 if s > 30 else 0)) for s in range(60)]
    assert bench.rss_growth(samples, 100.0, 10.0) == (pytest.approx(5.0), pytest.approx(5.0))
    spiky = [(100.0 + s, 0.0, 1000 + (80 if s % 10 == 0 else 0)) for s in range(1, 61)]
    growth, spike = bench.rss_growth(spiky, 100.0, 0.0)
    assert growth == 0.0 and spike == pytest.approx(8.0)   # transient allocations are no leak
    assert bench.rss_growth(samples[:2], 100.0, 10.0) == (None, None)


def test_finite_makes_strict_json():
    report = bench._finite({'a': float('nan'), 'b': [1.0, float('inf')], 'c': {'d': 2}})
    assert report == {'a': None, 'b': [1.0, None], 'c': {'d': 2}}
    json.dumps(report, allow_nan=False)


def test_failed_row_keeps_the_table_shape():
    row = {'config': bench.asdict(bench.BenchConfig('base', 64, 48, 10, 1)), 'error': 'node exited | rc 2'}
    table = bench.markdown_table([row]).splitlines()
    assert len(table) == 3 and table[2].count('|') == table[0].count('|')


def _strict(text):
    def no_nan(value):
        raise ValueError('non-finite number in JSON: %s' % value)
    return json.loads(text, parse_constant=no_nan)


def test_short_run_writes_json_markdown_and_plots(tmp_path, tiny_model_path):
    out = tmp_path / 'bench'
    rc = bench.main(['--model', tiny_model_path, '--sizes', '64x48', '--matrix', 'base', '--no-paced',
                     '--duration', '2', '--rate', '10', '--frames', '3', '--warmup', '0', '--out', str(out),
                     '--node-param', 'intra_op_threads:=1'])
    assert rc == 0
    report = _strict((out / 'bench.json').read_text())
    assert report['model'] == tiny_model_path and report['machine']['cpus'] >= 1
    (row,) = report['rows']
    assert 'error' not in row
    assert row['config']['name'] == 'base' and row['config']['width'] == 64
    assert row['published'] == 20
    assert row['node_outputs'] >= 1
    # every published frame is processed, dropped with a reason, or lost in transport
    assert row['node_outputs'] + sum(row['dropped'].values()) + row['lost_inputs'] >= row['published']
    assert all(0 <= lost <= row['node_outputs'] for lost in row['lost_outputs'].values())
    for topic in ('latency_dense_depth_ms', 'latency_points_ms'):
        lat = row[topic]
        assert lat['n'] >= 1 and lat['p99'] >= lat['p90'] >= lat['p50'] > 0
    for stage in bench.STAGES:
        assert row['stages_ms'][stage]['p50'] is not None
    assert row['overhead_p50_ms'] is not None and row['peak_rss_bytes'] > 10 * 2 ** 20
    assert row['latency_basis'] == 'points'   # cloud on, clouds arrive
    assert row['overhead_p50_ms'] == row['overhead_points_p50_ms']
    assert row['execution_provider'] == 'CPUExecutionProvider'
    assert len(row['series']['latency']) == row['received']['points']
    table = (out / 'bench.md').read_text()
    assert '| 64x48 base | 10 |' in table and 'dense_depth p50/p90/p99 ms' in table
    for png in ('latency.png', 'rss.png'):
        assert (out / png).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert (out / 'runs_bench' / '64x48_base' / 'node.log').exists()
