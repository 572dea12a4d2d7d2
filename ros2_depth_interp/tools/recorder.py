"""Recorder: subscribes to the node's outputs and measures end-to-end latency, counts and diagnostics.

``python -m ros2_depth_interp.tools.recorder [options]`` is the third process of the demo and the benchmark
(replay -> node -> recorder). For every ``dense_depth``, ``dense_confidence`` and ``points`` message it
stores ``arrival - header stamp``: the replay stamps each frame with the time it publishes it, and
the node copies the depth header to its outputs, so this is the whole path from the SLAM output
to a consumer holding the result (publish, DDS, synchronizer, queueing, processing, publish, DDS,
deserialization). The callback only reads the clock and the stamp, so recording costs nothing
noticeable beyond rclpy's own deserialization, which any real consumer pays too.

It also keeps the node's /diagnostics (the last status and a time series), and optionally the
first ``--save-max`` dense depth and confidence images (one ``outputs.npz``) and the last cloud as
a PLY. ``--ready-file`` is created once every output topic has a publisher (the node is up).

When to stop: the benchmark and the demo create ``--stop-file`` once the replay has published its
last frame; the recorder then waits until the node has *drained* (a diagnostics message, sent after
the stop file appeared, in which every input set the node formed is accounted for as an output or
a counted drop, see ``node_drained``) and no output has come for ``--idle-exit`` seconds. So a slow
node (seconds per frame) is never cut short and an idle one is not waited for. It also stops after
``--expect`` depth images, after ``--timeout`` seconds, or on Ctrl-C / SIGTERM; then it writes a
JSON summary.
"""
import argparse
import json
import os
import signal
import sys
import threading
import time

import numpy as np

OUTPUTS = ('dense_depth', 'dense_confidence', 'points')


def latency_summary(values_ms):
    """dict(n, mean, p50, p90, p99, max) of latencies in ms; NaNs when empty."""
    a = np.asarray(values_ms, dtype=np.float64)
    if a.size == 0:
        return {'n': 0, 'mean': float('nan'), 'p50': float('nan'), 'p90': float('nan'),
                'p99': float('nan'), 'max': float('nan')}
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {'n': int(a.size), 'mean': float(a.mean()), 'p50': float(p50), 'p90': float(p90),
            'p99': float(p99), 'max': float(a.max())}


def node_drained(values):
    """True when the node's counters account for every input set it formed.

    Each set the synchronizer emits (``count_input_set``) ends as an output (``count_output``) or a
    counted drop (``dropped_<reason>``: superseded in the mailbox, a frame error, ...). Drops whose
    key starts with ``dropped_sync_`` count single messages that never formed a set, so they are
    left out. Equality (or more) means nothing is waiting in the mailbox or being processed.
    """
    try:   # no count_input_set yet: no set formed, nothing to wait for
        formed = int(values.get('count_input_set', 0))
        done = int(values.get('count_output', 0))
    except ValueError:
        return False
    for key, value in values.items():
        if key.startswith('dropped_') and key != 'dropped_total' and not key.startswith('dropped_sync_'):
            try:
                done += int(value)
            except ValueError:
                pass
    return done >= formed


