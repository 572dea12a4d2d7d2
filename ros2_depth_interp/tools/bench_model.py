"""``depth_interp bench --model-only``: the model's speed on this CPU, side by side, without ROS.

In one process, on the same realistic semi-dense frame per size (a synthetic scene of
``replay.synthetic_frames`` with a 10 % gradient mask, as the node benchmark replays), this times:

- the shipped model (``--model``, default ``models/depth_interp.onnx``) and every model of
  ``--compare`` (e.g. the previous shipped model, ``previous=git:REV``), through ``DepthInterpolator`` with ONNX Runtime
  on the CPU, intra-op threads = ``--threads`` (default: the CPU count): per frame the whole call
  (normalize, pad, network, crop, rescale) and the network run alone (its ``infer`` timing);
- the classical baselines of ``--baselines`` (default ``colorization``, the yardstick of the
  accuracy protocol), through the same inputs.

Rounds are interleaved: each round runs every method once per size, in an order rotated from round
to round, so that a CPU whose speed drifts (other processes, thermal limits) affects every method
alike. The first ``--warmup-rounds`` rounds are left out. The baselines take seconds per frame and
run every ``--baseline-every``-th round only. Before every call the benchmark waits ``--settle-ms``
(default ``core.inference.SETTLE_S``, 50 ms), so that the spinning threads of the session run just
before do not share the cores with this one. The node runs one session, so the settled time is what
it gets for frames that arrive at up to about 10 Hz.

Per ONNX model it also reports the graph (node count, op-type histogram, opset, parameters) and
ONNX Runtime's per-operator profile at each size (``onnx_profile``: time per op type, the share of
Conv / ConvTranspose / MatMul / Gemm). Writes ``model_only.json``, ``model_only.md`` and
``model_only.png`` (latency per method and size) under ``--out`` and prints the tables and the
checks against the targets of the real-time model.
"""
import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np

from . import onnx_profile
from .bench_device import machine_info
from ..core.inference import SETTLE_S
from ..core.preprocess import prepare

DEFAULT_SIZES = '463x370,640x480'
# Targets of the real-time model (2-core CPU, ONNX Runtime, shipped model): p50 through
# DepthInterpolator per size (W, H), p99/p50, graph size and the dense compute's share of its time.
P50_TARGET_MS = {(463, 370): 50.0, (640, 480): 100.0}
P99_OVER_P50_MAX = 1.5
NODES_MAX = 600
COMPUTE_SHARE_MIN = 0.5
FRAME_SEED = 0
FRAME_DENSITY = 0.1
FRAME_MASK = 'gradient'


class OnnxMethod:
    """An ONNX model run through ``DepthInterpolator`` (CPU execution provider)."""
    kind = 'onnx'

    def __init__(self, label, path, threads):
        from ..core.inference import DepthInterpolator
        self.label, self.path = label, os.path.abspath(path)
        self.interpolator = DepthInterpolator(self.path, providers=['CPUExecutionProvider'], threads=threads)

    def __call__(self, frame):
        """Seconds for the whole call and for the network alone."""
        t0 = time.perf_counter()
        result = self.interpolator.run(frame['sparse'], frame['mask'], frame['intensity'])
        return time.perf_counter() - t0, result.timings['infer']


class BaselineMethod:
    """A classical method of ``evaluation.baselines`` (no network time)."""
    kind = 'baseline'

    def __init__(self, name):
        from ..evaluation.baselines import BASELINES
        if name not in BASELINES:
            raise SystemExit('depth_interp bench --model-only: unknown baseline %r (known: %s)'
                             % (name, ', '.join(sorted(BASELINES))))
        self.label, self.path, self.function = name, None, BASELINES[name]

    def __call__(self, frame):
        t0 = time.perf_counter()
        self.function(frame['sparse'], frame['mask'], frame['intensity'])
        return time.perf_counter() - t0, None


def model_from_git(revision, out_dir):
    """The shipped model of a git revision of this checkout (``git show REV:models/depth_interp.onnx``),
    written under ``out_dir/compare/``; returns its path."""
    import subprocess
    from ..core.resources import CHECKOUT, DEFAULT_MODEL
    path = os.path.join(out_dir, 'compare', '%s_%s' % (re.sub(r'[^\w.-]', '_', revision), DEFAULT_MODEL))
    try:
        blob = subprocess.run(['git', '-C', CHECKOUT, 'show', '%s:models/%s' % (revision, DEFAULT_MODEL)],
                              capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, 'stderr', b'') or b''
        raise SystemExit('depth_interp bench --model-only: no models/%s at git revision %r: %s' % (
            DEFAULT_MODEL, revision, detail.decode(errors='replace').strip() or exc))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(blob)
    return path


