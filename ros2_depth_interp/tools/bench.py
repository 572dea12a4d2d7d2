"""``depth_interp bench``: latency and throughput of the real node, end to end over real DDS.

For each configuration three processes run in their own DDS domain on loopback
(``ros_env.isolated_dds_env``): the node (``depth_interp_node``, the executable users run), the replay
publisher (``replay.py``: semi-dense depth, image, mask, camera_info at a set rate, stamp = now) and
the recorder (``recorder.py``: arrival - stamp of every output, the node's /diagnostics). Meanwhile
this process samples the node's CPU time and memory with psutil.

Configurations: each size (640x480 and 1280x960 by default) is run as a base configuration (the
shipped Fast DDS profile, best-effort outputs, cloud published) and, one factor at a time, without
the profile, with reliable outputs and without the cloud (``--matrix oat``, the default; ``full``
runs every combination, ``base`` only the base). A ``paced`` run per size replays at a rate the node
can keep up with (0.7 / its measured per-frame time), so the overhead is measured without frames
waiting behind the previous one (at 10 Hz a 2-core CPU cannot keep up and the newest set waits
for the worker: that is queueing, not overhead, and it shows up in the 10 Hz rows).

Per configuration: sustained output rate, frames dropped by reason (the node's counters) and lost in
transport (published vs received), end-to-end latency p50/p90/p99 of dense_depth and points, the
node's per-stage times (convert, normalize, infer, cloud, publish, total), overhead = e2e latency -
inference (p50), node CPU % (mean over the replay, 100 % = one core) and peak RSS, latency trend
(ms per minute) and, for ``--soak``, memory growth after warm-up. Writes ``bench.json``,
``bench.md``, ``latency.png`` and ``rss.png`` under ``--out`` (``soak.*`` for ``--soak``).
``--no-ros`` times the ROS-free path only (``bench_device``); ``--model-only`` times the model side by
side with other models and the classical baselines, with its graph and operator profile (``bench_model``).
"""
import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from .bench_device import machine_info
from .recorder import latency_summary
from ..core.resources import default_model_path
from ..ros.ros_env import isolated_dds_env

STAGES = ('queue', 'convert', 'normalize', 'infer', 'cloud', 'publish', 'total')
# Targets of the real-time issue (this 2-core CPU, default model, CPU execution provider).
OVERHEAD_TARGET_MS = {(640, 480): 15.0, (1280, 960): 40.0}
P99_OVER_P50_MAX = 2.0
RSS_GROWTH_MAX_PCT = 5.0
NODE_START_TIMEOUT_S = 180.0
DRAIN_TIMEOUT_S = 60.0   # the recorder's default --drain-timeout
PACED_MIN_FRAMES = 12


@dataclass(frozen=True)
class BenchConfig:
    """One run: node parameters and replay settings."""
    name: str
    width: int
    height: int
    rate: float
    duration: float
    shm_profile: bool = True
    reliable: bool = False
    cloud: bool = True
    paced: bool = False

    @property
    def size(self):
        return '%dx%d' % (self.width, self.height)

    def describe(self):
        return '%s %s @%.3g Hz, %s profile, %s, %s' % (
            self.size, self.name, self.rate, 'SHM 64 MB' if self.shm_profile else 'default',
            'reliable' if self.reliable else 'best-effort', 'cloud' if self.cloud else 'no cloud')


def config_matrix(sizes, matrix='oat', rate=10.0, duration=10.0):
    """The configurations to run, in order (paced runs are added after their size's base run)."""
    configs = []
    for width, height in sizes:
        base = BenchConfig('base', width, height, rate, duration)
        if matrix == 'base':
            configs.append(base)
        elif matrix == 'oat':
            configs += [base, replace(base, name='no_profile', shm_profile=False),
                        replace(base, name='reliable', reliable=True),
                        replace(base, name='no_cloud', cloud=False)]
        elif matrix == 'full':
            for shm in (True, False):
                for reliable in (False, True):
                    for cloud in (True, False):
                        name = '%s_%s_%s' % ('shm' if shm else 'noprofile', 'rel' if reliable else 'be',
                                             'cloud' if cloud else 'nocloud')
                        configs.append(replace(base, name=name, shm_profile=shm, reliable=reliable, cloud=cloud))
        else:
            raise ValueError('matrix must be oat, full or base, got %r' % matrix)
    return configs


