"""LSD-SLAM keyframes made from real TUM RGB-D frames, through the live node over DDS.

Each TUM frame (colour + Kinect depth, ../shared/data/tum) becomes one ``lsd_slam_msgs/Keyframe``
the way LSD-SLAM would send it: the pixels of strong image gradient (Sobel magnitude above
``--gradient``, widened by one pixel, with sensor depth) carry inverse depth with LSD-SLAM-like
errors (Gaussian in inverse depth, 1 % at the median depth, plus 1 % gross outliers), at a keyframe
scale ``1 / s`` with ``s`` the frame's median depth (LSD-SLAM normalizes its first keyframe to a
mean inverse depth of 1), their variance, and a random camToWorld Sim(3) with that scale. The node
(``depth_interp_node -p keyframe_topic:=/lsd_slam/keyframes``, everything else default, the
shipped model) gets them over loopback DDS; this script compares

- ``/lsd_slam/dense_depth`` and the z of ``/lsd_slam/points`` with the sensor depth (world scale,
  i.e. metres here): REL = mean |d - d_sensor| / d_sensor over the pixels with sensor depth, all of
  them and those the viewer's filter did not keep;
- the cloud's x, y with the intrinsics;
- ``/tf`` world -> lsd_slam_camera with the Sim(3)'s rotation and translation.

Writes ``<out>.json`` and ``<out>.md`` (default docs/results/keyframes_tum). The intrinsics are
TUM's defaults (fx = fy = 525, cx = 319.5, cy = 239.5): the frames' sequences are not identified.

    .venv/bin/python experiments/keyframes_tum.py
"""
import argparse
import json
import os
import sys
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from ros2_depth_interp.ros.ros_env import isolate_this_process  # noqa: E402

FX = FY = 525.0
CX, CY = 319.5, 239.5
TOPIC = '/lsd_slam/keyframes'


def data_root():
    return os.environ.get('DEPTH_INTERP_DATA', os.path.join(REPO, '..', 'shared', 'data'))


