"""The node in its own process over real DDS: values, headers, sizes, cloud geometry, diagnostics.

Two node processes serve the whole module (started once, module-scoped):

- ``masked``: mask in use, every topic remapped to a non-default name, cloud_stride 2, RELIABLE
  outputs (the test subscribes RELIABLE, which would not match a best-effort publisher), intrinsics
  from camera_info.
- ``robot``: started with the shipped config/robot.yaml (LSD-SLAM: inverse depth, no mask) in
  namespace /robot, intrinsics from the fx/fy parameters (no camera_info is ever published).

The network is a tiny untrained one exported with the project's export code; it starts from a
pre-fill of the known values, so a plane comes back as the same plane within a few percent.
"""
import math
import os
import signal

import numpy as np
import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import PointField

from ros2_depth_interp.ros.ros_msgs import cloud_msg_to_array

from node_helpers import (REPO, RUN_NS, Bench, NodeProcess, counter, decode, k_matrix, needs_torch,
                          plane_frame, tiny_model, wait_until)

H, W = 48, 64
FX, FY, CX, CY = 50.0, 55.0, 31.5, 23.5
MASKED_NS = RUN_NS + '/itest'          # RUN_NS: this test process' own namespace
MASKED_NODE = MASKED_NS + '/depth_interp'
MASKED_TOPICS = {
    'depth': RUN_NS + '/slam/semi_dense', 'image': RUN_NS + '/cam/image_raw', 'mask': RUN_NS + '/slam/mask',
    'camera_info': RUN_NS + '/cam/camera_info', 'dense_depth': RUN_NS + '/out/depth',
    'dense_confidence': MASKED_NS + '/dense_confidence', 'points': MASKED_NS + '/points',
}
ROBOT_NS = RUN_NS + '/robot'
ROBOT_NODE = ROBOT_NS + '/depth_interp'
ROBOT_TOPICS = {
    'depth': ROBOT_NS + '/semi_dense_depth', 'image': ROBOT_NS + '/image', 'mask': None,
    'camera_info': ROBOT_NS + '/camera_info', 'dense_depth': ROBOT_NS + '/dense_depth',
    'dense_confidence': ROBOT_NS + '/dense_confidence', 'points': ROBOT_NS + '/points',
}


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp('model'))


@pytest.fixture(scope='module')
def masked(model):
    node = NodeProcess([
        '-r', '__ns:=' + MASKED_NS,
        '-r', 'semi_dense_depth:=' + MASKED_TOPICS['depth'],
        '-r', 'image:=' + MASKED_TOPICS['image'],
        '-r', 'mask:=' + MASKED_TOPICS['mask'],
        '-r', 'camera_info:=' + MASKED_TOPICS['camera_info'],
        '-r', 'dense_depth:=' + MASKED_TOPICS['dense_depth'],
        '-p', 'model_path:=' + model,
        '-p', 'providers:=[CPUExecutionProvider]',
        '-p', 'intra_op_threads:=1',
        '-p', 'cloud_stride:=2',
        '-p', 'reliable_outputs:=true',
        '-p', 'diagnostics_period:=0.2',
    ])
    bench = Bench('itest_masked_bench', MASKED_TOPICS, reliable_outputs=True)
    try:
        bench.wait_for_matching(MASKED_NODE, process=node)
        bench.publish_camera_info(k_matrix(FX, FY, CX, CY), W, H, frame_id='cam_optical')
        yield node, bench
    finally:
        bench.close()
        node.stop()


@pytest.fixture(scope='module')
def robot(model):
    node = NodeProcess([
        '--params-file', os.path.join(REPO, 'config', 'robot.yaml'),
        '-r', '__ns:=' + ROBOT_NS,
        '-p', 'model_path:=' + model,
        '-p', 'providers:=[CPUExecutionProvider]',
        '-p', 'intra_op_threads:=1',
        '-p', 'min_confidence:=0.0',
        '-p', 'fx:=' + str(FX), '-p', 'fy:=' + str(FY),
        '-p', 'diagnostics_period:=0.2',
        '-p', 'sync_min_period:=0.05',     # the bench publishes sets 0.1 s apart
    ])
    bench = Bench('itest_robot_bench', ROBOT_TOPICS, reliable_outputs=True)
    try:
        bench.wait_for_matching(ROBOT_NODE, process=node)
        yield node, bench
    finally:
        bench.close()
        node.stop()


