"""Bad input never kills the node; bad configuration stops it at once with one clear error.

One node process serves the runtime part of this module. Each bad input is sent on its own and the
test waits until /diagnostics counts it (the worker keeps only the newest set, so sending several
at once would count the others as superseded instead). At the end a good frame must still come
back correct, the process must still be alive, and the throttled log must hold one line per kind.
"""
import os
import signal

import numpy as np
import pytest
from sensor_msgs.msg import Image

from ros2_depth_interp.ros.ros_msgs import cloud_msg_to_array, make_image

from node_helpers import (RUN_NS, Bench, NodeProcess, counter, decode, k_matrix, plane_frame, run_node_to_exit,
                          tiny_model)

H, W = 48, 64
FX, FY, CX, CY = 60.0, 60.0, 31.5, 23.5
NS = RUN_NS + '/bad'                   # RUN_NS: this test process' own namespace
NAME = NS + '/depth_interp'
TOPICS = {role: NS + '/' + topic for role, topic in (
    ('depth', 'semi_dense_depth'), ('image', 'image'), ('mask', 'mask'), ('camera_info', 'camera_info'),
    ('dense_depth', 'dense_depth'), ('dense_confidence', 'dense_confidence'), ('points', 'points'))}


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp('model'))


@pytest.fixture(scope='module')
def running(model):
    node = NodeProcess(['-r', '__ns:=' + NS, '-p', 'model_path:=' + model, '-p', 'providers:=[CPUExecutionProvider]',
                        '-p', 'intra_op_threads:=1', '-p', 'diagnostics_period:=0.2',
                        '-p', 'log_throttle_sec:=600.0'])
    bench = Bench('bad_input_bench', TOPICS)
    try:
        bench.wait_for_matching(NAME, process=node)
        yield node, bench
    finally:
        bench.close()
        node.stop()


def good_set():
    sparse, mask, intensity = plane_frame(H, W, depth_m=2.0, density=0.1, seed=11)
    return (sparse, '32FC1'), (intensity, 'mono8'), (mask, 'mono8')


def expect_counted(running, key, depth, image, mask, **kwargs):
    """Publish one set and wait until diagnostics show ``key`` one higher than before."""
    node, bench = running
    before = counter(bench.fresh_values(NAME, node), key)
    bench.publish_set(depth, image, mask, **kwargs)
    bench.wait_counter(NAME, lambda v: counter(v, key) > before, '%s to be counted' % key, process=node)
    # the report that first counts a drop is a warning naming it
    warned = [s for s in bench.statuses(NAME) if key[len('dropped_'):] + ' x' in s.message]
    assert warned and all(s.level == s.WARN for s in warned), [(s.level, s.message) for s in warned]


def raw_image(encoding, height, width, step, data):
    msg = Image()
    msg.encoding, msg.height, msg.width, msg.step = encoding, height, width, step
    msg.data = bytes(data)
    return msg


def test_good_frame_without_intrinsics_publishes_depth_but_no_cloud(running):
    node, bench = running
    stamp = bench.publish_set(*good_set())
    out = bench.wait_outputs(stamp, roles=('dense_depth', 'dense_confidence'), process=node)
    np.testing.assert_allclose(decode(out['dense_depth']), 2.0, rtol=0.05)
    values = bench.wait_counter(NAME, lambda v: counter(v, 'count_cloud_skipped_no_intrinsics') >= 1,
                                'the skipped cloud to be counted', process=node)
    assert values['intrinsics'] == 'none'
    assert not bench.has_output('points', stamp)


