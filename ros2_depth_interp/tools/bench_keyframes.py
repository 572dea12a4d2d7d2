"""``depth_interp bench-keyframes``: end-to-end latency of one LSD-SLAM keyframe through the node.

The node runs in its own process (``depth_interp_node`` with ``keyframe_topic``, the shipped model
unless ``--model``), isolated on loopback DDS in a domain of its own. This process publishes
``lsd_slam_msgs/Keyframe`` messages (default 640x480), synthesized from rendered scenes with the
LSD-SLAM layout, one at a time, and measures from ``publish`` to the arrival of the keyframe's
``/lsd_slam/points`` (the last output the node sends per keyframe besides the pose): decoding,
the viewer's filter, inference, the cloud, serialization and DDS both ways. The next keyframe
goes out only after the previous one's cloud arrived, so the numbers are latency, not throughput
(LSD-SLAM makes a few keyframes per second). The node's own stage timings come from /diagnostics.

Writes ``<out>.json`` and ``<out>.md`` (default docs/results/keyframe_latency) with the machine and
its load average, since the CPU may be shared.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from ..core.lsd_slam import Sim3, keyframe_fields, seconds_to_stamp
from ..ros.ros_env import isolate_this_process

DEFAULT_OUT = os.path.join('docs', 'results', 'keyframe_latency')
TOPIC = '/lsd_slam/keyframes'


def synthetic_keyframes(count, height, width, seed=0):
    """``count`` keyframe field dicts (lsd_slam_msgs names) from rendered frames of one scene: 8x8
    blocks of pixels in a checkerboard carry inverse depth at keyframe scale 1/4 of the world's."""
    from scipy.spatial.transform import Rotation
    from ..learning.synthetic import SyntheticSequence
    sequence = SyntheticSequence(seed=seed, height=height, width=width, n_frames=max(count * 5, 10))
    v, u = np.mgrid[0:height, 0:width]
    known = (u // 8 + v // 8) % 2 == 0
    out = []
    for index in range(count):
        frame, pose = sequence[index * 5], sequence.pose(index * 5)
        idepth = np.where(known, 4.0 / frame['depth'], -1.0).astype(np.float32)
        variance = np.where(known, 1e-3 * idepth ** 2, -1.0).astype(np.float32)
        sim3 = Sim3.from_scale_rotation_translation(4.0, Rotation.from_matrix(pose.rotation).as_quat(),
                                                    pose.position)
        K = frame['K']
        fields = keyframe_fields(idepth, variance, frame['intensity'], K[0, 0], K[1, 1], K[0, 2], K[1, 2],
                                 cam_to_world=sim3, id=index)
        fields['is_keyframe'] = fields.pop('isKeyframe')
        fields['cam_to_world'] = fields.pop('camToWorld')
        out.append(fields)
    return out


def keyframe_message(fields, kf_id, seconds):
    from ..ros.ros_msgs import make_keyframe
    return make_keyframe(dict(fields, id=kf_id, time=seconds, is_keyframe=True))


class _Client:
    """Publisher of keyframes and subscriber of the node's cloud and diagnostics."""

    def __init__(self):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from lsd_slam_msgs.msg import Keyframe
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import PointCloud2
        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('bench_keyframes', context=self.context)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.node.create_publisher(Keyframe, TOPIC, qos)
        self.arrived = {}
        self.diagnostics = None
        self._condition = threading.Condition()
        self.cloud_sub = self.node.create_subscription(PointCloud2, '/lsd_slam/points', self._on_cloud, qos)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        try:
            self.executor.spin()
        except Exception:
            pass

    def _on_cloud(self, msg):
        with self._condition:
            self.arrived[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = time.perf_counter()
            self._condition.notify_all()

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.name.startswith('depth_interp'):
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def wait_matched(self, process, timeout):
        deadline = time.monotonic() + timeout
        while not (self.publisher.get_subscription_count() and self.cloud_sub.get_publisher_count()):
            if process.poll() is not None:
                raise RuntimeError('the node exited (rc %s) before matching' % process.returncode)
            if time.monotonic() > deadline:
                raise RuntimeError('the node did not match within %.0f s' % timeout)
            time.sleep(0.02)

    def send_and_wait(self, msg, timeout):
        stamp = seconds_to_stamp(msg.time)
        t0 = time.perf_counter()
        self.publisher.publish(msg)
        with self._condition:
            if not self._condition.wait_for(lambda: stamp in self.arrived, timeout):
                raise RuntimeError('no cloud for keyframe %d within %.0f s' % (msg.id, timeout))
            return self.arrived[stamp] - t0

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.shutdown(context=self.context)


def inference_alone_ms(model, provider, height, width, repeats=5):
    """p50 of the network alone in this process (the same model and size): the yardstick for how
    busy the machine was, measured right after the node stopped."""
    from ..core.inference import DepthInterpolator
    from ..core.resources import default_model_path
    interpolator = DepthInterpolator(model or default_model_path(), providers=[provider])
    rng = np.random.default_rng(0)
    depth = rng.uniform(1.0, 3.0, (height, width)).astype(np.float32)
    known = rng.random((height, width)) < 0.15
    intensity = np.zeros((height, width), np.uint8)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        interpolator.run(depth, known, intensity)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def run(args):
    from .bench_device import machine_info
    isolate_this_process()
    fields = synthetic_keyframes(3, args.height, args.width)
    ros_args = ['--ros-args', '-r', '__node:=depth_interp', '-p', 'keyframe_topic:=' + TOPIC,
                '-p', 'diagnostics_period:=0.5',
                '-p', 'providers:=[%s]' % args.provider]
    if args.model:
        ros_args += ['-p', 'model_path:=' + os.path.abspath(args.model)]
    log = tempfile.NamedTemporaryFile(prefix='bench_keyframes_node_', suffix='.log', delete=False)
    node_cmd = [os.path.join(os.path.dirname(sys.executable), 'depth_interp_node')]
    if not os.path.isfile(node_cmd[0]):
        node_cmd = [sys.executable, '-m', 'ros2_depth_interp.ros.node']
    process = subprocess.Popen(node_cmd + ros_args, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    client = _Client()
    latencies = []
    try:
        client.wait_matched(process, 120)
        for index in range(args.warmup + args.count):
            msg = keyframe_message(fields[index % len(fields)], index, 1000.0 + index)
            latency = client.send_and_wait(msg, 120)
            if index >= args.warmup:
                latencies.append(latency)
        time.sleep(1.0)   # one more diagnostics message with every keyframe in its stage timings
        diagnostics = dict(client.diagnostics or {})
    finally:
        client.close()
        process.send_signal(2)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    alone = inference_alone_ms(args.model, args.provider, args.height, args.width)
    ms = np.array(latencies) * 1e3
    stages = {key[len('latency_keyframe_'):]: float(value) for key, value in diagnostics.items()
              if key.startswith('latency_keyframe_') and key.endswith('_ms_p50')}
    return {
        'machine': machine_info(include_torch=False),
        'cpu_shared': args.shared_note,
        'keyframe': '%dx%d' % (args.width, args.height),
        'model': args.model or 'shipped (models/depth_interp.onnx)',
        'provider': args.provider,
        'keyframes_measured': len(latencies),
        'end_to_end_ms': {'mean': float(ms.mean()), 'p50': float(np.percentile(ms, 50)),
                          'p90': float(np.percentile(ms, 90)), 'max': float(ms.max())},
        'node_stage_p50_ms': stages,
        'inference_alone_p50_ms': alone,
        'target_ms': 500.0,
    }


def write_report(report, out):
    os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
    with open(out + '.json', 'w') as f:
        json.dump(report, f, indent=2)
    e2e, machine = report['end_to_end_ms'], report['machine']
    with open(out + '.md', 'w') as f:
        f.write('# LSD-SLAM keyframe latency (depth_interp bench-keyframes)\n\n')
        f.write('%s keyframe -> /lsd_slam/points over loopback DDS, node in its own process, model %s, %s; '
                '%d keyframes, one at a time.\n\n' % (report['keyframe'], report['model'], report['provider'],
                                                       report['keyframes_measured']))
        f.write('machine: %s, %s CPUs, load average at the end %s. %s\n\n' % (
            machine.get('cpu', '?'), machine.get('cpus'),
            ', '.join('%.1f' % v for v in machine.get('load_average', ())), report['cpu_shared']))
        f.write('| end to end | mean | p50 | p90 | max | target |\n|---|---|---|---|---|---|\n')
        f.write('| ms | %.1f | %.1f | %.1f | %.1f | %.0f |\n\n' % (e2e['mean'], e2e['p50'], e2e['p90'], e2e['max'],
                                                                report['target_ms']))
        f.write('The network alone in-process on a %s input right afterwards: p50 %.1f ms (how busy the '
                'CPU was).\n\n' % (report['keyframe'], report['inference_alone_p50_ms']))
        if report['node_stage_p50_ms']:
            f.write('Node stages, p50 ms (from /diagnostics): %s\n' % ', '.join(
                '%s %.1f' % item for item in sorted(report['node_stage_p50_ms'].items())))


def build_parser():
    p = argparse.ArgumentParser(prog='depth_interp bench-keyframes', description=__doc__.split('\n\n')[0])
    p.add_argument('--width', type=int, default=640)
    p.add_argument('--height', type=int, default=480)
    p.add_argument('--count', type=int, default=20, help='keyframes measured (default %(default)s)')
    p.add_argument('--warmup', type=int, default=3, help='keyframes sent first, not measured')
    p.add_argument('--model', help='model file (default: the shipped one)')
    p.add_argument('--provider', default='CPUExecutionProvider')
    p.add_argument('--out', default=DEFAULT_OUT, help='output path without extension (default %(default)s)')
    p.add_argument('--shared-note', default='',
                   help='a sentence on what else ran on the machine (goes into the report)')
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        report = run(args)
    except (RuntimeError, ImportError) as exc:
        print('depth_interp bench-keyframes: %s' % exc, file=sys.stderr)
        return 1
    write_report(report, args.out)
    e2e = report['end_to_end_ms']
    print('keyframe %s end to end: mean %.1f ms, p50 %.1f, p90 %.1f, max %.1f (target 500); wrote %s.{json,md}'
          % (report['keyframe'], e2e['mean'], e2e['p50'], e2e['p90'], e2e['max'], args.out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
