"""``depth_interp choose``: mean PSNR of training checkpoints on the validation scenes, to pick one.

Usage: depth_interp choose CKPT.pt [CKPT.pt ...] [--scenes Baby3,Cloth4] [--data DIR] [--prefill]

Each checkpoint runs through the torch backend on whole frames (third size) of the scenes its
training held out (by default the first checkpoint's ``--val-scenes``, recorded in it;
``train.VAL_SCENES`` for checkpoints without that record), under the 10 % uniform, gradient and
LSD-SLAM-like protocols, with the same masks for every checkpoint (seed 0). With ``--prefill``, a
first row scores the first checkpoint's parameter-free pre-fill alone, without the network. The
test scenes (Books, Laundry, Reindeer) never choose.
"""
import argparse
import os
import sys

import numpy as np

from ..core.inference import DepthInterpolator
from ..core.resources import shared_data_dir
from ..learning.torch_backend import TorchBackend, prefill_only
from ..learning.train import VAL_SCENES
from .evaluate import evaluate, load_middlebury_frames, summarize

PROTOCOLS = ('uniform@0.10', 'gradient@0.10', 'lsd@0.10')


def held_out_scenes(checkpoint):
    """The validation scenes a checkpoint's training held out (without that record: train.VAL_SCENES)."""
    import torch
    blob = torch.load(checkpoint, map_location='cpu', weights_only=False)
    return tuple(blob.get('training', {}).get('val_scenes') or VAL_SCENES)


def build_parser():
    p = argparse.ArgumentParser(prog='depth_interp choose', description=__doc__.splitlines()[0])
    p.add_argument('checkpoints', nargs='+', help='checkpoints (.pt) written by depth_interp train')
    p.add_argument('--scenes', default=None, help="comma list (default: the first checkpoint's validation scenes)")
    p.add_argument('--data', default=os.path.join(shared_data_dir(), 'middlebury'), help='Middlebury root')
    p.add_argument('--prefill', action='store_true', help="also a row for the first checkpoint's pre-fill alone")
    return p


def score_table(frames, results, summary, methods):
    """Markdown rows: per method, the mean PSNR per protocol (per scene in brackets) and over protocols."""
    lines = ['| checkpoint | ' + ' | '.join(PROTOCOLS) + ' | mean |', '|---' * (len(PROTOCOLS) + 2) + '|']
    for name in methods:
        values = [summary[proto][name]['all']['psnr'] for proto in PROTOCOLS]
        per_scene = ['/'.join('%.2f' % results[proto][f['name']][name]['all']['psnr'] for f in frames)
                     for proto in PROTOCOLS]
        cells = ' | '.join('%.2f (%s)' % (v, s) for v, s in zip(values, per_scene))
        lines.append('| %s | %s | %.2f |' % (name, cells, np.mean(values)))
    return lines


def main(argv=None):
    import torch
    args = build_parser().parse_args(argv)
    torch.set_num_threads(2)
    scenes = tuple(args.scenes.split(',')) if args.scenes else held_out_scenes(args.checkpoints[0])
    frames = load_middlebury_frames(args.data, scenes)
    methods = {}
    for path in args.checkpoints:
        interp = DepthInterpolator(model_path=path, backend=TorchBackend(path, 'cpu'), warmup=False)
        if args.prefill and not methods:
            methods['pre-fill (%s)' % os.path.basename(path)] = prefill_only(interp._backend.model.prefill)
        methods[path] = interp.interpolate
    results, _ = evaluate(frames, PROTOCOLS, methods, progress=False)
    print('\n'.join(score_table(frames, results, summarize(results, methods), methods)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
