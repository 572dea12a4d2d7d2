"""The node's LSD-SLAM path over real DDS: lsd_slam_msgs keyframes in; world-scale depth, cloud,
pose, /tf and the dense map out; graph updates re-pose the map; bad keyframes are counted.

Keyframes are synthesized from a rendered scene with known metric depth and pose
(test/keyframe_scene.py). Needs lsd_slam_msgs (and tf2_msgs for /tf) built into the venv by
`make venv`; skipped with the reason otherwise.
"""
import math
import threading
from pathlib import Path

import numpy as np
import pytest

lsd_slam_msgs = pytest.importorskip('lsd_slam_msgs.msg', reason='lsd_slam_msgs is not built: run `make venv` '
                                    '(scripts/ros_interfaces.sh)')
import rclpy  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image, PointCloud2  # noqa: E402

from ros2_depth_interp.core import keyframes as kf  # noqa: E402
from ros2_depth_interp.core import lsd_slam, params  # noqa: E402
from ros2_depth_interp.core.inference import DepthInterpolator  # noqa: E402
from ros2_depth_interp.core.lsd_slam import Sim3  # noqa: E402
from ros2_depth_interp.ros.ros_msgs import cloud_msg_to_array  # noqa: E402
from ros2_depth_interp.tools.bag import BagJob, process_bag  # noqa: E402

from keyframe_scene import H, W, keyframe_msg, scene_keyframe  # noqa: E402
from node_helpers import NODE_START_S, RUN_NS, NodeProcess, tiny_model, wait_until  # noqa: E402

try:
    from tf2_msgs.msg import TFMessage
except ImportError:
    TFMessage = None

NS = RUN_NS + '/lsd_slam'
NODE = RUN_NS + '/kfnode'
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=20, reliability=ReliabilityPolicy.RELIABLE)
MAP_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
needs_tf = pytest.mark.skipif(TFMessage is None, reason='tf2_msgs is not built (needs ../shared/ros2_src/geometry2)')


def stamp_key(header):
    return (int(header.stamp.sec), int(header.stamp.nanosec))


class KeyframeBench:
    """Publishers of keyframes, live frames and graphs; subscriptions to every output."""

    OUTPUTS = {'dense_depth': Image, 'dense_confidence': Image, 'points': PointCloud2,
               'keyframe_pose': PoseStamped, 'live_pose': PoseStamped}

    def __init__(self, name='kf_bench'):
        from lsd_slam_msgs.msg import Keyframe, KeyframeGraph
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.pub_keyframes = self.node.create_publisher(Keyframe, NS + '/keyframes', RELIABLE)
        self.pub_liveframes = self.node.create_publisher(Keyframe, NS + '/liveframes', RELIABLE)
        self.pub_graph = self.node.create_publisher(KeyframeGraph, NS + '/graph', RELIABLE)
        self._lock = threading.Lock()
        self.received = {name: {} for name in self.OUTPUTS}
        self.tf = []
        self.maps = []
        self.diagnostics = []
        self.subs = [self.node.create_subscription(msg_type, NS + '/' + name, self._store(name), RELIABLE)
                     for name, msg_type in self.OUTPUTS.items()]
        self.subs.append(self.node.create_subscription(PointCloud2, NS + '/points_map', self._on_map, MAP_QOS))
        if TFMessage is not None:
            self.subs.append(self.node.create_subscription(TFMessage, '/tf', self._on_tf, RELIABLE))
        from diagnostic_msgs.msg import DiagnosticArray
        self.subs.append(self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 50))
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self._spin_forever, daemon=True)
        self._spin.start()

    def _spin_forever(self):
        try:
            self.executor.spin()
        except Exception:
            pass

    def _store(self, name):
        def callback(msg):
            with self._lock:
                self.received[name][stamp_key(msg.header)] = msg
        return callback

    def _on_map(self, msg):
        with self._lock:
            self.maps.append(msg)

    def _on_tf(self, msg):
        with self._lock:
            self.tf.extend(msg.transforms)

    def _on_diag(self, msg):
        with self._lock:
            self.diagnostics.extend(s for s in msg.status if s.name.split(':')[0] == NODE.strip('/'))

    def counters(self):
        with self._lock:
            if not self.diagnostics:
                return {}
            return {kv.key: kv.value for kv in self.diagnostics[-1].values}

    def outputs(self, stamp, names=('dense_depth', 'dense_confidence', 'points', 'keyframe_pose'), process=None):
        def ready():
            with self._lock:
                if all(stamp in self.received[name] for name in names):
                    return {name: self.received[name][stamp] for name in names}
        return wait_until(ready, what='keyframe outputs at %s' % (stamp,), process=process)

    def transform(self, child, stamp, process=None):
        def ready():
            with self._lock:
                for t in self.tf:
                    if t.child_frame_id == child and stamp_key(t.header) == stamp:
                        return t
        return wait_until(ready, what='/tf to %s at %s' % (child, stamp), process=process)

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp('kfmodel'))