def _stamp_ns(header):
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class Recorder:
    """Subscriptions and the recorded numbers; owns an rclpy node in its own context."""

    def __init__(self, namespace='', reliable=False, node_name='depth_interp', save_max=0,
                 keep_cloud=False):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image, PointCloud2
        from ..ros.private_node import PrivateNode
        self._ros = PrivateNode('depth_interp_recorder', namespace, reliable)
        self.context, self.node, qos = self._ros.context, self._ros.node, self._ros.qos
        self.node_name = node_name
        self.save_max = int(save_max)
        self.keep_cloud = bool(keep_cloud)
        self._lock = threading.Lock()
        self.arrivals = {topic: [] for topic in OUTPUTS}    # (stamp_ns, arrival_ns)
        self.saved = {'dense_depth': {}, 'dense_confidence': {}}   # stamp -> msg (decoded at the end)
        self.last_cloud = None
        self.diagnostics = []                                # (arrival_ns, {key: value})
        self.first_arrival = None
        self.last_arrival = None
        self.subscriptions = {}
        for topic, msg_type in (('dense_depth', Image), ('dense_confidence', Image), ('points', PointCloud2)):
            self.subscriptions[topic] = self.node.create_subscription(
                msg_type, topic, self._make_callback(topic), qos)
        self.subscriptions['/diagnostics'] = self.node.create_subscription(
            DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)

    def _make_callback(self, topic):
        series = self.arrivals[topic]
        saved = self.saved.get(topic)

        def callback(msg):
            arrival = time.time_ns()
            stamp = _stamp_ns(msg.header)
            with self._lock:
                series.append((stamp, arrival))
                if saved is not None and len(saved) < self.save_max:
                    saved[stamp] = msg
                if topic == 'points' and self.keep_cloud:
                    self.last_cloud = msg
                if topic == 'dense_depth':
                    if self.first_arrival is None:
                        self.first_arrival = arrival
                    self.last_arrival = arrival
        return callback

    def _on_diagnostics(self, msg):
        arrival = time.time_ns()
        for status in msg.status:
            if self.node_name in status.name:
                with self._lock:
                    self.diagnostics.append((arrival, {kv.key: kv.value for kv in status.values}))

    # --- state for the stop conditions --------------------------------------------------------------
    def publishers_ready(self):
        return all(self.subscriptions[t].get_publisher_count() >= 1 for t in OUTPUTS)

    def count(self, topic='dense_depth'):
        with self._lock:
            return len(self.arrivals[topic])

    def idle_for(self, now_ns):
        """Seconds since the last dense depth, None before the first one."""
        with self._lock:
            return None if self.last_arrival is None else (now_ns - self.last_arrival) / 1e9

    def diagnostics_after(self, ns):
        with self._lock:
            return any(t > ns for t, _ in self.diagnostics)

    def drained_after(self, ns):
        """The newest diagnostics arrived after ``ns`` (time.time_ns) and shows a drained node."""
        with self._lock:
            if not self.diagnostics or self.diagnostics[-1][0] <= ns:
                return False
            return node_drained(self.diagnostics[-1][1])

    # --- results ----------------------------------------------------------------------------------
    def summary(self, warmup_s=0.0):
        """Counts, rates and latency per output; latency stats skip outputs whose frame was
        stamped less than ``warmup_s`` after the first output's stamp (the first frames at a new
        size pay for allocations)."""
        with self._lock:
            arrivals = {t: list(v) for t, v in self.arrivals.items()}
            diagnostics = list(self.diagnostics)
        out = {'outputs': {}, 'diagnostics_last': diagnostics[-1][1] if diagnostics else None,
               'diagnostics_series': [[t, values] for t, values in diagnostics]}
        first_stamp = min((v[0][0] for v in arrivals.values() if v), default=None)
        for topic, series in arrivals.items():
            stamps = np.array([s for s, _ in series], dtype=np.int64)
            arrival = np.array([a for _, a in series], dtype=np.int64)
            latency_ms = (arrival - stamps) / 1e6
            steady = stamps >= (first_stamp or 0) + int(warmup_s * 1e9)
            span = (arrival[-1] - arrival[0]) / 1e9 if arrival.size > 1 else 0.0
            out['outputs'][topic] = {
                'count': int(stamps.size),
                'unique_stamps': int(np.unique(stamps).size),
                'rate_hz': (arrival.size - 1) / span if span > 0 else 0.0,
                'latency_ms': latency_summary(latency_ms[steady]),
                'latency_ms_all': latency_summary(latency_ms),
                'series': [[int(s), round(float(l), 3)] for s, l in zip(stamps, latency_ms)],
            }
        return out

    def write_outputs(self, save_dir):
        """outputs.npz with the saved dense depth / confidence images (same stamps only)."""
        from ..core.encodings import msg_to_array
        with self._lock:
            depth, confidence = dict(self.saved['dense_depth']), dict(self.saved['dense_confidence'])
        stamps = sorted(set(depth) & set(confidence))
        if not stamps:
            return None
        os.makedirs(save_dir, exist_ok=True)
        path = os.path.join(save_dir, 'outputs.npz')
        np.savez_compressed(path, stamps=np.array(stamps, dtype=np.int64),
                            dense_depth=np.stack([np.array(msg_to_array(depth[s])) for s in stamps]),
                            confidence=np.stack([np.array(msg_to_array(confidence[s])) for s in stamps]))
        return path

    def write_ply(self, path):
        """The last received cloud as binary PLY; returns (points written, stamp) or None."""
        from ..core.geometry import cloud_to_ply
        from ..ros.ros_msgs import cloud_msg_to_array
        with self._lock:
            msg = self.last_cloud
        if msg is None:
            return None
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return cloud_to_ply(path, cloud_msg_to_array(msg)), _stamp_ns(msg.header)

    def close(self):
        self._ros.close()


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog='python -m ros2_depth_interp.tools.recorder', description=__doc__.splitlines()[0])
    p.add_argument('--namespace', default='', help='namespace of the node outputs')
    p.add_argument('--reliable', action='store_true',
                   help='subscribe RELIABLE (matches reliable_outputs:=true; a best-effort subscriber '
                        'would only get best-effort delivery)')
    p.add_argument('--node-name', default='depth_interp', help='diagnostics status names to keep (substring)')
    p.add_argument('--expect', type=int, default=0, help='stop after this many dense_depth images')
    p.add_argument('--stop-file', default=None,
                   help='once this file exists, stop when the node has drained (see the module docstring)')
    p.add_argument('--idle-exit', type=float, default=None,
                   help='with --stop-file: also wait this many seconds without output (default 0.5); '
                        'without: stop this many seconds after the last output (default: never)')
    p.add_argument('--drain-timeout', type=float, default=60.0,
                   help='stop this many seconds after the stop file even if the node has not drained')
    p.add_argument('--timeout', type=float, default=600.0, help='stop after this many seconds in any case')
    p.add_argument('--warmup', type=float, default=0.0, help='seconds of outputs left out of the latency stats')
    p.add_argument('--save-dir', default=None, help='write outputs.npz (dense depth + confidence) here')
    p.add_argument('--save-max', type=int, default=0, help='images of each kind kept for --save-dir')
    p.add_argument('--ply', default=None, help='write the last received cloud here (PLY)')
    p.add_argument('--ready-file', default=None, help='create this file once the node\'s outputs are matched')
    p.add_argument('--summary', default=None, help='write the JSON summary here')
    args = p.parse_args(argv)
    if args.idle_exit is None:
        args.idle_exit = 0.5 if args.stop_file else 0.0
    return args


