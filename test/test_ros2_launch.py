"""Each launch file started with the real ``ros2 launch`` from the colcon workspace (``make ws``).

The workspace (build/ws, or ``DEPTH_INTERP_WS``) holds this package and launch, launch_ros, ros2cli
and message_filters built from ../shared/ros2_src. Each test starts ``ros2 launch ros2_depth_interp
<file>`` in its own process group, publishes one synchronized frame on the topics the launch file
subscribes the node to, checks that the outputs arrive on the launch file's topics with its
namespace and parameters, and stops everything with SIGINT sent to the whole group, as Ctrl-C in a
terminal does. Skipped, with the reason, when ../shared/ros2_src or the workspace is missing.
"""
import math
import os
import signal
import subprocess
import tempfile

import numpy as np
import pytest
import yaml

from node_helpers import REPO, RUN_NS, Bench, decode, k_matrix, plane_frame, tiny_model, wait_until

SHARED_SRC = os.path.join(os.path.dirname(REPO), 'shared', 'ros2_src')
WS = os.environ.get('DEPTH_INTERP_WS') or os.path.join(REPO, 'build', 'ws')
SETUP = os.path.join(WS, 'install', 'setup.sh')
H, W = 48, 64
FX = FY = 60.0
CX, CY = W / 2.0, H / 2.0
STOP_S = 60.0

if not os.path.isdir(SHARED_SRC):
    pytest.skip('%s is missing: make ws cannot build ros2 launch, launch_ros and message_filters'
                % SHARED_SRC, allow_module_level=True)
if not os.path.isfile(SETUP):
    pytest.skip('no colcon workspace at %s: run make ws' % WS, allow_module_level=True)


def workspace_env():
    """This process' (isolated) environment with the workspace's setup.sh sourced on top."""
    dump = subprocess.run(['sh', '-c', '. "$0" && env -0', SETUP], env=dict(os.environ),
                          capture_output=True, timeout=60, check=True).stdout
    env = dict(item.split('=', 1) for item in dump.decode().split('\0') if '=' in item)
    for key in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_LOG_DIR'):
        assert env[key] == os.environ[key], key       # still isolated
    return env


class LaunchProcess:
    """``ros2 launch`` in a process group of its own; output to a file."""

    def __init__(self, launch_file, arguments=()):
        self._log = tempfile.NamedTemporaryFile(prefix='ros2_launch_', suffix='.log', delete=False)
        self.command = ['ros2', 'launch', 'ros2_depth_interp', launch_file] + list(arguments)
        self.proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=workspace_env(), cwd=tempfile.gettempdir(), start_new_session=True)

    def poll(self):
        return self.proc.poll()

    def output(self):
        with open(self._log.name, 'r', errors='replace') as f:
            return f.read()

    def interrupt(self):
        """Ctrl-C: SIGINT to every process of the group; returns launch's exit code."""
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            raise AssertionError('ros2 launch did not stop within %.0f s of SIGINT:\n%s'
                                 % (STOP_S, self.output()[-4000:]))

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def assert_stopped_cleanly(launch, nodes):
    rc = launch.interrupt()
    output = launch.output()
    assert rc == 0, output[-4000:]
    assert output.count('process has finished cleanly') == nodes, output[-4000:]
    assert 'process has died' not in output and 'Traceback' not in output, output[-4000:]


def publish_frame(bench, inverse_depth=False):
    """One set with a common stamp on every input, after the camera_info; returns its stamp."""
    sparse, mask, intensity = plane_frame(H, W, depth_m=2.0)
    if inverse_depth:
        sparse = np.where(mask > 0, np.float32(0.5), np.float32(0)).astype(np.float32)
    bench.publish_camera_info(k_matrix(FX, FY, CX, CY), W, H, frame_id='camera')
    with_mask = 'mask' in bench.publishers
    return bench.publish_set((sparse, '32FC1'), (intensity, 'mono8'),
                             (mask, 'mono8') if with_mask else None, frame_id='camera')


def start_and_check(launch, bench, node_name, inverse_depth=False):
    """Matching, one frame in, its outputs back; returns (outputs, diagnostics values)."""
    try:
        return _frame_through(launch, bench, node_name, inverse_depth)
    except AssertionError as exc:
        raise AssertionError('%s\n--- ros2 launch output:\n%s' % (exc, launch.output()[-4000:])) from None


