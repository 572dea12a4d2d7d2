"""Error metrics for dense depth (or disparity) against ground truth, only where the truth is valid.

Why a module of its own: the evaluation, the training validation and the model card must all
report the *same* numbers, so every definition lives here once.

Definitions (``e = pred - gt`` over the pixels where ``valid`` is True; ``N`` such pixels):

- ``rmse``   sqrt(mean(e^2)), in the input's units.
- ``mae``    mean(|e|), in the input's units.
- ``rel``    mean(|e| / gt) (also called MAPE; a fraction, not a percent).
- ``delta1/2/3`` fraction of pixels with max(pred/gt, gt/pred) < 1.25, 1.25^2, 1.25^3.
- ``irmse``  sqrt(mean((1/pred - 1/gt)^2)), in 1 / (input's units). On metric depth this is the
  usual inverse-depth RMSE (1/m for metres; KITTI reports 1/km, i.e. 1000x this). On *disparity*
  inputs (Middlebury) 1/disparity is proportional to depth only up to the unknown crop offset
  ``dmin`` (Z = f B / (d + dmin)), so there it is simply the RMSE of the reciprocal field, reported
  for completeness, not a depth error.
- ``psnr``   10 log10(peak^2 / mean(e^2)) in dB, i.e. the paper's / Liu et al.'s
  10 log10(1 / MSE) on values scaled to [0, 1] by dividing by ``peak``. The peak actually used is
  returned as ``psnr_peak``. Middlebury convention used by ``evaluate``: the 8-bit disparity files
  store full-size disparity, so the peak is 255 in the file's units, which is ``255 / k`` in the
  pixels of a 1/k-size image (85 at third size). With ``peak=None`` the maximum valid ground
  truth is used (a per-image peak), which gives different, smaller PSNR values: always say which.

Ratios (``rel``, ``delta``, ``irmse``) need positive values. Ground truth is required to be > 0
wherever ``valid`` is True (a non-positive truth is treated as invalid). Predictions <= 0 are
clamped to ``PRED_FLOOR`` times the ground-truth scale before the ratio metrics (so a method that
outputs zeros is punished with huge ratio errors instead of producing inf/NaN); ``rmse``, ``mae``
and ``psnr`` use the raw prediction.
"""
import math

import numpy as np

DELTA_BASE = 1.25
PRED_FLOOR = 1e-6
METRIC_NAMES = ('rmse', 'mae', 'rel', 'delta1', 'delta2', 'delta3', 'irmse', 'psnr')


def _checked(pred, gt, valid):
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError('prediction shape %s differs from ground truth %s' % (pred.shape, gt.shape))
    if valid is None:
        valid = np.isfinite(gt) & (gt > 0)
    else:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != gt.shape:
            raise ValueError('valid mask shape %s differs from ground truth %s' % (valid.shape, gt.shape))
        valid = valid & np.isfinite(gt) & (gt > 0)
    p, g = pred[valid], gt[valid]
    if not np.all(np.isfinite(p)):
        raise ValueError('prediction has %d non-finite values where ground truth is valid'
                         % int(np.count_nonzero(~np.isfinite(p))))
    return p, g


def psnr_from_mse(mse, peak):
    """10 log10(peak^2 / mse) in dB; +inf for a perfect prediction."""
    if mse <= 0.0:
        return math.inf
    return 10.0 * math.log10(float(peak) ** 2 / mse)


def compute_metrics(pred, gt, valid=None, peak=None):
    """All metrics of ``pred`` against ``gt`` over the pixels where ``valid`` (and gt > 0) holds.

    ``peak``: the value that maps to 1.0 for PSNR (None: max of the valid ground truth).
    Returns a dict of plain floats: the names in ``METRIC_NAMES`` plus ``psnr_peak`` and ``count``
    (number of pixels evaluated). With no valid pixel every metric is NaN and ``count`` is 0.
    """
    p, g = _checked(pred, gt, valid)
    n = int(p.size)
    if n == 0:
        out = {name: math.nan for name in METRIC_NAMES}
        out.update(psnr_peak=math.nan if peak is None else float(peak), count=0)
        return out
    e = p - g
    mse = float(np.mean(e * e))
    p_pos = np.maximum(p, PRED_FLOOR * float(np.max(g)))
    ratio = np.maximum(p_pos / g, g / p_pos)
    inv_e = 1.0 / p_pos - 1.0 / g
    peak = float(np.max(g)) if peak is None else float(peak)
    if not peak > 0:
        raise ValueError('PSNR peak must be positive, got %r' % peak)
    return {
        'rmse': math.sqrt(mse),
        'mae': float(np.mean(np.abs(e))),
        'rel': float(np.mean(np.abs(e) / g)),
        'delta1': float(np.mean(ratio < DELTA_BASE)),
        'delta2': float(np.mean(ratio < DELTA_BASE ** 2)),
        'delta3': float(np.mean(ratio < DELTA_BASE ** 3)),
        'irmse': float(np.sqrt(np.mean(inv_e * inv_e))),
        'psnr': psnr_from_mse(mse, peak),
        'psnr_peak': peak,
        'count': n,
    }


def middlebury_peak(size_factor):
    """PSNR peak for Middlebury disparity in the pixels of a 1/size_factor image: 255 / k.

    The 8-bit files store full-size disparity (max 255) at every size, so scaling the file values
    by 1/255 (the paper's convention) equals scaling the per-size disparity by k / 255.
    """
    return 255.0 / float(size_factor)


def mean_metrics(rows):
    """Mean of each metric over a list of metric dicts (PSNR averaged in dB, as papers do).

    Infinite PSNR (a perfect prediction) is kept as inf. ``count`` is summed.
    """
    rows = list(rows)
    if not rows:
        return {}
    out = {}
    for name in METRIC_NAMES:
        vals = [r[name] for r in rows if name in r]
        out[name] = float(np.mean(vals)) if vals else math.nan
    out['count'] = int(sum(r.get('count', 0) for r in rows))
    peaks = {r.get('psnr_peak') for r in rows}
    out['psnr_peak'] = peaks.pop() if len(peaks) == 1 else math.nan
    return out
