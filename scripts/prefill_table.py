#!/usr/bin/env python3
"""PSNR of the parameter-free pre-fill alone (no network) under several sweep settings.

Usage: scripts/prefill_table.py [--scenes Baby3,Cloth4,...] [--data DIR] [--out table.json]
Same masks as `depth_interp eval` (seed 0, 10 % uniform and gradient); whole frames at third size.
This is how the pre-fill of the `default` preset was chosen (on 2006 scenes, see models/README.md).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ros2_depth_interp import metrics  # noqa: E402
from ros2_depth_interp.evaluate import load_middlebury_frames, parse_protocol, protocol_label, protocol_rng  # noqa: E402
from ros2_depth_interp.masks import make_semi_dense  # noqa: E402
from ros2_depth_interp.model import PyramidPrefill  # noqa: E402
from ros2_depth_interp.preprocess import prepare  # noqa: E402
from ros2_depth_interp.resources import shared_data_dir  # noqa: E402

# name: (sweeps per level finest first, momentum)
SETTINGS = {
    'plain sweeps 1/3/10 (shipped before)': ((1, 3, 10, 10, 10, 10), 0.0),
    'plain sweeps 2/4/20/40/60/60': ((2, 4, 20, 40, 60, 60), 0.0),
    'heavy-ball 0.95, 2/4/20/40/60/60 (phase 5 trained on it)': ((2, 4, 20, 40, 60, 60), 0.95),
    'heavy-ball 0.95, 1/4/20/40/60/60 (the default graph)': ((1, 4, 20, 40, 60, 60), 0.95),
    'heavy-ball 0.95, 3/8/40/60/100/100': ((3, 8, 40, 60, 100, 100), 0.95),
    'heavy-ball 0.95, 30/60/100/100/100/100 (quality graph)': ((30, 60, 100, 100, 100, 100), 0.95),
    'heavy-ball 0.95, 300 per level (near convergence)': ((300,) * 6, 0.95),
}
PROTOCOLS = ('uniform@0.10', 'gradient@0.10')


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--scenes', default='Baby3,Cloth4,Bowling1,Flowerpots,Midd1,Rocks1')
    p.add_argument('--data', default=os.path.join(shared_data_dir(), 'middlebury'))
    p.add_argument('--out', help='also write the numbers as JSON here')
    args = p.parse_args()
    torch.set_num_threads(2)
    frames = load_middlebury_frames(args.data, tuple(args.scenes.split(',')))
    table = {}
    for name, (sweeps, momentum) in SETTINGS.items():
        prefill = PyramidPrefill(5, iterations=sweeps, momentum=momentum)
        for proto in PROTOCOLS:
            mode, density = parse_protocol(proto)
            label = protocol_label(mode, density)
            for frame in frames:
                gt, valid, intensity = frame['gt'], frame['valid'], frame['intensity']
                sparse, mask = make_semi_dense(np.where(valid, gt, 0), intensity, mode, density,
                                               protocol_rng(0, frame['name'], label))
                mask &= valid
                prepared = prepare(np.where(mask, sparse, 0).astype(np.float32), mask, intensity, 32)
                x = torch.from_numpy(prepared.tensor)
                t0 = time.perf_counter()
                with torch.no_grad():
                    fill = prefill(x[:, 0:1], x[:, 1:2], x[:, 2:3])
                seconds = time.perf_counter() - t0
                out = fill[0, 0, :prepared.height, :prepared.width].numpy() * prepared.scale
                psnr = metrics.compute_metrics(out, gt, valid, frame['peak'])['psnr']
                table.setdefault(name, {}).setdefault(label, {})[frame['name']] = dict(psnr=psnr, torch_s=seconds)
        print(name, flush=True, file=sys.stderr)
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