def _frame_through(launch, bench, node_name, inverse_depth):
    bench.wait_for_matching(node_name, process=launch)
    stamp = publish_frame(bench, inverse_depth)
    # best-effort inputs right after matching may still be lost: publish again until outputs come
    def outputs():
        if bench.has_output('points', stamp) and bench.has_output('dense_depth', stamp):
            return bench.wait_outputs(stamp, process=launch)
        return None
    try:
        got = wait_until(outputs, timeout=10, what='outputs')
    except AssertionError:
        stamp = publish_frame(bench, inverse_depth)
        got = bench.wait_outputs(stamp, process=launch)
    dense = decode(got['dense_depth'])
    assert dense.shape == (H, W) and got['dense_depth'].header.frame_id == 'camera'
    assert 1.6 < float(np.median(dense)) < 2.4, 'a plane at 2 units, got median %g' % np.median(dense)
    values = bench.wait_counter(node_name, lambda v: int(v.get('count_output', '0')) >= 1,
                                'diagnostics counting the output', process=launch)
    assert values['synchronizer'] == 'message_filters'      # installed in the workspace
    return got, values


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp('model'))


def test_depth_interp_launch_with_its_arguments(model, tmp_path):
    namespace = RUN_NS.strip('/') + '/cam'
    node_name = '/%s/interp' % namespace
    params = tmp_path / 'params.yaml'
    params.write_text(yaml.safe_dump({'/**/interp': {'ros__parameters': {
        'providers': ['CPUExecutionProvider'], 'warmup': False, 'cloud_stride': 4,
        'diagnostics_period': 0.2}}}))
    inputs = RUN_NS + '/slam'
    launch = LaunchProcess('depth_interp.launch.py', [
        'namespace:=' + namespace, 'node_name:=interp', 'params_file:=%s' % params, 'model_path:=' + model,
        'depth_topic:=%s/depth' % inputs, 'image_topic:=%s/image' % inputs, 'mask_topic:=%s/mask' % inputs,
        'camera_info_topic:=%s/info' % inputs])
    topics = {'depth': inputs + '/depth', 'image': inputs + '/image', 'mask': inputs + '/mask',
              'camera_info': inputs + '/info', 'dense_depth': '/%s/dense_depth' % namespace,
              'dense_confidence': '/%s/dense_confidence' % namespace, 'points': '/%s/points' % namespace}
    bench = Bench('launch_depth_interp_bench', topics)
    try:
        got, values = start_and_check(launch, bench, node_name)
        assert (got['points'].height, got['points'].width) == (H // 4, W // 4)    # cloud_stride from the file
        assert values['model_path'] == model and values['use_mask'] == 'true'
        assert values['intrinsics'] == 'camera_info'
    finally:
        bench.close()
    try:
        assert_stopped_cleanly(launch, nodes=1)
    finally:
        launch.kill()


def test_robot_launch_with_config_robot_yaml():
    """robot.yaml: inverse depth in, no mask, reliable outputs (a reliable subscriber matches only
    a reliable publisher), the launch file's topic names; the namespace argument moves the relative
    ones (the depth input and the outputs)."""
    namespace = RUN_NS.strip('/') + '_robot'
    node_name = '/%s/depth_interp' % namespace
    launch = LaunchProcess('robot.launch.py', ['namespace:=' + namespace])
    topics = {'depth': '/%s/semi_dense_depth' % namespace, 'image': '/camera/image_raw',
              'camera_info': '/camera/camera_info',
              'dense_depth': '/%s/dense_depth' % namespace, 'dense_confidence': '/%s/dense_confidence' % namespace,
              'points': '/%s/points' % namespace}
    bench = Bench('launch_robot_bench', topics, reliable_outputs=True)
    try:
        got, values = start_and_check(launch, bench, node_name, inverse_depth=True)
        assert values['use_mask'] == 'false' and values['input_inverse_depth'] == 'true'
        assert values['model_path'].endswith(os.path.join('models', 'depth_interp.onnx'))   # the shipped one
        assert (got['points'].height, got['points'].width) == (H, W)                        # cloud_stride 1
    finally:
        bench.close()
    try:
        assert_stopped_cleanly(launch, nodes=1)
    finally:
        launch.kill()


def test_autonomous_vehicle_launch_runs_one_node_per_camera():
    """Three nodes in /front, /left, /right with autonomous_vehicle.yaml's per-camera strides."""
    launch = LaunchProcess('autonomous_vehicle.launch.py')
    benches = {}
    try:
        for camera in ('front', 'left', 'right'):
            topics = {'depth': '/%s/semi_dense_depth' % camera, 'image': '/%s/image_rect' % camera,
                      'mask': '/%s/mask' % camera, 'camera_info': '/%s/camera_info' % camera,
                      'dense_depth': '/%s/dense_depth' % camera,
                      'dense_confidence': '/%s/dense_confidence' % camera, 'points': '/%s/points' % camera}
            benches[camera] = Bench('launch_vehicle_bench_' + camera, topics)
        for camera, stride in (('front', 2), ('left', 3), ('right', 3)):
            got, values = start_and_check(launch, benches[camera], '/%s/depth_interp' % camera)
            assert (got['points'].height, got['points'].width) == (math.ceil(H / stride), math.ceil(W / stride))
            assert values['use_mask'] == 'true'
    finally:
        for bench in benches.values():
            bench.close()
    try:
        assert_stopped_cleanly(launch, nodes=3)
    finally:
        launch.kill()


def test_lsd_slam_launch_takes_a_keyframe_on_lsd_slams_topics():
    """config/lsd_slam.yaml: a lsd_slam_msgs/Keyframe on /lsd_slam/keyframes gives dense depth, a
    cloud and the keyframe pose on /lsd_slam/..., reliable; the node is /depth_interp."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import Image, PointCloud2
    from ros2_depth_interp.core.lsd_slam import seconds_to_stamp
    from keyframe_scene import keyframe_msg, scene_keyframe
    pytest.importorskip('lsd_slam_msgs.msg', reason='lsd_slam_msgs is not built (make venv builds it)')
    from lsd_slam_msgs.msg import Keyframe

    reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
    outputs = {'dense_depth': Image, 'points': PointCloud2, 'keyframe_pose': PoseStamped}
    received = {name: {} for name in outputs}
    launch = LaunchProcess('lsd_slam.launch.py')
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('launch_lsd_slam_bench', context=context)
    executor = SingleThreadedExecutor(context=context)
    try:
        publisher = node.create_publisher(Keyframe, '/lsd_slam/keyframes', reliable)
        subscriptions = [node.create_subscription(
            msg_type, '/lsd_slam/' + name,
            lambda msg, name=name: received[name].__setitem__((msg.header.stamp.sec, msg.header.stamp.nanosec), msg),
            reliable) for name, msg_type in outputs.items()]
        executor.add_node(node)
        wait_until(lambda: publisher.get_subscription_count() >= 1 and all(
            s.get_publisher_count() >= 1 for s in subscriptions), timeout=90, what='matching', process=launch)
        scene = scene_keyframe(index=0, kf_id=7, time=1700000000.5)
        publisher.publish(keyframe_msg(scene.fields))
        stamp = seconds_to_stamp(scene.fields['time'])

        def arrived():
            executor.spin_once(timeout_sec=0.05)
            return all(stamp in received[name] for name in outputs)
        try:
            wait_until(arrived, what='keyframe outputs', process=launch)
        except AssertionError as exc:
            raise AssertionError('%s\n--- ros2 launch output:\n%s' % (exc, launch.output()[-4000:])) from None
        dense = decode(received['dense_depth'][stamp])
        assert dense.shape == scene.depth.shape and np.isfinite(dense).any()
        assert received['keyframe_pose'][stamp].header.frame_id == 'world'
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    try:
        assert_stopped_cleanly(launch, nodes=1)
    finally:
        launch.kill()


def test_every_launch_file_is_started_here():
    tested = {'depth_interp.launch.py', 'robot.launch.py', 'autonomous_vehicle.launch.py', 'lsd_slam.launch.py'}
    shipped = {name for name in os.listdir(os.path.join(REPO, 'launch')) if name.endswith('.launch.py')}
    assert shipped <= tested, 'no ros2 launch test for %s' % sorted(shipped - tested)
