"""The node's LSD-SLAM path: keyframes in; world-scale dense depth, cloud, pose, /tf and a map out.

Subscriptions (reliable, as LSD-SLAM's publishers and ros1_bridge use), each off when its topic
parameter is ''; every output is reliable too (``OUTPUT_QOS``), whatever ``reliable_outputs`` says:

- ``keyframe_topic`` (``lsd_slam_msgs/Keyframe``): into a one-slot mailbox; a worker thread takes
  the newest keyframe, runs ``core.keyframes.KeyframeProcessor`` and publishes, stamped with the
  keyframe's time, in the namespace of the keyframe topic (``/lsd_slam/keyframes`` ->
  ``/lsd_slam/...``): ``dense_depth``, ``dense_confidence``, ``points`` in ``keyframe_frame_id``,
  at world scale; ``keyframe_pose`` (PoseStamped in ``world_frame``) and ``/tf``
  ``world_frame -> keyframe_frame_id``. Keyframes that arrive while one is processed replace the
  waiting one (counted as ``dropped_keyframe_superseded``).
- ``liveframe_topic`` (same type, pose only): ``live_pose`` and ``/tf``
  ``world_frame -> liveframe_frame_id``.
- ``graph_topic`` (``lsd_slam_msgs/KeyframeGraph``): optimized poses re-pose the map.

``points_map`` (PointCloud2 in ``world_frame``, reliable + transient local so that RViz joining
late gets the last one) is kept by a thread of its own (``MapPublisher``): it takes each
keyframe's cloud from the keyframe worker, thins and stores it, and rebuilds and publishes the map
at most every ``map_publish_period`` seconds when it changed, so map work never delays a keyframe. Without ``tf2_msgs`` (not on PyPI; ``make venv`` builds it from ../shared) one
log line says /tf is off; the poses still go out as PoseStamped.
"""
import threading
import time

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header

from ..core import keyframes as kf
from ..core.lsd_slam import KeyframeFilter, Sim3, seconds_to_stamp
from ..core.pipeline import FrameError, PipelineConfig
from ..core.sync import LatestSetMailbox
from .ros_msgs import MessageCache, make_cloud

KEYFRAME_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                          reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
MAP_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Keyframe outputs are always reliable: keyframes come a few per second, and a reliable publisher
# matches both reliable subscribers (RViz, tf2, most tools) and best-effort ones.
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                        reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
TF_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
LSD_SLAM_TOPICS = ('keyframe_topic', 'liveframe_topic', 'graph_topic')


class KeyframeSetupError(Exception):
    """keyframe/liveframe/graph topics are set but lsd_slam_msgs cannot be imported."""


def keyframe_filter(values) -> KeyframeFilter:
    return KeyframeFilter(values['max_scaled_depth_variance'], values['max_abs_depth_variance'],
                          int(values['min_near_support']), values['max_inverse_depth_variance'])


def wanted(values) -> bool:
    return any(values[name] for name in LSD_SLAM_TOPICS)


def _import_messages():
    """(Keyframe, KeyframeGraph, PoseStamped), imported only when the keyframe path is on, so the
    node runs without lsd_slam_msgs and geometry_msgs when it is off."""
    try:
        from lsd_slam_msgs.msg import Keyframe, KeyframeGraph
    except ImportError as exc:
        raise KeyframeSetupError(
            'keyframe_topic/liveframe_topic/graph_topic need the lsd_slam_msgs interface package, '
            'which cannot be imported (%s): build it with `make venv` (scripts/ros_interfaces.sh) or '
            'in your colcon workspace, then source it' % exc) from None
    try:
        from geometry_msgs.msg import PoseStamped
    except ImportError as exc:
        raise KeyframeSetupError('the keyframe path needs geometry_msgs for its poses, which cannot be '
                                 'imported (%s): pip install ros-geometry-msgs (the venv), or install '
                                 'ROS geometry_msgs' % exc) from None
    return Keyframe, KeyframeGraph, PoseStamped


def _tf_message_type():
    try:
        from tf2_msgs.msg import TFMessage
        from geometry_msgs.msg import TransformStamped
    except ImportError:
        return None, None
    return TFMessage, TransformStamped


