#!/usr/bin/env python3
"""What each parameter-free fill buys, and what it costs: PSNR per scene and ONNX Runtime time.

Usage: experiments/fill_cost.py [--scenes Lampshade1,...] [--only TEXT] [--time] [--rounds 15]
                                [--data DIR] [--out fills.json]

No network anywhere: the classical fills that the candidates and model 0.6.0 are built on, with
the call of ``DepthInterpolator.interpolate`` (normalization, padding, cropping) and the masks of
`depth_interp eval` (seed 0, 10 % uniform and gradient, whole frames at third size), beside
colorization:

- the geodesic propagation of `learning/geodesic.py` (the untrained `geodesic` candidate: steps of
  30 x the change of the blurred intensity), zeroth order (weighted mean);
- the same propagation, first order (``PlanePropagation`` of `propagation_ceiling.py`: per pixel the
  weighted least-squares plane through the samples that reach it), with steps of 70 x the change,
  a ridge of 1 px and the plane's departure from the mean clamped to one standard deviation of the
  depths that reach the pixel (settings chosen on the training scenes Baby1, Bowling1, Cloth2,
  Flowerpots, Monopoly, Rocks1, Wood2, Books);
- model 0.6.0's pre-fill (`learning/prefill.py`) in parts: its half-resolution domain transform
  alone, with the conjugate-gradient solve of the colorization energy at half resolution (40
  iterations), at full resolution (20), and both (the shipped setting); and its solve run to
  convergence (300 + 300 iterations: what the energy itself gives, not timed).

The default scenes are the held-out families. With --time, each fill is exported to ONNX (opset
17; identical constants shared, as `depth_interp export` does) and timed on a 480x384 input (a
padded third-size frame) with 2 ONNX Runtime threads: p50 of --rounds runs, and its node count. With --out: the numbers as JSON, a Markdown table (.md) and a
chart (.png) of each fill's PSNR minus colorization's per scene.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from propagation_ceiling import REFERENCE, PlanePropagation, save_results  # noqa: E402
from ros2_depth_interp.core.inference import onnx_session  # noqa: E402
from ros2_depth_interp.core.resources import shared_data_dir  # noqa: E402
from ros2_depth_interp.evaluation.baselines import colorization  # noqa: E402
from ros2_depth_interp.evaluation.evaluate import evaluate, load_middlebury_frames  # noqa: E402
from ros2_depth_interp.learning.datasets import HELD_OUT_SCENES  # noqa: E402
from ros2_depth_interp.learning.export import compact_graph  # noqa: E402
from ros2_depth_interp.learning.geodesic import COST_BIAS, GeodesicConfig, GeodesicPropagation, edge_steps  # noqa: E402
from ros2_depth_interp.learning.prefill import PyramidPrefill  # noqa: E402
from ros2_depth_interp.learning.torch_backend import prefill_only  # noqa: E402
from ros2_depth_interp.learning.unet import SparsePyramid, UNetConfig  # noqa: E402

PROTOCOLS = ('uniform@0.10', 'gradient@0.10')
TIMING_SHAPE = (384, 480)
CONVERGED = 'pre-fill 0.6.0: transform + CG 300 half + 300 full (converged; not timed)'


class GeodesicFill(nn.Module):
    """The geodesic propagation with image-edge step costs (``gain`` x the change of the blurred
    intensity, plus the candidate's initial added cost), from the pull-push fill where no path arrives."""

    ort_graph_optimization = 'extended'   # as the candidate asks (geodesic.DepthGeodesic)

    def __init__(self, propagation, gain):
        super().__init__()
        config = UNetConfig()
        self.levels = len(config.widths)   # the input is padded to 2 ** levels, as for the candidate
        self.pyramid = SparsePyramid(self.levels, config.pyramid_gain, config.pyramid_spread)
        self.propagation, self.gain = propagation, gain

    def forward(self, depth, mask, intensity):
        fills, _ = self.pyramid(depth, mask)
        steps = self.gain * edge_steps(intensity) + float(np.exp(COST_BIAS))
        return depth * mask + (1.0 - mask) * self.propagation(depth, mask, fills[0], steps)


def fills():
    """name -> parameter-free fill module ``(depth, mask, intensity) -> dense``."""
    distances = GeodesicConfig().distances
    shipped = dict(levels=1, variance_scale=0.3, dt_sigma_s=120.0, dt_steps=6, dt_passes=2)
    return {
        'geodesic, zeroth order (gain 30)': GeodesicFill(GeodesicPropagation(distances), 30.0),
        'geodesic, first order (gain 70, ridge 1 px, clamp 1 std)':
            GeodesicFill(PlanePropagation(distances, ridge_px=1.0, clamp=1.0), 70.0),
        'pre-fill 0.6.0: transform alone': PyramidPrefill(iterations=(0, 0), **shipped),
        'pre-fill 0.6.0: transform + CG 40 at half resolution': PyramidPrefill(iterations=(0, 40), **shipped),
        'pre-fill 0.6.0: transform + CG 20 at full resolution': PyramidPrefill(iterations=(20, 0), **shipped),
        'pre-fill 0.6.0: transform + CG 40 half + 20 full (shipped)': PyramidPrefill(iterations=(20, 40), **shipped),
        CONVERGED: PyramidPrefill(iterations=(300, 300), **shipped),
    }


def onnx_timing(module, rounds, folder):
    """(p50 seconds, node count) of ``module`` exported to ONNX, on a TIMING_SHAPE input."""
    import onnx
    h, w = TIMING_SHAPE
    rng = np.random.default_rng(0)
    mask = (rng.random((1, 1, h, w)) < 0.1).astype(np.float32)
    depth = (1.0 + 0.2 * rng.random((1, 1, h, w))).astype(np.float32) * mask
    intensity = rng.random((1, 1, h, w)).astype(np.float32)
    path = os.path.join(folder, 'fill.onnx')
    inputs = tuple(torch.from_numpy(a) for a in (depth, mask, intensity))
    torch.onnx.export(module.eval(), inputs, path, opset_version=17, dynamo=False,
                      input_names=['depth', 'mask', 'intensity'])
    model = onnx.load(path)
    compact_graph(model.graph)   # identical constants shared, as `depth_interp export` does
    # the graph optimization the fill asks for, read back by the node's own session settings
    onnx.helper.set_model_props(model, {'ort_graph_optimization': getattr(module, 'ort_graph_optimization', 'all')})
    onnx.save(model, path)
    session = onnx_session(path, ['CPUExecutionProvider'], threads=2)
    feed = dict(depth=depth, mask=mask, intensity=intensity)
    for _ in range(3):
        session.run(None, feed)
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        session.run(None, feed)
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)), len(model.graph.node)


