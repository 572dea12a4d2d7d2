"""Shared helpers for the node tests: start the node in its own process, talk to it over real DDS.

``NodeProcess`` runs the installed ``depth_interp_node`` (falling back to ``python -m
ros2_depth_interp.ros.node``) with the test process' environment, which test/conftest.py has already
isolated (own ROS_DOMAIN_ID, loopback discovery, temporary ROS_LOG_DIR, large-SHM Fast DDS profile).

``Bench`` is the test side: an rclpy node in its own context with publishers for the node's inputs
and subscriptions to its outputs, spun by a background executor. Tests wait on conditions (a
publisher matched, an output with a given stamp arrived, a diagnostics counter reached a value)
with a deadline, never on fixed sleeps.
"""
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from ros2_depth_interp.core import encodings
from ros2_depth_interp.ros.ros_msgs import make_image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every name this test process uses lives under its own namespace: domain ids are claimed per process
# (ros_env.claim_domain_id), but a process outside this project may still use the same one.
RUN_NS = '/t%d_%s' % (os.getpid(), os.urandom(3).hex())
WAIT_S = 60.0          # generous: the machine is shared; no test relies on timing
NODE_START_S = 90.0
TINY_MODEL_ENV = 'DEPTH_INTERP_TINY_MODEL'
# why the tests that need torch skip, or '' where torch is installed
TORCH_MISSING = '' if importlib.util.find_spec('torch') else 'needs torch, which is not installed here'
# for a test that needs torch itself (training, export, the torch backend): skipped without it
needs_torch = pytest.mark.skipif(bool(TORCH_MISSING), reason=TORCH_MISSING or 'torch is installed')


def node_command():
    """The console script installed beside this interpreter, else ``python -m``."""
    script = os.path.join(os.path.dirname(sys.executable), 'depth_interp_node')
    if os.path.isfile(script):
        return [script]
    return [sys.executable, '-m', 'ros2_depth_interp.ros.node']


def tiny_model(folder):
    """A small untrained model exported with the project's export code (tests only).

    Without torch it is the file ``DEPTH_INTERP_TINY_MODEL`` names (``make test-jazzy`` exports it
    with the main venv); with neither, the test is skipped.
    """
    prebuilt = os.environ.get(TINY_MODEL_ENV)
    if prebuilt:
        return prebuilt
    if TORCH_MISSING:
        pytest.skip('%s, and %s names no exported tiny model' % (TORCH_MISSING, TINY_MODEL_ENV))
    from ros2_depth_interp.learning.export import export_tiny_model
    path = os.path.join(str(folder), 'tiny.onnx')
    if not os.path.isfile(path):
        export_tiny_model(path)
    return path


def wait_until(predicate, timeout=WAIT_S, what='condition', process=None):
    """Poll ``predicate`` until true; fail with ``what`` after ``timeout`` or if ``process`` died."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError('node process exited (rc %s) while waiting for %s:\n%s'
                                 % (process.poll(), what, process.output()[-4000:]))
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %.0f s waiting for %s' % (timeout, what))
        time.sleep(0.01)


class NodeProcess:
    """The node in its own process; stdout+stderr go to a file (no pipe to fill up)."""

    def __init__(self, ros_args, extra_args=()):
        self._log = tempfile.NamedTemporaryFile(prefix='depth_interp_node_', suffix='.log', delete=False)
        self.command = node_command() + list(extra_args) + ['--ros-args'] + list(ros_args)
        self.proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ), cwd=REPO)

    def poll(self):
        return self.proc.poll()

    def output(self):
        with open(self._log.name, 'r', errors='replace') as f:
            return f.read()

    def wait(self, timeout=NODE_START_S):
        return self.proc.wait(timeout=timeout)

    def stop(self, sig=signal.SIGINT, timeout=30.0):
        """Ask the node to stop as Ctrl-C / SIGTERM would; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


def run_node_to_exit(ros_args, timeout=NODE_START_S):
    """Run the node expecting it to exit by itself (bad configuration); returns (rc, output)."""
    node = NodeProcess(ros_args)
    try:
        rc = node.wait(timeout)
    except subprocess.TimeoutExpired:
        node.stop()
        raise AssertionError('node did not exit within %.0f s:\n%s' % (timeout, node.output()[-4000:]))
    return rc, node.output()


def stamp_of(msg):
    return (int(msg.header.stamp.sec), int(msg.header.stamp.nanosec))