# --- model and frames ------------------------------------------------------------------------------

def resolve_model(path, out_dir):
    """(model path, note). Without a shipped model, an untrained network of the default
    architecture is exported for timing (same layers, same cost; its outputs mean nothing)."""
    if path:
        if not os.path.isfile(path):
            raise SystemExit('depth_interp bench: model %s not found' % path)
        return os.path.abspath(path), 'given'
    shipped = default_model_path()
    if os.path.isfile(shipped):
        return shipped, 'shipped'
    fallback = os.path.join(out_dir, 'untrained_default', 'depth_interp.onnx')
    if not os.path.isfile(fallback):
        import torch
        from ..learning.export import export_onnx, save_torch_weights
        from ..learning.model import build_model
        torch.manual_seed(0)
        model = build_model('default').eval()
        os.makedirs(os.path.dirname(fallback), exist_ok=True)
        note = {'note': 'untrained default architecture, for timing only'}
        export_onnx(model, fallback, training=note)
        save_torch_weights(model, os.path.splitext(fallback)[0] + '.pt', note)
    print('bench: no shipped model at %s; timing an untrained network of the default architecture '
          '(same layers and cost)' % shipped, flush=True)
    return fallback, 'untrained default architecture (timing only)'


def frames_file(out_dir, width, height, n_frames, seed=0, density=0.1, data=None):
    """Prepared replay frames for one size, rendered once and reused by every configuration."""
    from . import replay
    tag = 'data' if data else 'synthetic_s%d' % seed
    path = os.path.join(out_dir, 'frames', '%s_%dx%d_n%d_d%g.npz' % (tag, width, height, n_frames, density))
    if not os.path.isfile(path):
        t0 = time.perf_counter()
        if data:
            frames = replay.folder_frames(data, n_frames, height, width, density)
        else:
            frames = replay.synthetic_frames(n_frames, height, width, seed, density)
        replay.save_frames(path, frames, {'source': 'folder' if data else 'synthetic', 'seed': seed},
                           with_ground_truth=False)
        print('bench: prepared %d frames at %dx%d in %.1f s' % (len(frames), width, height,
                                                                 time.perf_counter() - t0), flush=True)
    return path


# --- processes -------------------------------------------------------------------------------------

def node_command():
    """The node executable installed beside this interpreter, else ``python -m``."""
    script = os.path.join(os.path.dirname(sys.executable), 'depth_interp_node')
    if os.path.isfile(script):
        return [script]
    return [sys.executable, '-m', 'ros2_depth_interp.ros.node']


def run_namespace(tag='bench'):
    """A namespace of its own for one run's topics and node.

    Domain ids are claimed per process (``ros_env.claim_domain_id``), so this project's tests and
    benchmarks do not share one, but any other ROS process on this machine may use the same id;
    with every topic and the node's diagnostics name under a namespace of our own, its traffic
    never mixes with ours.
    """
    return '/%s_%d_%s' % (tag, os.getpid(), os.urandom(3).hex())


def diagnostics_name(namespace):
    """The start of the node's DiagnosticStatus name in that namespace (see node.py)."""
    return '%s/depth_interp:' % namespace.strip('/')


def node_arguments(config, model, diagnostics_period=0.5, extra_params=(), namespace=None):
    params = ['model_path:=' + model, 'providers:=[CPUExecutionProvider]',
              'reliable_outputs:=%s' % str(config.reliable).lower(),
              'publish_cloud:=%s' % str(config.cloud).lower(),
              'diagnostics_period:=%g' % diagnostics_period]
    params += list(extra_params)
    args = ['--ros-args']
    if namespace:
        args += ['-r', '__ns:=' + namespace]
    for p in params:
        args += ['-p', p]
    return args


