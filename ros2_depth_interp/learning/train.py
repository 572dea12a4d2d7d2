"""``depth_interp train``: train the interpolation network.

Defaults follow the paper: Adam, lr 1e-4 for 40k iterations then 1e-5 for 30k (``--steps``,
``--lr-drop-at`` scale the schedule for short runs). Data: procedurally generated scenes and, when
given, Middlebury 2006 scenes (the 2005 scenes are kept for evaluation). Checkpoints every
``--ckpt-every`` steps and at the end (``last.pt``, resumable with ``--resume``); metrics go to
``metrics.jsonl``; validation pictures to ``val_<step>.png``.

Multi-GPU: ``torchrun --nproc_per_node N -m ros2_depth_interp.learning.train ...`` (PyTorch DDP).
On a CPU it runs as it is (slowly; see models/README.md for what a CPU run reaches).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

from .curves import save_training_curves
from .datasets import HELD_OUT_SCENES, KEPT_BACK_SCENES
from .losses import CombinedLoss, VGGWeightsMissing
from .model import PRESETS, build_model, config_from_dict, count_parameters
from .prefill_options import add_prefill_arguments, apply_prefill_arguments
from ..core.preprocess import InputError, prepare

# never trained on: the kept-back scenes and, by default, the held-out families (validation)
EVAL_SCENES = KEPT_BACK_SCENES
VAL_SCENES = HELD_OUT_SCENES


def parse_size(text):
    h, _, w = text.lower().partition('x')
    return int(h), int(w or h)


def _scene_list(text):
    names = tuple(s.strip() for s in str(text).split(',') if s.strip())
    if not names:
        raise argparse.ArgumentTypeError('expected a comma list of scene names, got %r' % text)
    return names


def build_parser():
    p = argparse.ArgumentParser(prog='depth_interp train', description=__doc__.splitlines()[0])
    p.add_argument('--out', default='runs/train', help='run folder (checkpoints, metrics, pictures)')
    p.add_argument('--preset', default='default', choices=sorted(PRESETS))
    p.add_argument('--width', type=int, help='override the preset width')
    p.add_argument('--stem-width', type=int)
    p.add_argument('--dilations', help='comma list, e.g. 1,2,4,8')
    p.add_argument('--dropout', type=float)
    p.add_argument('--widths', help='U-Net presets: comma list of widths per level, e.g. 16,24,40,64,96')
    p.add_argument('--blocks', help='U-Net presets: comma list of residual blocks per level, e.g. 0,1,1,2,2')
    p.add_argument('--propagation', help="'spn' presets: level:steps list, e.g. 5:8,4:12,3:12,2:10,1:6 "
                                         "(level 1 = half resolution)")
    p.add_argument('--smoothing', help="'geodesic' presets: one round of harmonic smoothing, a comma list "
                                        "of distances in px, e.g. 8,4,2,1 (none: leave it out)")
    p.add_argument('--smoothing-rounds', type=int, help="'geodesic' presets: rounds of --smoothing (0: none)")
    p.add_argument('--propagation-scale', type=int, choices=(1, 2),
                   help="'geodesic' presets: propagate at full (1) or half (2) resolution")
    p.add_argument('--fine-distances', help="'geodesic' presets with --propagation-scale 2: a propagation at "
                                             "full resolution after the half-resolution one, a comma list of "
                                             "distances in px, e.g. 4,2,1,2,1 (none: leave it out)")
    p.add_argument('--fine-smoothing', help="'geodesic' presets: harmonic smoothing after --fine-distances, a "
                                            "comma list of distances in px (none: leave it out)")
    p.add_argument('--fine-smoothing-rounds', type=int, help="'geodesic' presets: rounds of --fine-smoothing")
    p.add_argument('--colorization-steps', type=int,
                   help="'geodesic' presets: colorization sweeps at full resolution after the propagation")
    p.add_argument('--colorization-neighbours', type=int, choices=(4, 8),
                   help="'geodesic' presets: neighbours of each colorization sweep")
    p.add_argument('--correction-width', type=int,
                   help="'geodesic' presets: width of the network that corrects the finished fill (0: none)")
    p.add_argument('--correction-dilations', help="'geodesic' presets: that network's dilations, e.g. 1,2,4")
    add_prefill_arguments(p)
    p.add_argument('--steps', type=int, default=70000)
    p.add_argument('--lr', type=float, default=1e-4)
    p.add_argument('--lr-drop-at', type=int, default=40000, help='step where lr becomes --lr-after')
    p.add_argument('--lr-after', type=float, default=1e-5)
    p.add_argument('--lr-drop-fraction', type=float, default=0.0,
                   help='with --time-limit: also drop the lr once this fraction of the time has passed')
    p.add_argument('--batch', type=int, default=8, help='per process')
    p.add_argument('--crop', type=parse_size, default=(192, 256), help='HxW training crop')
    p.add_argument('--sources', default='synthetic,middlebury', help='comma list: synthetic, middlebury')
    p.add_argument('--middlebury', help='Middlebury root (default: <shared data>/middlebury)')
    p.add_argument('--synthetic-fraction', type=float, default=0.5, help='share of synthetic samples')
    p.add_argument('--val-scenes', type=_scene_list, default=VAL_SCENES,
                   help='comma list of Middlebury scenes held out of training for validation (whole '
                        'families, e.g. Lampshade1,Lampshade2,Plastic, keep siblings out of training)')
    p.add_argument('--mask-modes', default='gradient,uniform,lsd')
    p.add_argument('--densities', default='0.05,0.2', help='min,max mask density')
    p.add_argument('--tilt', type=float, default=0.0,
                   help='add a random plane to each example\'s depth, slope up to this x the median depth '
                        'across the crop (datasets.TrainingSampler); 0: off')
    p.add_argument('--w-l1', type=float, default=1.0)
    p.add_argument('--w-mse', type=float, default=0.0, help='squared error (what PSNR measures)')
    p.add_argument('--w-grad', type=float, default=0.5)
    p.add_argument('--w-perceptual', type=float, default=0.0)
    p.add_argument('--w-tv', type=float, default=0.0)
    p.add_argument('--w-confidence', type=float, default=0.1)
    p.add_argument('--perceptual-layer', default='relu2_2')
    p.add_argument('--vgg-weights', help='path to torchvision vgg16-397923af.pth')
    p.add_argument('--perceptual-fallback', choices=['random'],
                   help='use a fixed random-weight VGG-16 when ImageNet weights are absent (not the paper\'s loss)')
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--device', default='auto')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--time-limit', type=float, default=0.0, help='minutes; stop cleanly after this long '
                                                                     '(with --resume: counting the earlier sittings)')
    p.add_argument('--ckpt-every', type=int, default=500)
    p.add_argument('--keep-every', type=int, default=0,
                   help='also keep step_NNNNNN.pt every this many steps (0: only last.pt), to choose one later')
    p.add_argument('--val-every', type=int, default=500, help='0: only at the end')
    p.add_argument('--val-samples', type=int, default=8)
    p.add_argument('--pictures', choices=['all', 'latest'], default='all',
                   help="'latest' overwrites val_latest.png instead of one picture per validation")
    p.add_argument('--resume', help='checkpoint to continue from')
    p.add_argument('--init', help='checkpoint whose weights start this run (fine-tuning)')
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0 = default)')
    return p


def make_config(args):
    cfg = PRESETS[args.preset].to_dict()
    if args.width:
        cfg['width'] = args.width
    if args.stem_width:
        cfg['stem_width'] = args.stem_width
    if args.dilations:
        cfg['dilations'] = [int(x) for x in args.dilations.split(',')]
    if args.dropout is not None:
        cfg['dropout'] = args.dropout
    for key in ('widths', 'blocks'):
        if getattr(args, key):
            cfg[key] = [int(x) for x in getattr(args, key).split(',')]
    if args.propagation:
        cfg['propagation'] = {int(level): int(steps) for level, _, steps in
                              (item.partition(':') for item in args.propagation.split(','))}
    for key in ('smoothing', 'fine_distances', 'fine_smoothing', 'correction_dilations'):
        if getattr(args, key) is not None:
            cfg[key] = [int(x) for x in getattr(args, key).split(',') if x.strip()]
    for key in ('smoothing_rounds', 'fine_smoothing_rounds', 'propagation_scale', 'colorization_steps',
                'colorization_neighbours', 'correction_width'):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    apply_prefill_arguments(cfg, args)
    return config_from_dict(cfg)


def make_sampler(args, scenes_exclude, seed_offset=0, only_scenes=None):
    from . import datasets
    from ..core.resources import shared_data_dir
    sources, weights = [], []
    names = [s.strip() for s in args.sources.split(',') if s.strip()]
    h, w = args.crop
    if 'synthetic' in names:
        sources.append(datasets.SyntheticSource(h + h // 4, w + w // 4))
        weights.append(args.synthetic_fraction)
    if 'middlebury' in names:
        root = args.middlebury or os.path.join(shared_data_dir(), 'middlebury')
        found = 0
        share = 1.0 - args.synthetic_fraction if 'synthetic' in names else 1.0
        for size, factor in (('ThirdSize', 3), ('HalfSize', 2)):
            dirs = []
            for d in datasets.list_middlebury(root, size):
                name = os.path.basename(os.fspath(d).rstrip('/'))
                if (name in only_scenes) if only_scenes else (name not in scenes_exclude):
                    dirs.append(d)
            if dirs:
                sources.append(datasets.MiddleburySource(dirs, factor))
                weights.append(share * (0.75 if factor == 3 else 0.25))
                found += len(dirs)
        if not found:
            print('train: no Middlebury scenes under %s; training on the other sources' % root, file=sys.stderr)
    if not sources:
        raise SystemExit('train: no training data (sources=%s)' % args.sources)
    lo, hi = (float(x) for x in args.densities.split(','))
    modes = tuple(m.strip() for m in args.mask_modes.split(','))
    sampler = datasets.TrainingSampler(sources, crop=args.crop, mask_modes=modes, densities=(lo, hi),
                                       seed=args.seed + seed_offset, augment=True, weights=weights,
                                       tilt=args.tilt)
    return sampler


def to_training_example(sample, stride):
    """Sampler output -> (input tensor, normalized gt, valid) using the same normalization as inference."""
    prepared = prepare(sample['sparse'], sample['mask'], sample['intensity'], stride)
    h, w = sample['gt'].shape
    gt = np.zeros(prepared.tensor.shape[2:], np.float32)
    gt[:h, :w] = sample['gt'] / prepared.scale
    valid = gt > 0
    return prepared.tensor[0], gt[None], valid[None]


class SampleStream(torch.utils.data.IterableDataset):
    """Endless stream of training examples; every worker (and every DDP rank) has its own seed."""

    def __init__(self, sampler, stride, seed):
        super().__init__()
        self.sampler, self.stride, self.seed = sampler, stride, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            try:
                yield to_training_example(self.sampler.sample(rng), self.stride)
            except InputError:  # a crop with no known pixel: draw again
                continue


def load_matching(model, state):
    """Start ``model`` from the tensors of ``state`` whose name and shape match (fine-tuning a changed
    architecture, e.g. one residual block fewer); say what was left out."""
    own = model.state_dict()
    taken = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(taken, strict=False)
    skipped = sorted(set(state) - set(taken))
    fresh = sorted(set(own) - set(taken))
    if skipped or fresh:
        print('train: --init: %d tensors taken; not in this network: %s; newly initialized: %s'
              % (len(taken), ', '.join(skipped) or 'none', ', '.join(fresh) or 'none'), file=sys.stderr)


def lr_at(step, args, elapsed=0.0):
    late = args.time_limit and args.lr_drop_fraction and elapsed > args.lr_drop_fraction * args.time_limit * 60
    return args.lr if step < args.lr_drop_at and not late else args.lr_after


def validation_set(args, stride):
    """A fixed list of examples from scenes never trained on (synthetic seeds apart, ``--val-scenes``)."""
    rng = np.random.default_rng(12345)
    val_args = argparse.Namespace(**vars(args))
    val_args.seed = args.seed + 10_000
    val_args.tilt = 0.0   # validation scenes as they are
    try:
        sampler = make_sampler(val_args, (), seed_offset=10_000, only_scenes=args.val_scenes)
    except SystemExit:
        return []
    examples = []
    while len(examples) < args.val_samples:
        try:
            examples.append(to_training_example(sampler.sample(rng), stride))
        except InputError:
            continue
    return examples


@torch.no_grad()
def validate(model, examples, device, criterion):
    model.eval()
    rmse, mae, psnr, losses, shown = [], [], [], [], None
    for x, gt, valid in examples:
        xb = torch.from_numpy(x)[None].to(device)
        gtb = torch.from_numpy(gt)[None].to(device)
        vb = torch.from_numpy(valid)[None].to(device)
        pred, conf = model(xb)
        loss, _ = criterion(pred, conf, gtb, vb)
        err = (pred - gtb)[vb]
        rmse.append(float(err.pow(2).mean().sqrt()))
        # PSNR against the example's largest true value (normalized depth has no fixed peak)
        psnr.append(float(10 * torch.log10(gtb[vb].max() ** 2 / err.pow(2).mean().clamp(min=1e-12))))
        mae.append(float(err.abs().mean()))
        losses.append(float(loss))
        if shown is None:
            shown = (x, pred[0, 0].cpu().numpy(), gt[0], conf[0, 0].cpu().numpy())
    model.train()
    return {'val_rmse': float(np.mean(rmse)), 'val_mae': float(np.mean(mae)), 'val_psnr': float(np.mean(psnr)),
            'val_loss': float(np.mean(losses))}, shown


def save_picture(path, shown):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    x, pred, gt, conf = shown
    valid = gt > 0
    vmin, vmax = np.percentile(gt[valid], [1, 99]) if valid.any() else (0, 2)
    sparse = np.where(x[1] > 0, x[0], np.nan)
    panels = [('intensity', x[2], 'gray', None), ('input (semi-dense)', sparse, 'viridis', (vmin, vmax)),
              ('output', pred, 'viridis', (vmin, vmax)), ('ground truth', np.where(valid, gt, np.nan), 'viridis', (vmin, vmax)),
              ('confidence', conf, 'magma', (0, 1))]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3))
    for ax, (title, img, cmap, lim) in zip(axes, panels):
        ax.imshow(img, cmap=cmap, vmin=lim[0] if lim else None, vmax=lim[1] if lim else None)
        ax.set_title(title)
        ax.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def save_checkpoint(path, model, optimizer, step, args, config, criterion, elapsed, history=()):
    """``history``: the training summaries of the runs this one started from (``--init``), oldest first."""
    raw = model.module if hasattr(model, 'module') else model
    training = {
        'steps': step, 'batch': args.batch, 'crop': list(args.crop), 'sources': args.sources,
        'mask_modes': args.mask_modes, 'densities': args.densities, 'loss': criterion.describe(),
        'lr': [args.lr, args.lr_drop_at, args.lr_after], 'seed': args.seed, 'seconds': round(elapsed, 1),
        'val_scenes': list(args.val_scenes),
        'device': str(next(raw.parameters()).device),
        'device_name': torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu',
        'config': config.to_dict(),
    }
    if args.tilt:
        training['tilt'] = args.tilt
    if history:
        training['history'] = list(history)
        training['total_steps'] = step + sum(h.get('steps', 0) for h in history)
    tmp = path + '.tmp'
    torch.save({'config': config.to_dict(), 'model': raw.state_dict(), 'optimizer': optimizer.state_dict(),
                'step': step, 'args': vars(args), 'training': training}, tmp)
    os.replace(tmp, path)


def setup_distributed(args):
    """(rank, world_size, device). torchrun sets WORLD_SIZE/RANK/LOCAL_RANK."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if args.device == 'auto':
        device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    else:
        device = torch.device(args.device)
    if world > 1:
        import torch.distributed as dist
        local = int(os.environ.get('LOCAL_RANK', '0'))
        if device.type == 'cuda':
            device = torch.device('cuda', local)
            torch.cuda.set_device(device)
        dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo')
        return dist.get_rank(), world, device
    return 0, 1, device