def test_wrong_encodings(running):
    depth, image, mask = good_set()
    expect_counted(running, 'dropped_bad_encoding', (mask[0], 'mono8'), image, mask)          # depth as mono8
    yuv = np.zeros((H, W, 2), np.uint8)
    expect_counted(running, 'dropped_bad_encoding', depth, make_image(yuv, 'yuv422', Image().header), mask)
    truncated = raw_image('32FC1', H, W, W * 4, bytes(W * 4 * H // 2))                      # half the data
    expect_counted(running, 'dropped_bad_encoding', truncated, image, mask)
    expect_counted(running, 'dropped_bad_encoding', raw_image('no_such_encoding', H, W, W, bytes(H * W)),
                   image, mask)
    expect_counted(running, 'dropped_bad_encoding', depth, image, (mask[0].astype(np.float32), '32FC1'))


def test_size_mismatches(running):
    depth, image, mask = good_set()
    expect_counted(running, 'dropped_size_mismatch', depth, (image[0][:40], 'mono8'), mask)
    expect_counted(running, 'dropped_size_mismatch', depth, image, (mask[0][:, :60].copy(), 'mono8'))


def test_empty_and_all_invalid_depth(running):
    _, image, mask = good_set()
    expect_counted(running, 'dropped_empty_depth', raw_image('32FC1', 0, 0, 0, b''), image, mask)
    expect_counted(running, 'dropped_no_valid_depth', (np.zeros((H, W), np.float32), '32FC1'), image, mask)
    expect_counted(running, 'dropped_no_valid_depth', (np.full((H, W), np.nan, np.float32), '32FC1'),
                   image, mask)
    expect_counted(running, 'dropped_no_valid_depth', (np.full((H, W), -np.inf, np.float32), '32FC1'),
                   image, mask)


def test_mask_with_no_known_pixel(running):
    depth, image, mask = good_set()
    expect_counted(running, 'dropped_mask_empty', depth, image, (np.zeros((H, W), np.uint8), 'mono8'))
    disjoint = np.where(depth[0] > 0, 0, 255).astype(np.uint8)
    expect_counted(running, 'dropped_no_known_pixel', depth, image, (disjoint, 'mono8'))


def test_nan_and_inf_are_unknown_and_outputs_stay_finite(running):
    node, bench = running
    (sparse, _), image, mask = good_set()
    noisy = sparse.copy()
    noisy[0, :] = np.nan
    noisy[1, :] = np.inf
    noisy[2, :] = -np.inf
    full_mask = np.full((H, W), 255, np.uint8)          # the mask claims the NaN rows are known
    noisy[3:, :] = np.where(mask[0][3:, :] > 0, 2.0, np.nan)
    before = counter(bench.fresh_values(NAME, node), 'count_frames_with_nonfinite_depth')
    stamp = bench.publish_set((noisy, '32FC1'), image, (full_mask, 'mono8'))
    out = bench.wait_outputs(stamp, roles=('dense_depth', 'dense_confidence'), process=node)
    dense = decode(out['dense_depth'])
    assert np.isfinite(dense).all()
    np.testing.assert_allclose(dense, 2.0, rtol=0.05)
    confidence = decode(out['dense_confidence'])
    assert np.isfinite(confidence).all() and confidence.min() >= 0 and confidence.max() <= 1
    bench.wait_counter(NAME, lambda v: counter(v, 'count_frames_with_nonfinite_depth') > before,
                       'the non-finite frame to be counted', process=node)


def test_zero_or_negative_focal_length_in_camera_info(running):
    node, bench = running
    for k in (k_matrix(0.0, FY, CX, CY), k_matrix(FX, -FY, CX, CY), [0.0] * 9):
        before = counter(bench.fresh_values(NAME, node), 'dropped_bad_camera_info')
        bench.publish_camera_info(k, W, H)
        bench.wait_counter(NAME, lambda v: counter(v, 'dropped_bad_camera_info') > before,
                           'the bad camera_info to be counted', process=node)
    assert bench.latest_values(NAME)['intrinsics'] == 'none'     # none of them was taken


def test_stamps_far_apart_never_pair(running):
    node, bench = running
    depth, image, mask = good_set()
    values = bench.fresh_values(NAME, node)
    outputs_before = counter(values, 'count_output')
    sync_before = sum(int(v) for k, v in values.items() if k.startswith('dropped_sync_'))
    t = bench.next_stamp()
    bench.publish_set(depth, image, mask, stamps=(t, t + 10**9, t))      # image 1 s later, slop 0.05 s
    bench.wait_counter(NAME, lambda v: sum(int(x) for k, x in v.items() if k.startswith('dropped_sync_'))
                       > sync_before, 'the unmatched messages to be counted', process=node)
    assert counter(bench.latest_values(NAME), 'count_output') == outputs_before
    bench.next_stamp(2.0)            # later frames are newer than the stray image


def test_time_jump_back_resets_the_synchronizer(running):
    node, bench = running
    depth, image, mask = good_set()
    stamp = bench.publish_set(depth, image, mask)
    bench.wait_outputs(stamp, roles=('dense_depth',), process=node)
    before = counter(bench.fresh_values(NAME, node), 'count_time_jumps')
    earlier = bench.next_stamp() - 100 * 10**9                        # a bag starting over
    stamp = bench.publish_set(depth, image, mask, stamp_ns=earlier)
    out = bench.wait_outputs(stamp, roles=('dense_depth',), process=node)
    np.testing.assert_allclose(decode(out['dense_depth']), 2.0, rtol=0.05)
    bench.wait_counter(NAME, lambda v: counter(v, 'count_time_jumps') > before, 'the time jump to be counted',
                       process=node)


def test_still_alive_and_correct_after_all_that(running):
    node, bench = running
    assert node.poll() is None
    bench.publish_camera_info(k_matrix(FX, FY, CX, CY), W, H)
    bench.wait_counter(NAME, lambda v: v['intrinsics'] == 'camera_info', 'intrinsics from camera_info',
                       process=node)
    depth, image, mask = good_set()
    stamp = bench.publish_set(depth, image, mask, frame_id='after_bad_input')
    out = bench.wait_outputs(stamp, process=node)
    dense = decode(out['dense_depth'])
    assert out['dense_depth'].header.frame_id == 'after_bad_input'
    np.testing.assert_allclose(dense, 2.0, rtol=0.05)
    cloud = cloud_msg_to_array(out['points'])
    assert cloud.shape == (H, W, 4)
    np.testing.assert_allclose(cloud[:, :, 2], dense, rtol=1e-6)
    v, u = 40, 5
    np.testing.assert_allclose(cloud[v, u, 0], (u - CX) / FX * dense[v, u], rtol=1e-5)
    np.testing.assert_allclose(cloud[v, u, 1], (v - CY) / FY * dense[v, u], rtol=1e-5)

    values = bench.latest_values(NAME)
    dropped = {k: int(v) for k, v in values.items() if k.startswith('dropped_') and k != 'dropped_total'}
    assert int(values['dropped_total']) == sum(dropped.values())
    for key in ('dropped_bad_encoding', 'dropped_size_mismatch', 'dropped_empty_depth',
                'dropped_no_valid_depth', 'dropped_mask_empty', 'dropped_no_known_pixel',
                'dropped_bad_camera_info'):
        assert int(values.get(key, 0)) >= 1, key


def test_log_lines_are_clear_and_throttled(running):
    node, _ = running
    assert node.stop(signal.SIGINT) == 0
    log = node.output()
    assert 'Traceback' not in log
    lines = log.splitlines()
    # five bad encodings were dropped, log_throttle_sec is 600: exactly one line says so
    encoding_lines = [line for line in lines if '[bad_encoding]' in line]
    assert len(encoding_lines) == 1, encoding_lines
    assert 'WARN' in encoding_lines[0] and 'dropped frame' in encoding_lines[0]
    assert len([line for line in lines if '[no_valid_depth]' in line]) == 1
    assert any('no camera intrinsics' in line for line in lines)
    assert any('unusable K' in line for line in lines)
    assert any('[sync]' in line and 'no_match_within_slop' in line for line in lines)


# --- bad configuration ----------------------------------------------------------------------------

def _corrupt_model(folder):
    path = os.path.join(str(folder), 'corrupt.onnx')
    with open(path, 'wb') as f:
        f.write(b'\x08\x07not really an onnx model' * 10)
    return path


@pytest.mark.parametrize('args, fragment', [
    (['-p', 'cloud_stride:=0'], 'cloud_stride must be an integer in [1, 64], got 0'),
    (['-p', 'fx:=-5.0', '-p', 'fy:=-5.0'], 'fx must be a double in'),
    (['-p', 'fx:=0.0', '-p', 'fy:=500.0'], 'fx and fy must be set together'),
    (['-p', 'min_depth:=1'], 'min_depth must be a double'),
    (['-p', 'backend:=tensorflow'], 'backend must be one of onnx, torch'),
    (['-p', 'model_path:=/nonexistent/depth_interp.onnx'], 'model file not found: /nonexistent/depth_interp.onnx'),
    ('corrupt', 'cannot load model'),
], ids=['stride0', 'negative_focal', 'fx_without_fy', 'int_for_double', 'backend', 'missing_model',
        'corrupt_model'])
def test_bad_configuration_exits_2_with_one_clear_error(model, tmp_path, args, fragment):
    if args == 'corrupt':
        args = ['-p', 'model_path:=' + _corrupt_model(tmp_path)]
    else:
        args = ['-p', 'model_path:=' + model] + args if 'model_path' not in ' '.join(args) else args
    rc, output = run_node_to_exit(args)
    assert rc == 2, output
    errors = [line for line in output.splitlines() if 'configuration error' in line]
    assert len(errors) == 1, output
    assert fragment in errors[0], errors[0]
    assert 'Traceback' not in output