def wait_until_recording(ready_file, node, recorder, timeout=NODE_START_TIMEOUT_S):
    """Wait for the recorder's ready file (its subscriptions matched the node's outputs)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(ready_file):
        if node.poll() is not None:
            raise RuntimeError('node exited (rc %s) before its outputs matched:\n%s' % (node.poll(), node.tail()))
        if recorder.poll() is not None:
            raise RuntimeError('recorder exited early:\n%s' % recorder.tail())
        if time.monotonic() > deadline:
            raise RuntimeError('node outputs not matched after %.0f s:\n%s' % (timeout, node.tail()))
        time.sleep(0.05)


class _Process:
    """A child process with its output in a log file; stopped by its own pid only."""

    def __init__(self, command, env, log_path, cwd=None):
        self.command = command
        self.log_path = log_path
        self._log = open(log_path, 'wb')
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        self.pid = self.proc.pid

    def poll(self):
        return self.proc.poll()

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGINT, timeout=20.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            if self.wait(timeout) is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode

    def tail(self, n=3000):
        try:
            with open(self.log_path, 'r', errors='replace') as f:
                return f.read()[-n:]
        except OSError:
            return ''


class ResourceSampler(threading.Thread):
    """Samples a process' CPU time and RSS every ``period`` seconds (psutil)."""

    def __init__(self, pid, period=0.5):
        super().__init__(daemon=True)
        import psutil
        self.process = psutil.Process(pid)
        self.period = period
        self.samples = []      # (time.time(), cpu seconds user+system, rss bytes)
        self._halt = threading.Event()

    def sample(self):
        try:
            times = self.process.cpu_times()
            rss = self.process.memory_info().rss
        except Exception:  # the process is gone
            return None
        row = (time.time(), times.user + times.system, rss)
        self.samples.append(row)
        return row

    def run(self):
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.period)

    def stop(self):
        self._halt.set()
        self.join(timeout=5)

    def peak_rss(self):
        """VmHWM (the kernel's peak RSS) when readable, else the largest sample."""
        try:
            with open('/proc/%d/status' % self.process.pid) as f:
                for line in f:
                    if line.startswith('VmHWM:'):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return max((s[2] for s in self.samples), default=0)

    def cpu_percent_between(self, t0, t1):
        """Mean CPU % (100 = one core) between two wall times, from the nearest samples."""
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(inside) < 2:
            return float('nan')
        (ta, ca, _), (tb, cb, _) = inside[0], inside[-1]
        return 100.0 * (cb - ca) / (tb - ta) if tb > ta else float('nan')


