#!/usr/bin/env python3
"""Mean PSNR of training checkpoints on the validation scenes, to choose the one to ship.

Usage: scripts/choose_checkpoint.py CKPT.pt [CKPT.pt ...] [--scenes Baby3,Cloth4] [--data DIR]
Each checkpoint runs through the torch backend on whole frames (third size) of scenes that training
held out (by default the first checkpoint's ``--val-scenes``, recorded in it; train.VAL_SCENES for
checkpoints older than that record), under the 10 % uniform, gradient and LSD-SLAM-like protocols, with the
same masks for every checkpoint (seed 0). The "pre-fill" row is the first checkpoint's
parameter-free pre-fill alone, without the network. Never use the test scenes
(Books, Laundry, Reindeer) here.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # prefill_table, also when imported

from prefill_table import prefill_method  # noqa: E402  (this folder)
from ros2_depth_interp.evaluation.evaluate import evaluate, load_middlebury_frames, summarize  # noqa: E402
from ros2_depth_interp.core.inference import DepthInterpolator  # noqa: E402
from ros2_depth_interp.learning.torch_backend import TorchBackend  # noqa: E402
from ros2_depth_interp.core.resources import shared_data_dir  # noqa: E402
from ros2_depth_interp.learning.train import VAL_SCENES  # noqa: E402

PROTOCOLS = ('uniform@0.10', 'gradient@0.10', 'lsd@0.10')


def held_out_scenes(checkpoint):
    """The validation scenes a checkpoint's training held out (older checkpoints: train.VAL_SCENES)."""
    blob = torch.load(checkpoint, map_location='cpu', weights_only=False)
    return tuple(blob.get('training', {}).get('val_scenes') or VAL_SCENES)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('checkpoints', nargs='+')
    p.add_argument('--scenes', default=None, help="comma list (default: the first checkpoint's validation scenes)")
    p.add_argument('--data', default=os.path.join(shared_data_dir(), 'middlebury'))
    p.add_argument('--prefill', action='store_true', help='also a pre-fill-only row for the first checkpoint')
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    frames = load_middlebury_frames(args.data, tuple(args.scenes.split(',')) if args.scenes
                                    else held_out_scenes(args.checkpoints[0]))
    methods = {}
    for path in args.checkpoints:
        interp = DepthInterpolator(model_path=path, backend=TorchBackend(path, 'cpu'), warmup=False)
        if args.prefill and not methods:
            methods['pre-fill (%s)' % os.path.basename(path)] = prefill_method(interp._backend.model.prefill)
        methods[path] = interp.interpolate
    results, _ = evaluate(frames, PROTOCOLS, methods, progress=False)
    summary = summarize(results, methods)
    print('| checkpoint | ' + ' | '.join(PROTOCOLS) + ' | mean |')
    print('|---' * (len(PROTOCOLS) + 2) + '|')
    for name in methods:
        values = [summary[proto][name]['all']['psnr'] for proto in PROTOCOLS]
        per_scene = ['/'.join('%.2f' % results[proto][f['name']][name]['all']['psnr'] for f in frames)
                     for proto in PROTOCOLS]
        print('| %s | %s | %.2f |' % (name, ' | '.join('%.2f (%s)' % (v, s) for v, s in zip(values, per_scene)),
                                      np.mean(values)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