def parse_compare(text, out_dir='out/bench'):
    """'[LABEL=]PATH[,[LABEL=]PATH...]' -> [(label, path)]; a label defaults to the file's name.
    A PATH ``git:REV`` is the shipped model of that git revision (``model_from_git``)."""
    items = []
    for item in (text or '').split(','):
        item = item.strip()
        if not item:
            continue
        label, sep, path = item.partition('=')
        if not sep:
            label, path = os.path.splitext(os.path.basename(item))[0], item
        if path.startswith('git:'):
            label = label if sep else path[4:]
            path = model_from_git(path[4:], out_dir)
        if not os.path.isfile(path):
            raise SystemExit('depth_interp bench --model-only: --compare model %s not found' % path)
        items.append((label, path))
    return items


def unique_labels(labels):
    """The labels with '#2', '#3', ... added to repeated ones."""
    seen, out = {}, []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else '%s#%d' % (label, seen[label]))
    return out


def benchmark_frames(sizes, seed=FRAME_SEED, density=FRAME_DENSITY, mask_mode=FRAME_MASK):
    """One semi-dense frame per (width, height): dict(sparse, mask, intensity)."""
    from .replay import synthetic_frames
    return {size: synthetic_frames(1, size[1], size[0], seed, density, mask_mode)[0] for size in sizes}


def rotated(items, shift):
    shift %= max(len(items), 1)
    return items[shift:] + items[:shift]


def time_interleaved(methods, frames, rounds, warmup_rounds=3, baseline_every=6, progress=True, settle=SETTLE_S):
    """Round-robin timing. Returns {(label, size): {'total': [s...], 'network': [s...]}}.

    Each round runs every method once per size (order rotated per round), each call after a pause of
    ``settle`` seconds (module docstring); baselines run in every ``baseline_every``-th counted round
    only (0: never) and not in the warm-up rounds."""
    samples = {(m.label, size): {'total': [], 'network': []} for m in methods for size in frames}
    started = time.perf_counter()
    total_rounds = warmup_rounds + rounds
    for r in range(total_rounds):
        counted = r >= warmup_rounds
        for size, frame in frames.items():
            for method in rotated(methods, r):
                if method.kind == 'baseline' and not (
                        counted and baseline_every and (r - warmup_rounds) % baseline_every == 0):
                    continue
                time.sleep(settle)
                total, network = method(frame)
                if counted:
                    samples[(method.label, size)]['total'].append(total)
                    if network is not None:
                        samples[(method.label, size)]['network'].append(network)
        tty = sys.stdout.isatty()
        if progress and (tty or (r + 1) % 10 == 0 or r + 1 == total_rounds):   # a log gets every 10th
            elapsed = time.perf_counter() - started
            print('bench --model-only: round %d/%d, %.0f s, about %.0f s left' % (
                r + 1, total_rounds, elapsed, elapsed / (r + 1) * (total_rounds - r - 1)),
                end='\r' if tty else '\n', flush=True)
    if progress and sys.stdout.isatty():
        print()
    return samples


def latency_stats(seconds):
    """p50, p90, p99, p99/p50, mean, min (ms) and n of a list of seconds (None when empty)."""
    if not seconds:
        return None
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    p50, p90, p99 = (float(v) for v in np.percentile(ms, [50, 90, 99]))
    return {'p50_ms': p50, 'p90_ms': p90, 'p99_ms': p99, 'p99_over_p50': p99 / p50 if p50 > 0 else None,
            'mean_ms': float(ms.mean()), 'min_ms': float(ms.min()), 'n': int(ms.size)}


def size_name(size):
    return '%dx%d' % size


# --- report ----------------------------------------------------------------------------------------

