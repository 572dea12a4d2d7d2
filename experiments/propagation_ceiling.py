#!/usr/bin/env python3
"""What limits the geodesic candidate: where its propagation stops (the edges) or how it fills in between.

Usage: experiments/propagation_ceiling.py [--scenes Baby1,...] [--weights experiments/weights/geodesic.pt]
                                          [--data DIR] [--out ceiling.json] [--figure-scenes Wood2]

The propagation of `learning/geodesic.py` (normalized convolution along straight paths, 256 .. 1 px)
run with three sources of step costs, beside colorization, on the same masks as `depth_interp eval`
(seed 0, 10 % uniform and gradient, whole frames at third size):

- image edges: the untrained model (30 x |change of the blurred intensity| per step);
- depth edges: a cost of 50 (nothing passes) on every step across a ground-truth disparity jump of
  more than 0.5 px, exp(-6) elsewhere: costs that know every depth edge and nothing else;
- trained: the candidate's weights (`--weights`), costs from its U-Net;

and, with the image's and with the ground truth's edges, a first-order fill
(``PlanePropagation``): the same steps carry the weighted moments of the samples (weight, x, y,
depth and their products) instead of (depth x certainty, certainty), and each pixel takes the
weighted least-squares plane through the samples that reach it (slopes held towards 0 by a ridge
of 16 px), where the zeroth-order fill takes their weighted mean.

The default scenes are training scenes: this is a diagnosis of the design, not a result.
With --out: the numbers as JSON, a Markdown table beside it (.md) and a chart (.png) of every
method's PSNR minus colorization's per scene and protocol; --figure-scenes draws those scenes
(gradient masks) with every method's fill beside the ground truth.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ros2_depth_interp.core.preprocess import finish, prepare  # noqa: E402
from ros2_depth_interp.core.resources import shared_data_dir  # noqa: E402
from ros2_depth_interp.evaluation.baselines import colorization  # noqa: E402
from ros2_depth_interp.evaluation.evaluate import load_middlebury_frames, semi_dense_input  # noqa: E402
from ros2_depth_interp.evaluation.metrics import compute_metrics  # noqa: E402
from ros2_depth_interp.learning.export import load_torch_weights  # noqa: E402
from ros2_depth_interp.learning.geodesic import (  # noqa: E402
    COST_BIAS, FALLBACK_CERTAINTY, SHIFT, TINY, DepthGeodesic, GeodesicConfig, GeodesicPropagation)

DEV_SCENES = 'Baby1,Bowling1,Cloth2,Flowerpots,Monopoly,Rocks1,Wood2,Books'
PROTOCOLS = ('uniform@0.10', 'gradient@0.10')
JUMP = 0.5           # disparity px (third size): a larger change between neighbours is a depth edge
EDGE_COST = 50.0     # step cost across such an edge: exp(-50), nothing passes
RIDGE_PX = 16.0      # first-order fill: the plane's slopes are shrunk as by samples spread this far
FLAT_COST = float(np.exp(COST_BIAS))
REFERENCE = 'colorization'


def depth_edge_steps(gt, valid, shape, edge_cost):
    """(1, 2, H', W') step costs into each pixel from its left and from above: ``edge_cost`` across a
    ground-truth jump, FLAT_COST elsewhere (also where the ground truth is unknown); the padding of
    the network's input (``shape``) is flat."""
    g = np.where(valid, gt, np.nan).astype(np.float32)
    jumps = np.zeros((2,) + g.shape, bool)
    with np.errstate(invalid='ignore'):
        jumps[0, :, 1:] = np.abs(g[:, 1:] - g[:, :-1]) > JUMP
        jumps[1, 1:] = np.abs(g[1:] - g[:-1]) > JUMP
    steps = np.full((1, 2) + tuple(shape), FLAT_COST, np.float32)
    steps[0, :, :g.shape[0], :g.shape[1]] = np.where(jumps, edge_cost, FLAT_COST)
    return torch.from_numpy(steps)


