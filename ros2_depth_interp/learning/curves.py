"""Training curves: the loss and the validation scores of a run, from the ``metrics.jsonl`` that
``train`` writes, as a PNG (drawn at every validation and by the GPU device check)."""
import json
import os

import numpy as np


def read_metrics(metrics_jsonl_path):
    """The rows of a ``metrics.jsonl`` (``depth_interp train``) as (training rows, validation rows),
    each sorted by step. Training rows carry ``loss``, validation rows a ``val_*`` key. A resumed run
    appends to the same file and repeats the steps after its checkpoint: the row written last for a
    step wins. Lines that are not JSON (a run killed mid-write) are skipped."""
    train, val = {}, {}
    with open(metrics_jsonl_path) as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if not isinstance(row, dict) or 'step' not in row:
                continue
            if 'loss' in row:
                train[row['step']] = row
            if any(key.startswith('val_') for key in row):
                val[row['step']] = row
    return [train[s] for s in sorted(train)], [val[s] for s in sorted(val)]


def _smoothed(values, window):
    """Running mean over ``window`` values (shorter at the start)."""
    values = np.asarray(values, dtype=np.float64)
    if window <= 1 or values.size < 2:
        return values
    csum = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(ends - window, 0)
    return (csum[ends] - csum[starts]) / (ends - starts)


def save_training_curves(metrics_jsonl_path, png_path, title=None):
    """Training loss and validation PSNR / RMSE against the step, from a ``metrics.jsonl``, as a PNG.

    Left: the training loss (log scale; raw and a running mean). Right: the validation PSNR
    (``val_psnr``, dB) when the file has it, and the validation RMSE (``val_rmse``, normalized
    depth) on a second axis. Returns ``png_path``; raises ``ValueError`` when the file holds no
    training or validation row."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    train, val = read_metrics(metrics_jsonl_path)
    if not train and not val:
        raise ValueError('%s holds no training or validation metrics' % metrics_jsonl_path)
    fig = Figure(figsize=(11, 4))
    FigureCanvasAgg(fig)
    ax_loss, ax_val = fig.subplots(1, 2)
    if train:
        steps = [r['step'] for r in train]
        loss = [r['loss'] for r in train]
        ax_loss.plot(steps, loss, color='tab:blue', alpha=0.35, lw=0.8, label='loss')
        ax_loss.plot(steps, _smoothed(loss, max(len(loss) // 20, 1)), color='tab:blue', lw=1.5,
                     label='running mean')
        if min(loss) > 0:
            ax_loss.set_yscale('log')
        ax_loss.legend(fontsize=8)
    ax_loss.set_xlabel('step')
    ax_loss.set_ylabel('training loss')
    ax_loss.set_title('training loss', fontsize=10)
    ax_loss.grid(True, alpha=0.3, which='both')
    handles = []
    psnr = [(r['step'], r['val_psnr']) for r in val if r.get('val_psnr') is not None]
    rmse = [(r['step'], r['val_rmse']) for r in val if r.get('val_rmse') is not None]
    ax_rmse = ax_val
    if psnr:
        handles += ax_val.plot(*zip(*psnr), 'o-', color='tab:green', ms=3, label='validation PSNR')
        ax_val.set_ylabel('validation PSNR [dB]')
        ax_rmse = ax_val.twinx()
    if rmse:
        handles += ax_rmse.plot(*zip(*rmse), 's-', color='tab:red', ms=3, label='validation RMSE')
        ax_rmse.set_ylabel('validation RMSE (normalized depth)')
    if handles:
        ax_val.legend(handles=handles, fontsize=8, loc='center right')
    else:
        ax_val.text(0.5, 0.5, 'no validation rows yet', ha='center', va='center', transform=ax_val.transAxes)
    ax_val.set_xlabel('step')
    ax_val.set_title('validation', fontsize=10)
    ax_val.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    folder = os.path.dirname(os.fspath(png_path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(png_path, dpi=100)
    return png_path