@pytest.fixture(scope='module')
def running(model):
    node = NodeProcess(['-r', '__node:=kfnode', '-r', '__ns:=' + RUN_NS,
                        '-p', 'model_path:=' + model, '-p', 'providers:=[CPUExecutionProvider]',
                        '-p', 'intra_op_threads:=1',
                        '-p', 'keyframe_topic:=%s/keyframes' % NS, '-p', 'liveframe_topic:=%s/liveframes' % NS,
                        '-p', 'graph_topic:=%s/graph' % NS, '-p', 'map_voxel_size:=0.0',
                        '-p', 'map_publish_period:=0.1', '-p', 'diagnostics_period:=0.2',
                        '-p', 'log_throttle_sec:=0.0'])
    bench = KeyframeBench()
    try:
        for pub in (bench.pub_keyframes, bench.pub_liveframes, bench.pub_graph):
            wait_until(lambda pub=pub: pub.get_subscription_count() >= 1, timeout=NODE_START_S,
                       what='node subscriptions', process=node)
        for sub in bench.subs[:len(KeyframeBench.OUTPUTS)]:
            wait_until(lambda sub=sub: sub.get_publisher_count() >= 1, what='node publishers', process=node)
        yield node, bench
    finally:
        bench.close()
        rc = node.stop()
        assert rc == 0, node.output()[-3000:]


def publish(bench, scene):
    bench.pub_keyframes.publish(keyframe_msg(scene.fields))
    return lsd_slam.seconds_to_stamp(scene.fields['time'])


def image(msg):
    return np.frombuffer(bytes(msg.data), '<f4').reshape(msg.height, msg.width)


def rotation_of(q):
    return Sim3.from_scale_rotation_translation(1.0, [q.x, q.y, q.z, q.w], [0, 0, 0]).rotation


def test_world_scale_depth_cloud_geometry_and_pose(running):
    node, bench = running
    scene = scene_keyframe(index=0, kf_id=100, time=1700000000.25)
    stamp = publish(bench, scene)
    out = bench.outputs(stamp, process=node)
    for name in ('dense_depth', 'dense_confidence', 'points'):
        assert out[name].header.frame_id == 'lsd_slam_camera'
    depth = image(out['dense_depth'])
    known = lsd_slam.valid_mask(lsd_slam.decode_keyframe(scene.fields))
    assert known.sum() > 0.2 * H * W
    # world (metric) scale: the keyframe's inverse depths were scale / depth with scale 8
    rel = np.abs(depth - scene.depth) / scene.depth
    assert float(np.mean(rel[known])) < 0.03
    cloud = cloud_msg_to_array(out['points'])
    assert (out['points'].height, out['points'].width) == (H, W)
    fx, fy, cx, cy = scene.K[0, 0], scene.K[1, 1], scene.K[0, 2], scene.K[1, 2]
    v, u = np.mgrid[0:H, 0:W]
    np.testing.assert_allclose(cloud[:, :, 2], depth, rtol=1e-6)
    np.testing.assert_allclose(cloud[:, :, 0], (u - cx) / fx * depth, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cloud[:, :, 1], (v - cy) / fy * depth, rtol=1e-5, atol=1e-6)
    pose = out['keyframe_pose']
    assert pose.header.frame_id == 'world'
    p = pose.pose.position
    np.testing.assert_allclose([p.x, p.y, p.z], scene.position, atol=1e-5)
    np.testing.assert_allclose(rotation_of(pose.pose.orientation), scene.rotation, atol=1e-5)


@needs_tf
def test_tf_is_the_rigid_part_of_the_sim3_and_places_the_cloud(running):
    node, bench = running
    scene = scene_keyframe(index=5, kf_id=101, time=1700000001.5)
    stamp = publish(bench, scene)
    out = bench.outputs(stamp, process=node)
    transform = bench.transform('lsd_slam_camera', stamp, process=node)
    assert transform.header.frame_id == 'world'
    t = transform.transform.translation
    np.testing.assert_allclose([t.x, t.y, t.z], scene.sim3.translation, atol=1e-5)
    rotation = rotation_of(transform.transform.rotation)
    np.testing.assert_allclose(rotation, scene.sim3.rotation, atol=1e-5)
    assert transform.transform.rotation.w >= 0
    cloud = cloud_msg_to_array(out['points'])[:, :, :3]
    world = cloud @ rotation.T + np.array([t.x, t.y, t.z])
    known = lsd_slam.valid_mask(lsd_slam.decode_keyframe(scene.fields))
    error = np.linalg.norm(world - scene.world_points(), axis=-1)
    assert float(np.median(error[known] / scene.depth[known])) < 0.03


