#!/usr/bin/env python3
"""PSNR of the parameter-free pre-fill alone (no network): the shipped setting and variations of it.

Usage: experiments/prefill_table.py [--scenes Baby3,Cloth4,...|all2006] [--only TEXT] [--data DIR] [--out table.json]
                                [--figure-scenes Baby2,Bowling2]
`depth_interp eval`'s own run (same masks: seed 0, 10 % uniform and gradient; whole frames at
third size) with one method per setting: what each part of the shipped pre-fill (the `default`
preset, chosen on the 2006 scenes) contributes. The tables of docs/results/prefill_*.md that compare
it with the pre-fills of earlier models (heavy-ball sweeps, five-level cascades, the order-0
domain transform) were made with the code of release 0.6.0, which has those options
(`git checkout 6021182bc9`, its script of the same name). With --out, also <out>.png: per scene,
each setting's PSNR on gradient masks minus the first setting's; with --figure-scenes, one picture
per named scene (gradient masks) with every setting's fill beside the ground truth.
"""
import argparse
import json
import os
import sys
import textwrap

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ros2_depth_interp.evaluation.evaluate import evaluate, load_middlebury_frames  # noqa: E402
from ros2_depth_interp.learning.prefill import PyramidPrefill  # noqa: E402
from ros2_depth_interp.learning.torch_backend import prefill_only  # noqa: E402
from ros2_depth_interp.core.resources import shared_data_dir  # noqa: E402

# name: PyramidPrefill options (the shipped pre-fill, model 0.6.0, and variations of it)
SHIPPED = dict(levels=1, iterations=(20, 40), variance_scale=0.3, dt_sigma_s=120.0, dt_steps=6, dt_passes=2)
SETTINGS = {
    'first order, clamp 1, range 120, reach 2^6, two passes, then CG 20/40 (model 0.6.0, shipped)': dict(SHIPPED),
    'the same, weighted mean (clamp 0)': dict(SHIPPED, dt_clamp=0.0),
    'the same, no clamp': dict(SHIPPED, dt_clamp=1e6),
    'the same, range 60': dict(SHIPPED, dt_sigma_s=60.0),
    'the same, reach 2^5': dict(SHIPPED, dt_steps=5),
    'the same, reach 2^8': dict(SHIPPED, dt_steps=8),
    'the same, three passes': dict(SHIPPED, dt_passes=3),
    'the same, CG 15/40': dict(SHIPPED, iterations=(15, 40)),
    'the same, CG 20/30': dict(SHIPPED, iterations=(20, 30)),
    'the same, CG 30/100': dict(SHIPPED, iterations=(30, 100)),
    'the same, CG 300/300 (converged)': dict(SHIPPED, iterations=(300, 300)),
    'the same, no CG (the domain transform alone)': dict(SHIPPED, iterations=(0, 0)),
}
PROTOCOLS = ('uniform@0.10', 'gradient@0.10')
TWELVE = 'Baby3,Cloth4,Bowling1,Flowerpots,Midd1,Rocks1,Baby1,Cloth1,Lampshade1,Monopoly,Plastic,Wood1'
ALL_2006 = ('Baby1,Baby2,Baby3,Bowling1,Bowling2,Cloth1,Cloth2,Cloth3,Cloth4,Flowerpots,Lampshade1,Lampshade2,'
            'Midd1,Midd2,Monopoly,Plastic,Rocks1,Rocks2,Wood1,Wood2')


def save_gain_chart(path, table, names, protocol='gradient@0.10'):
    """Bars per scene: each setting's PSNR minus the first setting's (dB), for ``protocol``."""
    from ros2_depth_interp.evaluation.figures import save_grouped_bars
    settings = list(table)
    reference = np.array([table[settings[0]][protocol][n]['psnr'] for n in names])
    series = {}
    for name in settings[1:] or settings:
        gain = np.array([table[name][protocol][n]['psnr'] for n in names]) - reference
        series['%s (mean %+.2f dB)' % (textwrap.shorten(name, 70), gain.mean())] = gain
    return save_grouped_bars(path, names, series, 'PSNR change (dB), %s' % protocol,
                             title='against: %s' % textwrap.shorten(settings[0], 90), title_size=9,
                             width=min(16.0, 2.0 + 0.6 * len(names)), label_rotation=60, label_size=8,
                             legend_size=7)


