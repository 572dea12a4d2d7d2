"""The depth_interp ROS 2 node: semi-dense depth + intensity (+ mask) in, dense depth + cloud out.

Threads, and why:

- The executor thread runs the subscription callbacks, the diagnostics timer and parameter
  changes. Callbacks only stamp-match messages (approximate-time synchronizer) and drop each
  complete set into a one-slot mailbox; they never decode or infer, so they never fall behind.
- One worker thread takes the newest complete set from the mailbox, runs ``FrameProcessor`` and
  publishes. If sets arrive faster than inference, the mailbox keeps only the newest and counts
  the rest as ``dropped_superseded``: the robot always gets the freshest depth, never a backlog.

Bad input (wrong encoding, size mismatch, nothing known, NaN/inf, a calibration with a zero focal
length, stamps that never match) is logged once per ``log_throttle_sec`` per kind, counted in
/diagnostics, and the node carries on. Bad configuration at start-up (a parameter out of range,
a missing or corrupt model file) is one clear error line and exit code 2.
"""
import math
import os
import signal
import sys
import threading
import time
from collections import Counter

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from ..core import params
from ..core.pipeline import FrameError, FrameProcessor, PipelineConfig, fallback_intrinsics, intrinsics_for_size
from ..core.resources import default_model_path
from .ros_msgs import MessageCache
from ..core.stats import NodeStats
from ..core.sync import LatestSetMailbox
from .input_sync import make_synchronizer
from . import keyframe_input

EXIT_CONFIG_ERROR = 2
TIME_JUMP_NS = 1_000_000_000   # stamps going back further than this reset the synchronizer
DEPTH, IMAGE, MASK = 0, 1, 2
INPUT_TOPICS = ('semi_dense_depth', 'image', 'mask')

_PARAM_TYPES = {
    params.BOOL: Parameter.Type.BOOL,
    params.INTEGER: Parameter.Type.INTEGER,
    params.DOUBLE: Parameter.Type.DOUBLE,
    params.STRING: Parameter.Type.STRING,
    params.STRING_ARRAY: Parameter.Type.STRING_ARRAY,
}


class ConfigError(Exception):
    """A start-up configuration problem; ``main`` prints it on one line and exits with code 2."""


def parameter_descriptor(spec, read_only=False):
    """ParameterDescriptor for one ``params.ParamSpec`` (description, type, numeric range)."""
    text = spec.description
    if spec.choices:
        text += ' (one of: %s)' % ', '.join(spec.choices)
    if not spec.runtime:
        text += ' [start-up only]'
    descriptor = ParameterDescriptor(
        name=spec.name, type=_PARAM_TYPES[spec.kind].value, description=text,
        additional_constraints=spec.constraint_text(), read_only=read_only)
    if spec.value_range and spec.kind == params.DOUBLE:
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(spec.value_range[0]), to_value=float(spec.value_range[1]), step=0.0)]
    elif spec.value_range and spec.kind == params.INTEGER:
        descriptor.integer_range = [IntegerRange(
            from_value=int(spec.value_range[0]), to_value=int(spec.value_range[1]), step=1)]
    return descriptor