def train(args):
    rank, world, device = setup_distributed(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed + rank)
    config = make_config(args)
    model = build_model(config).to(device)
    try:
        criterion = CombinedLoss(args.w_l1, args.w_grad, args.w_perceptual, args.w_tv, args.w_confidence,
                                 args.perceptual_layer, args.vgg_weights, args.perceptual_fallback,
                                 mse=args.w_mse).to(device)
    except VGGWeightsMissing as exc:
        print('train: %s' % exc, file=sys.stderr)
        return 2
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    step = 0
    earlier_seconds = 0.0
    history = []
    if args.init:
        blob = torch.load(args.init, map_location=device, weights_only=False)
        earlier = dict(blob.get('training', {}))
        history = list(earlier.pop('history', [])) + [earlier]
        load_matching(model, blob['model'])
    if args.resume:
        blob = torch.load(args.resume, map_location=device, weights_only=False)
        history = list(blob.get('training', {}).get('history', []))
        model.load_state_dict(blob['model'])
        optimizer.load_state_dict(blob['optimizer'])
        step = int(blob['step'])
        # --time-limit and --lr-drop-fraction count the time of the earlier sittings too
        earlier_seconds = float(blob.get('training', {}).get('seconds', 0.0))
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == 'cuda' else None)
    model.train()
    os.makedirs(args.out, exist_ok=True)
    sampler = make_sampler(args, EVAL_SCENES + tuple(args.val_scenes))
    stream = SampleStream(sampler, config.stride, args.seed * 1000 + rank)
    loader = torch.utils.data.DataLoader(stream, batch_size=args.batch, num_workers=args.workers,
                                         pin_memory=device.type == 'cuda',
                                         persistent_workers=args.workers > 0)
    val = validation_set(args, config.stride) if rank == 0 else []
    if rank == 0:
        print('train: %d parameters, config %s, stride %d' % (count_parameters(model), config.to_dict(), config.stride))
        print('train: loss = %s' % criterion.describe())
        print('train: device %s, world size %d, batch %d x %s' % (device, world, args.batch, args.crop))
    log = open(os.path.join(args.out, 'metrics.jsonl'), 'a') if rank == 0 else None
    progress = None
    if rank == 0:
        from tqdm import tqdm
        progress = tqdm(total=args.steps, initial=step, unit='it', dynamic_ncols=True, mininterval=2.0)
    start = time.time() - earlier_seconds
    window_start, window_samples = time.time(), 0
    data = iter(loader)
    while step < args.steps:
        lr = lr_at(step, args, time.time() - start)
        for group in optimizer.param_groups:
            group['lr'] = lr
        x, gt, valid = (t.to(device, non_blocking=True) for t in next(data))
        pred, conf = model(x)
        loss, terms = criterion(pred, conf, gt, valid)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        window_samples += x.shape[0] * world
        out_of_time = bool(args.time_limit) and (time.time() - start) > args.time_limit * 60
        if world > 1:  # every rank must stop at the same step
            import torch.distributed as dist
            flag = torch.tensor([float(out_of_time)], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            out_of_time = bool(flag.item())
        if rank != 0:
            if out_of_time:
                break
            continue
        if step % 20 == 0 or step == args.steps:
            rate = window_samples / max(time.time() - window_start, 1e-9)
            window_start, window_samples = time.time(), 0
            postfix = dict(loss='%.4f' % float(loss.detach()), samples_s='%.1f' % rate)
            if args.time_limit:     # the step total is only a cap then: show the time left
                postfix['min_left'] = '%.0f' % max(0.0, args.time_limit - (time.time() - start) / 60)
            progress.set_postfix(refresh=False, **postfix)
            log.write(json.dumps(dict(step=step, loss=float(loss.detach()), lr=lr, samples_per_s=rate,
                                      **terms)) + '\n')
        progress.update(1)
        if val and ((args.val_every and step % args.val_every == 0) or step == args.steps or out_of_time):
            metrics, shown = validate(model.module if world > 1 else model, val, device, criterion)
            log.write(json.dumps(dict(step=step, **metrics)) + '\n')
            log.flush()
            progress.write('step %d: %s' % (step, ', '.join('%s %.4f' % kv for kv in metrics.items())))
            name = 'val_latest.png' if args.pictures == 'latest' else 'val_%06d.png' % step
            save_picture(os.path.join(args.out, name), shown)
            save_training_curves(os.path.join(args.out, 'metrics.jsonl'), os.path.join(args.out, 'curves.png'))
        if (args.ckpt_every and step % args.ckpt_every == 0) or step == args.steps or out_of_time:
            save_checkpoint(os.path.join(args.out, 'last.pt'), model, optimizer, step, args, config, criterion,
                            time.time() - start, history)
        if args.keep_every and step % args.keep_every == 0:
            save_checkpoint(os.path.join(args.out, 'step_%06d.pt' % step), model, optimizer, step, args, config,
                            criterion, time.time() - start, history)
        if out_of_time:
            progress.write('train: time limit of %g min reached at step %d' % (args.time_limit, step))
            break
    if rank == 0:
        save_checkpoint(os.path.join(args.out, 'last.pt'), model, optimizer, step, args, config, criterion,
                        time.time() - start, history)
        progress.close()
        log.close()
        print('train: done, %d steps in %.0f s, checkpoint %s' % (step, time.time() - start,
                                                                   os.path.join(args.out, 'last.pt')))
    if world > 1:
        import torch.distributed as dist
        # rank 0 is still validating and saving when the others leave the loop; tearing gloo down
        # under a peer that is still connected can abort the process (seen once in a test run)
        dist.barrier()
        dist.destroy_process_group()
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    return train(args)


if __name__ == '__main__':
    sys.exit(main())