def run_config(config, model, frames_path, work_dir, warmup_s=1.0, extra_params=(), diagnostics_period=0.5,
               profile_file=None):
    """Run one configuration; returns its result row (``error`` set when it could not run).

    ``profile_file`` replaces the shipped Fast DDS profile in the configurations that use one.
    """
    run_dir = os.path.join(work_dir, '%s_%s' % (config.size, config.name))
    os.makedirs(run_dir, exist_ok=True)
    env = isolated_dds_env(log_dir=os.path.join(run_dir, 'roslog'), large_shm=config.shm_profile)
    if config.shm_profile and profile_file:
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = os.path.abspath(profile_file)
    ready_file = os.path.join(run_dir, 'recorder.ready')
    stop_file = os.path.join(run_dir, 'replay.done')
    for stale in (ready_file, stop_file):
        if os.path.exists(stale):
            os.remove(stale)
    row = {'config': asdict(config), 'description': config.describe(), 'domain_id': int(env['ROS_DOMAIN_ID']),
           'fastdds_profile': env.get('FASTDDS_DEFAULT_PROFILES_FILE')}
    print('bench: %s ...' % config.describe(), flush=True)
    node = recorder = player = sampler = None
    try:
        namespace = run_namespace()
        row['namespace'] = namespace
        node = _Process(node_command() + node_arguments(config, model, diagnostics_period, extra_params, namespace),
                        env, os.path.join(run_dir, 'node.log'))
        sampler = ResourceSampler(node.pid)
        sampler.start()
        recorder_cmd = [sys.executable, '-m', 'ros2_depth_interp.tools.recorder', '--ready-file', ready_file,
                        '--stop-file', stop_file, '--warmup', str(warmup_s),
                        '--namespace', namespace, '--node-name', diagnostics_name(namespace),
                        '--timeout', str(config.duration + NODE_START_TIMEOUT_S + 120),
                        '--summary', os.path.join(run_dir, 'recorder.json')]
        if config.reliable:
            recorder_cmd.append('--reliable')
        recorder = _Process(recorder_cmd, env, os.path.join(run_dir, 'recorder.log'))
        wait_until_recording(ready_file, node, recorder)
        player = _Process([sys.executable, '-m', 'ros2_depth_interp.tools.replay', '--frames-file', frames_path,
                           '--namespace', namespace,
                           '--rate', '%g' % config.rate, '--duration', '%g' % config.duration,
                           '--summary', os.path.join(run_dir, 'replay.json')],
                          env, os.path.join(run_dir, 'replay.log'))
        if player.wait(config.duration + NODE_START_TIMEOUT_S) != 0:
            raise RuntimeError('replay failed (rc %s):\n%s' % (player.poll(), player.tail()))
        # the recorder stops once the node has processed or dropped every set it received
        open(stop_file, 'w').close()
        if recorder.wait(DRAIN_TIMEOUT_S + 15.0) is None:
            recorder.stop(signal.SIGTERM, timeout=20.0)
        sampler.sample()
        row['peak_rss_bytes'] = sampler.peak_rss()
    except RuntimeError as exc:
        row['error'] = str(exc)
        print('bench: %s failed: %s' % (config.describe(), str(exc).splitlines()[0]), flush=True)
    finally:
        for proc in (player, recorder, node):   # children first: nothing may outlive the bench
            if proc is not None:
                try:
                    proc.stop()
                except Exception as exc:  # keep stopping the others
                    print('bench: could not stop pid %d: %s' % (proc.pid, exc), file=sys.stderr)
        if sampler is not None:
            sampler.stop()
    if 'error' in row:
        return row
    with open(os.path.join(run_dir, 'replay.json')) as f:
        replay_summary = json.load(f)
    with open(os.path.join(run_dir, 'recorder.json')) as f:
        recorded = json.load(f)
    row.update(analyse(config, replay_summary, recorded, sampler, warmup_s))
    return row


# --- analysis --------------------------------------------------------------------------------------

def _f(values, key, default=float('nan')):
    try:
        return float(values[key])
    except (KeyError, TypeError, ValueError):
        return default


def latency_trend(series, warmup_s):
    """(ms per minute slope, p50 first half, p50 second half) of a [[stamp_ns, ms], ...] series."""
    if len(series) < 4:
        return float('nan'), float('nan'), float('nan')
    a = np.asarray(series, dtype=np.float64)
    t = (a[:, 0] - a[0, 0]) / 1e9
    keep = t >= warmup_s
    t, ms = t[keep], a[keep, 1]
    if t.size < 4 or t[-1] - t[0] <= 0:
        return float('nan'), float('nan'), float('nan')
    slope = np.polyfit(t, ms, 1)[0] * 60.0
    half = t.size // 2
    return float(slope), float(np.median(ms[:half])), float(np.median(ms[half:]))


