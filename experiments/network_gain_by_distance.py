#!/usr/bin/env python3
"""Where the network's correction helps: its gain over its own pre-fill, by distance to the nearest sample.

Usage: experiments/network_gain_by_distance.py [--model models/depth_interp.onnx] [--scenes Baby3,Cloth4]
       [--protocol gradient@0.10] [--data-kind middlebury|tum] [--data DIR] [--out gain.json]

For each scene (whole frame, third size, `eval`'s masks: seed 0), the shipped graph and the same
graph's pre-fill alone (no network) fill the same input. The squared-error reduction (pre-fill
minus model, in units of 1e-6 of the PSNR peak squared per valid pixel, so the bands add up to the
change of the frame's mean squared error) is summed over the known pixels and over bands of
distance to the nearest known pixel. Positive: the network helps there. Prints a table; with --out
also JSON and a PNG beside it.
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ros2_depth_interp.evaluation.evaluate import (load_middlebury_frames, load_tum_frames, parse_protocol,  # noqa: E402
                                        semi_dense_input)
from ros2_depth_interp.core.inference import DepthInterpolator  # noqa: E402
from ros2_depth_interp.learning.model import build_model  # noqa: E402
from ros2_depth_interp.learning.torch_backend import prefill_only  # noqa: E402
from ros2_depth_interp.core.resources import shared_data_dir  # noqa: E402
from ros2_depth_interp.learning.train import VAL_SCENES  # noqa: E402

# distance 0: the known pixels themselves; the bands cover every valid pixel once
BANDS = ((0.0, 0.5), (0.5, 3.0), (3.0, 10.0), (10.0, 30.0), (30.0, float('inf')))


def band_name(lo, hi):
    if lo == 0.0:
        return 'known pixels'
    return '%g-%g px' % (lo, hi) if np.isfinite(hi) else '>= %g px' % lo


def gains(frame, mode, density, seed, model, prefill):
    gt, valid, intensity = frame['gt'], frame['valid'], frame['intensity']
    sparse, mask = semi_dense_input(frame, mode, density, seed)
    with_net = model.interpolate(sparse, mask, intensity)
    alone = prefill(sparse, mask, intensity)
    scale = 1e6 / (valid.sum() * frame['peak'] ** 2)
    reduction = np.where(valid, (alone - gt) ** 2 - (with_net - gt) ** 2, 0.0) * scale
    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    def psnr(x):
        return float(10 * np.log10(frame['peak'] ** 2 / np.mean((x - gt)[valid] ** 2)))
    return dict(prefill_psnr=psnr(alone), model_psnr=psnr(with_net),
                bands={band_name(lo, hi): float(reduction[valid & (distance >= lo) & (distance < hi)].sum())
                       for lo, hi in BANDS})


def save_picture(path, rows, title):
    from ros2_depth_interp.evaluation.figures import save_grouped_bars
    names = list(rows)
    bands = list(next(iter(rows.values()))['bands'])
    # symlog: one training scene gains 100x more than the rest
    return save_grouped_bars(path, names, {band: [rows[n]['bands'][band] for n in names] for band in bands},
                             'squared-error reduction by the network\n(1e-6 peak^2 per pixel; > 0: it helps)',
                             title=title, legend_title='distance to nearest sample', symlog=10)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', default=None, help='ONNX graph (default: the shipped model)')
    p.add_argument('--scenes', default=None,
                   help='comma list (default: the validation scenes, or every TUM frame found)')
    p.add_argument('--data-kind', choices=('middlebury', 'tum'), default='middlebury')
    p.add_argument('--protocol', default='gradient@0.10')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--data', default=None, help='default: <shared data>/middlebury or /tum')
    p.add_argument('--out', help='write the numbers as JSON here (and a PNG beside it)')
    args = p.parse_args(argv)
    model = DepthInterpolator(args.model, providers=['CPUExecutionProvider'])
    config = json.loads(model.metadata['config'])
    network = build_model(config)
    if not hasattr(network, 'prefill'):
        print('network_gain_by_distance: %s has no pre-fill to compare its network with (this measures '
              'models of the prefill_cnn preset, such as model 0.6.0)' % (args.model or 'the shipped model'),
              file=sys.stderr)
        return 2
    prefill = prefill_only(network.prefill)
    mode, density = parse_protocol(args.protocol)
    data = args.data or os.path.join(shared_data_dir(), args.data_kind)
    if args.data_kind == 'tum':
        frames = load_tum_frames(data, args.scenes.split(',') if args.scenes else None)
    else:
        frames = load_middlebury_frames(data, tuple((args.scenes or ','.join(VAL_SCENES)).split(',')))
    rows = {}
    print('| scene | pre-fill alone | with the network | ' + ' | '.join(band_name(*b) for b in BANDS) + ' |')
    print('|---' * (3 + len(BANDS)) + '|')
    for frame in frames:
        row = rows[frame['name']] = gains(frame, mode, density, args.seed, model, prefill)
        print('| %s | %.2f | %.2f | %s |' % (frame['name'], row['prefill_psnr'], row['model_psnr'],
                                            ' | '.join('%+.1f' % v for v in row['bands'].values())), flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(model=model.model_path, protocol=args.protocol, seed=args.seed, scenes=rows), f, indent=1)
        save_picture(os.path.splitext(args.out)[0] + '.png', rows,
                     'network gain over its pre-fill, %s' % args.protocol)
    return 0


if __name__ == '__main__':
    sys.exit(main())