def save_scene_figures(folder, frames, methods, scenes, protocol='gradient@0.10', seed=0):
    """One Figure-1 style picture per scene in ``scenes``: every setting's fill, with its PSNR."""
    from ros2_depth_interp.evaluation.evaluate import semi_dense_input
    from ros2_depth_interp.evaluation.figures import save_figure1
    from ros2_depth_interp.evaluation.metrics import compute_metrics
    mode, density = protocol.split('@')
    paths = []
    for frame in frames:
        if frame['name'] not in scenes:
            continue
        sparse, mask = semi_dense_input(frame, mode, float(density), seed)
        outputs, captions = {}, {}
        for name, method in methods.items():
            label = textwrap.fill(name, 34)
            outputs[label] = method(sparse, mask, frame['intensity'])
            psnr = compute_metrics(outputs[label], frame['gt'], frame['valid'], peak=frame['peak'])['psnr']
            captions[label] = '%.2f dB' % psnr
        path = os.path.join(folder, 'prefill_%s_%s.png' % (frame['name'], protocol.replace('@', '_')))
        save_figure1(path, frame['intensity'], sparse, mask, outputs, gt=frame['gt'], valid=frame['valid'],
                     title='%s, %s: the pre-fill alone' % (frame['name'], protocol), captions=captions,
                     units=frame.get('units', ''))
        paths.append(path)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--scenes', default=TWELVE, help="comma list, or 'all2006' for the twenty 2006 scenes")
    p.add_argument('--only', help="run only the settings whose name contains this text (several: 'A|B')")
    p.add_argument('--data', default=os.path.join(shared_data_dir(), 'middlebury'))
    p.add_argument('--out', help='also write the numbers as JSON here, and the chart of gains beside it')
    p.add_argument('--figure-scenes', default='', help='comma list: draw these scenes (gradient masks)')
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    scenes = ALL_2006 if args.scenes == 'all2006' else args.scenes
    frames = load_middlebury_frames(args.data, tuple(scenes.split(',')))
    methods = {name: prefill_only(PyramidPrefill(**options)) for name, options in SETTINGS.items()
               if not args.only or any(text in name for text in args.only.split('|'))}
    results, _ = evaluate(frames, PROTOCOLS, methods)
    table = {name: {proto: {f: dict(psnr=results[proto][f][name]['all']['psnr'],
                                    seconds=results[proto][f][name]['time_s']) for f in results[proto]}
                    for proto in PROTOCOLS} for name in methods}
    names = [f['name'] for f in frames]
    print('| pre-fill | ' + ' | '.join('%s mean (%s)' % (p, '/'.join(names)) for p in PROTOCOLS) + ' |')
    print('|---' * (len(PROTOCOLS) + 1) + '|')
    for name, per in table.items():
        cells = []
        for proto in PROTOCOLS:
            values = [per[proto][n]['psnr'] for n in names]
            cells.append('%.2f (%s)' % (np.mean(values), '/'.join('%.2f' % v for v in values)))
        print('| %s | %s |' % (name, ' | '.join(cells)))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(scenes=names, table=table), f, indent=1)
        print('wrote %s, %s' % (args.out, save_gain_chart(os.path.splitext(args.out)[0] + '.png', table, names)))
    figure_scenes = [s for s in args.figure_scenes.split(',') if s]
    if figure_scenes:
        folder = os.path.dirname(os.path.abspath(args.out)) if args.out else '.'
        for path in save_scene_figures(folder, frames, methods, figure_scenes):
            print('wrote %s' % path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