class PlanePropagation(GeodesicPropagation):
    """The geodesic steps with a first-order fill: the weighted moments of the samples that reach each
    pixel, then per pixel the weighted least-squares plane through them, evaluated at the pixel.
    Measured pixels keep their value (the caller puts them back); a pixel that no sample reaches
    takes the pull-push fill, as in the zeroth-order propagation. With ``clamp`` the plane departs
    from the weighted mean by at most ``clamp`` standard deviations of the depths that reach the
    pixel (one moment more: depth^2), as the first-order fill of model 0.6.0's pre-fill does."""

    MOMENTS = 9   # weight, x, y, depth, xx, xy, yy, x depth, y depth (coordinates / the longer side)

    def __init__(self, distances, ridge_px=RIDGE_PX, clamp=0.0):
        super().__init__(distances)
        self.ridge_px, self.clamp = ridge_px, clamp
        self.moments = self.MOMENTS + (1 if clamp else 0)   # clamp: also depth^2, for the depths' spread

    def _moments(self, weight, depth, x, y):
        moments = [weight, weight * x, weight * y, weight * depth, weight * x * x, weight * x * y,
                   weight * y * y, weight * x * depth, weight * y * depth]
        return torch.cat(moments + [weight * depth * depth] if self.clamp else moments, dim=1)

    def forward(self, depth, mask, fallback, step_costs):
        n, _, h, w = depth.shape
        side = float(max(h, w))
        y, x = torch.meshgrid(torch.arange(h, dtype=depth.dtype) / side, torch.arange(w, dtype=depth.dtype) / side,
                              indexing='ij')
        x, y = x.expand(n, 1, h, w), y.expand(n, 1, h, w)
        keep = 1.0 - mask
        held = self._moments(mask, depth, x, y)
        state = held + self._moments(FALLBACK_CERTAINTY * keep, fallback, x, y)
        shift = SHIFT[:4].repeat(self.moments, 1, 1, 1).to(depth)   # the four neighbours of each moment
        weights = self.path_weights(step_costs, keep)
        for d in self.distances:
            w4, scale = weights[d]
            neighbours = F.conv2d(state, shift, padding=d, dilation=d, groups=self.moments)
            state = held + scale * (state + (neighbours.view(n, self.moments, 4, h, w) * w4.unsqueeze(1)).sum(2))
        s, sx, sy, sd, sxx, sxy, syy, sxd, syd = (state[:, i:i + 1] for i in range(self.MOMENTS))
        s = s + TINY
        mx, my, md = sx / s, sy / s, sd / s
        ridge = (self.ridge_px / side) ** 2
        cxx, cyy, cxy = sxx / s - mx * mx + ridge, syy / s - my * my + ridge, sxy / s - mx * my
        cxd, cyd = sxd / s - mx * md, syd / s - my * md
        det = cxx * cyy - cxy * cxy
        gx, gy = (cyy * cxd - cxy * cyd) / det, (cxx * cyd - cxy * cxd) / det
        departure = gx * (x - mx) + gy * (y - my)
        if self.clamp:   # at most ``clamp`` standard deviations of the depths that reach the pixel
            limit = self.clamp * torch.sqrt(torch.relu(state[:, self.MOMENTS:] / s - md * md))
            departure = torch.minimum(torch.maximum(departure, -limit), limit)
        return md + departure


class Filler:
    """One geodesic model as a fill ``(sparse, mask, frame) -> dense``, with the inference path's
    normalization; ``edge_cost`` (a number) replaces the model's step costs by the ground truth's."""

    def __init__(self, model, edge_cost=None):
        self.model = model.eval()
        self.edge_cost = edge_cost

    def __call__(self, sparse, mask, frame):
        prepared = prepare(sparse, mask, frame['intensity'], self.model.stride)
        x = torch.from_numpy(prepared.tensor)
        with torch.inference_mode():
            if self.edge_cost is None:
                dense, confidence = self.model(x)
            else:   # the untrained model's head adds nothing: its propagation alone, with these costs
                depth, known = x[:, 0:1], x[:, 1:2]
                fills, _ = self.model.pyramid(depth, known)
                steps = depth_edge_steps(frame['gt'], frame['valid'], x.shape[2:], self.edge_cost)
                estimate = self.model.propagate(depth, known, fills[0], steps)
                dense, confidence = depth * known + (1.0 - known) * estimate, known
        return finish(prepared, dense.numpy(), confidence.numpy())[0]


def first_order(model):
    """``model`` with its propagation replaced by ``PlanePropagation`` over the same distances."""
    model.propagate = PlanePropagation(model.config.distances)
    return model


def methods_for(weights):
    torch.manual_seed(0)
    untrained = DepthGeodesic(GeodesicConfig())   # zero-initialized head: the image's edges, no correction
    planes = first_order(DepthGeodesic(GeodesicConfig()))
    methods = {
        REFERENCE: lambda sparse, mask, frame: colorization(sparse, mask, frame['intensity']),
        'image edges (untrained)': Filler(untrained),
        'image edges (untrained), first order': Filler(planes),
        'depth edges (ground truth)': Filler(untrained, edge_cost=EDGE_COST),
        'depth edges (ground truth), first order': Filler(planes, edge_cost=EDGE_COST),
    }
    if weights:
        methods['trained (%s)' % os.path.basename(weights)] = Filler(load_torch_weights(weights)[0])
    return methods