@needs_tf
def test_liveframe_pose_goes_to_tf_and_live_pose(running):
    node, bench = running
    scene = scene_keyframe(index=7)
    fields = dict(scene.fields, id=55, time=1700000002.0, isKeyframe=False, pointcloud=np.zeros(0, np.uint8))
    bench.pub_liveframes.publish(keyframe_msg(fields))
    stamp = lsd_slam.seconds_to_stamp(1700000002.0)
    transform = bench.transform('lsd_slam_live_camera', stamp, process=node)
    np.testing.assert_allclose(rotation_of(transform.transform.rotation), scene.rotation, atol=1e-5)
    live = bench.outputs(stamp, names=('live_pose',), process=node)['live_pose']
    np.testing.assert_allclose([live.pose.position.x, live.pose.position.y, live.pose.position.z],
                               scene.position, atol=1e-5)


def test_map_is_transient_local_and_re_posed_by_a_graph_update(running):
    node, bench = running
    scene = scene_keyframe(index=20, kf_id=300, time=1700000003.0)
    cloud = cloud_msg_to_array(bench.outputs(publish(bench, scene), process=node)['points']).reshape(-1, 4)
    # keyframe 300 is the newest in the map: its H x W points (voxel filter off) come last, placed
    # by its Sim(3) (the keyframe-scale points s R p + t are the world-scale ones R (s p) + t)
    expected = cloud[:, :3] @ scene.sim3.rotation.T + scene.sim3.translation

    def newest_map(condition):
        with bench._lock:
            maps = list(bench.maps)
        for msg in reversed(maps):
            points = cloud_msg_to_array(msg).reshape(-1, 4)
            if len(points) >= H * W and condition(points):
                return [msg, points]

    def ends_with(target):
        return lambda points: np.allclose(points[-H * W:, :3], target, atol=2e-3)
    before, old = wait_until(lambda: newest_map(ends_with(expected)), what='map with keyframe 300', process=node)
    assert before.header.frame_id == 'world'
    np.testing.assert_array_equal(old[-H * W:, 3], cloud[:, 3])
    # a late subscriber gets the map too (transient local), as RViz started later would
    late = KeyframeBench('kf_bench_late')
    try:
        wait_until(lambda: late.maps and late.maps[-1].width >= before.width, what='map for a late subscriber',
                   process=node)
    finally:
        late.close()
    # a loop closure moves keyframe 300 by 1 m along x and doubles its scale (id 9999 is unknown)
    new_pose = Sim3.from_scale_rotation_translation(2 * scene.scale, scene.sim3.quaternion,
                                                    scene.sim3.translation + np.array([1.0, 0, 0]))
    fields = kf.graph_fields({300: new_pose, 9999: new_pose})
    from lsd_slam_msgs.msg import KeyframeGraph
    graph = KeyframeGraph(num_frames=fields['num_frames'], num_constraints=0)
    graph.frame_data = bytes(fields['frame_data'])
    bench.pub_graph.publish(graph)
    re_posed = new_pose.transform(cloud[:, :3] / scene.scale)
    after, new = wait_until(lambda: newest_map(ends_with(re_posed)), what='re-posed map', process=node)
    assert len(new) == len(old)
    np.testing.assert_array_equal(new[:-H * W], old[:-H * W])      # the other keyframes stay
    np.testing.assert_array_equal(new[-H * W:, 3], old[-H * W:, 3])


@pytest.mark.parametrize('change, counter', [
    (dict(pointcloud=np.zeros(12 * 7, np.uint8)), 'dropped_keyframe_bad_size'),
    (dict(fx=0.0, fy=0.0, cx=0.0, cy=0.0), 'dropped_keyframe_bad_intrinsics'),
    (dict(camToWorld=np.array([0, 0, 0, 1, math.nan, 0, 0], np.float32)), 'dropped_keyframe_bad_pose'),
    (dict(camToWorld=np.array([0, 0, 0, 0, 1, 2, 3], np.float32)), 'dropped_keyframe_bad_pose'),
])
def test_a_bad_keyframe_is_one_counted_error_and_the_node_goes_on(running, change, counter):
    node, bench = running
    before = int(bench.counters().get(counter, 0))
    scene = scene_keyframe(index=30)
    bench.pub_keyframes.publish(keyframe_msg(dict(scene.fields, **change)))
    wait_until(lambda: int(bench.counters().get(counter, 0)) == before + 1, what=counter, process=node)
    good = scene_keyframe(index=31, kf_id=400 + len(counter), time=1700000100.0 + before + len(counter))
    bench.outputs(publish(bench, good), process=node)
    assert int(bench.counters().get(counter, 0)) == before + 1
    assert node.poll() is None


