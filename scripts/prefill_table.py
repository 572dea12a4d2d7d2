#!/usr/bin/env python3
"""PSNR of the parameter-free pre-fill alone (no network) under several sweep settings.

Usage: scripts/prefill_table.py [--scenes Baby3,Cloth4,...|all2006] [--only TEXT] [--data DIR] [--out table.json]
`depth_interp eval`'s own run (same masks: seed 0, 10 % uniform and gradient; whole frames at
third size) with one method per setting. This is how the pre-fill of the `default` preset was
chosen (on 2006 scenes, see models/README.md).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ros2_depth_interp.evaluate import evaluate, load_middlebury_frames  # noqa: E402
from ros2_depth_interp.model import PyramidPrefill  # noqa: E402
from ros2_depth_interp.preprocess import finish, prepare  # noqa: E402
from ros2_depth_interp.resources import shared_data_dir  # noqa: E402

HEAVY_BALL = dict(solver='heavy_ball', weights='global', momentum=0.95)
CG = dict(solver='cg', weights='variance', variance_scale=0.3)
# name: PyramidPrefill options (iterations per level, finest first; five levels unless said)
SETTINGS = {
    'plain sweeps 1/3/10 (session 1)': dict(iterations=(1, 3, 10, 10, 10, 10)),
    'plain sweeps 2/4/20/40/60/60': dict(iterations=(2, 4, 20, 40, 60, 60)),
    'heavy-ball 0.95, 1/4/20/40/60/60 (session 2 default graph)': dict(HEAVY_BALL, iterations=(1, 4, 20, 40, 60, 60)),
    'heavy-ball 0.95, 30/60/100/100/100/100 (session 2 quality graph)': dict(HEAVY_BALL, iterations=(30, 60, 100, 100, 100, 100)),
    'heavy-ball 0.95, 300 per level': dict(HEAVY_BALL, iterations=(300,) * 6),
    'variance weights, CG 4/10/15/20/20/20 (phase 6 trained on it)': dict(CG, iterations=(4, 10, 15, 20, 20, 20)),
    'variance weights, CG 6/30/20/20/20/20 (session 3 default graph)': dict(CG, iterations=(6, 30, 20, 20, 20, 20)),
    'variance weights, CG 30/300/100/100/100/100 (session 3 quality graph)': dict(CG, iterations=(30, 300, 100, 100, 100, 100)),
    'variance weights, CG 300 per level': dict(CG, iterations=(300,) * 6),
    'domain transform at half resolution, then CG 6/30': dict(CG, levels=1, top='domain_transform', iterations=(6, 30)),
    'domain transform at half resolution, then CG 10/30 (session 4 default graph)':
        dict(CG, levels=1, top='domain_transform', iterations=(10, 30)),
    'domain transform at half resolution, then CG 20/40': dict(CG, levels=1, top='domain_transform', iterations=(20, 40)),
    'domain transform at half resolution, then CG 20/60': dict(CG, levels=1, top='domain_transform', iterations=(20, 60)),
    'domain transform at half resolution, then CG 30/100': dict(CG, levels=1, top='domain_transform', iterations=(30, 100)),
    'domain transform at half resolution, then CG 300/300': dict(CG, levels=1, top='domain_transform', iterations=(300, 300)),
}
PROTOCOLS = ('uniform@0.10', 'gradient@0.10')
TWELVE = 'Baby3,Cloth4,Bowling1,Flowerpots,Midd1,Rocks1,Baby1,Cloth1,Lampshade1,Monopoly,Plastic,Wood1'
ALL_2006 = ('Baby1,Baby2,Baby3,Bowling1,Bowling2,Cloth1,Cloth2,Cloth3,Cloth4,Flowerpots,Lampshade1,Lampshade2,'
            'Midd1,Midd2,Monopoly,Plastic,Rocks1,Rocks2,Wood1,Wood2')


def prefill_method(prefill):
    """``prefill`` (a ``PyramidPrefill``) with the interface of ``DepthInterpolator.interpolate``:
    the same normalization, padding and cropping as the model."""
    def interpolate(depth, mask, intensity):
        prepared = prepare(depth, mask, intensity, 2 ** prefill.levels)
        x = torch.from_numpy(prepared.tensor)
        with torch.no_grad():
            fill = prefill(x[:, 0:1], x[:, 1:2], x[:, 2:3]).numpy()
        return finish(prepared, fill, np.ones_like(fill))[0]
    return interpolate


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--scenes', default=TWELVE, help="comma list, or 'all2006' for the twenty 2006 scenes")
    p.add_argument('--only', help='run only the settings whose name contains this text')
    p.add_argument('--data', default=os.path.join(shared_data_dir(), 'middlebury'))
    p.add_argument('--out', help='also write the numbers as JSON here')
    args = p.parse_args()
    torch.set_num_threads(2)
    scenes = ALL_2006 if args.scenes == 'all2006' else args.scenes
    frames = load_middlebury_frames(args.data, tuple(scenes.split(',')))
    methods = {name: prefill_method(PyramidPrefill(**{'levels': 5, **options})) for name, options in SETTINGS.items()
               if not args.only or args.only in name}
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
    return 0


if __name__ == '__main__':
    sys.exit(main())