def measure(frames, methods, protocols=PROTOCOLS, seed=0, keep=()):
    """``table[method][protocol][scene] = psnr`` and the fills of the (scene, protocol) pairs in ``keep``."""
    from tqdm import tqdm
    table, kept = {name: {p: {} for p in protocols} for name in methods}, {}
    with tqdm(total=len(frames) * len(protocols) * len(methods), unit='fill', file=sys.stderr) as bar:
        for protocol in protocols:
            mode, density = protocol.split('@')
            for frame in frames:
                sparse, mask = semi_dense_input(frame, mode, float(density), seed)
                for name, method in methods.items():
                    bar.set_description('%s %s' % (frame['name'], protocol))
                    dense = method(sparse, mask, frame)
                    table[name][protocol][frame['name']] = compute_metrics(
                        dense, frame['gt'], frame['valid'], peak=frame['peak'])['psnr']
                    if (frame['name'], protocol) in keep:
                        kept.setdefault((frame['name'], protocol), (sparse, mask, {}))[2][name] = dense
                    bar.update(1)
    return table, kept


def markdown(table, names):
    lines = []
    for protocol in next(iter(table.values())):
        lines += ['### %s' % protocol, '',
                  '| method | mean | ' + ' | '.join(names) + ' |', '|---' * (len(names) + 2) + '|']
        for name, per in table.items():
            values = [per[protocol][n] for n in names]
            lines.append('| %s | %.2f | %s |' % (name, np.mean(values), ' | '.join('%.2f' % v for v in values)))
        lines.append('')
    return '\n'.join(lines)


def save_chart(path, table, names, title='geodesic propagation: its edges or its fill?', legend_below=False):
    """Bars per scene and protocol: each method's PSNR minus colorization's (``table[REFERENCE]``)."""
    from ros2_depth_interp.evaluation.figures import save_grouped_bars
    protocols = list(table[REFERENCE])
    groups = ['%s %s' % (n, p.split('@')[0]) for p in protocols for n in names]
    reference = np.array([table[REFERENCE][p][n] for p in protocols for n in names])
    series = {}
    for name, per in table.items():
        if name != REFERENCE:
            gain = np.array([per[p][n] for p in protocols for n in names]) - reference
            series['%s (mean %s)' % (name, ', '.join(
                '%s %+.2f dB' % (p.split('@')[0], gain[i * len(names):(i + 1) * len(names)].mean())
                for i, p in enumerate(protocols)))] = gain
    return save_grouped_bars(path, groups, series, 'PSNR minus colorization (dB)',
                             title=title, label_rotation=60, legend_below=legend_below,
                             label_size=8, legend_size=7, width=min(18.0, 2.0 + 0.45 * len(groups)))


def save_results(out, payload, text, table, names, **chart_options):
    """``payload`` as JSON at ``out``, the Markdown ``text`` beside it (.md) and the chart of ``table``
    (``save_chart``, .png); prints what it wrote."""
    base = os.path.splitext(out)[0]
    with open(out, 'w') as f:
        json.dump(payload, f, indent=1)
    with open(base + '.md', 'w') as f:
        f.write(text)
    print('wrote %s, %s.md, %s' % (out, base, save_chart(base + '.png', table, names, **chart_options)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--scenes', default=DEV_SCENES, help='comma list of Middlebury scenes (third size)')
    p.add_argument('--weights', default='experiments/weights/geodesic.pt',
                   help="the trained candidate's checkpoint ('' to leave it out)")
    p.add_argument('--data', default=os.path.join(shared_data_dir(), 'middlebury'))
    p.add_argument('--out', help='write the numbers as JSON here, with .md and .png beside it')
    p.add_argument('--figure-scenes', default='', help='comma list: draw these scenes (gradient masks)')
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    frames = load_middlebury_frames(args.data, tuple(args.scenes.split(',')))
    names = [f['name'] for f in frames]
    figure_scenes = [s for s in args.figure_scenes.split(',') if s]
    keep = {(s, 'gradient@0.10') for s in figure_scenes}
    table, kept = measure(frames, methods_for(args.weights), keep=keep)
    text = markdown(table, names)
    print(text)
    if args.out:
        save_results(args.out, dict(scenes=names, protocols=list(PROTOCOLS), jump_px=JUMP, table=table),
                     text, table, names)
    from ros2_depth_interp.evaluation.figures import save_figure1
    base = os.path.splitext(args.out)[0] if args.out else 'ceiling'
    by_name = {f['name']: f for f in frames}
    for (scene, protocol), (sparse, mask, outputs) in kept.items():
        frame = by_name[scene]
        captions = {name: '%.2f dB' % table[name][protocol][scene] for name in outputs}
        path = '%s_%s_%s.png' % (base, scene, protocol.replace('@', '_'))
        save_figure1(path, frame['intensity'], sparse, mask, outputs, gt=frame['gt'], valid=frame['valid'],
                     title='%s, %s: geodesic propagation with image, ground-truth and trained edges'
                     % (scene, protocol), captions=captions, units=frame.get('units', ''))
        print('wrote %s' % path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