class _LogThrottle:
    """At most one log line per key per period; says how many similar lines it held back."""

    def __init__(self, period_s):
        self.period_s = float(period_s)
        self._last = {}
        self._held = Counter()
        self._lock = threading.Lock()

    def check(self, key, now=None):
        """(should_log, number held back since the last line for this key)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                self._held[key] += 1
                return False, 0
            self._last[key] = now
            held = self._held.pop(key, 0)
            return True, held


def _stamp_ns(header):
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _stamp_text(header):
    return '%d.%09d' % (header.stamp.sec, header.stamp.nanosec)


class DepthInterpNode(Node):
    """See the module docstring. Raises ``ConfigError`` from the constructor on bad configuration.

    ``interpolator`` may be passed in (an already-built ``DepthInterpolator``) by tools that embed
    the node; by default it is built from the parameters.
    """

    def __init__(self, node_name='depth_interp', interpolator=None, **kwargs):
        super().__init__(node_name, **kwargs)
        try:
            self._setup(interpolator)
        except Exception:
            self._stop_worker()
            super().destroy_node()
            raise

    # --- start-up ----------------------------------------------------------------------------------
    def _setup(self, interpolator):
        self.values = self._declare_parameters()
        errors = params.validate(self.values)
        if errors:
            raise ConfigError('; '.join(errors))
        self.model_path = self.values['model_path'] or default_model_path()
        self.interpolator = interpolator or self._load_model(self.model_path)
        self.active_provider = str(getattr(self.interpolator, 'active_provider', self.values['backend']))
        skipped = list(getattr(self.interpolator, 'skipped_providers', []))
        self.get_logger().info('model %s loaded; backend %s, active execution provider: %s%s' % (
            self.model_path, self.values['backend'], self.active_provider,
            ' (not available here, skipped: %s)' % ', '.join(skipped) if skipped else ''))

        self.processor = FrameProcessor(self.interpolator, PipelineConfig.from_params(self.values))
        self._throttle = _LogThrottle(self.values['log_throttle_sec'])
        self.stats = NodeStats()
        self._use_mask = self.values['use_mask']
        n_inputs = 3 if self._use_mask else 2
        # message_filters' synchronizer where it is installed, the project's own otherwise
        self._sync = make_synchronizer(
            n_inputs, queue_size=self.values['sync_queue_size'], slop=self.values['sync_slop'],
            min_period=self.values['sync_min_period'])
        self._sync_lock = threading.Lock()
        self._mailbox = LatestSetMailbox()
        self._sync_reported = {}
        self._reported_drops = {}
        self._last_stamps = [None] * n_inputs
        self.stats.set_external_drops('sync_', self._sync.dropped)
        self.stats.set_external_drops('', self._mailbox.dropped)
        self._camera_info = None  # (k tuple, width, height) of the last valid CameraInfo
        self._camera_info_lock = threading.Lock()
        self._messages = MessageCache()

        if self.values['reliable_outputs']:
            out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2,
                                 reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.VOLATILE)
        else:
            out_qos = qos_profile_sensor_data
        self.pub_depth = self.create_publisher(Image, 'dense_depth', out_qos)
        self.pub_confidence = self.create_publisher(Image, 'dense_confidence', out_qos)
        self.pub_points = self.create_publisher(PointCloud2, 'points', out_qos)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._keyframes = None   # the LSD-SLAM keyframe path (ros/keyframe_input.py), when configured
        if keyframe_input.wanted(self.values):
            try:
                self._keyframes = keyframe_input.KeyframeInput(self, self.interpolator, self.values)
            except keyframe_input.KeyframeSetupError as exc:
                raise ConfigError(str(exc)) from None

        self._subscriptions_by_topic = {}
        for index in range(n_inputs):
            topic = INPUT_TOPICS[index]
            self._subscriptions_by_topic[topic] = self.create_subscription(
                Image, topic, self._make_input_callback(index, topic), qos_profile_sensor_data)
        self._subscriptions_by_topic['camera_info'] = self.create_subscription(
            CameraInfo, 'camera_info', self._on_camera_info, qos_profile_sensor_data)

        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name='depth_interp_worker', daemon=True)
        self._worker.start()
        self._diag_timer = self.create_timer(self.values['diagnostics_period'], self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if hasattr(self, 'add_post_set_parameters_callback'):
            self.add_post_set_parameters_callback(self._after_set_parameters)
        self.get_logger().info(
            'listening on %s (mask %s, paired by the %s synchronizer); publishing %s, %s, %s (%s QoS)' % (
                ', '.join(self.resolve_topic_name(t) for t in self._subscriptions_by_topic),
                'used' if self._use_mask else 'not used', self._sync.name,
                self.pub_depth.topic_name, self.pub_confidence.topic_name, self.pub_points.topic_name,
                'reliable' if self.values['reliable_outputs'] else 'best-effort'))

    def _declare_parameters(self):
        """Declare every parameter of ``params.PARAMS``; collect all type/range errors at once."""
        errors, values = [], {}
        overrides = getattr(self, '_parameter_overrides', {})
        for spec in params.PARAMS:
            descriptor = parameter_descriptor(spec)
            default = spec.default if spec.kind != params.STRING_ARRAY else list(spec.default)
            try:
                value = self.declare_parameter(spec.name, default, descriptor).value
            except ParameterException:
                given = overrides[spec.name].value if spec.name in overrides else '?'
                if isinstance(given, (list, tuple)) or type(given).__name__ == 'array':
                    given = list(given)
                constraint = spec.constraint_text()
                errors.append('%s must be %s%s, got %r' % (
                    spec.name, params.kind_text(spec.kind),
                    (' in ' + constraint) if constraint and spec.value_range else '', given))
                value = self.declare_parameter(spec.name, default, descriptor,
                                               ignore_override=True).value
            if spec.kind == params.STRING_ARRAY:
                value = list(value)
            values[spec.name] = value
        if errors:
            raise ConfigError('; '.join(errors))
        return values

    def _load_model(self, model_path):
        from ..core import inference  # imported here: onnxruntime/torch load only when a node starts
        from ..learning.torch_backend import backend_named
        if not os.path.isfile(model_path):
            raise ConfigError('model file not found: %s (set model_path, or export a trained model '
                              'with `depth_interp export`)' % model_path)
        try:
            return inference.DepthInterpolator(
                model_path=model_path, providers=list(self.values['providers']),
                backend=backend_named(self.values['backend'], model_path), warmup=self.values['warmup'],
                threads=self.values['intra_op_threads'])
        except inference.ModelLoadError as exc:
            raise ConfigError('cannot load model %s: %s' % (model_path, exc)) from None
        except ImportError as exc:
            raise ConfigError('backend %r is not available: %s' % (self.values['backend'], exc)) from None
        except Exception as exc:  # e.g. the warm-up inference fails on a model of the wrong shape
            raise ConfigError('model %s does not run: %s: %s'
                              % (model_path, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else '')) from None

    # --- runtime parameter changes ------------------------------------------------------------------
    def _on_set_parameters(self, parameters):
        changes = {p.name: p.value for p in parameters}
        changes = {k: (list(v) if params.SPECS.get(k) and params.SPECS[k].kind == params.STRING_ARRAY
                       else v) for k, v in changes.items()}
        errors = params.runtime_change_errors(changes, self.values)
        if errors:
            return SetParametersResult(successful=False, reason='; '.join(errors))
        if not hasattr(self, 'add_post_set_parameters_callback'):
            self._apply_changes(changes)
        return SetParametersResult(successful=True)

    def _after_set_parameters(self, parameters):
        self._apply_changes({p.name: p.value for p in parameters})

    def _apply_changes(self, changes):
        values = dict(self.values)
        values.update(changes)
        self.values = values
        self.processor.config = PipelineConfig.from_params(values)  # swapped whole, between frames
        self._throttle.period_s = float(values['log_throttle_sec'])
        if self._keyframes is not None:
            self._keyframes.apply_values(values)
        self.get_logger().info('parameters changed: %s' % ', '.join(
            '%s=%r' % item for item in sorted(changes.items())))

    # --- callbacks (executor thread) ----------------------------------------------------------------
    def _make_input_callback(self, index, topic):
        def callback(msg):
            self.stats.tick(topic)
            stamp = _stamp_ns(msg.header)
            with self._sync_lock:
                last = self._last_stamps[index]
                self._last_stamps[index] = stamp
                jumped = last is not None and stamp < last - TIME_JUMP_NS
                if jumped:
                    # A bag played in a loop or a restarted sensor clock: without a reset every
                    # later message would be "out of order" until the stamps caught up.
                    self._sync.reset()
                    self._last_stamps = [None] * len(self._last_stamps)
                    self._last_stamps[index] = stamp
                complete = self._sync.add(index, stamp, msg)
            if jumped:
                self.stats.count('time_jumps')
                self._warn('time_jump', 'stamps on %s jumped back by %.3f s: synchronizer reset'
                           % (self.resolve_topic_name(topic), (last - stamp) / 1e9))
            for message_set in complete:
                self.stats.tick('input_set')
                # the enqueue time lets diagnostics tell waiting ('queue') from processing
                self._mailbox.put((time.perf_counter(), message_set))
        return callback

    def _on_camera_info(self, msg):
        k = [float(v) for v in msg.k]
        fx, fy = k[0], k[4]
        if not (math.isfinite(fx) and math.isfinite(fy) and fx > 0 and fy > 0
                and all(math.isfinite(v) for v in k)):
            self.stats.drop('bad_camera_info')
            self._warn('bad_camera_info', 'camera_info (stamp %s) has an unusable K (fx=%g, fy=%g): '
                       'ignored, keeping the previous intrinsics' % (_stamp_text(msg.header), fx, fy))
            return
        with self._camera_info_lock:
            first = self._camera_info is None
            self._camera_info = (tuple(k), int(msg.width), int(msg.height))
        if first:
            self.get_logger().info('intrinsics from camera_info: fx=%g fy=%g cx=%g cy=%g (%dx%d)'
                                   % (fx, fy, k[2], k[5], msg.width, msg.height))

    # --- worker thread -----------------------------------------------------------------------------
    def _work(self):
        while not self._stop.is_set():
            item = self._mailbox.get(timeout=0.2)
            if item is None:
                continue
            enqueued, message_set = item
            try:
                self._process_set(message_set, enqueued)
            except Exception as exc:  # the worker must survive anything a message can cause
                if self._shutting_down():
                    break   # the context went away under a publish
                self.stats.drop('internal_error')
                self._warn('internal_error', 'frame failed: %s: %s' % (type(exc).__name__, exc),
                           error=True)

    def _intrinsics(self, width, height):
        with self._camera_info_lock:
            info = self._camera_info
        if info is not None:
            k, info_w, info_h = info
            try:
                return intrinsics_for_size(k, info_w, info_h, width, height)
            except ValueError as exc:
                self.stats.drop('bad_camera_info')
                self._warn('bad_camera_info', 'camera_info intrinsics unusable: %s' % exc)
        values = self.values
        return fallback_intrinsics(values['fx'], values['fy'], values['cx'], values['cy'], width, height)

    def _shutting_down(self):
        # Ctrl-C invalidates the context before spin returns and the worker is stopped
        return self._stop.is_set() or not self.context.ok()

    def _process_set(self, message_set, enqueued=None):
        t_start = time.perf_counter()
        depth_msg, image_msg = message_set[DEPTH], message_set[IMAGE]
        mask_msg = message_set[MASK] if self._use_mask else None
        try:
            result = self.processor.process_messages(depth_msg, image_msg, mask_msg, self._intrinsics)
        except FrameError as exc:
            self.stats.drop(exc.reason_key)
            self._warn(exc.reason_key, 'dropped frame (stamp %s) [%s]: %s'
                       % (_stamp_text(depth_msg.header), exc.reason_key, exc.message))
            return

        if self._shutting_down():
            return
        t_publish = time.perf_counter()
        header = depth_msg.header
        self.pub_depth.publish(self._messages.image('depth', result.dense_depth, '32FC1', header))
        self.pub_confidence.publish(self._messages.image('confidence', result.confidence, '32FC1', header))
        if result.cloud is not None:
            self.pub_points.publish(self._messages.cloud(result.cloud, header))
        elif result.cloud_skipped:
            self.stats.count('cloud_skipped_' + result.cloud_skipped)
            self._warn('cloud_skipped_' + result.cloud_skipped,
                       'no camera intrinsics: nothing valid on %s and fx/fy parameters unset; '
                       'publishing dense depth without a point cloud'
                       % self.resolve_topic_name('camera_info'))
        now = time.perf_counter()
        timings = dict(result.timings)
        timings['publish'] = now - t_publish
        timings['total'] = now - t_start
        if enqueued is not None:
            timings['queue'] = t_start - enqueued
        self.stats.add_timings(timings)
        self.stats.add_density(result.input_density)
        if result.nonfinite_pixels:
            self.stats.count('frames_with_nonfinite_depth')
        self.stats.tick('output')

    def _warn(self, key, text, error=False):
        should, held = self._throttle.check(key)
        if not should:
            return
        if held:
            text += ' (%d more like this since the last report)' % held
        # rclpy refuses two severities from one call site: one call per severity
        if error:
            self.get_logger().error(text)
        else:
            self.get_logger().warning(text)

    # --- diagnostics -------------------------------------------------------------------------------
    def diagnostics_status(self):
        """The DiagnosticStatus this node reports now."""
        rate_names = ['semi_dense_depth', 'image'] + (['mask'] if self._use_mask else []) + \
            ['input_set', 'output']
        with self._sync_lock:
            values = self.stats.key_values(rate_names=rate_names, extra=[
                ('execution_provider', self.active_provider),
                ('backend', self.values['backend']),
                ('model_path', self.model_path),
                ('use_mask', str(self._use_mask).lower()),
                ('input_inverse_depth', str(self.values['input_inverse_depth']).lower()),
                ('intrinsics', self._intrinsics_source()),
                ('synchronizer', self._sync.name),
            ])
        status = DiagnosticStatus()
        status.name = '%s: depth interpolation' % self.get_fully_qualified_name().lstrip('/')
        status.hardware_id = self.active_provider
        status.level, status.message = self._summarize(dict(values))
        status.values = [KeyValue(key=k, value=v) for k, v in values]
        return status

    def _summarize(self, values):
        """(level, message): WARN for drops since the last report (the real-time policy's
        'superseded' and 'keyframe_superseded' excepted) or inputs without output, OK otherwise."""
        dropped = {k[len('dropped_'):]: int(v) for k, v in values.items()
                   if k.startswith('dropped_') and k != 'dropped_total'}
        new = {k: n - self._reported_drops.get(k, 0) for k, n in dropped.items()
               if n > self._reported_drops.get(k, 0) and k not in ('superseded', 'keyframe_superseded')}
        self._reported_drops = dropped
        out_rate = self.stats.rate('output')
        if new:
            return DiagnosticStatus.WARN, 'dropped since the last report: ' + ', '.join(
                '%s x%d' % item for item in sorted(new.items()))
        if self.stats.rate('input_set') > 0 and out_rate == 0:
            return DiagnosticStatus.WARN, 'inputs arrive but nothing is published'
        if int(values.get('count_output', 0)) == 0:
            if int(values.get('count_keyframe_output', 0)) > 0:
                return DiagnosticStatus.OK, 'keyframes out %.2f Hz, %s dropped since start' % (
                    self.stats.rate('keyframe_output'), values.get('dropped_total', '0'))
            return DiagnosticStatus.OK, 'waiting for input'
        return DiagnosticStatus.OK, 'output %.1f Hz, %s dropped since start' % (
            out_rate, values.get('dropped_total', '0'))

    def _intrinsics_source(self):
        with self._camera_info_lock:
            if self._camera_info is not None:
                return 'camera_info'
        return 'parameters' if self.values['fx'] > 0 else 'none'

    def _report_sync_drops(self):
        """One throttled line when the synchronizer dropped messages since the last line.

        Such drops mean the inputs do not pair up (stamps further apart than sync_slop, one input
        much faster than another, a stream that stalls); the counters are in /diagnostics too.
        """
        with self._sync_lock:
            current = dict(self._sync.dropped)
        new = {k: n - self._sync_reported.get(k, 0) for k, n in current.items()
               if n > self._sync_reported.get(k, 0)}
        if not new:
            return
        should, _ = self._throttle.check('sync')
        if not should:
            return  # keep the old baseline: the next line covers everything since the last one
        self._sync_reported = current
        self.get_logger().warning(
            'input sync [sync]: %d message(s) dropped since the last report: %s (sync_slop=%g s, '
            'sync_queue_size=%d)' % (sum(new.values()), '; '.join(
                '%s x%d (%s)' % (k, n, self._sync.drop_reasons.get(k, '')) for k, n in sorted(new.items())),
                self.values['sync_slop'], self.values['sync_queue_size']))

    def _publish_diagnostics(self):
        self._report_sync_drops()
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [self.diagnostics_status()]
        self.pub_diagnostics.publish(msg)

    # --- shutdown ------------------------------------------------------------------------------------
    def _stop_worker(self):
        keyframes = getattr(self, '_keyframes', None)
        if keyframes is not None:
            keyframes.stop()
        stop = getattr(self, '_stop', None)
        if stop is None:
            return
        stop.set()
        self._mailbox.close()
        if self._worker.is_alive():
            self._worker.join(timeout=10.0)

    def destroy_node(self):
        self._stop_worker()
        return super().destroy_node()


def main(args=None):
    """Entry point of ``depth_interp_node``: 0 on a clean stop, 2 on a configuration error."""
    ros_started = []

    def on_sigint(signum, frame):
        # rclpy.init installs its own SIGINT handler, which shuts the context down (that stops the
        # executor) and then calls this one. Ctrl-C in a terminal reaches every process of its group,
        # ros2 launch included, which then forwards one more SIGINT: from the first one on, SIGINT is
        # ignored, so that no KeyboardInterrupt can land in the middle of the stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if not ros_started:     # before rclpy.init there is no context to shut down
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        rclpy.init(args=args)
        ros_started.append(True)
    except KeyboardInterrupt:
        rclpy.try_shutdown()
        return 0
    except Exception as exc:  # e.g. malformed --ros-args
        print('depth_interp: cannot start ROS: %s' % exc, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    logger = rclpy.logging.get_logger('depth_interp')
    try:
        node = DepthInterpNode()
    except ConfigError as exc:
        logger.error('configuration error: %s' % ' '.join(str(exc).split()))
        rclpy.try_shutdown()
        return EXIT_CONFIG_ERROR
    except (KeyboardInterrupt, ExternalShutdownException):
        rclpy.try_shutdown()
        return 0
    except RuntimeError:
        # a stop signal during start-up shuts the context down under the constructor, whose next
        # publisher or subscription then raises RCLError: a clean stop too
        if rclpy.ok():
            raise
        return 0
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # rclpy's signal handler shuts the context down; if that lands between two waits of the
        # executor, the next wait raises RCLError (a RuntimeError) instead of
        # ExternalShutdownException. That is still a clean stop; anything else is not.
        if rclpy.ok():
            raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # a stop for any other reason: no SIGINT cuts it short
        executor.remove_node(node)
        node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
