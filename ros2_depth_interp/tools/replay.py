"""Replay publisher: synchronized semi-dense depth, image, mask and camera_info at a set rate.

``python -m ros2_depth_interp.tools.replay [options]`` plays the role of a SLAM system beside a camera, so
that the demo and the benchmark can drive the real node process over real DDS. What it publishes:

- ``semi_dense_depth``: 32FC1 metres (or 16UC1 millimetres), 0 where unknown;
- ``image``: mono8 (or rgb8) intensity;
- ``mask``: mono8, 255 = known (the paper's gradient-adaptive mask by default);
- ``camera_info``: K of the frames, same stamp.

All four messages of one frame carry the same stamp, taken from the clock right before the frame is
published ("stamp = now"), so ``arrival time - header stamp`` at a subscriber of the node's outputs is
the true end-to-end latency.

Frames come from the procedural synthetic sequence (default; any resolution), from a folder of real
TUM-style frames (``--data``), or from a frames file written earlier (``--frames-file``, how the
demo and the benchmark share one rendering between runs). Everything expensive happens before the
timed part: frames are rendered, masks drawn and the ROS messages built (pixel buffers as
``array.array``) once; the timer callback only writes stamps and publishes. The replay waits until
the node's subscriptions have matched before the first frame, then publishes ``--frames`` frames (or
for ``--duration`` seconds), looping over the prepared frames, and writes a JSON summary with the
stamp and frame index of every published frame (the demo maps outputs back to ground truth this way).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

from ..learning import masks as _masks

EXIT_NO_SUBSCRIBER = 3
DEFAULT_DENSITY = 0.1
SEQUENCE_LENGTH = 300   # frames of the bundled synthetic sequence (10 s at its 30 fps)
# PrimeSense/Kinect factory intrinsics at 640x480, what TUM recommends when a sequence's own
# calibration is unknown (the shared TUM frames do not say which sequence they come from).
TUM_DEFAULT_K = (525.0, 525.0, 319.5, 239.5)


# --- frames: numpy only, no ROS ---------------------------------------------------------------------

def _frame(index, gt, intensity, K, density, mask_mode, rng, rgb=None):
    sparse, mask = _masks.make_semi_dense(gt, intensity, mask_mode, density, rng)
    frame = dict(index=int(index), sparse=sparse.astype(np.float32), mask=mask.astype(bool),
                 intensity=np.ascontiguousarray(intensity, dtype=np.uint8), gt=gt.astype(np.float32),
                 K=np.asarray(K, dtype=np.float64).reshape(3, 3))
    if rgb is not None:
        frame['rgb'] = np.ascontiguousarray(rgb, dtype=np.uint8)
    return frame


def synthetic_frames(n_frames, height=480, width=640, seed=0, density=DEFAULT_DENSITY,
                     mask_mode='gradient', step=1):
    """The first ``n_frames`` frames (every ``step``-th) of the synthetic sequence ``seed``.

    Each frame: dict(index, sparse, mask, intensity, gt, K); ``gt`` is the rendered dense depth in
    metres, ``sparse`` is ``gt`` on the semi-dense ``mask`` and 0 elsewhere. The sequence is always
    at least ``SEQUENCE_LENGTH`` frames long (its scene depends on its length) and masks are drawn
    with ``numpy.random.default_rng([seed, index])``, so frame i is the same whoever renders it and
    however many frames they take.
    """
    from ..learning.synthetic import SyntheticSequence
    sequence = SyntheticSequence(seed=seed, height=height, width=width,
                                 n_frames=max(SEQUENCE_LENGTH, n_frames * step))
    frames = []
    for i in range(n_frames):
        item = sequence[i * step]
        frames.append(_frame(i * step, item['depth'], item['intensity'], item['K'], density, mask_mode,
                             np.random.default_rng([seed, i * step])))
    return frames


def folder_frames(root, n_frames=None, height=None, width=None, density=DEFAULT_DENSITY,
                  mask_mode='gradient', intrinsics=None, seed=0):
    """Frames from a folder of TUM-style RGB-D pairs (``datasets.list_tum_frames``).

    Ground truth is the sensor depth (0 where the sensor has none; the semi-dense mask only picks
    valid pixels). ``intrinsics`` = (fx, fy, cx, cy) at the files' size (default: the PrimeSense
    factory values TUM recommends). ``height``/``width`` resize (nearest for depth, area for images).
    """
    import cv2
    from ..learning.datasets import list_tum_frames, read_tum
    pairs = list_tum_frames(root)
    if not pairs:
        raise ValueError('no RGB-D frames found under %s (expected TUM-style rgb/ + depth/ folders or '
                         'X.png + X_depth.png pairs)' % root)
    if n_frames:
        pairs = pairs[:n_frames]
    fx, fy, cx, cy = intrinsics or TUM_DEFAULT_K
    frames = []
    for index, (color, depth_path) in enumerate(pairs):
        data = read_tum(color, depth_path)
        gt, intensity, rgb = data['depth'], data['intensity'], data['rgb']
        h0, w0 = gt.shape
        sx = sy = 1.0
        if height and width and (height, width) != (h0, w0):
            sx, sy = width / float(w0), height / float(h0)
            gt = cv2.resize(gt, (width, height), interpolation=cv2.INTER_NEAREST)
            intensity = cv2.resize(intensity, (width, height), interpolation=cv2.INTER_AREA)
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
        K = [[fx * sx, 0.0, (cx + 0.5) * sx - 0.5], [0.0, fy * sy, (cy + 0.5) * sy - 0.5], [0.0, 0.0, 1.0]]
        frames.append(_frame(index, gt, intensity, K, density, mask_mode,
                             np.random.default_rng([seed, index]), rgb=rgb))
    return frames


def save_frames(path, frames, meta=None, with_ground_truth=True):
    """Write prepared frames to one .npz (stacked arrays) so other processes can replay them.

    ``with_ground_truth=False`` leaves out ``gt`` and ``rgb`` (the benchmark only needs the inputs).
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    keys = ('sparse', 'mask', 'intensity', 'K') + (('gt',) if with_ground_truth else ())
    arrays = {key: np.stack([f[key] for f in frames]) for key in keys}
    arrays['index'] = np.array([f['index'] for f in frames], dtype=np.int64)
    if with_ground_truth and all('rgb' in f for f in frames):
        arrays['rgb'] = np.stack([f['rgb'] for f in frames])
    arrays['meta'] = np.array(json.dumps(meta or {}))
    tmp = path + '.tmp.npz'
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_frames(path):
    """(frames, meta) from ``save_frames``."""
    with np.load(path, allow_pickle=False) as data:
        n = data['sparse'].shape[0]
        optional = [key for key in ('gt', 'rgb') if key in data.files]
        frames = [dict(index=int(data['index'][i]), sparse=data['sparse'][i], mask=data['mask'][i],
                       intensity=data['intensity'][i], K=data['K'][i],
                       **{key: data[key][i] for key in optional}) for i in range(n)]
        meta = json.loads(str(data['meta'])) if 'meta' in data.files else {}
    return frames, meta


