"""``depth_interp choose``: mean PSNR of training checkpoints on the validation scenes, to pick one.

Usage: depth_interp choose CKPT.pt [CKPT.pt ...] [--scenes Baby3,Cloth4] [--data DIR] [--prefill]
                           [--out scores.json]

Each checkpoint runs through the torch backend on whole frames (third size) of the scenes its
training held out (by default the first checkpoint's ``--val-scenes``, recorded in it;
``train.VAL_SCENES`` for checkpoints without that record), under the 10 % uniform, gradient and
LSD-SLAM-like protocols, with the same masks for every checkpoint (seed 0). With ``--prefill``, a
first row scores the first checkpoint's parameter-free pre-fill alone, without the network. The
test scenes (Books, Laundry, Reindeer) never choose.

With ``--out``: the scores as JSON (per checkpoint its training step, per protocol the mean and
the per-scene PSNR), the table beside it (.md) and a chart (.png) of each protocol's mean PSNR
against the training step, one line per run folder, so that runs of different recipes compare
checkpoint by checkpoint.
"""
import argparse
import json
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
    p.add_argument('--out', help='write the scores as JSON here, with the table (.md) and a chart (.png) beside it')
    return p


def score_table(frames, table):
    """Markdown rows from ``scores``: per method, the mean PSNR per protocol (per scene in brackets)
    and over protocols."""
    lines = ['| checkpoint | ' + ' | '.join(PROTOCOLS) + ' | mean |', '|---' * (len(PROTOCOLS) + 2) + '|']
    for name, row in table.items():
        per = [row['protocols'][proto] for proto in PROTOCOLS]
        cells = ' | '.join('%.2f (%s)' % (p['mean'], '/'.join('%.2f' % p['scenes'][f['name']] for f in frames))
                           for p in per)
        lines.append('| %s | %s | %.2f |' % (name, cells, np.mean([p['mean'] for p in per])))
    return lines


def training_step(checkpoint):
    """The step a checkpoint was written at (None where it does not say)."""
    import torch
    step = torch.load(checkpoint, map_location='cpu', weights_only=False).get('step')
    return None if step is None else int(step)


def scores(frames, results, summary, methods, steps=None):
    """Per method its training step (``steps``; None where not given, as for the pre-fill) and, per
    protocol, the mean PSNR (``summary``) and the PSNR per scene."""
    steps = steps or {}
    return {name: dict(step=steps.get(name),
                       protocols={proto: dict(mean=float(summary[proto][name]['all']['psnr']),
                                              scenes={f['name']: float(results[proto][f['name']][name]['all']['psnr'])
                                                      for f in frames})
                                  for proto in PROTOCOLS})
            for name in methods}


def save_step_chart(path, table):
    """Each protocol's mean PSNR against the training step, one line per run folder (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = {}
    for name, row in table.items():
        if row['step'] is not None:
            runs.setdefault(os.path.dirname(name) or '.', []).append(row)
    fig = Figure(figsize=(4.2 * len(PROTOCOLS), 3.8))
    FigureCanvasAgg(fig)
    for ax, proto in zip(fig.subplots(1, len(PROTOCOLS)), PROTOCOLS):
        for run, rows in sorted(runs.items()):
            rows = sorted(rows, key=lambda r: r['step'])
            ax.plot([r['step'] for r in rows], [r['protocols'][proto]['mean'] for r in rows], marker='o', label=run)
        ax.set_title(proto)
        ax.set_xlabel('training step')
        ax.set_ylabel('mean PSNR (dB)')
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


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
            prefill = getattr(interp._backend.model, 'prefill', None)
            if prefill is None:
                print('choose: --prefill needs a checkpoint with a pre-fill (preset prefill_cnn, model 0.6.0); '
                      '%s has none' % path, file=sys.stderr)
                return 2
            methods['pre-fill (%s)' % os.path.basename(path)] = prefill_only(prefill)
        methods[path] = interp.interpolate
    results, _ = evaluate(frames, PROTOCOLS, methods, progress=False)
    steps = {path: training_step(path) for path in args.checkpoints} if args.out else None
    table = scores(frames, results, summarize(results, methods), methods, steps)
    lines = score_table(frames, table)
    print('\n'.join(lines))
    if args.out:
        base = os.path.splitext(args.out)[0]
        folder = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(folder, exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(scenes=[f['name'] for f in frames], protocols=list(PROTOCOLS), checkpoints=table), f, indent=1)
        with open(base + '.md', 'w') as f:
            f.write('\n'.join(lines) + '\n')
        print('wrote %s, %s.md, %s' % (args.out, base, save_step_chart(base + '.png', table)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
