#!/usr/bin/env python3
"""CPU time per frame of several ONNX graphs, measured side by side in one process.

Usage: scripts/compare_graphs.py LABEL=PATH [LABEL=PATH ...] [--sizes 370x463,480x640] [--rounds 40]
       [--out times.json]

On a shared machine whose speed drifts from hour to hour, only graphs timed in the same process,
in alternation, can be compared: each round runs every graph once per size (the node's own path:
``DepthInterpolator.interpolate``, normalization and padding included) on the same synthetic frame
(10 % known). The first rounds warm up and are left out. Prints a table; with --out also JSON and a
PNG beside it (fastest, median and 90th percentile per graph and size).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ros2_depth_interp.tools.bench_device import _percentiles, _scene, machine_info  # noqa: E402
from ros2_depth_interp.core.inference import DepthInterpolator  # noqa: E402
from ros2_depth_interp.learning.train import parse_size  # noqa: E402

WARMUP_ROUNDS = 3


def save_picture(path, rows):
    """Bars of the median per graph and size, with the fastest frame and the 90th percentile marked."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(rows)
    p50 = np.array([rows[n]['p50_ms'] for n in names])
    low = p50 - np.array([rows[n]['min_ms'] for n in names])
    high = np.array([rows[n]['p90_ms'] for n in names]) - p50
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.45 * len(names)))
    y = np.arange(len(names))[::-1]
    ax.barh(y, p50, xerr=[low, high], capsize=3, color='tab:blue', alpha=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    ax.set_xlabel('ms per frame: median (bar), fastest to 90th percentile (whiskers)')
    ax.grid(axis='x', alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('graphs', nargs='+', metavar='LABEL=PATH')
    p.add_argument('--sizes', default='370x463,480x640', help='HxW list')
    p.add_argument('--rounds', type=int, default=40)
    p.add_argument('--threads', type=int, default=2, help='ONNX Runtime intra-op threads')
    p.add_argument('--out', help='also write the numbers as JSON here')
    args = p.parse_args(argv)
    graphs = {}
    for item in args.graphs:
        label, sep, path = item.partition('=')
        if not sep or not os.path.isfile(path):
            p.error('%r: expected LABEL=PATH to an existing ONNX file' % item)
        graphs[label] = DepthInterpolator(path, providers=['CPUExecutionProvider'], threads=args.threads)
    sizes = [parse_size(s) for s in args.sizes.split(',')]
    frames = {size: _scene(*size)[:3] for size in sizes}
    times = {(label, size): [] for label in graphs for size in sizes}
    for r in range(args.rounds + WARMUP_ROUNDS):
        for size, (depth, mask, intensity) in frames.items():
            for label, interp in graphs.items():
                t0 = time.perf_counter()
                interp.interpolate(depth, mask, intensity)
                if r >= WARMUP_ROUNDS:
                    times[(label, size)].append(time.perf_counter() - t0)
        print('round %d/%d' % (r + 1, args.rounds + WARMUP_ROUNDS), end='\r', file=sys.stderr, flush=True)
    print(file=sys.stderr)
    rows = {'%dx%d %s' % (w, h, label): _percentiles(t) for (label, (h, w)), t in times.items()}
    print('| graph | p50 ms | min ms | p90 ms |')
    print('|---|---|---|---|')
    for name, row in rows.items():
        print('| %s | %.1f | %.1f | %.1f |' % (name, row['p50_ms'], row['min_ms'], row['p90_ms']))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(machine=machine_info(include_torch=False), rounds=args.rounds,
                           graphs={label: interp.model_path for label, interp in graphs.items()}, times=rows),
                      f, indent=1)
        save_picture(os.path.splitext(args.out)[0] + '.png', rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())
