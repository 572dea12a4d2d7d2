"""Replay publisher and recorder: frame preparation, messages, and the three processes end to end.

The end-to-end test runs exactly what the demo and the benchmark run: the node executable, the
replay process and the recorder process, in a DDS domain of their own on loopback, with a tiny
untrained model. It checks counts, stamps and latency fields, never timings.
"""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from ros2_depth_interp.core import encodings

from ros2_depth_interp.tools import replay
from ros2_depth_interp.tools.bench import _Process, diagnostics_name, node_command, run_namespace
from ros2_depth_interp.core.geometry import read_ply
from ros2_depth_interp.tools.recorder import latency_summary, node_drained
from ros2_depth_interp.ros.ros_env import isolated_dds_env

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_synthetic_frames_are_semi_dense_views_of_the_ground_truth():
    frames = replay.synthetic_frames(3, height=48, width=64, seed=1, density=0.1, step=2)
    assert [f['index'] for f in frames] == [0, 2, 4]
    for f in frames:
        assert f['sparse'].shape == f['gt'].shape == f['mask'].shape == f['intensity'].shape == (48, 64)
        assert f['sparse'].dtype == np.float32 and f['intensity'].dtype == np.uint8
        assert abs(f['mask'].mean() - 0.1) < 0.01
        np.testing.assert_array_equal(f['sparse'][f['mask']], f['gt'][f['mask']])
        assert not f['sparse'][~f['mask']].any()
        assert f['K'].shape == (3, 3) and f['K'][0, 0] > 0
    # the same frame is the same whoever prepares it
    again = replay.synthetic_frames(2, height=48, width=64, seed=1, density=0.1, step=2)
    np.testing.assert_array_equal(again[1]['mask'], frames[1]['mask'])


def test_frames_file_round_trip(tmp_path):
    frames = replay.synthetic_frames(2, height=32, width=40, seed=0)
    path = replay.save_frames(str(tmp_path / 'f.npz'), frames, {'source': 'test'})
    loaded, meta = replay.load_frames(path)
    assert meta == {'source': 'test'} and len(loaded) == 2
    for a, b in zip(frames, loaded):
        for key in ('sparse', 'mask', 'intensity', 'gt', 'K'):
            np.testing.assert_array_equal(a[key], b[key])
    inputs_only, _ = replay.load_frames(replay.save_frames(str(tmp_path / 'g.npz'), frames,
                                                           with_ground_truth=False))
    assert 'gt' not in inputs_only[0]


def test_folder_frames_read_tum_style_pairs_and_scale_k(tmp_path):
    rng = np.random.default_rng(0)
    for name in ('1', '2'):
        rgb = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
        depth = np.full((60, 80), 2.5 * 5000, dtype=np.uint16)
        depth[:10] = 0   # the sensor saw nothing there
        cv2.imwrite(str(tmp_path / (name + '.png')), rgb)
        cv2.imwrite(str(tmp_path / (name + '_depth.png')), depth)
    frames = replay.folder_frames(str(tmp_path), density=0.2, intrinsics=(100.0, 100.0, 39.5, 29.5))
    assert len(frames) == 2
    f = frames[0]
    assert np.allclose(f['gt'][10:], 2.5) and not f['gt'][:10].any()
    assert not f['mask'][:10].any(), 'pixels without sensor depth are never "known"'
    assert f['rgb'].shape == (60, 80, 3)
    half = replay.folder_frames(str(tmp_path), height=30, width=40, intrinsics=(100.0, 100.0, 39.5, 29.5))
    assert half[0]['gt'].shape == (30, 40)
    np.testing.assert_allclose(half[0]['K'][[0, 1, 0, 1], [0, 1, 2, 2]], [50.0, 50.0, 19.5, 14.5])


@pytest.mark.parametrize('depth_encoding,image_encoding', [('32FC1', 'mono8'), ('16UC1', 'rgb8')])
def test_messages_decode_back_to_the_frame(depth_encoding, image_encoding):
    frame = replay.synthetic_frames(1, height=24, width=32)[0]
    messages = replay.build_messages(frame, depth_encoding, image_encoding, frame_id='cam')
    depth = encodings.depth_to_metres(encodings.msg_to_array(messages['depth']), depth_encoding, 0.001)
    np.testing.assert_allclose(depth, frame['sparse'], atol=0.0006 if depth_encoding == '16UC1' else 0)
    image = encodings.msg_to_array(messages['image'])
    if image_encoding == 'mono8':
        np.testing.assert_array_equal(image, frame['intensity'])
    else:
        assert image.shape == (24, 32, 3)
    np.testing.assert_array_equal(encodings.msg_to_array(messages['mask']) > 0, frame['mask'])
    assert list(messages['camera_info'].k) == pytest.approx(frame['K'].reshape(-1).tolist())
    assert all(messages[k].header.frame_id == 'cam' for k in messages)


def test_node_drained_accounts_for_every_set():
    values = {'count_input_set': '10', 'count_output': '6', 'dropped_superseded': '3',
              'dropped_sync_no_match_within_slop': '4', 'dropped_total': '7'}
    assert not node_drained(values)                  # one set still in the mailbox or the worker
    values['dropped_bad_encoding'] = '1'
    assert node_drained(values)
    assert node_drained({})                          # no set formed: nothing to wait for
    assert not node_drained({'count_input_set': 'x'})