def main(argv=None):
    args = parse_args(argv)
    recorder = Recorder(args.namespace, args.reliable, args.node_name,
                        save_max=args.save_max if args.save_dir else 0, keep_cloud=bool(args.ply))
    from rclpy.executors import SingleThreadedExecutor
    executor = SingleThreadedExecutor(context=recorder.context)
    executor.add_node(recorder.node)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    ready_written = False
    stop_seen = None
    reason = 'timeout'
    try:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
            if not ready_written and recorder.publishers_ready():
                ready_written = True
                if args.ready_file:
                    with open(args.ready_file, 'w') as f:
                        f.write('%d\n' % os.getpid())
            if args.expect and recorder.count() >= args.expect:
                reason = 'expected count'
                break
            now = time.time_ns()
            idle = recorder.idle_for(now)
            if args.stop_file:
                if stop_seen is None and os.path.exists(args.stop_file):
                    stop_seen = now
                if stop_seen is not None:
                    quiet = idle is None or idle >= args.idle_exit
                    if quiet and recorder.drained_after(stop_seen):
                        reason = 'drained'
                        break
                    if (now - stop_seen) / 1e9 > args.drain_timeout:
                        reason = 'drain timeout'
                        break
            elif args.idle_exit > 0 and idle is not None and idle >= args.idle_exit \
                    and recorder.diagnostics_after(recorder.last_arrival):
                reason = 'idle'
                break
            if time.monotonic() - started > args.timeout:
                break
        else:
            reason = 'SIGTERM'
    except KeyboardInterrupt:
        reason = 'SIGINT'
    except Exception as exc:  # e.g. the context shut down by rclpy's own SIGINT handler
        reason = '%s' % type(exc).__name__
    finally:
        executor.remove_node(recorder.node)
        executor.shutdown()
    summary = recorder.summary(args.warmup)
    summary['stopped_by'] = reason
    summary['ready'] = ready_written
    if args.save_dir:
        path = recorder.write_outputs(args.save_dir)
        summary['outputs_file'] = path
    if args.ply:
        written = recorder.write_ply(args.ply)
        summary['ply'] = {'path': args.ply, 'points': written[0], 'stamp_ns': written[1]} if written else None
    recorder.close()
    counts = {t: summary['outputs'][t]['count'] for t in OUTPUTS}
    lat = summary['outputs']['dense_depth']['latency_ms']
    print('recorder: %s; dense_depth p50 %.1f ms p99 %.1f ms (stopped by %s)'
          % (', '.join('%s %d' % kv for kv in counts.items()), lat['p50'], lat['p99'], reason), flush=True)
    if args.summary:
        os.makedirs(os.path.dirname(os.path.abspath(args.summary)), exist_ok=True)
        with open(args.summary, 'w') as f:
            json.dump(summary, f)
    return 0


if __name__ == '__main__':
    sys.exit(main())