def check_image(msg, stamp, frame_id, encoding='32FC1'):
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == stamp
    assert msg.header.frame_id == frame_id
    assert (msg.height, msg.width, msg.encoding) == (H, W, encoding)
    assert msg.step == W * 4
    array = decode(msg)
    assert array.shape == (H, W) and array.dtype == np.float32
    assert np.isfinite(array).all()
    return array


def check_cloud_geometry(msg, dense, stride, fx, fy, cx, cy, stamp, frame_id, intensity=None):
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == stamp
    assert msg.header.frame_id == frame_id
    rows, cols = math.ceil(H / stride), math.ceil(W / stride)
    assert (msg.height, msg.width) == (rows, cols)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ('x', 0, PointField.FLOAT32, 1), ('y', 4, PointField.FLOAT32, 1),
        ('z', 8, PointField.FLOAT32, 1), ('intensity', 12, PointField.FLOAT32, 1)]
    assert msg.point_step == 16 and msg.row_step == 16 * cols and msg.is_dense is False
    assert len(msg.data) == 16 * rows * cols
    cloud = cloud_msg_to_array(msg)
    z = cloud[:, :, 2]
    np.testing.assert_allclose(z, dense[::stride, ::stride], rtol=1e-6)
    np.testing.assert_allclose(z, 2.0, rtol=0.05)      # the plane is at 2 units
    for r, c in [(0, 0), (rows - 1, cols - 1), (rows // 2, 3), (2, cols - 2)]:
        u, v = c * stride, r * stride
        np.testing.assert_allclose(cloud[r, c, 0], (u - cx) / fx * z[r, c], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(cloud[r, c, 1], (v - cy) / fy * z[r, c], rtol=1e-5, atol=1e-6)
    if intensity is not None:
        np.testing.assert_array_equal(cloud[:, :, 3], intensity[::stride, ::stride].astype(np.float32))
    return cloud


# --- the node's building blocks: message packing and statistics -------------------------------------

def test_image_and_cloud_messages_round_trip_and_reuse_buffers():
    from std_msgs.msg import Header
    from ros2_depth_interp.ros.ros_msgs import MessageCache, make_cloud
    header = Header(frame_id='cam')
    header.stamp.sec, header.stamp.nanosec = 12, 345
    cache = MessageCache()
    depth = np.arange(H * W, dtype=np.float32).reshape(H, W) / 7.0
    first = cache.image('depth', depth, '32FC1', header)
    buffer = first.data
    np.testing.assert_array_equal(decode(first), depth)
    assert (first.step, first.is_bigendian, first.header.frame_id) == (W * 4, 0, 'cam')
    second = cache.image('depth', depth * 2, '32FC1', header)
    assert second is first and second.data is buffer                 # same size: no allocation
    np.testing.assert_array_equal(decode(second), depth * 2)
    smaller = cache.image('depth', depth[:10], '32FC1', header)
    assert smaller.height == 10 and smaller.data is not buffer

    cloud = np.random.default_rng(0).normal(size=(6, 8, 4)).astype(np.float32)
    cloud[2, 3, :3] = np.nan
    msg = make_cloud(cloud, header)
    assert (msg.height, msg.width, msg.point_step, msg.row_step, msg.is_dense) == (6, 8, 16, 128, False)
    np.testing.assert_array_equal(cloud_msg_to_array(msg), cloud)
    reused = cache.cloud(cloud, header)
    again = cache.cloud(cloud * 2, header)
    assert again is reused
    np.testing.assert_array_equal(cloud_msg_to_array(again), cloud * 2)
    with pytest.raises(ValueError):
        make_cloud(cloud.astype(np.float64), header)


def test_stats_rates_latency_and_drop_keys():
    from collections import Counter
    from ros2_depth_interp.core.stats import LatencyWindow, NodeStats, RateMeter
    now = [0.0]
    meter = RateMeter(window_s=5.0, clock=lambda: now[0])
    for i in range(11):
        now[0] = i * 0.1
        meter.tick()
    assert meter.rate() == pytest.approx(10.0)
    now[0] = 60.0
    assert meter.rate() == 0.0                         # a stopped stream reads 0, not its last rate

    window = LatencyWindow(size=10)
    assert window.summary() is None
    for ms in range(1, 21):                            # only the last 10 (11..20 ms) count
        window.add(ms / 1000.0)
    summary = window.summary()
    assert summary['n'] == 10 and summary['max'] == pytest.approx(0.020)
    assert summary['mean'] == pytest.approx(0.0155) and summary['p50'] == pytest.approx(0.0155)

    stats = NodeStats(stages=('convert', 'infer'), clock=lambda: now[0])
    empty = dict(stats.key_values(rate_names=['output']))
    assert empty['rate_output_hz'] == '0.00' and empty['latency_infer_ms_p90'] == 'nan'
    assert empty['dropped_total'] == '0'
    external = Counter(no_match_within_slop=2)
    stats.set_external_drops('sync_', external)
    stats.drop('bad_encoding')
    stats.add_timings({'convert': 0.001, 'infer': 0.004, 'publish': 0.002})
    stats.add_density(0.1)
    stats.tick('output')
    external['queue_overflow'] += 1                    # counted by its owner after registration
    values = dict(stats.key_values(extra=[('execution_provider', 'CPUExecutionProvider')]))
    assert values['execution_provider'] == 'CPUExecutionProvider'
    assert values['latency_infer_ms_mean'] == '4.000' and values['latency_publish_ms_max'] == '2.000'
    assert values['dropped_bad_encoding'] == '1' and values['dropped_sync_no_match_within_slop'] == '2'
    assert values['dropped_sync_queue_overflow'] == '1' and values['dropped_total'] == '4'
    assert values['count_output'] == '1' and values['input_density'] == '0.1000'


# --- the masked node ---------------------------------------------------------------------------------

def test_dense_depth_confidence_and_cloud_from_a_plane(masked):
    node, bench = masked
    sparse, mask, intensity = plane_frame(H, W, depth_m=2.0, density=0.1, seed=2)
    stamp, out = bench.publish_and_wait((sparse, '32FC1'), (intensity, 'mono8'), (mask, 'mono8'),
                                        frame_id='cam_optical', process=node)

    dense = check_image(out['dense_depth'], stamp, 'cam_optical')
    known = mask > 0
    np.testing.assert_allclose(dense[known], 2.0, rtol=0.03)    # measured pixels come back
    np.testing.assert_allclose(dense, 2.0, rtol=0.05)
    confidence = check_image(out['dense_confidence'], stamp, 'cam_optical')
    assert confidence.min() >= 0.0 and confidence.max() <= 1.0
    check_cloud_geometry(out['points'], dense, 2, FX, FY, CX, CY, stamp, 'cam_optical', intensity)


def test_16uc1_millimetres_and_a_colour_image(masked):
    node, bench = masked
    sparse, mask, intensity = plane_frame(H, W, depth_m=2.0, density=0.2, seed=3)
    millimetres = np.where(mask > 0, 2000, 0).astype(np.uint16)
    rgb = np.dstack([intensity] * 3)
    stamp, out = bench.publish_and_wait((millimetres, '16UC1'), (rgb, 'rgb8'), (mask, 'mono8'),
                                        frame_id='cam_optical', process=node)
    dense = check_image(out['dense_depth'], stamp, 'cam_optical')
    np.testing.assert_allclose(dense, 2.0, rtol=0.05)      # metres out
    check_cloud_geometry(out['points'], dense, 2, FX, FY, CX, CY, stamp, 'cam_optical', intensity)


def test_measured_pixels_of_a_slanted_surface(masked):
    node, bench = masked
    rng = np.random.default_rng(4)
    truth = np.linspace(1.0, 4.0, W, dtype=np.float32)[None, :].repeat(H, axis=0)
    mask = ((rng.random((H, W)) < 0.15) * 255).astype(np.uint8)
    sparse = np.where(mask > 0, truth, 0).astype(np.float32)
    intensity = rng.integers(0, 256, (H, W), dtype=np.uint8)
    stamp, out = bench.publish_and_wait((sparse, '32FC1'), (intensity, 'mono8'), (mask, 'mono8'),
                                        frame_id='cam_optical', process=node)
    dense = check_image(out['dense_depth'], stamp, 'cam_optical')
    known = mask > 0
    np.testing.assert_allclose(dense[known], truth[known], rtol=0.05)


def test_a_vga_frame_of_several_megabytes_gets_through(masked):
    """640x480: 1.2 MB depth in, 1.2 MB depth + confidence + 1.2 MB cloud out (large-SHM profile)."""
    node, bench = masked
    height, width = 480, 640
    sparse, mask, intensity = plane_frame(height, width, depth_m=2.0, density=0.05, seed=8)
    stamp, out = bench.publish_and_wait((sparse, '32FC1'), (intensity, 'mono8'), (mask, 'mono8'),
                                        frame_id='cam_optical', process=node)
    dense = decode(out['dense_depth'])
    assert dense.shape == (height, width) and np.isfinite(dense).all()
    np.testing.assert_allclose(dense[mask > 0], 2.0, rtol=0.03)
    cloud = cloud_msg_to_array(out['points'])
    assert cloud.shape == (240, 320, 4)       # stride 2; K is scaled from the 64x48 camera_info
    np.testing.assert_allclose(cloud[:, :, 2], dense[::2, ::2], rtol=1e-6)
    np.testing.assert_allclose(cloud[100, 10, 0], (20 - (CX + 0.5) * 10 + 0.5) / (FX * 10) * dense[200, 20],
                               rtol=1e-4)


def test_a_burst_is_never_queued_the_newest_set_always_comes_out(masked):
    """Real-time policy: every set is either published or counted as superseded, and the newest
    one is always published. How many are superseded depends on the machine, and with sensor-data
    QoS (keep last 5) the oldest messages of a burst may already be replaced in the DDS reader
    before the node takes them, so only the invariant is checked, not the numbers."""
    node, bench = masked
    fqn = MASKED_NODE

    def settled(values):
        """Fresh (counts every output this test process has seen) and idle: with no frame errors
        on this node, every set formed so far was published or superseded."""
        return (counter(values, 'count_output') >= len(bench.received['dense_depth'])
                and counter(values, 'count_input_set') == (counter(values, 'count_output')
                                                           + counter(values, 'dropped_superseded')))
    before = bench.wait_counter(fqn, settled, 'a settled baseline', process=node)
    height, width = 240, 320
    sparse, mask, intensity = plane_frame(height, width, depth_m=2.0, density=0.05, seed=9)
    stamps = [bench.publish_set((sparse, '32FC1'), (intensity, 'mono8'), (mask, 'mono8')) for _ in range(6)]
    out = bench.wait_outputs(stamps[-1], roles=('dense_depth',), process=node)
    assert decode(out['dense_depth']).shape == (height, width)

    after = bench.wait_counter(
        fqn, lambda v: settled(v) and counter(v, 'count_output') > counter(before, 'count_output'),
        'every set published or superseded', process=node)
    assert 1 <= counter(after, 'count_input_set') - counter(before, 'count_input_set') <= 6
    published = [s for s in stamps if bench.has_output('dense_depth', s)]
    assert published[-1] == stamps[-1]


def test_inputs_are_on_the_remapped_names_only(masked):
    node, bench = masked
    graph = bench.node
    for role in ('depth', 'image', 'mask', 'camera_info'):
        assert graph.count_subscribers(MASKED_TOPICS[role]) >= 1, role
    for default in ('semi_dense_depth', 'image', 'mask', 'camera_info'):
        assert graph.count_subscribers(MASKED_NS + '/' + default) == 0, default
    assert graph.count_publishers(MASKED_TOPICS['dense_depth']) == 1
    assert graph.count_publishers(MASKED_NS + '/dense_depth') == 0


def set_parameters(bench, node_fqn, process, **values):
    """Call <node>/set_parameters from the test process; returns the list of results."""
    client = bench.node.create_client(SetParameters, node_fqn + '/set_parameters')
    try:
        wait_until(lambda: client.service_is_ready(), what='the set_parameters service', process=process)
        request = SetParameters.Request()
        for name, value in values.items():
            pv = ParameterValue()
            if isinstance(value, bool):
                pv.type, pv.bool_value = ParameterType.PARAMETER_BOOL, value
            elif isinstance(value, int):
                pv.type, pv.integer_value = ParameterType.PARAMETER_INTEGER, value
            else:
                pv.type, pv.double_value = ParameterType.PARAMETER_DOUBLE, float(value)
            request.parameters.append(ParameterMsg(name=name, value=pv))
        future = client.call_async(request)
        wait_until(future.done, what='set_parameters response', process=process)
        return future.result().results
    finally:
        bench.node.destroy_client(client)


def test_runtime_parameter_changes_are_validated_and_applied(masked):
    node, bench = masked
    fqn = MASKED_NODE
    sparse, mask, intensity = plane_frame(H, W, depth_m=2.0, density=0.1, seed=5)

    rejected = set_parameters(bench, fqn, node, cloud_stride=0)
    assert not rejected[0].successful
    rejected = set_parameters(bench, fqn, node, use_mask=False)
    assert not rejected[0].successful and 'start-up' in rejected[0].reason
    accepted = set_parameters(bench, fqn, node, min_depth=3.0)     # max_depth 0 = no upper limit
    assert accepted[0].successful
    rejected = set_parameters(bench, fqn, node, max_depth=2.5)     # not above min_depth 3.0
    assert not rejected[0].successful and 'max_depth' in rejected[0].reason

    # min_depth 3 filters out the whole plane at 2: cloud all NaN, dense depth unaffected
    stamp, out = bench.publish_and_wait((sparse, '32FC1'), (intensity, 'mono8'), (mask, 'mono8'),
                                        frame_id='cam_optical', process=node)
    assert np.isnan(cloud_msg_to_array(out['points'])[:, :, :3]).all()
    np.testing.assert_allclose(decode(out['dense_depth']), 2.0, rtol=0.05)

    accepted = set_parameters(bench, fqn, node, cloud_stride=4, min_depth=0.0)
    assert all(r.successful for r in accepted), [r.reason for r in accepted]
    stamp, out = bench.publish_and_wait((sparse, '32FC1'), (intensity, 'mono8'), (mask, 'mono8'),
                                        frame_id='cam_optical', process=node)
    dense = decode(out['dense_depth'])
    check_cloud_geometry(out['points'], dense, 4, FX, FY, CX, CY, stamp, 'cam_optical', intensity)

    assert set_parameters(bench, fqn, node, cloud_stride=2)[0].successful


def test_diagnostics_report_rates_latency_drops_and_provider(masked, model):
    node, bench = masked
    sparse, mask, intensity = plane_frame(H, W, depth_m=2.0, density=0.1, seed=6)
    for _ in range(3):
        stamp = bench.publish_set((sparse, '32FC1'), (intensity, 'mono8'), (mask, 'mono8'))
        bench.wait_outputs(stamp, process=node)
    values = bench.wait_counter(MASKED_NODE, lambda v: counter(v, 'count_output') >= 3,
                                'diagnostics counting 3 outputs', process=node)
    assert values['execution_provider'] == 'CPUExecutionProvider'
    assert values['model_path'] == model
    assert values['use_mask'] == 'true'
    assert values['intrinsics'] == 'camera_info'
    for name in ('semi_dense_depth', 'image', 'mask', 'input_set', 'output'):
        assert float(values['rate_%s_hz' % name]) >= 0.0
    for stage in ('queue', 'convert', 'normalize', 'infer', 'cloud', 'publish', 'total'):
        for stat in ('mean', 'p50', 'p90', 'max'):
            number = float(values['latency_%s_ms_%s' % (stage, stat)])
            assert math.isfinite(number) and number >= 0.0, (stage, stat, number)
    assert float(values['latency_infer_ms_p50']) <= float(values['latency_infer_ms_max'])
    density = float(values['input_density'])
    assert 0.05 < density < 0.2
    assert counter(values, 'count_input_set') >= counter(values, 'count_output') >= 3
    assert 'dropped_total' in values
    status = bench.latest_status(MASKED_NODE)
    assert status.hardware_id == 'CPUExecutionProvider'


# --- the robot.yaml node ----------------------------------------------------------------------------

def test_robot_config_no_mask_subscription_and_reliable_outputs(robot):
    node, bench = robot
    assert bench.node.count_subscribers(ROBOT_NS + '/mask') == 0
    assert bench.node.count_subscribers(ROBOT_NS + '/semi_dense_depth') == 1
    values = bench.latest_values(ROBOT_NODE)
    assert values['use_mask'] == 'false' and values['input_inverse_depth'] == 'true'
    assert 'rate_mask_hz' not in values
    assert values['intrinsics'] == 'parameters'


def test_inverse_depth_without_mask_gives_depth_and_a_cloud_from_fx_fy(robot):
    node, bench = robot
    sparse, _, intensity = plane_frame(H, W, depth_m=2.0, density=0.1, seed=7)
    inverse = np.where(sparse > 0, np.float32(0.5), np.float32(0))     # 1/depth
    bgr = np.dstack([intensity] * 3)
    stamp, out = bench.publish_and_wait((inverse, '32FC1'), (bgr, 'bgr8'), frame_id='slam_cam', process=node)
    dense = check_image(out['dense_depth'], stamp, 'slam_cam')
    np.testing.assert_allclose(dense[sparse > 0], 2.0, rtol=0.03)     # depth, not inverse depth
    confidence = check_image(out['dense_confidence'], stamp, 'slam_cam')
    assert 0.0 <= confidence.min() and confidence.max() <= 1.0
    # principal point defaults to the image centre when only fx, fy are given
    check_cloud_geometry(out['points'], dense, 1, FX, FY, (W - 1) / 2.0, (H - 1) / 2.0, stamp,
                         'slam_cam', intensity)


def test_sync_min_period_sends_a_jittered_set_without_waiting_for_the_next_one(robot):
    # depth and image 3 ms apart, and nothing after them: without a lower bound on the period the
    # synchronizer would hold the set until a later message proves no better match can come
    node, bench = robot
    sparse, _, intensity = plane_frame(H, W, depth_m=2.0, density=0.1, seed=8)
    inverse = np.where(sparse > 0, np.float32(0.5), np.float32(0))
    stamp_ns = bench.next_stamp()
    stamp = bench.publish_set((inverse, '32FC1'), (intensity, 'mono8'), frame_id='slam_cam',
                              stamps=(stamp_ns, stamp_ns + 3_000_000, stamp_ns))
    out = bench.wait_outputs(stamp, roles=('dense_depth',), process=node)
    np.testing.assert_allclose(check_image(out['dense_depth'], stamp, 'slam_cam')[sparse > 0], 2.0, rtol=0.03)


# --- the torch backend ---------------------------------------------------------------------------------
TORCH_NS = RUN_NS + '/torchbk'
TORCH_NODE = TORCH_NS + '/depth_interp'
TORCH_TOPICS = {key: (value.replace(ROBOT_NS, TORCH_NS) if value else None) for key, value in ROBOT_TOPICS.items()}


@needs_torch
def test_torch_backend_node_matches_the_onnx_backend(model):
    """backend:=torch runs the same network (the .pt beside the ONNX file) with the same processing."""
    from ros2_depth_interp.core.inference import DepthInterpolator
    node = NodeProcess([
        '--params-file', os.path.join(REPO, 'config', 'robot.yaml'),
        '-r', '__ns:=' + TORCH_NS,
        '-p', 'model_path:=' + model, '-p', 'backend:=torch',
        '-p', 'fx:=' + str(FX), '-p', 'fy:=' + str(FY), '-p', 'diagnostics_period:=0.2',
    ])
    bench = Bench('itest_torch_bench', TORCH_TOPICS, reliable_outputs=True)
    try:
        bench.wait_for_matching(TORCH_NODE, process=node)
        sparse, _, intensity = plane_frame(H, W, depth_m=2.0, density=0.1, seed=11)
        yy = np.arange(H, dtype=np.float32)[:, None]
        depth = np.where(sparse > 0, 1.5 + 0.02 * yy, 0).astype(np.float32)
        inverse = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-6), 0).astype(np.float32)
        stamp, out = bench.publish_and_wait((inverse, '32FC1'), (intensity, 'mono8'), frame_id='slam_cam',
                                            process=node)
        dense = check_image(out['dense_depth'], stamp, 'slam_cam')
        known = inverse > 0
        expected = DepthInterpolator(model).interpolate(np.where(known, 1.0 / np.where(known, inverse, 1), 0)
                                                        .astype(np.float32), known, intensity)
        np.testing.assert_allclose(dense, expected, rtol=1e-4, atol=1e-5)
        assert wait_until(lambda: bench.latest_values(TORCH_NODE).get('execution_provider', '')
                          .startswith('torch:cpu'), what='torch provider in diagnostics', process=node)
    finally:
        bench.close()
        assert node.stop(signal.SIGINT) == 0, node.output()[-3000:]


# --- shutdown ----------------------------------------------------------------------------------------

def test_clean_shutdown_on_sigint_and_sigterm(masked, robot):
    assert masked[0].poll() is None and robot[0].poll() is None
    assert masked[0].stop(signal.SIGINT) == 0, masked[0].output()[-3000:]
    assert robot[0].stop(signal.SIGTERM) == 0, robot[0].output()[-3000:]
    for node in (masked[0], robot[0]):
        assert 'Traceback' not in node.output()
