"""Metrics against values worked out by hand on tiny arrays."""
import math

import numpy as np
import pytest

from ros2_depth_interp.evaluation.metrics import METRIC_NAMES, compute_metrics, mean_metrics, middlebury_peak, psnr_from_mse

# e = pred - gt = [0, 1, 1, -4]
PRED = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
GT = np.array([[1.0, 1.0], [2.0, 8.0]], np.float32)


def test_hand_computed_values():
    m = compute_metrics(PRED, GT, np.ones((2, 2), bool), peak=8.0)
    assert m['count'] == 4
    assert m['rmse'] == pytest.approx(math.sqrt((0 + 1 + 1 + 16) / 4))
    assert m['mae'] == pytest.approx((0 + 1 + 1 + 4) / 4)
    assert m['rel'] == pytest.approx((0 / 1 + 1 / 1 + 1 / 2 + 4 / 8) / 4)
    # max(pred/gt, gt/pred) = [1, 2, 1.5, 2]; thresholds 1.25, 1.5625, 1.953125
    assert m['delta1'] == pytest.approx(0.25)
    assert m['delta2'] == pytest.approx(0.5)
    assert m['delta3'] == pytest.approx(0.5)
    inv = [0.0, 1 / 2 - 1, 1 / 3 - 1 / 2, 1 / 4 - 1 / 8]
    assert m['irmse'] == pytest.approx(math.sqrt(sum(v * v for v in inv) / 4))
    assert m['psnr'] == pytest.approx(10 * math.log10(64 / 4.5))
    assert m['psnr_peak'] == 8.0


def test_default_peak_is_max_valid_ground_truth():
    m = compute_metrics(PRED, GT)
    assert m['psnr_peak'] == 8.0
    assert m['psnr'] == pytest.approx(10 * math.log10(64 / 4.5))


def test_invalid_pixels_are_excluded():
    pred = np.pad(PRED, ((0, 0), (0, 2)), constant_values=1000.0)
    gt = np.pad(GT, ((0, 0), (0, 2)), constant_values=5.0)
    gt[0, 3] = 0.0  # zero truth is never valid, even when the mask says so
    valid = np.ones(gt.shape, bool)
    valid[:, 2] = False
    m = compute_metrics(pred, gt, valid, peak=8.0)
    ref = compute_metrics(PRED, GT, np.ones((2, 2), bool), peak=8.0)
    # column 3 row 1 (gt 5, pred 1000) is still valid: make it invalid too and compare exactly
    assert m['count'] == 5
    valid[1, 3] = False
    m = compute_metrics(pred, gt, valid, peak=8.0)
    for name in METRIC_NAMES:
        assert m[name] == pytest.approx(ref[name])
    assert m['count'] == 4


def test_psnr_peak_convention():
    # Disparity scaled to [0, 1] by 255 with 10 log10(1 / MSE) == peak 255 on the raw values.
    gt = np.full((4, 4), 100.0)
    pred = gt + 1.0  # MSE 1
    raw = compute_metrics(pred, gt, peak=255.0)['psnr']
    scaled = compute_metrics(pred / 255.0, gt / 255.0, peak=1.0)['psnr']
    assert raw == pytest.approx(20 * math.log10(255.0))
    assert scaled == pytest.approx(raw)
    # Third size: values / 3 with peak 255 / 3 gives the same dB as file values with peak 255.
    assert middlebury_peak(3) == pytest.approx(85.0)
    third = compute_metrics(pred / 3.0, gt / 3.0, peak=middlebury_peak(3))['psnr']
    assert third == pytest.approx(raw)
    # A per-image peak (None) gives a different (smaller) number: the peak matters.
    assert compute_metrics(pred, gt)['psnr'] < raw


def test_perfect_prediction_and_psnr_helper():
    m = compute_metrics(GT, GT, peak=8.0)
    assert m['rmse'] == 0.0 and m['mae'] == 0.0 and m['rel'] == 0.0 and m['irmse'] == 0.0
    assert m['delta1'] == 1.0 and math.isinf(m['psnr'])
    assert psnr_from_mse(1.0, 10.0) == pytest.approx(20.0)


def test_non_positive_prediction_gives_finite_ratio_metrics():
    m = compute_metrics(np.array([0.0, -1.0, 2.0]), np.array([1.0, 2.0, 2.0]))
    assert all(math.isfinite(m[n]) for n in METRIC_NAMES)
    assert m['delta1'] == pytest.approx(1 / 3)
    assert m['mae'] == pytest.approx((1 + 3 + 0) / 3)


def test_bad_inputs():
    with pytest.raises(ValueError):
        compute_metrics(np.zeros((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError):
        compute_metrics(np.ones((2, 2)), np.ones((2, 2)), np.ones((3, 3), bool))
    with pytest.raises(ValueError):
        compute_metrics(np.array([np.nan, 1.0]), np.array([1.0, 1.0]))
    with pytest.raises(ValueError):
        compute_metrics(PRED, GT, peak=0.0)
    # NaN where the truth is invalid is fine.
    m = compute_metrics(np.array([np.nan, 1.0]), np.array([0.0, 1.0]))
    assert m['count'] == 1 and m['rmse'] == 0.0


def test_no_valid_pixel_gives_nan_and_zero_count():
    m = compute_metrics(PRED, GT, np.zeros((2, 2), bool), peak=8.0)
    assert m['count'] == 0 and math.isnan(m['rmse']) and m['psnr_peak'] == 8.0


def test_mean_metrics():
    a = compute_metrics(PRED, GT, peak=8.0)
    b = compute_metrics(GT, GT + 1.0, peak=8.0)
    mean = mean_metrics([a, b])
    assert mean['rmse'] == pytest.approx((a['rmse'] + b['rmse']) / 2)
    assert mean['psnr'] == pytest.approx((a['psnr'] + b['psnr']) / 2)
    assert mean['count'] == 8 and mean['psnr_peak'] == 8.0
    assert mean_metrics([]) == {}