class Bench:
    """Publishers for the node's inputs and subscriptions to its outputs, in the test process.

    ``topics`` maps the roles (depth, image, mask, camera_info, dense_depth, dense_confidence,
    points) to the absolute topic names the node under test uses.
    """

    ROLES_IN = ('depth', 'image', 'mask', 'camera_info')
    ROLES_OUT = ('dense_depth', 'dense_confidence', 'points')

    def __init__(self, name, topics, reliable_outputs=False):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.topics = dict(topics)
        in_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                            reliability=ReliabilityPolicy.RELIABLE)
        self.publishers = {
            'depth': self.node.create_publisher(Image, topics['depth'], in_qos),
            'image': self.node.create_publisher(Image, topics['image'], in_qos),
            'camera_info': self.node.create_publisher(CameraInfo, topics['camera_info'], in_qos),
        }
        if topics.get('mask'):
            self.publishers['mask'] = self.node.create_publisher(Image, topics['mask'], in_qos)
        out_qos = (QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                              reliability=ReliabilityPolicy.RELIABLE)
                   if reliable_outputs else qos_profile_sensor_data)
        self._lock = threading.Lock()
        self.received = {role: {} for role in self.ROLES_OUT}   # role -> {stamp: msg}
        self.diagnostics = []                                    # DiagnosticStatus, newest last
        self.subscriptions = {}
        for role, msg_type in (('dense_depth', Image), ('dense_confidence', Image), ('points', PointCloud2)):
            self.subscriptions[role] = self.node.create_subscription(
                msg_type, topics[role], self._store(role), out_qos)
        self.subscriptions['diagnostics'] = self.node.create_subscription(
            DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        self._clock_ns = 1_700_000_000 * 10**9
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self._spin_forever, daemon=True)
        self._spin.start()

    def _spin_forever(self):
        try:
            self.executor.spin()
        except Exception:  # executor shut down
            pass

    def _store(self, role):
        def callback(msg):
            with self._lock:
                self.received[role][stamp_of(msg)] = msg
        return callback

    def _on_diagnostics(self, msg):
        with self._lock:
            self.diagnostics.extend(msg.status)

    # --- matching ---------------------------------------------------------------------------------
    def wait_for_matching(self, node_name, process=None, outputs=ROLES_OUT):
        """Both directions matched: our publishers see the node's subscriptions and our
        subscriptions see its publishers (including /diagnostics from this very node)."""
        for role, pub in self.publishers.items():
            wait_until(lambda pub=pub: pub.get_subscription_count() >= 1,
                       what='a subscriber on %s' % self.topics[role], process=process)
        for role in outputs:
            sub = self.subscriptions[role]
            wait_until(lambda sub=sub: sub.get_publisher_count() >= 1,
                       what='a publisher on %s' % self.topics[role], process=process)
        wait_until(lambda: self.latest_status(node_name) is not None,
                   what='diagnostics from %s' % node_name, process=process)

    # --- publishing ---------------------------------------------------------------------------------
    def next_stamp(self, step_s=0.1):
        self._clock_ns += int(step_s * 1e9)
        return self._clock_ns

    @staticmethod
    def header_for(msg, stamp_ns, frame_id):
        msg.header.stamp.sec = stamp_ns // 10**9
        msg.header.stamp.nanosec = stamp_ns % 10**9
        msg.header.frame_id = frame_id
        return msg

    def publish_camera_info(self, k, width, height, frame_id='camera', stamp_ns=None):
        info = CameraInfo()
        self.header_for(info, stamp_ns or self._clock_ns, frame_id)
        info.width, info.height = int(width), int(height)
        info.k = [float(v) for v in np.asarray(k, dtype=np.float64).reshape(-1)]
        info.distortion_model = 'plumb_bob'
        info.d = [0.0] * 5
        self.publishers['camera_info'].publish(info)

    def publish_set(self, depth, image, mask=None, frame_id='camera', stamp_ns=None,
                    stamps=None):
        """Publish one input set; each item is a (array, encoding) pair or a ready Image message.

        ``stamps`` (depth, image, mask) overrides the common stamp per input (for sync tests).
        Returns the depth stamp as (sec, nanosec).
        """
        stamp_ns = self.next_stamp() if stamp_ns is None else stamp_ns
        stamps = stamps or (stamp_ns, stamp_ns, stamp_ns)
        items = [('depth', depth, stamps[0]), ('image', image, stamps[1])]
        if mask is not None:
            items.append(('mask', mask, stamps[2]))
        for role, item, stamp in items:
            msg = item if isinstance(item, Image) else make_image(item[0], item[1], Image().header)
            self.header_for(msg, stamp, frame_id)
            self.publishers[role].publish(msg)
        return (stamps[0] // 10**9, stamps[0] % 10**9)

    # --- outputs -----------------------------------------------------------------------------------
    def wait_outputs(self, stamp, roles=('dense_depth', 'dense_confidence', 'points'), process=None,
                     timeout=WAIT_S):
        """{role: msg} for the outputs carrying ``stamp`` (as returned by publish_set)."""
        def ready():
            with self._lock:
                if all(stamp in self.received[role] for role in roles):
                    return {role: self.received[role][stamp] for role in roles}
            return None
        return wait_until(ready, timeout, 'outputs with stamp %s' % (stamp,), process)

    def publish_and_wait(self, depth, image, mask=None, frame_id='camera', roles=('dense_depth', 'dense_confidence',
                         'points'), process=None, attempts=3, timeout=WAIT_S / 2):
        """Publish one input set and wait for its outputs -> (stamp, {role: msg}). The node's inputs are
        best effort (sensor data), so on a loaded machine a set can be lost on the way: after
        ``timeout`` without outputs the same set goes again with a fresh stamp, ``attempts`` times in
        all; a node that never answers still fails."""
        for attempt in range(1, attempts):
            stamp = self.publish_set(depth, image, mask, frame_id)
            try:
                return stamp, self.wait_outputs(stamp, roles, process, timeout)
            except AssertionError:
                if process is not None and process.poll() is not None:
                    raise
                print('publish_and_wait: no outputs for stamp %s after %.0f s (attempt %d of %d); publishing '
                      'the set again' % (stamp, timeout, attempt, attempts))
        stamp = self.publish_set(depth, image, mask, frame_id)
        return stamp, self.wait_outputs(stamp, roles, process, timeout)

    def has_output(self, role, stamp):
        with self._lock:
            return stamp in self.received[role]

    def latest_status(self, node_name):
        """The newest DiagnosticStatus of the node ``node_name`` (fully qualified, e.g.
        '/itest/depth_interp'); its status name is '<fqn without leading slash>: ...'."""
        wanted = node_name.strip('/')
        with self._lock:
            for status in reversed(self.diagnostics):
                if status.name.split(':')[0] == wanted:
                    return status
        return None

    def statuses(self, node_name):
        """Every DiagnosticStatus received from the node so far, oldest first."""
        wanted = node_name.strip('/')
        with self._lock:
            return [s for s in self.diagnostics if s.name.split(':')[0] == wanted]

    def latest_values(self, node_name):
        status = self.latest_status(node_name)
        return None if status is None else {kv.key: kv.value for kv in status.values}

    def wait_counter(self, node_name, predicate, what, process=None, timeout=WAIT_S):
        """Wait for a diagnostics message of the node whose values satisfy ``predicate``."""
        def check():
            values = self.latest_values(node_name)
            return values if values is not None and predicate(values) else None
        return wait_until(check, timeout, what, process)

    def fresh_values(self, node_name, process=None):
        """Diagnostics values that count at least every output this bench has received (so a
        baseline read from them is not older than the last frame)."""
        with self._lock:
            seen = len(self.received['dense_depth'])
        return self.wait_counter(node_name, lambda v: counter(v, 'count_output') >= seen,
                                 'diagnostics counting %d outputs' % seen, process)

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._spin.join(timeout=10)


def counter(values, key):
    """Integer value of a diagnostics counter, 0 when the key is absent."""
    return int(values.get(key, '0'))


def decode(msg):
    """Image message -> numpy array (a copy, safe to keep)."""
    return np.array(encodings.msg_to_array(msg))


def plane_frame(height=48, width=64, depth_m=2.0, density=0.1, seed=0):
    """A fronto-parallel plane at ``depth_m``: (sparse depth float32, mask uint8, intensity uint8)."""
    rng = np.random.default_rng(seed)
    mask = (rng.random((height, width)) < density).astype(np.uint8) * 255
    mask[height // 2, width // 2] = 255
    sparse = np.where(mask > 0, np.float32(depth_m), np.float32(0)).astype(np.float32)
    intensity = rng.integers(0, 256, (height, width), dtype=np.uint8)
    return sparse, mask, intensity


def k_matrix(fx, fy, cx, cy):
    return [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