class KeyframeInput:
    """See the module docstring. ``node`` is the DepthInterpNode (logger, stats, _warn)."""

    def __init__(self, node, interpolator, values):
        Keyframe, KeyframeGraph, self._pose_type = _import_messages()
        self.node = node
        self.values = dict(values)
        self.stats = node.stats
        self.processor = kf.KeyframeProcessor(interpolator, PipelineConfig.from_params(values),
                                              keyframe_filter(values))
        self.map = kf.DenseMap(values['map_voxel_size'], values['map_max_keyframes'])
        self._messages = MessageCache()
        self._mailbox = LatestSetMailbox()
        self.stats.set_external_drops('keyframe_', self._mailbox.dropped)
        self._create_publishers(self._output_namespace(values))
        self._create_subscriptions(Keyframe, KeyframeGraph)
        self.map_publisher = MapPublisher(node, self.map, self.pub_map, values) if self.pub_map else None
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name='depth_interp_keyframes', daemon=True)
        self._worker.start()
        node.get_logger().info('LSD-SLAM input: %s; publishing %s, %s, %s, %s%s%s' % (
            ', '.join(s.topic_name for s in self.subscriptions), self.pub_depth.topic_name,
            self.pub_confidence.topic_name, self.pub_points.topic_name, self.pub_pose.topic_name,
            ', ' + self.pub_map.topic_name if self.pub_map else '', ', /tf' if self.pub_tf else ''))

    def _output_namespace(self, values):
        """The namespace of the keyframe topic (where the bag tool writes too), '/' terminated.

        Raises ``KeyframeSetupError`` when that would put the keyframe outputs on the frame
        outputs' topics (a keyframe topic in the node's own namespace)."""
        topic = values['keyframe_topic'] or values['liveframe_topic'] or values['graph_topic']
        namespace = self.node.resolve_topic_name(topic).rsplit('/', 1)[0] + '/'
        if namespace + 'dense_depth' == self.node.resolve_topic_name('dense_depth'):
            raise KeyframeSetupError(
                'the keyframe outputs go to the namespace of %r, %s, where the frame outputs '
                'dense_depth, dense_confidence and points already are: put the keyframe topic in a '
                'namespace of its own, e.g. /lsd_slam/keyframes' % (topic, namespace))
        return namespace

    def _create_publishers(self, namespace):
        node = self.node
        self.pub_depth = node.create_publisher(Image, namespace + 'dense_depth', OUTPUT_QOS)
        self.pub_confidence = node.create_publisher(Image, namespace + 'dense_confidence', OUTPUT_QOS)
        self.pub_points = node.create_publisher(PointCloud2, namespace + 'points', OUTPUT_QOS)
        self.pub_pose = node.create_publisher(self._pose_type, namespace + 'keyframe_pose', OUTPUT_QOS)
        self.pub_live_pose = node.create_publisher(self._pose_type, namespace + 'live_pose', OUTPUT_QOS)
        self.pub_map = (node.create_publisher(PointCloud2, namespace + 'points_map', MAP_QOS)
                        if self.values['publish_map'] else None)
        self._tf_type, self._transform_type = _tf_message_type()
        self.pub_tf = (node.create_publisher(self._tf_type, '/tf', TF_QOS)
                       if self._tf_type is not None else None)
        if self.pub_tf is None:
            node.get_logger().info('tf2_msgs is not installed: no /tf; keyframe poses go out on %s only'
                                   % self.pub_pose.topic_name)

    def _create_subscriptions(self, Keyframe, KeyframeGraph):
        subscribe, values = self.node.create_subscription, self.values
        self.subscriptions = []
        if values['keyframe_topic']:
            self.subscriptions.append(subscribe(Keyframe, values['keyframe_topic'], self._on_keyframe,
                                                KEYFRAME_QOS))
        if values['liveframe_topic']:
            self.subscriptions.append(subscribe(Keyframe, values['liveframe_topic'], self._on_liveframe,
                                                KEYFRAME_QOS))
        if values['graph_topic']:
            self.subscriptions.append(subscribe(KeyframeGraph, values['graph_topic'], self._on_graph,
                                                KEYFRAME_QOS))

    # --- runtime changes -----------------------------------------------------------------------------
    def apply_values(self, values):
        """Per-keyframe settings changed at runtime (cloud filters, viewer filter)."""
        self.values = dict(values)
        self.processor.config = PipelineConfig.from_params(values)
        self.processor.rules = keyframe_filter(values)

    # --- callbacks (executor thread) ----------------------------------------------------------------
    def _on_keyframe(self, msg):
        self.stats.tick('keyframe')
        self._mailbox.put((time.perf_counter(), msg))

    def _on_liveframe(self, msg):
        self.stats.tick('liveframe')
        try:
            pose = kf.RigidPose.from_sim3(Sim3.from_array(msg.cam_to_world), int(msg.id))
        except (kf.KeyframeError, ValueError) as exc:
            self.stats.drop('liveframe_bad_pose')
            self.node._warn('liveframe_bad_pose', 'dropped live frame %d: %s' % (msg.id, exc))
            return
        header = self._header(msg.time, self.values['world_frame'])
        self.pub_live_pose.publish(self._pose_msg(pose, header))
        self._publish_tf(pose, header, self.values['liveframe_frame_id'])

    def _on_graph(self, msg):
        self.stats.tick('graph')
        try:
            poses = kf.decode_graph(msg)
        except kf.KeyframeError as exc:
            self.stats.drop(exc.reason_key)
            self.node._warn(exc.reason_key, 'dropped graph update [%s]: %s' % (exc.reason_key, exc.message))
            return
        if self.map.update_poses(poses):
            self.stats.count('graph_map_updates')

    # --- worker thread -----------------------------------------------------------------------------
    def _work(self):
        while not self._stop.is_set():
            item = self._mailbox.get(timeout=0.2)
            if item is None:
                continue
            try:
                self._process(*item)
            except Exception as exc:  # the worker must survive anything a message can cause
                if self.node._shutting_down():
                    break
                self.stats.drop('keyframe_internal_error')
                self.node._warn('keyframe_internal_error', 'keyframe failed: %s: %s'
                                % (type(exc).__name__, exc), error=True)

    def _process(self, enqueued, msg):
        t_start = time.perf_counter()
        try:
            output = self.processor.process_message(msg)
        except (kf.KeyframeError, FrameError) as exc:
            key = exc.reason_key if exc.reason_key.startswith('keyframe_') else 'keyframe_' + exc.reason_key
            self.stats.drop(key)
            self.node._warn(key, 'dropped keyframe %d (time %.6f) [%s]: %s'
                            % (msg.id, msg.time, key, exc.message))
            return
        if self.node._shutting_down():
            return
        t_publish = time.perf_counter()
        self.publish(output)
        now = time.perf_counter()
        if self.map_publisher is not None and output.result.cloud is not None:
            self.map_publisher.add(output.keyframe.id, output.result.cloud, output.keyframe.cam_to_world)
        timings = {'keyframe_' + stage: seconds for stage, seconds in output.result.timings.items()}
        timings.update(keyframe_publish=now - t_publish, keyframe_total=now - t_start,
                       keyframe_queue=t_start - enqueued)
        self.stats.add_timings(timings)
        self.stats.tick('keyframe_output')

    def publish(self, output):
        """Dense depth, confidence, cloud, pose and /tf of one processed keyframe."""
        result, values = output.result, self.values
        header = self._header(output.keyframe.time, values['keyframe_frame_id'])
        self.pub_depth.publish(self._messages.image('depth', result.dense_depth, '32FC1', header))
        self.pub_confidence.publish(self._messages.image('confidence', result.confidence, '32FC1', header))
        if result.cloud is not None:
            self.pub_points.publish(self._messages.cloud(result.cloud, header))
        world_header = self._header(output.keyframe.time, values['world_frame'])
        self.pub_pose.publish(self._pose_msg(output.pose, world_header))
        self._publish_tf(output.pose, world_header, values['keyframe_frame_id'])

    # --- message building ------------------------------------------------------------------------------
    @staticmethod
    def _header(seconds, frame_id):
        header = Header(frame_id=str(frame_id))
        header.stamp.sec, header.stamp.nanosec = seconds_to_stamp(seconds)
        return header

    def _pose_msg(self, pose, header):
        msg = self._pose_type(header=header)
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = pose.translation
        o = msg.pose.orientation
        o.x, o.y, o.z, o.w = pose.rotation_xyzw
        return msg

    def _publish_tf(self, pose, header, child_frame_id):
        if self.pub_tf is None:
            return
        transform = self._transform_type(header=header, child_frame_id=str(child_frame_id))
        t = transform.transform.translation
        t.x, t.y, t.z = pose.translation
        r = transform.transform.rotation
        r.x, r.y, r.z, r.w = pose.rotation_xyzw
        self.pub_tf.publish(self._tf_type(transforms=[transform]))

    # --- shutdown --------------------------------------------------------------------------------------
    def stop(self):
        self._stop.set()
        self._mailbox.close()
        if self._worker.is_alive():
            self._worker.join(timeout=10.0)
        if self.map_publisher is not None:
            self.map_publisher.stop()