# --- ROS side --------------------------------------------------------------------------------------

def build_messages(frame, depth_encoding='32FC1', image_encoding='mono8', frame_id='camera'):
    """The four messages of one frame, pixel buffers filled once (stamps are set when published)."""
    from sensor_msgs.msg import CameraInfo, Image
    from ..ros.ros_msgs import fill_image
    if depth_encoding == '32FC1':
        depth = frame['sparse'].astype(np.float32)
    elif depth_encoding == '16UC1':
        depth = np.clip(np.round(frame['sparse'] * 1000.0), 0, 65535).astype(np.uint16)
    else:
        raise ValueError('depth encoding must be 32FC1 or 16UC1, got %r' % depth_encoding)
    if image_encoding == 'mono8':
        image = frame['intensity']
    elif image_encoding == 'rgb8':
        image = frame.get('rgb')
        if image is None:
            image = np.repeat(frame['intensity'][:, :, None], 3, axis=2)
    else:
        raise ValueError('image encoding must be mono8 or rgb8, got %r' % image_encoding)
    mask = np.where(frame['mask'], np.uint8(255), np.uint8(0))
    messages = {}
    for key, array, encoding in (('depth', depth, depth_encoding), ('image', image, image_encoding),
                                 ('mask', mask, 'mono8')):
        msg = fill_image(Image(), array, encoding, Image().header)
        msg.header.frame_id = frame_id
        messages[key] = msg
    height, width = frame['sparse'].shape
    info = CameraInfo()
    info.header.frame_id = frame_id
    info.width, info.height = int(width), int(height)
    K = np.asarray(frame['K'], dtype=np.float64).reshape(3, 3)
    info.k = [float(v) for v in K.reshape(-1)]
    info.distortion_model = 'plumb_bob'
    info.d = [0.0] * 5
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [K[0, 0], 0.0, K[0, 2], 0.0, 0.0, K[1, 1], K[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
    messages['camera_info'] = info
    return messages


class Replayer:
    """Publishers and the timer; owns an rclpy node in its own context."""

    def __init__(self, frames, rate_hz, n_publish, namespace='', use_mask=True, reliable=False,
                 depth_encoding='32FC1', image_encoding='mono8', frame_id='camera'):
        from sensor_msgs.msg import CameraInfo, Image
        from ..ros.private_node import PrivateNode
        self._ros = PrivateNode('depth_interp_replay', namespace, reliable)
        self.context, self.node, qos = self._ros.context, self._ros.node, self._ros.qos
        self.publishers = {'depth': self.node.create_publisher(Image, 'semi_dense_depth', qos),
                           'image': self.node.create_publisher(Image, 'image', qos),
                           'camera_info': self.node.create_publisher(CameraInfo, 'camera_info', qos)}
        if use_mask:
            self.publishers['mask'] = self.node.create_publisher(Image, 'mask', qos)
        self.order = [k for k in ('camera_info', 'depth', 'image', 'mask') if k in self.publishers]
        self.messages = [build_messages(f, depth_encoding, image_encoding, frame_id) for f in frames]
        self.frame_indices = [f['index'] for f in frames]
        self.period = 1.0 / float(rate_hz)
        self.n_publish = int(n_publish)
        self.published = []        # (stamp_ns, frame index, seconds spent publishing)
        self._timer = None

    def wait_for_subscribers(self, timeout):
        """Spin until every publisher has a subscriber (the node is up); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() >= 1 for p in self.publishers.values()):
                return True
            time.sleep(0.02)
        return False

    def missing_subscribers(self):
        return [self.publishers[k].topic_name for k in self.order
                if self.publishers[k].get_subscription_count() < 1]

    def _publish_next(self):
        if len(self.published) >= self.n_publish:
            return
        n = len(self.published)
        slot = n % len(self.messages)
        messages = self.messages[slot]
        t0 = time.perf_counter()
        stamp = self.node.get_clock().now()
        stamp_msg = stamp.to_msg()
        for key in self.order:
            msg = messages[key]
            msg.header.stamp = stamp_msg
            self.publishers[key].publish(msg)
        self.published.append((stamp.nanoseconds, self.frame_indices[slot], time.perf_counter() - t0))

    def run(self, linger_s=0.5):
        """Publish ``n_publish`` frames at the rate, then spin ``linger_s`` more (reliable resends)."""
        from rclpy.executors import SingleThreadedExecutor
        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(self.node)
        self._publish_next()
        self._timer = self.node.create_timer(self.period, self._publish_next)
        self.start_wall = time.time()
        try:
            while len(self.published) < self.n_publish:
                executor.spin_once(timeout_sec=0.05)
            self.end_wall = time.time()
            self._timer.cancel()
            end = time.monotonic() + linger_s
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
        finally:
            executor.remove_node(self.node)
            executor.shutdown()

    def summary(self):
        stamps = [s for s, _, _ in self.published]
        span = (stamps[-1] - stamps[0]) / 1e9 if len(stamps) > 1 else 0.0
        publish_ms = np.array([d for _, _, d in self.published]) * 1e3 if self.published else np.zeros(1)
        return {
            'published': len(self.published),
            'rate_set_hz': 1.0 / self.period,
            'rate_actual_hz': (len(stamps) - 1) / span if span > 0 else 0.0,
            'publish_ms_p50': float(np.percentile(publish_ms, 50)),
            'publish_ms_max': float(publish_ms.max()),
            'topics': [self.publishers[k].topic_name for k in self.order],
            'frames': [[int(s), int(i)] for s, i, _ in self.published],
        }

    def close(self):
        self._ros.close()


def _size(text):
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError('size must be WIDTHxHEIGHT, e.g. 640x480, got %r' % text)
    if width < 8 or height < 8:
        raise argparse.ArgumentTypeError('size must be at least 8x8, got %r' % text)
    return width, height


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog='python -m ros2_depth_interp.tools.replay', description=__doc__.splitlines()[0])
    src = p.add_argument_group('frames')
    src.add_argument('--size', type=_size, default=(640, 480), help='WIDTHxHEIGHT (default 640x480)')
    src.add_argument('--seed', type=int, default=0, help='synthetic sequence seed')
    src.add_argument('--sequence-frames', type=int, default=20,
                     help='distinct frames prepared (looped when more are published)')
    src.add_argument('--data', default=None, help='folder of TUM-style RGB-D frames instead of synthetic')
    src.add_argument('--intrinsics', default=None, help='fx,fy,cx,cy of the --data frames at their file size')
    src.add_argument('--frames-file', default=None, help='.npz written by save_frames (overrides the above)')
    src.add_argument('--density', type=float, default=DEFAULT_DENSITY, help='semi-dense fraction of pixels')
    src.add_argument('--mask-mode', default='gradient', choices=_masks.MASK_MODES)
    pub = p.add_argument_group('publishing')
    pub.add_argument('--rate', type=float, default=10.0, help='frames per second')
    pub.add_argument('--frames', type=int, default=50, help='frames to publish')
    pub.add_argument('--duration', type=float, default=None, help='seconds to publish (overrides --frames)')
    pub.add_argument('--namespace', default='', help='namespace of the input topics')
    pub.add_argument('--no-mask', action='store_true', help='publish no mask (node with use_mask false)')
    pub.add_argument('--reliable', action='store_true', help='RELIABLE inputs (default best effort, like a camera)')
    pub.add_argument('--depth-encoding', default='32FC1', choices=('32FC1', '16UC1'))
    pub.add_argument('--image-encoding', default='mono8', choices=('mono8', 'rgb8'))
    pub.add_argument('--frame-id', default='camera')
    pub.add_argument('--wait-timeout', type=float, default=120.0, help='seconds to wait for the node')
    pub.add_argument('--linger', type=float, default=0.5, help='seconds to keep spinning after the last frame')
    p.add_argument('--summary', default=None, help='write a JSON summary here')
    args = p.parse_args(argv)
    if args.rate <= 0:
        p.error('--rate must be > 0')
    if args.duration is not None and args.duration <= 0:
        p.error('--duration must be > 0')
    if args.frames < 1 or args.sequence_frames < 1:
        p.error('--frames and --sequence-frames must be >= 1')
    if not 0.0 < args.density <= 1.0:
        p.error('--density must be in (0, 1]')
    return args


def prepare_from_args(args):
    """(frames, meta) as the options ask; frames are rendered here, before anything is timed."""
    if args.frames_file:
        return load_frames(args.frames_file)
    width, height = args.size
    if args.data:
        intrinsics = tuple(float(v) for v in args.intrinsics.split(',')) if args.intrinsics else None
        frames = folder_frames(args.data, args.sequence_frames, height, width, args.density,
                               args.mask_mode, intrinsics, args.seed)
        return frames, {'source': 'folder', 'data': os.path.abspath(args.data)}
    frames = synthetic_frames(args.sequence_frames, height, width, args.seed, args.density, args.mask_mode)
    return frames, {'source': 'synthetic', 'seed': args.seed}


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    frames, meta = prepare_from_args(args)
    prepare_s = time.perf_counter() - t0
    n_publish = int(round(args.duration * args.rate)) if args.duration else args.frames
    replayer = Replayer(frames, args.rate, max(1, n_publish), args.namespace, not args.no_mask,
                        args.reliable, args.depth_encoding, args.image_encoding, args.frame_id)
    try:
        height, width = frames[0]['sparse'].shape
        print('replay: %d frames %dx%d prepared in %.1f s; waiting for the node on %s'
              % (len(frames), width, height, prepare_s, ', '.join(replayer.summary()['topics'])), flush=True)
        if not replayer.wait_for_subscribers(args.wait_timeout):
            print('replay: no subscriber on %s after %.0f s (is the node running in this ROS_DOMAIN_ID?)'
                  % (', '.join(replayer.missing_subscribers()), args.wait_timeout), file=sys.stderr)
            return EXIT_NO_SUBSCRIBER
        replayer.run(args.linger)
        summary = replayer.summary()
        summary.update(meta=meta, width=int(width), height=int(height), prepare_s=prepare_s,
                       start_wall=replayer.start_wall, end_wall=replayer.end_wall,
                       depth_encoding=args.depth_encoding, image_encoding=args.image_encoding)
        print('replay: published %d frames at %.2f Hz (set %.2f Hz)'
              % (summary['published'], summary['rate_actual_hz'], args.rate), flush=True)
        if args.summary:
            os.makedirs(os.path.dirname(os.path.abspath(args.summary)), exist_ok=True)
            with open(args.summary, 'w') as f:
                json.dump(summary, f)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        replayer.close()


if __name__ == '__main__':
    sys.exit(main())