def test_latency_summary():
    s = latency_summary([10.0, 20.0, 30.0, 40.0])
    assert s['n'] == 4 and s['p50'] == 25.0 and s['max'] == 40.0 and s['mean'] == 25.0
    assert latency_summary([])['n'] == 0


def test_replay_without_a_node_gives_up_with_a_clear_message(tmp_path):
    env = isolated_dds_env(log_dir=str(tmp_path / 'log'))
    result = subprocess.run([sys.executable, '-m', 'ros2_depth_interp.tools.replay', '--size', '32x24',
                             '--sequence-frames', '1', '--frames', '1', '--wait-timeout', '1'],
                            env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == replay.EXIT_NO_SUBSCRIBER
    assert 'no subscriber on' in result.stderr and 'semi_dense_depth' in result.stderr


def _wait_for_file(path, processes, timeout=240.0):
    import time
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        for proc in processes:
            assert proc.poll() is None, 'process exited early:\n' + proc.tail()
        assert time.monotonic() < deadline, 'timed out waiting for ' + str(path)
        time.sleep(0.05)


def test_replay_node_recorder_end_to_end(tmp_path, tiny_model_path):
    """Three processes over DDS with reliable QoS: every published frame is either processed (and
    arrives once on each output, with the replay's stamp and a positive latency) or counted as
    dropped by the node; diagnostics, saved images and a PLY come back."""
    frames_path = replay.save_frames(str(tmp_path / 'frames.npz'),
                                     replay.synthetic_frames(4, height=48, width=64, seed=3))
    env = isolated_dds_env(log_dir=str(tmp_path / 'log'))
    ready = tmp_path / 'ready'
    n = 6
    namespace = run_namespace('test')   # other processes may share the DDS domain
    node = _Process(node_command() + ['--ros-args', '-r', '__ns:=' + namespace, '-p', 'model_path:=' + tiny_model_path,
                                      '-p', 'providers:=[CPUExecutionProvider]', '-p', 'intra_op_threads:=1',
                                      '-p', 'reliable_outputs:=true', '-p', 'diagnostics_period:=0.2'],
                    env, str(tmp_path / 'node.log'), cwd=REPO)
    recorder = player = None
    try:
        recorder = _Process([sys.executable, '-m', 'ros2_depth_interp.tools.recorder', '--reliable',
                             '--namespace', namespace, '--node-name', diagnostics_name(namespace),
                             '--ready-file', str(ready), '--stop-file', str(tmp_path / 'done'),
                             '--timeout', '300',
                             '--save-dir', str(tmp_path / 'saved'), '--save-max', '3',
                             '--ply', str(tmp_path / 'cloud.ply'), '--summary', str(tmp_path / 'rec.json')],
                            env, str(tmp_path / 'recorder.log'), cwd=REPO)
        _wait_for_file(ready, (node, recorder))   # the recorder sees the node's publishers
        # the replay waits for the node's subscriptions itself
        player = _Process([sys.executable, '-m', 'ros2_depth_interp.tools.replay', '--frames-file', frames_path,
                           '--namespace', namespace, '--rate', '5', '--frames', str(n), '--reliable', '--wait-timeout', '180',
                           '--summary', str(tmp_path / 'replay.json')],
                          env, str(tmp_path / 'replay.log'), cwd=REPO)
        assert player.wait(240) == 0, player.tail() + node.tail()
        (tmp_path / 'done').touch()
        assert recorder.wait(120) == 0, recorder.tail() + node.tail()
    finally:
        for proc in (player, recorder, node):
            if proc is not None:
                proc.stop()
    published = json.loads((tmp_path / 'replay.json').read_text())
    recorded = json.loads((tmp_path / 'rec.json').read_text())
    assert published['published'] == n
    stamps = [s for s, _ in published['frames']]
    assert [i for _, i in published['frames']] == [0, 1, 2, 3, 0, 1]   # looped over the 4 frames
    assert recorded['stopped_by'] == 'drained'
    assert all(namespace + '/' in topic for topic in published['topics'])
    diag = recorded['diagnostics_last']
    assert int(diag['count_input_set']) == n                     # identical stamps: every set formed
    processed = int(diag['count_output'])
    assert processed >= 1 and processed + int(diag['dropped_total']) == n
    for topic in ('dense_depth', 'dense_confidence', 'points'):
        out = recorded['outputs'][topic]
        got = [s for s, _ in out['series']]
        assert set(got) <= set(stamps) and out['count'] == out['unique_stamps'] == processed
        assert all(latency > 0 for _, latency in out['series'])
        assert out['latency_ms']['n'] == out['count'] and out['latency_ms']['p99'] >= out['latency_ms']['p50'] > 0
    for stage in ('convert', 'normalize', 'infer', 'cloud', 'publish'):
        assert float(diag['latency_%s_ms_p50' % stage]) >= 0
    with np.load(recorded['outputs_file']) as saved:
        assert saved['dense_depth'].shape == (min(3, processed), 48, 64)
        assert saved['confidence'].shape == saved['dense_depth'].shape
        assert set(saved['stamps'].tolist()) <= set(stamps)
        assert np.isfinite(saved['dense_depth']).all()
    cloud = read_ply(str(tmp_path / 'cloud.ply'))
    assert recorded['ply']['points'] == cloud.shape[0] > 0 and recorded['ply']['stamp_ns'] in stamps
    assert np.isfinite(cloud).all() and (cloud[:, 2] > 0).all()
