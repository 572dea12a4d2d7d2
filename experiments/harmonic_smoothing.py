#!/usr/bin/env python3
"""What harmonic smoothing adds to a trained geodesic candidate, by number of rounds, without retraining.

Usage: experiments/harmonic_smoothing.py [--scenes Baby1,...] [--weights experiments/weights/geodesic_local.pt]
                                         [--rounds 0,2,4,8] [--smoothing 8,4,2,1] [--out smoothing.json]

The candidate's weights (its U-Net's step costs and correction) run with the harmonic smoothing of
``learning/geodesic.py`` (point 3 of its docstring: rounds of one Jacobi step of the weighted Laplace
equation per distance of ``--smoothing``) after its propagation, for each number of ``--rounds``;
the untrained propagation (the image's edges) with none and with the middle count; colorization
beside them. Same masks as `depth_interp eval` (seed 0, 10 % uniform and gradient, whole frames at
third size).

The default scenes are training scenes, where the number of rounds is chosen; run it again with the
held-out families (--scenes Lampshade1,Lampshade2,Midd1,Midd2,Plastic,Laundry,Reindeer) to check it.
With --out: the numbers as JSON, a Markdown table beside it (.md) and a chart (.png) of every
method's PSNR minus colorization's per scene and protocol.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from propagation_ceiling import DEV_SCENES, PROTOCOLS, REFERENCE, Filler, markdown, measure, save_results  # noqa: E402
from ros2_depth_interp.core.resources import shared_data_dir  # noqa: E402
from ros2_depth_interp.evaluation.baselines import colorization  # noqa: E402
from ros2_depth_interp.evaluation.evaluate import load_middlebury_frames  # noqa: E402
from ros2_depth_interp.learning.export import load_torch_weights  # noqa: E402
from ros2_depth_interp.learning.geodesic import DepthGeodesic, GeodesicConfig, GeodesicPropagation  # noqa: E402


def _int_list(text):
    return tuple(int(x) for x in text.split(',') if x.strip())


def with_smoothing(model, smoothing, rounds):
    """``model`` with its propagation replaced by the same distances plus ``rounds`` of ``smoothing``."""
    model.propagate = GeodesicPropagation(model.config.distances, smoothing, rounds)
    return model


def methods_for(weights, smoothing, rounds):
    name = os.path.basename(weights)
    methods = {REFERENCE: lambda sparse, mask, frame: colorization(sparse, mask, frame['intensity'])}
    middle = rounds[len(rounds) // 2]
    for r in dict.fromkeys((0, middle)):
        torch.manual_seed(0)
        methods['image edges (untrained), %d rounds' % r] = Filler(
            with_smoothing(DepthGeodesic(GeodesicConfig()), smoothing, r))
    for r in rounds:
        methods['%s, %d rounds' % (name, r)] = Filler(with_smoothing(load_torch_weights(weights)[0], smoothing, r))
    return methods


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--scenes', default=DEV_SCENES, help='comma list of Middlebury scenes (third size)')
    p.add_argument('--weights', default='experiments/weights/geodesic_local.pt',
                   help="a geodesic candidate's checkpoint")
    p.add_argument('--rounds', type=_int_list, default=(0, 2, 4, 8), help='comma list of round counts')
    p.add_argument('--smoothing', type=_int_list, default=(8, 4, 2, 1), help="one round's distances (px)")
    p.add_argument('--data', default=os.path.join(shared_data_dir(), 'middlebury'))
    p.add_argument('--out', help='write the numbers as JSON here, with .md and .png beside it')
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    frames = load_middlebury_frames(args.data, tuple(args.scenes.split(',')))
    names = [f['name'] for f in frames]
    table, _ = measure(frames, methods_for(args.weights, args.smoothing, args.rounds))
    text = markdown(table, names)
    print(text)
    if args.out:
        save_results(args.out, dict(scenes=names, protocols=list(PROTOCOLS), weights=args.weights,
                                    smoothing=list(args.smoothing), rounds=list(args.rounds), table=table),
                     text, table, names, title='harmonic smoothing after the geodesic propagation', legend_below=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