def write_keyframe_bag(path, scenes):
    from rosbags.rosbag2 import StoragePlugin, Writer
    store = lsd_slam.keyframe_typestore()
    writer = Writer(Path(path), version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conn = writer.add_connection('/lsd_slam/keyframes', lsd_slam.KEYFRAME_MSGTYPE, typestore=store)
    for scene in scenes:
        msg = store.types[lsd_slam.KEYFRAME_MSGTYPE](**scene.fields)
        writer.write(conn, int(scene.fields['time'] * 1e9), store.serialize_cdr(msg, lsd_slam.KEYFRAME_MSGTYPE))
    writer.close()


def test_bag_tool_and_live_node_give_identical_outputs(running, model, tmp_path):
    node, bench = running
    from rosbags.highlevel import AnyReader
    scenes = [scene_keyframe(index=i, kf_id=500 + i, time=1700000200.0 + i) for i in (40, 50)]
    write_keyframe_bag(tmp_path / 'in', scenes)
    interpolator = DepthInterpolator(model, providers=['CPUExecutionProvider'], threads=1, warmup=False)
    summary = process_bag(BagJob(str(tmp_path / 'in'), str(tmp_path / 'out'), keyframe_topic='/lsd_slam/keyframes',
                                 values=params.defaults(), copy_inputs=False), interpolator=interpolator)
    assert summary.keyframes.written == 2
    offline = {}
    with AnyReader([tmp_path / 'out']) as reader:
        for conn, _, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            offline[(conn.topic.rsplit('/', 1)[-1], stamp_key(msg.header))] = msg
    for scene in scenes:
        stamp = publish(bench, scene)
        live = bench.outputs(stamp, process=node)
        for name in ('dense_depth', 'dense_confidence', 'points'):
            recorded = offline[(name, stamp)]
            assert recorded.header.frame_id == live[name].header.frame_id
            assert (recorded.height, recorded.width) == (live[name].height, live[name].width)
            assert bytes(recorded.data) == bytes(live[name].data), name


def test_newest_keyframe_wins_and_every_keyframe_is_accounted_for(running):
    """A burst of keyframes: each one is either published or counted as superseded, and the
    newest one is always published (no timing is assumed about how many are superseded)."""
    node, bench = running

    def count(key):
        return int(bench.counters().get(key, 0))

    def settled_counts():
        # the counters as two consecutive new diagnostics messages agree on them: the earlier
        # tests' keyframes are all counted by then
        with bench._lock:
            statuses = list(bench.diagnostics[-2:])
            total = len(bench.diagnostics)
        if len(statuses) < 2 or total <= settled_counts.seen + 1:
            return None
        values = [{kv.key: kv.value for kv in st.values} for st in statuses]
        pairs = [(int(v.get('count_keyframe_output', 0)), int(v.get('dropped_keyframe_superseded', 0)))
                 for v in values]
        return pairs[0] if pairs[0] == pairs[1] else None
    with bench._lock:
        settled_counts.seen = len(bench.diagnostics)
    outputs_before, superseded_before = wait_until(settled_counts, what='settled counters', process=node)
    scenes = [scene_keyframe(index=60 + i, kf_id=600 + i, time=1700000300.0 + i) for i in range(5)]
    stamps = [publish(bench, scene) for scene in scenes]
    bench.outputs(stamps[-1], process=node)
    wait_until(lambda: count('count_keyframe_output') - outputs_before
               + count('dropped_keyframe_superseded') - superseded_before == len(scenes),
               what='every keyframe published or counted as superseded', process=node)
    published = [s for s in stamps if s in bench.received['dense_depth']]
    assert stamps[-1] in published
    assert len(published) == count('count_keyframe_output') - outputs_before


def test_a_keyframe_topic_whose_outputs_collide_with_the_frame_outputs_is_a_config_error(model):
    from node_helpers import run_node_to_exit
    rc, output = run_node_to_exit(['-r', '__ns:=' + RUN_NS + '/collide', '-p', 'model_path:=' + model,
                                   '-p', 'providers:=[CPUExecutionProvider]', '-p', 'keyframe_topic:=keyframes'])
    assert rc == 2, output[-3000:]
    assert 'namespace of its own' in output and output.count('configuration error') == 1, output[-3000:]