def rss_growth(samples, t_start, warmup_s):
    """(growth %, spike %) of the node's RSS after warm-up; (None, None) with too few samples.

    growth: median of the last fifth of the samples against the median of the first fifth after
    warm-up (a leak shows here; per-frame allocations that come and go do not). spike: the largest
    sample against that same baseline.
    """
    after = np.array([rss for t, _, rss in samples if t >= t_start + warmup_s], dtype=np.float64)
    if after.size < 5:
        return None, None
    fifth = max(1, after.size // 5)
    base = float(np.median(after[:fifth]))
    return 100.0 * (float(np.median(after[-fifth:])) - base) / base, 100.0 * (float(after.max()) - base) / base


def analyse(config, replay_summary, recorded, sampler, warmup_s):
    diag = recorded.get('diagnostics_last') or {}
    outputs = recorded['outputs']
    published = replay_summary['published']
    node_in = {t: int(_f(diag, 'count_' + t, 0)) for t in ('semi_dense_depth', 'image', 'mask')}
    dropped = {k[len('dropped_'):]: int(v) for k, v in diag.items()
               if k.startswith('dropped_') and k != 'dropped_total' and int(v) > 0}
    node_outputs = int(_f(diag, 'count_output', 0))
    stages = {s: {'p50': _f(diag, 'latency_%s_ms_p50' % s), 'p90': _f(diag, 'latency_%s_ms_p90' % s),
                  'mean': _f(diag, 'latency_%s_ms_mean' % s)} for s in STAGES}
    depth_lat = outputs['dense_depth']['latency_ms']
    points_lat = outputs['points']['latency_ms']
    # the cloud is the last output of a frame: with the cloud on, latency means "points arrived",
    # unless most clouds were lost in transport (then the depth stands in and the report says so)
    points_received = outputs['points']['count']
    use_points = config.cloud and points_received > 0 and 2 * points_received >= outputs['dense_depth']['count']
    e2e = points_lat if use_points else depth_lat
    infer_p50 = stages['infer']['p50']
    slope, first_half, second_half = latency_trend(
        outputs['points' if use_points else 'dense_depth']['series'], warmup_s)
    t0, t1 = replay_summary['start_wall'], replay_summary['end_wall']
    rss_samples = [(t, c, r) for t, c, r in sampler.samples]
    growth, spike = rss_growth(rss_samples, t0, max(warmup_s, 0.2 * (t1 - t0)))
    return {
        'published': published,
        'replay_rate_hz': replay_summary['rate_actual_hz'],
        'node_inputs': node_in,
        'lost_inputs': published - min(node_in['semi_dense_depth'], node_in['image'], node_in['mask']),
        'node_input_sets': int(_f(diag, 'count_input_set', 0)),
        'node_outputs': node_outputs,
        'received': {t: outputs[t]['count'] for t in outputs},
        'lost_outputs': {t: node_outputs - outputs[t]['count'] for t in outputs
                         if t != 'points' or config.cloud},
        'dropped': dropped,
        'output_rate_hz': outputs['dense_depth']['rate_hz'],
        'latency_dense_depth_ms': depth_lat,
        'latency_points_ms': points_lat,
        'stages_ms': stages,
        'latency_basis': 'points' if use_points else 'dense_depth',
        'overhead_p50_ms': e2e['p50'] - infer_p50,
        'overhead_depth_p50_ms': depth_lat['p50'] - infer_p50,
        'overhead_points_p50_ms': points_lat['p50'] - infer_p50,
        'outside_node_p50_ms': e2e['p50'] - stages['total']['p50'],
        'p99_over_p50': e2e['p99'] / e2e['p50'] if e2e['p50'] and e2e['p50'] == e2e['p50'] else float('nan'),
        'latency_slope_ms_per_min': slope,
        'latency_p50_first_half_ms': first_half,
        'latency_p50_second_half_ms': second_half,
        'node_cpu_percent': sampler.cpu_percent_between(t0, t1 + 0.5),
        'rss_growth_percent': growth,
        'rss_spike_percent': spike,
        'execution_provider': diag.get('execution_provider'),
        'series': {'latency': outputs['points' if use_points else 'dense_depth']['series'],
                   'rss': [[round(t - t0, 2), r] for t, _, r in rss_samples]},
    }


# --- report ----------------------------------------------------------------------------------------

def _ms(v):
    return '-' if v is None or (isinstance(v, float) and math.isnan(v)) else '%.0f' % v if abs(v) >= 100 else '%.1f' % v


def markdown_table(rows):
    head = ('| config | in Hz | out Hz | published / processed / dropped (reasons) / lost | '
            'dense_depth p50/p90/p99 ms | points p50/p90/p99 ms | queue / convert / normalize / infer / cloud / publish / total p50 ms | '
            'overhead p50 ms (depth / points) | node CPU % | peak RSS MB |')
    lines = [head, '|' + '---|' * 10]
    for r in rows:
        c = r['config']
        label = '%dx%d %s' % (c['width'], c['height'], c['name'])
        if 'error' in r:
            lines.append('| %s | %.3g | failed: %s |  |  |  |  |  |  |  |'
                         % (label, c['rate'], r['error'].splitlines()[0][:80].replace('|', '/')))
            continue
        d, p, s = r['latency_dense_depth_ms'], r['latency_points_ms'], r['stages_ms']
        reasons = ', '.join('%s %d' % kv for kv in sorted(r['dropped'].items())) or 'none'
        lost = r['lost_inputs'] + max(r['lost_outputs'].values() or [0])
        lines.append('| %s | %.3g | %.2f | %d / %d / %d (%s) / %d | %s / %s / %s | %s | %s | %s | %.0f | %.0f |' % (
            label, c['rate'], r['output_rate_hz'], r['published'], r['node_outputs'],
            sum(r['dropped'].values()), reasons, lost,
            _ms(d['p50']), _ms(d['p90']), _ms(d['p99']),
            ('%s / %s / %s' % (_ms(p['p50']), _ms(p['p90']), _ms(p['p99']))) if c['cloud'] else 'off',
            ' / '.join(_ms(s[k]['p50']) for k in STAGES),
            _ms(r['overhead_depth_p50_ms']) + (' / ' + _ms(r['overhead_points_p50_ms']) if c['cloud'] else ''),
            r['node_cpu_percent'], r['peak_rss_bytes'] / 2 ** 20))
    return '\n'.join(lines) + '\n'


def target_checks(rows, soak=False):
    """Lines comparing the rows with the issue's targets."""
    lines = []
    for r in rows:
        if 'error' in r:
            continue
        c = r['config']
        size = (c['width'], c['height'])
        label = '%dx%d %s' % (size[0], size[1], c['name'])
        target = OVERHEAD_TARGET_MS.get(size)
        if target and c['cloud'] and c['shm_profile'] and not c['reliable']:
            if r['latency_basis'] != 'points':
                lines.append('- %s: overhead with the cloud not measurable: %d of %d clouds arrived '
                             '(lost in transport); dense_depth overhead p50 %s ms (target <= %.0f ms)' % (
                                 label, r['received']['points'], r['node_outputs'],
                                 _ms(r['overhead_depth_p50_ms']), target))
            else:
                ok = r['overhead_p50_ms'] <= target
                lines.append('- %s: overhead (points) p50 %.1f ms (target <= %.0f ms): %s' % (
                    label, r['overhead_p50_ms'], target, 'met' if ok else 'NOT met'))
        if size == (640, 480) and c['name'] == 'base':
            lost = r['lost_inputs'] + max(r['lost_outputs'].values() or [0])
            lines.append('- %s: %d published, %d processed, %d dropped with a reason, %d lost in transport; '
                         'p99/p50 = %.2f (target < %.1f): %s; latency trend %+.1f ms/min (p50 %.0f -> %.0f ms)' % (
                             label, r['published'], r['node_outputs'], sum(r['dropped'].values()), lost,
                             r['p99_over_p50'], P99_OVER_P50_MAX,
                             'met' if r['p99_over_p50'] < P99_OVER_P50_MAX else 'NOT met',
                             r['latency_slope_ms_per_min'], r['latency_p50_first_half_ms'],
                             r['latency_p50_second_half_ms']))
        if soak and r.get('rss_growth_percent') is not None:
            g = r['rss_growth_percent']
            lines.append('- %s: RSS growth after warm-up %.1f %% (median of the last fifth against the first '
                         'fifth; largest sample +%.1f %%) (target <= %.0f %%): %s' % (
                             label, g, r['rss_spike_percent'], RSS_GROWTH_MAX_PCT,
                             'met' if g <= RSS_GROWTH_MAX_PCT else 'NOT met'))
    return lines


def plot(rows, path, what='latency', title=''):
    """Latency (ms, per output frame) or node RSS (MB) over time, one line per configuration."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [r for r in rows if 'error' not in r]
    sizes = sorted({(r['config']['width'], r['config']['height']) for r in rows})
    if not sizes:
        return None
    fig, axes = plt.subplots(len(sizes), 1, figsize=(9, 3.2 * len(sizes)), squeeze=False)
    for ax, size in zip(axes[:, 0], sizes):
        for r in rows:
            if (r['config']['width'], r['config']['height']) != size:
                continue
            if what == 'latency':
                s = np.asarray(r['series']['latency'], dtype=np.float64).reshape(-1, 2)
                if s.size:
                    ax.plot((s[:, 0] - s[0, 0]) / 1e9, s[:, 1], '.-', ms=3, lw=0.8,
                            label='%s @%.3g Hz' % (r['config']['name'], r['config']['rate']))
            else:
                s = np.asarray(r['series']['rss'], dtype=np.float64).reshape(-1, 2)
                if s.size:
                    ax.plot(s[:, 0], s[:, 1] / 2 ** 20, lw=1.0, label=r['config']['name'])
        ax.set_title('%dx%d %s' % (size[0], size[1], title))
        ax.set_xlabel('time since the first frame [s]' if what == 'latency' else 'time since replay start [s]')
        ax.set_ylabel('end-to-end latency [ms]' if what == 'latency' else 'node RSS [MB]')
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc='upper left')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- command line ----------------------------------------------------------------------------------

def parse_args(argv=None):
    from .replay import _size
    p = argparse.ArgumentParser(prog='depth_interp bench', description=__doc__.splitlines()[0])
    p.add_argument('--model', default=None, help='ONNX model (default: the shipped model)')
    p.add_argument('--sizes', default='640x480,1280x960', help='WIDTHxHEIGHT list')
    p.add_argument('--rate', type=float, default=10.0, help='input rate in Hz')
    p.add_argument('--duration', type=float, default=10.0, help='seconds of replay per configuration')
    p.add_argument('--matrix', default='oat', choices=('oat', 'full', 'base'),
                   help='oat: base + one factor changed at a time (default); full: every combination')
    p.add_argument('--no-paced', action='store_true', help='skip the paced (no queueing) run per size')
    p.add_argument('--soak', type=float, default=None, metavar='SECONDS',
                   help='one long 640x480 base run (memory growth); e.g. 300')
    p.add_argument('--warmup', type=float, default=1.0, help='seconds of outputs left out of the statistics')
    p.add_argument('--frames', type=int, default=10, help='distinct frames replayed (looped)')
    p.add_argument('--data', default=None, help='replay a folder of TUM-style frames instead of synthetic')
    p.add_argument('--node-param', action='append', default=[], metavar='NAME:=VALUE',
                   help='extra node parameter (repeatable), e.g. intra_op_threads:=2')
    p.add_argument('--profile-file', default=None,
                   help='Fast DDS profile used instead of the shipped config/fastdds_large_shm.xml')
    p.add_argument('--out', default='out/bench', help='output folder')
    p.add_argument('--no-ros', action='store_true', help='only time inference + cloud without ROS (bench_device)')
    p.add_argument('--backends', default='onnx', help='--no-ros backends: onnx,torch')
    p.add_argument('--model-only', action='store_true',
                   help='time the model alone, side by side with --compare models and colorization, with its '
                        'operator profile (bench_model; see depth_interp bench --model-only --help)')
    args = p.parse_args(argv)
    try:
        args.sizes = [_size(s) for s in args.sizes.split(',') if s.strip()]
    except argparse.ArgumentTypeError as exc:
        p.error(str(exc))
    if args.rate <= 0 or args.duration <= 0 or (args.soak is not None and args.soak <= 0):
        p.error('--rate, --duration and --soak must be > 0')
    return args


def run_no_ros(args, model):
    from . import bench_device
    out = os.path.join(args.out, 'device.json')
    sizes = ','.join('%dx%d' % (h, w) for w, h in args.sizes)
    return bench_device.main(['--model', model, '--backends', args.backends, '--sizes', sizes, '--out', out])


def _paced_rate(row, rate):
    total = row['stages_ms']['total']['p50'] if 'stages_ms' in row else float('nan')
    if not total > 0:
        return None
    return min(rate, round(0.7 / (total / 1000.0), 2))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if '--model-only' in argv:
        from . import bench_model
        return bench_model.main([a for a in argv if a != '--model-only'])
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    model, model_note = resolve_model(args.model, args.out)
    if args.no_ros:
        return run_no_ros(args, model)
    soak = args.soak is not None
    if soak:
        configs = [BenchConfig('soak', 640, 480, args.rate, args.soak)]
    else:
        configs = config_matrix(args.sizes, args.matrix, args.rate, args.duration)
    prefix = 'soak' if soak else 'bench'
    work_dir = os.path.join(args.out, 'runs_' + prefix)
    shutil.rmtree(work_dir, ignore_errors=True)
    started = time.time()
    rows = []
    for config in configs:
        frames_path = frames_file(args.out, config.width, config.height, args.frames, data=args.data)
        row = run_config(config, model, frames_path, work_dir, args.warmup, args.node_param,
                         profile_file=args.profile_file)
        rows.append(row)
        _print_row(row)
        if config.name == 'base' and not args.no_paced and not soak:
            rate = _paced_rate(row, args.rate)
            if rate and rate < args.rate:
                # at least PACED_MIN_FRAMES frames, however slow the node is
                paced = replace(config, name='paced', rate=rate, paced=True,
                                duration=max(config.duration, PACED_MIN_FRAMES / rate))
                rows.append(run_config(paced, model, frames_path, work_dir, args.warmup, args.node_param,
                                       profile_file=args.profile_file))
                _print_row(rows[-1])
    report = {'machine': machine_info(include_torch=False), 'model': model, 'model_note': model_note,
              'fastdds_profile': os.path.abspath(args.profile_file) if args.profile_file else 'shipped',
              'command': 'depth_interp bench ' + ' '.join(argv if argv is not None else sys.argv[2:]),
              'started': started, 'seconds': time.time() - started, 'rate_hz': args.rate,
              'duration_s': args.soak if soak else args.duration, 'rows': rows}
    json_path = os.path.join(args.out, prefix + '.json')
    with open(json_path, 'w') as f:
        json.dump(_finite(report), f, indent=1)
    table = markdown_table(rows)
    checks = target_checks(rows, soak)
    with open(os.path.join(args.out, prefix + '.md'), 'w') as f:
        f.write('# depth_interp bench (%s)\n\nmachine: %s, %s CPUs, load average at the end %s; model: %s (%s)\n\n'
                % (time.strftime('%Y-%m-%d %H:%M', time.localtime(started)),
                   report['machine'].get('cpu', '?'), report['machine'].get('cpus'),
                   ', '.join('%.1f' % v for v in report['machine'].get('load_average', ())),
                   os.path.relpath(model), model_note))
        f.write(table + '\n' + '\n'.join(checks) + '\n')
    plot(rows, os.path.join(args.out, prefix + '_latency.png' if soak else 'latency.png'), 'latency')
    plot(rows, os.path.join(args.out, prefix + '_rss.png' if soak else 'rss.png'), 'rss')
    print('\n' + table)
    print('\n'.join(checks))
    print('bench: wrote %s, %s.md and plots in %.0f s' % (json_path, prefix, time.time() - started))
    return 0 if all('error' not in r for r in rows) else 1


def _finite(value):
    """The report with NaN/inf replaced by None, so the file is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _print_row(row):
    if 'error' in row:
        return
    d, p = row['latency_dense_depth_ms'], row['latency_points_ms']
    print('bench:   out %.2f Hz, processed %d/%d, dropped %s; dense_depth p50 %.1f p99 %.1f ms; points p50 %.1f '
          'p99 %.1f ms; infer p50 %.1f ms; overhead p50 %.1f ms; CPU %.0f %%; peak RSS %.0f MB' % (
              row['output_rate_hz'], row['node_outputs'], row['published'], row['dropped'] or '{}',
              d['p50'], d['p99'], p['p50'], p['p99'], row['stages_ms']['infer']['p50'],
              row['overhead_p50_ms'], row['node_cpu_percent'], row['peak_rss_bytes'] / 2 ** 20), flush=True)


if __name__ == '__main__':
    sys.exit(main())