def _ms(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    return '%.0f' % value if abs(value) >= 100 else '%.1f' % value


def latency_table(report):
    lines = ['| method | size | whole call p50 / p90 / p99 ms | p99/p50 | mean ms | '
             'network alone p50 / p90 / p99 ms | n |', '|---|---|---|---|---|---|---|']
    for method in report['methods']:
        for size, row in report['latency'][method['label']].items():
            total, network = row['total'], row['network']
            if total is None:
                continue
            net = '%s / %s / %s' % (_ms(network['p50_ms']), _ms(network['p90_ms']), _ms(network['p99_ms'])) \
                if network else '-'
            lines.append('| %s | %s | %s / %s / %s | %.2f | %s | %s | %d |' % (
                method['label'], size, _ms(total['p50_ms']), _ms(total['p90_ms']), _ms(total['p99_ms']),
                total['p99_over_p50'] or float('nan'), _ms(total['mean_ms']), net, total['n']))
    return '\n'.join(lines) + '\n'


def graph_table(report, top=8):
    lines = ['| model | nodes | parameters | opset | MB | op types (count) |', '|---|---|---|---|---|---|']
    for label, model in report['models'].items():
        g = model['graph']
        ops = ', '.join('%s %d' % kv for kv in list(g['op_types'].items())[:top])
        more = len(g['op_types']) - top
        lines.append('| %s | %d | %d | %s | %.2f | %s%s |' % (
            label, g['nodes'], g['parameters'], g['opset'], g['bytes'] / 1e6, ops,
            ', ... (%d more types)' % more if more > 0 else ''))
    return '\n'.join(lines) + '\n'


def profile_table(report, top=8):
    lines = ['| model | size | profiled node time ms/run | Conv/ConvTranspose/MatMul/Gemm share | '
             'slowest op types (share, calls per run) |', '|---|---|---|---|---|']
    for label, model in report['models'].items():
        for size, prof in model['profile'].items():
            ops = ', '.join('%s %.1f %% (%g)' % (op, 100.0 * v['share'], round(v['calls_per_run'], 1))
                            for op, v in list(prof['ops'].items())[:top])
            lines.append('| %s | %s | %s | %.1f %% | %s |' % (
                label, size, _ms(prof['node_ms_per_run']), 100.0 * prof['compute_share'], ops))
    return '\n'.join(lines) + '\n'


def target_checks(report):
    """Lines comparing the model under test (the first method) with the real-time targets."""
    label = report['methods'][0]['label']
    lines = []

    def verdict(ok):
        return 'met' if ok else 'NOT met'
    for size, row in report['latency'][label].items():
        total = row['total']
        target = P50_TARGET_MS.get(tuple(int(v) for v in size.split('x')))
        if total is None:
            continue
        text = '- %s %s: p50 %s ms' % (label, size, _ms(total['p50_ms']))
        if target:
            text += ' (target <= %.0f ms): %s' % (target, verdict(total['p50_ms'] <= target))
        ratio = total['p99_over_p50']
        text += '; p99/p50 %.2f (target <= %.1f): %s' % (ratio, P99_OVER_P50_MAX, verdict(ratio <= P99_OVER_P50_MAX))
        lines.append(text)
    model = report['models'].get(label)
    if model:
        nodes = model['graph']['nodes']
        lines.append('- %s graph: %d nodes (target <= about %d): %s' % (label, nodes, NODES_MAX,
                                                                       verdict(nodes <= NODES_MAX)))
        for size, prof in model['profile'].items():
            share = prof['compute_share']
            lines.append('- %s %s: Conv/ConvTranspose/MatMul/Gemm %.0f %% of the profiled node time '
                         '(target >= %.0f %%): %s' % (label, size, 100 * share, 100 * COMPUTE_SHARE_MIN,
                                                      verdict(share >= COMPUTE_SHARE_MIN)))
    return lines


def markdown(report):
    machine = report['machine']
    head = ('# depth_interp bench --model-only (%s)\n\nmachine: %s, %s CPUs, load average at the end %s; '
            'ONNX Runtime %s, %d intra-op threads; %d rounds (%d warm-up rounds left out), %g ms pause before '
            'each call, baselines every %s rounds; frame: synthetic seed %d, %s mask, %.0f %% known\n\n' % (
                time.strftime('%Y-%m-%d %H:%M', time.localtime(report['started'])), machine.get('cpu', '?'),
                machine.get('cpus'), ', '.join('%.1f' % v for v in machine.get('load_average', ())),
                machine.get('onnxruntime'), report['threads'], report['rounds'], report['warmup_rounds'],
                report.get('settle_ms', 0), report['baseline_every'] or 'no', report['frame']['seed'],
                report['frame']['mask'], 100 * report['frame']['density']))
    models = ''.join('- %s: `%s`\n' % (m['label'], m['path']) for m in report['methods'] if m['path'])
    return (head + models + '\n## Latency per frame\n\n' + latency_table(report)
            + '\n## Graphs\n\n' + graph_table(report)
            + '\n## ONNX Runtime per-operator profile\n\n' + profile_table(report)
            + '\n## Checks\n\n' + '\n'.join(report['checks']) + '\n')


def plot(report, path):
    """Horizontal bars per size: p50 of the whole call (bar) with a whisker to its p99 (ticks at p90
    and p99) and the network alone (dark inner bar); log time axis, since the baselines are tens of
    times slower than a network."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter
    sizes = report['sizes']
    labels = [m['label'] for m in report['methods']]
    fig = Figure(figsize=(5.2 * len(sizes), 1.6 + 0.5 * len(labels)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(sizes), squeeze=False)[0]
    y = np.arange(len(labels))[::-1]
    for ax, size in zip(axes, sizes):
        shortest = []
        for yi, label in zip(y, labels):
            row = report['latency'][label][size]
            total, network = row['total'], row['network']
            if total is None:
                continue
            ax.barh(yi, total['p50_ms'], color='tab:blue', alpha=0.45)
            ax.plot([total['p50_ms'], total['p99_ms']], [yi, yi], color='black', lw=1.0)
            ax.plot([total['p90_ms'], total['p99_ms']], [yi, yi], '|', color='black', ms=9)
            if network:
                ax.barh(yi, network['p50_ms'], height=0.35, color='tab:blue')
            ax.text(total['p50_ms'], yi + 0.32, ' %s ms' % _ms(total['p50_ms']), fontsize=7, va='center')
            shortest.append(min(total['min_ms'], network['min_ms'] if network else total['min_ms']))
        target = P50_TARGET_MS.get(tuple(int(v) for v in size.split('x')))
        if target:
            ax.axvline(target, color='tab:red', ls='--', lw=0.8)
        ax.set_xscale('log')
        if shortest:
            ax.set_xlim(left=0.5 * min(shortest))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_yticks(y)
        ax.set_yticklabels(labels)
        ax.set_xlabel('ms per frame (log scale)')
        ax.set_title(size, fontsize=10)
        ax.grid(axis='x', alpha=0.3, which='both')
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    legend = [Patch(color='tab:blue', alpha=0.45, label='whole call p50'),
              Patch(color='tab:blue', label='network alone p50'),
              Line2D([], [], color='black', marker='|', ms=9, lw=1.0, label='to p99 (ticks: p90, p99)'),
              Line2D([], [], color='tab:red', ls='--', lw=0.8, label='p50 target')]
    fig.legend(handles=legend, loc='upper center', ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    fig.savefig(path, dpi=100)
    return path


# --- command line ----------------------------------------------------------------------------------

def parse_args(argv=None):
    from .replay import _size
    p = argparse.ArgumentParser(prog='depth_interp bench --model-only', description=__doc__.splitlines()[0])
    p.add_argument('--model', default=None, help='ONNX model under test (default: the shipped model)')
    p.add_argument('--compare', default='', metavar='[LABEL=]PATH[,...]',
                   help='more ONNX models timed side by side; PATH git:REV is the shipped model of a git '
                        'revision, e.g. previous=git:HEAD~1')
    p.add_argument('--baselines', default='colorization', help="comma list of evaluation.baselines ('' for none)")
    p.add_argument('--sizes', default=DEFAULT_SIZES, help='WIDTHxHEIGHT list (default %(default)s)')
    p.add_argument('--rounds', type=int, default=60, help='counted rounds (default %(default)s: about 2-3 '
                   'minutes on 2 cores with colorization and one other model)')
    p.add_argument('--warmup-rounds', type=int, default=3)
    p.add_argument('--baseline-every', type=int, default=6,
                   help='run the baselines in every N-th round (0: never; default %(default)s)')
    p.add_argument('--settle-ms', type=float, default=1000.0 * SETTLE_S,
                   help='pause before every timed call, so that no other session\'s threads still spin '
                        '(default %(default)s; module docstring)')
    p.add_argument('--profile-runs', type=int, default=10, help='profiled runs per model and size')
    p.add_argument('--threads', type=int, default=os.cpu_count() or 1, help='ONNX Runtime intra-op threads')
    p.add_argument('--out', default='out/bench', help='output folder')
    args = p.parse_args(argv)
    try:
        args.sizes = [_size(s) for s in args.sizes.split(',') if s.strip()]
    except argparse.ArgumentTypeError as exc:
        p.error(str(exc))
    if (args.rounds < 1 or args.warmup_rounds < 0 or args.baseline_every < 0 or args.profile_runs < 1
            or not args.settle_ms >= 0):
        p.error('--rounds and --profile-runs must be >= 1, --warmup-rounds, --baseline-every and --settle-ms >= 0')
    if not args.sizes:
        p.error('--sizes is empty')
    return args


def profile_models(methods, frames, runs, threads):
    """{label: graph statistics and per-size operator profile} of every ONNX method."""
    models = {}
    for method in methods:
        if method.kind != 'onnx':
            continue
        print('bench --model-only: profiling %s' % method.label, flush=True)
        profile = {}
        for size, frame in frames.items():
            tensor = prepare(frame['sparse'], frame['mask'], frame['intensity'], method.interpolator.stride).tensor
            profile[size_name(size)] = onnx_profile.operator_profile(method.path, tensor, runs, threads)
        models[method.label] = {'path': method.path, 'graph': onnx_profile.graph_stats(method.path),
                                'profile': profile}
    return models


def build_report(args, methods, samples, model_note, started, command):
    return {
        'machine': machine_info(include_torch=False), 'command': command, 'started': started,
        'threads': args.threads, 'rounds': args.rounds, 'warmup_rounds': args.warmup_rounds,
        'baseline_every': args.baseline_every, 'settle_ms': args.settle_ms, 'model_note': model_note,
        'frame': {'source': 'synthetic (replay.synthetic_frames)', 'seed': FRAME_SEED, 'mask': FRAME_MASK,
                  'density': FRAME_DENSITY},
        'sizes': [size_name(s) for s in args.sizes],
        'methods': [{'label': m.label, 'kind': m.kind, 'path': m.path} for m in methods],
        'latency': {m.label: {size_name(s): {'total': latency_stats(samples[(m.label, s)]['total']),
                                             'network': latency_stats(samples[(m.label, s)]['network'])}
                              for s in args.sizes} for m in methods},
    }


def write_outputs(report, out_dir):
    """``model_only.json`` (strict JSON), ``model_only.md`` and ``model_only.png``; returns the markdown."""
    from .bench import _finite
    with open(os.path.join(out_dir, 'model_only.json'), 'w') as f:
        json.dump(_finite(report), f, indent=1)
    text = markdown(report)
    with open(os.path.join(out_dir, 'model_only.md'), 'w') as f:
        f.write(text)
    plot(report, os.path.join(out_dir, 'model_only.png'))
    return text


def make_methods(args, model_path, model_note):
    """The model under test first, then the --compare models, then the baselines."""
    own = 'shipped' if model_note == 'shipped' else os.path.splitext(os.path.basename(model_path))[0]
    onnx_models = [(own, model_path)] + parse_compare(args.compare, args.out)
    labels = unique_labels([label for label, _ in onnx_models])
    methods = [OnnxMethod(label, path, args.threads) for label, (_, path) in zip(labels, onnx_models)]
    return methods + [BaselineMethod(name.strip()) for name in args.baselines.split(',') if name.strip()]


def main(argv=None):
    from .bench import resolve_model
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    started = time.time()
    model_path, model_note = resolve_model(args.model, args.out)
    methods = make_methods(args, model_path, model_note)
    frames = benchmark_frames(args.sizes)
    print('bench --model-only: %s at %s, %d rounds' % (', '.join(m.label for m in methods),
                                                      ', '.join(map(size_name, args.sizes)), args.rounds), flush=True)
    samples = time_interleaved(methods, frames, args.rounds, args.warmup_rounds, args.baseline_every,
                               settle=args.settle_ms / 1000.0)
    command = 'depth_interp bench --model-only ' + ' '.join(sys.argv[1:] if argv is None else argv)
    report = build_report(args, methods, samples, model_note, started, command)
    report['models'] = profile_models(methods, frames, args.profile_runs, args.threads)
    report['checks'] = target_checks(report)
    report['seconds'] = time.time() - started
    text = write_outputs(report, args.out)
    print('\n' + text)
    print('bench --model-only: wrote %s/model_only.{json,md,png} in %.0f s' % (args.out, report['seconds']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