def markdown(table, names, timing):
    lines = ['| fill | ' + ' | '.join('%s mean' % p for p in PROTOCOLS) + ' | ONNX p50 at 480x384 | nodes |',
             '|---' * (len(PROTOCOLS) + 3) + '|']
    for name, per in table.items():
        cells = ['%.2f' % np.mean([per[p][n] for n in names]) for p in PROTOCOLS]
        seconds, nodes = timing.get(name, (None, None))
        cells += ['%.0f ms' % (1000 * seconds) if seconds else '-', str(nodes) if nodes else '-']
        lines.append('| %s | %s |' % (name, ' | '.join(cells)))
    for protocol in PROTOCOLS:
        lines += ['', '### %s, per scene' % protocol, '',
                  '| fill | ' + ' | '.join(names) + ' |', '|---' * (len(names) + 1) + '|']
        for name, per in table.items():
            lines.append('| %s | %s |' % (name, ' | '.join('%.2f' % per[protocol][n] for n in names)))
    return '\n'.join(lines) + '\n'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--scenes', default=','.join(HELD_OUT_SCENES), help='comma list of Middlebury scenes (third size)')
    p.add_argument('--only', help="run only the fills whose name contains this text (several: 'A|B')")
    p.add_argument('--time', action='store_true', help='also time each fill in ONNX Runtime (2 threads)')
    p.add_argument('--rounds', type=int, default=15, help='timed runs per fill')
    p.add_argument('--data', default=os.path.join(shared_data_dir(), 'middlebury'))
    p.add_argument('--out', help='write the numbers as JSON here, with .md and .png beside it')
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    modules = {name: module for name, module in fills().items()
               if not args.only or any(text in name for text in args.only.split('|'))}
    methods = {REFERENCE: colorization}
    methods.update({name: prefill_only(module) for name, module in modules.items()})
    frames = load_middlebury_frames(args.data, tuple(args.scenes.split(',')))
    names = [f['name'] for f in frames]
    results, _ = evaluate(frames, PROTOCOLS, methods)
    table = {name: {p: {n: results[p][n][name]['all']['psnr'] for n in names} for p in PROTOCOLS} for name in methods}
    timing = {}
    if args.time:
        import tempfile
        with tempfile.TemporaryDirectory() as folder:
            for name, module in modules.items():
                if name == CONVERGED:   # 600 unrolled iterations: a graph of thousands of nodes
                    continue
                timing[name] = onnx_timing(module, args.rounds, folder)
                print('%s: %.1f ms, %d nodes' % (name, 1000 * timing[name][0], timing[name][1]), flush=True)
    text = markdown(table, names, timing)
    print(text)
    if args.out:
        save_results(args.out, dict(scenes=names, protocols=list(PROTOCOLS), table=table, timing_shape=list(TIMING_SHAPE),
                                    timing={k: dict(p50_s=v[0], nodes=v[1]) for k, v in timing.items()}),
                     text, table, names, title='parameter-free fills against colorization', legend_below=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