def make_keyframe(frame, kf_id, rng, gradient):
    """(message fields in lsd_slam_msgs names, Sim3, sensor depth) for one TUM frame."""
    import cv2
    from scipy.spatial.transform import Rotation
    from ros2_depth_interp.core.lsd_slam import Sim3, keyframe_fields
    depth, grey = frame['depth'], frame['intensity']
    gx = cv2.Sobel(grey.astype(np.float32), cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(grey.astype(np.float32), cv2.CV_32F, 0, 1)
    selected = cv2.dilate((np.hypot(gx, gy) > gradient).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    selected &= depth > 0
    scale = float(np.median(depth[depth > 0]))
    q_world = np.where(selected, 1.0 / np.maximum(depth, 1e-6), 0.0)
    sigma_world = 0.01 / scale
    q_world = np.where(selected, np.maximum(q_world + rng.normal(0.0, sigma_world, depth.shape), 0.2 * q_world), 0)
    outliers = selected & (rng.random(depth.shape) < 0.01)
    q_world[outliers] *= rng.uniform(0.5, 0.8, int(outliers.sum()))
    q = np.where(selected, scale * q_world, -1.0).astype(np.float32)             # keyframe scale
    variance = np.where(selected, (2.0 * sigma_world * scale) ** 2, -1.0).astype(np.float32)
    rotation = Rotation.from_euler('xyz', rng.uniform(-0.5, 0.5, 3)).as_quat()
    sim3 = Sim3.from_scale_rotation_translation(scale, rotation, rng.uniform(-2, 2, 3))
    fields = keyframe_fields(q, variance, grey, FX, FY, CX, CY, cam_to_world=sim3, id=kf_id,
                             time=1000.0 + kf_id)
    fields['is_keyframe'] = fields.pop('isKeyframe')
    fields['cam_to_world'] = fields.pop('camToWorld')
    return fields, sim3


class Client:
    """Keyframe publisher; reliable subscriptions to dense_depth, points and /tf."""

    def __init__(self):
        import rclpy
        from lsd_slam_msgs.msg import Keyframe
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image, PointCloud2
        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('keyframes_tum', context=self.context)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.node.create_publisher(Keyframe, TOPIC, qos)
        self.received = {}
        self.lock = threading.Lock()
        self.subs = [self.node.create_subscription(Image, '/lsd_slam/dense_depth', self._store('depth'), qos),
                     self.node.create_subscription(PointCloud2, '/lsd_slam/points', self._store('points'), qos)]
        try:
            from tf2_msgs.msg import TFMessage
            self.subs.append(self.node.create_subscription(TFMessage, '/tf', self._on_tf, qos))
        except ImportError:
            pass
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        threading.Thread(target=self._spin, daemon=True).start()

    def _spin(self):
        try:
            self.executor.spin()
        except Exception:
            pass

    def _store(self, name):
        def callback(msg):
            with self.lock:
                self.received[(name, msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg
        return callback

    def _on_tf(self, msg):
        with self.lock:
            for t in msg.transforms:
                if t.child_frame_id == 'lsd_slam_camera':
                    self.received[('tf', t.header.stamp.sec, t.header.stamp.nanosec)] = t

    def wait(self, keys, process, timeout=300):
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if all(k in self.received for k in keys):
                    return [self.received[k] for k in keys]
            if process.poll() is not None:
                raise RuntimeError('the node exited (rc %s)' % process.returncode)
            if time.monotonic() > deadline:
                raise RuntimeError('timed out waiting for %s' % (keys,))
            time.sleep(0.01)

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.shutdown(context=self.context)


def evaluate(frame, fields, sim3, depth_msg, cloud_msg, transform):
    from scipy.spatial.transform import Rotation
    from ros2_depth_interp.core.lsd_slam import decode_keyframe, valid_mask
    from ros2_depth_interp.ros.ros_msgs import cloud_msg_to_array
    sensor = frame['depth']
    kept = valid_mask(decode_keyframe(fields))
    dense = np.frombuffer(bytes(depth_msg.data), '<f4').reshape(depth_msg.height, depth_msg.width)
    cloud = cloud_msg_to_array(cloud_msg)
    good = sensor > 0
    rel = np.abs(dense - sensor) / np.where(good, sensor, 1.0)
    rel_z = np.abs(cloud[:, :, 2] - sensor) / np.where(good, sensor, 1.0)
    v, u = np.mgrid[0:sensor.shape[0], 0:sensor.shape[1]]
    xy_error = max(float(np.nanmax(np.abs(cloud[:, :, 0] - (u - CX) / FX * cloud[:, :, 2]))),
                   float(np.nanmax(np.abs(cloud[:, :, 1] - (v - CY) / FY * cloud[:, :, 2]))))
    out = {'kept_by_viewer_filter': float(kept.mean()), 'sensor_valid': float(good.mean()),
           'rel_dense_depth_all': float(rel[good].mean()), 'rel_dense_depth_unmeasured': float(rel[good & ~kept].mean()),
           'rel_dense_depth_measured': float(rel[good & kept].mean()), 'rel_points_z_all': float(np.nanmean(rel_z[good])),
           'cloud_xy_max_abs_error_m': xy_error}
    if transform is not None:
        t, r = transform.transform.translation, transform.transform.rotation
        out['tf_translation_error'] = float(np.linalg.norm(np.array([t.x, t.y, t.z]) - sim3.translation))
        out['tf_rotation_error_deg'] = float(np.degrees((Rotation.from_quat([r.x, r.y, r.z, r.w]).inv()
                                                         * Rotation.from_matrix(sim3.rotation)).magnitude()))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data', default=os.path.join(data_root(), 'tum'))
    p.add_argument('--gradient', type=float, default=60.0, help='Sobel magnitude that selects a pixel')
    p.add_argument('--out', default=os.path.join('docs', 'results', 'keyframes_tum'))
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    import subprocess
    import tempfile
    from ros2_depth_interp.core.lsd_slam import seconds_to_stamp
    from ros2_depth_interp.learning.datasets import list_tum_frames, read_tum
    from ros2_depth_interp.ros.ros_msgs import make_keyframe as keyframe_message
    pairs = list_tum_frames(args.data)
    if not pairs:
        print('keyframes_tum: no TUM frames under %s' % args.data, file=sys.stderr)
        return 1
    isolate_this_process()
    rng = np.random.default_rng(args.seed)
    log = tempfile.NamedTemporaryFile(prefix='keyframes_tum_node_', suffix='.log', delete=False)
    node_cmd = os.path.join(os.path.dirname(sys.executable), 'depth_interp_node')
    process = subprocess.Popen([node_cmd, '--ros-args', '-p', 'keyframe_topic:=' + TOPIC],
                               stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    client = Client()
    results = []
    try:
        deadline = time.monotonic() + 300
        while not (client.publisher.get_subscription_count() and all(s.get_publisher_count() for s in client.subs[:2])):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('the node did not start (log: %s)' % log.name)
            time.sleep(0.05)
        has_tf = len(client.subs) > 2
        for kf_id, (color, depth) in enumerate(pairs):
            frame = read_tum(color, depth)
            fields, sim3 = make_keyframe(frame, kf_id, rng, args.gradient)
            client.publisher.publish(keyframe_message(fields))
            sec, nanosec = seconds_to_stamp(fields['time'])
            keys = [('depth', sec, nanosec), ('points', sec, nanosec)] + ([('tf', sec, nanosec)] if has_tf else [])
            got = client.wait(keys, process)
            row = evaluate(frame, fields, sim3, got[0], got[1], got[2] if has_tf else None)
            row['frame'] = os.path.relpath(color, args.data)
            results.append(row)
            print(json.dumps(row))
    finally:
        client.close()
        process.send_signal(2)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    with open(args.out + '.json', 'w') as f:
        json.dump({'frames': results, 'intrinsics': [FX, FY, CX, CY], 'gradient': args.gradient,
                   'seed': args.seed}, f, indent=2)
    with open(args.out + '.md', 'w') as f:
        f.write('# LSD-SLAM keyframes from real TUM RGB-D frames through the node (experiments/keyframes_tum.py)\n\n'
                'Node defaults (the viewer\'s filter included) and the shipped model; keyframe scale = 1 / '
                'median depth, LSD-SLAM-like inverse-depth noise (1 % at the median depth) and 1 % outliers on '
                'the gradient pixels; REL against the Kinect depth, in metres (world scale). The CPU was shared '
                'with other work; timing is not measured here.\n\n')
        f.write('| frame | kept by the viewer filter | REL dense_depth, all | REL, unmeasured | REL, measured | '
                'REL points z | cloud x,y vs intrinsics, max m | /tf translation error | /tf rotation error, deg |\n'
                '|---|---|---|---|---|---|---|---|---|\n')
        for row in results:
            f.write('| %s | %.1f %% | %.4f | %.4f | %.4f | %.4f | %.1e | %s | %s |\n' % (
                row['frame'], 100 * row['kept_by_viewer_filter'], row['rel_dense_depth_all'],
                row['rel_dense_depth_unmeasured'], row['rel_dense_depth_measured'], row['rel_points_z_all'],
                row['cloud_xy_max_abs_error_m'], '%.1e' % row['tf_translation_error'] if 'tf_translation_error' in row else '-',
                '%.1e' % row['tf_rotation_error_deg'] if 'tf_rotation_error_deg' in row else '-'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