class MapPublisher:
    """The map's thread: stores keyframe clouds in the ``DenseMap`` and publishes it at a low rate.

    ``add`` only queues a copy of the cloud (the processor reuses its buffer), so the keyframe
    worker never waits for the thinning or the map rebuild.
    """

    def __init__(self, node, dense_map, publisher, values):
        self.node = node
        self.map = dense_map
        self.publisher = publisher
        self.world_frame = values['world_frame']
        self.period_s = float(values['map_publish_period'])
        self._pending = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='depth_interp_map', daemon=True)
        self._thread.start()

    def add(self, kf_id, cloud, cam_to_world):
        with self._lock:
            self._pending.append((kf_id, np.array(cloud, dtype=np.float32), cam_to_world))
        self._wake.set()

    def _run(self):
        last_publish = -float('inf')
        while not self._stop.is_set():
            self._wake.wait(timeout=min(self.period_s, 0.5))
            self._wake.clear()
            try:
                with self._lock:
                    pending, self._pending = self._pending, []
                for item in pending:
                    self.map.add(*item)
                now = time.monotonic()
                if self.map.changed and now - last_publish >= self.period_s:
                    last_publish = now
                    self._publish()
            except Exception as exc:  # the map must not take the node down
                if self.node._shutting_down():
                    break
                self.node.stats.drop('map_internal_error')
                self.node._warn('map_internal_error', 'map update failed: %s: %s' % (type(exc).__name__, exc),
                                error=True)

    def _publish(self):
        points = self.map.points()
        if points is None:
            return
        header = Header(frame_id=self.world_frame)
        header.stamp = self.node.get_clock().now().to_msg()
        self.publisher.publish(make_cloud(np.ascontiguousarray(points[None, :, :]), header))
        self.node.stats.count('map_published')

    def stop(self):
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10.0)
