"""Classical baselines: planes from samples, known pixels kept, edges respected by colorization."""
import cv2
import numpy as np
import pytest

from ros2_depth_interp.evaluation import baselines
from ros2_depth_interp.evaluation.baselines import BASELINES, colorization, colorization_affinity, inpaint, linear, nearest

H, W = 36, 48


def _plane():
    yy, xx = np.mgrid[0:H, 0:W]
    return (2.0 + 0.01 * xx + 0.02 * yy).astype(np.float32)


def _samples(density=0.15, seed=1):
    mask = np.random.default_rng(seed).random((H, W)) < density
    mask[[0, 0, -1, -1], [0, -1, 0, -1]] = True  # the corners: the convex hull is the whole image
    return mask


# Maximum error allowed on the plane (range 2.0 .. 3.17): linear is exact up to float32; the others
# are bounded by slope x distance to samples (nearest), by propagation (inpaint), by the one-sided
# windows at the border (colorization with a flat intensity image).
PLANE_TOL = {'nearest': 0.1, 'linear': 1e-5, 'inpaint': 0.1, 'colorization': 0.1}
PLANE_MEAN_TOL = {'nearest': 0.03, 'linear': 1e-6, 'inpaint': 0.03, 'colorization': 0.01}


@pytest.mark.parametrize('name', sorted(BASELINES))
def test_plane_is_reproduced_and_known_pixels_kept(name):
    depth = _plane()
    mask = _samples()
    sparse = np.where(mask, depth, 0).astype(np.float32)
    intensity = np.full((H, W), 128, np.uint8)
    out = BASELINES[name](sparse, mask, intensity)
    assert out.dtype == np.float32 and out.shape == (H, W) and np.all(np.isfinite(out))
    assert np.array_equal(out[mask], depth[mask])
    assert np.abs(out - depth).max() < PLANE_TOL[name]
    assert np.abs(out - depth).mean() < PLANE_MEAN_TOL[name]
    # Far better than the trivial guess (the mean of the samples).
    assert np.abs(out - depth).mean() < 0.2 * np.abs(depth[mask].mean() - depth).mean()


def test_values_outside_the_mask_are_ignored():
    depth = _plane()
    mask = _samples()
    garbage = np.where(mask, depth, np.float32(1e6))
    garbage[~mask & (np.arange(H * W).reshape(H, W) % 7 == 0)] = np.nan
    clean = np.where(mask, depth, 0).astype(np.float32)
    intensity = np.full((H, W), 90, np.uint8)
    for name, fn in BASELINES.items():
        assert np.allclose(fn(garbage, mask, intensity), fn(clean, mask, intensity)), name


def _two_regions():
    """Left region (columns < 12): dark, depth 1; right: bright, depth 3; samples far from the edge."""
    yy, xx = np.mgrid[0:H, 0:W]
    left = xx < 12
    depth = np.where(left, 1.0, 3.0).astype(np.float32)
    rng = np.random.default_rng(3)
    intensity = np.clip(np.where(left, 60, 190) + rng.normal(0, 2, (H, W)), 0, 255).astype(np.uint8)
    mask = ((xx == 2) | (xx == W - 3)) & (yy % 3 == 0)
    return depth, intensity, mask


def test_colorization_respects_an_intensity_edge_better_than_nearest():
    depth, intensity, mask = _two_regions()
    sparse = np.where(mask, depth, 0).astype(np.float32)
    err_nearest = np.abs(nearest(sparse, mask, intensity) - depth)
    err_color = np.abs(colorization(sparse, mask, intensity) - depth)
    # Nearest puts the boundary half way between the sample columns (x = 23.5), 12 columns right of
    # the true edge (x = 12), so columns 12..23 get the left depth.
    assert err_nearest.mean() > 0.4
    assert err_color.mean() < 0.25 * err_nearest.mean()
    band = (slice(None), slice(12, 24))
    assert np.abs(nearest(sparse, mask, intensity)[band] - 1.0).max() < 1e-6
    # Colorization gives those columns (almost) the right region's depth.
    assert np.abs(colorization(sparse, mask, intensity)[band] - 3.0).max() < 0.5


def test_colorization_affinity_rows_sum_to_zero():
    rng = np.random.default_rng(0)
    intensity = rng.integers(0, 256, (7, 9)).astype(np.uint8)
    a = colorization_affinity(intensity)
    assert a.shape == (63, 63)
    assert np.allclose(a @ np.ones(63), 0.0)
    assert np.allclose(a.diagonal(), 1.0)
    assert a.nnz == 63 + 2 * (6 * 9 + 7 * 8 + 2 * 6 * 8)  # centre + each 8-neighbour pair, both ways
    off = a.copy()
    off.setdiag(0)
    assert off.max() <= 0.0


def test_soft_colorization_tracks_the_samples():
    depth = _plane()
    mask = _samples()
    sparse = np.where(mask, depth, 0).astype(np.float32)
    out = colorization(sparse, mask, np.full((H, W), 128, np.uint8), alpha=1.0)
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
    assert np.abs(out - depth).max() < 0.1


def test_inpaint_telea_option_and_linear_fallbacks():
    depth = _plane()
    mask = _samples()
    sparse = np.where(mask, depth, 0).astype(np.float32)
    out = inpaint(sparse, mask, None, radius=3, method=cv2.INPAINT_TELEA)
    assert np.abs(out - depth).max() < 0.15
    # Fewer than three samples, or all on one line: no triangulation, nearest everywhere.
    few = np.zeros((H, W), bool)
    few[5, 5] = few[20, 30] = True
    assert np.array_equal(linear(sparse, few), nearest(sparse, few))
    row = np.zeros((H, W), bool)
    row[10, ::4] = True
    assert np.array_equal(linear(sparse, row), nearest(sparse, row))


def test_bad_inputs_raise():
    depth = _plane()
    for fn in BASELINES.values():
        with pytest.raises(ValueError):
            fn(depth, np.zeros((H, W), bool), np.zeros((H, W), np.uint8))
        with pytest.raises(ValueError):
            fn(depth, np.ones((H + 1, W), bool), np.zeros((H, W), np.uint8))
    with pytest.raises(ValueError):
        colorization(depth, _samples(), np.zeros((H, W + 1), np.uint8))


def test_all_known_is_returned_unchanged():
    depth = _plane()
    full = np.ones((H, W), bool)
    for name, fn in baselines.BASELINES.items():
        assert np.array_equal(fn(depth, full, np.zeros((H, W), np.uint8)), depth), name


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_linear_matches_scipy_linearndinterpolator(seed):
    from scipy.interpolate import LinearNDInterpolator
    rng = np.random.default_rng(seed)
    depth = rng.uniform(1.0, 5.0, (H, W)).astype(np.float32)
    mask = rng.random((H, W)) < 0.05
    mask[10:14, :] |= rng.random((4, W)) < 0.5  # a dense band and wide empty areas: thin triangles
    rows, cols = np.nonzero(mask)
    ref = LinearNDInterpolator(np.column_stack([rows, cols]).astype(float), depth[rows, cols].astype(float))(
        *np.mgrid[0:H, 0:W].reshape(2, -1).astype(float)).reshape(H, W)
    out = linear(np.where(mask, depth, 0), mask)
    inside = np.isfinite(ref)
    assert inside.mean() > 0.5
    assert np.allclose(out[inside], ref[inside], atol=1e-5)
    assert np.array_equal(out[~inside], nearest(np.where(mask, depth, 0), mask)[~inside])


def test_linear_rasterizer_chunks_agree():
    from scipy.spatial import Delaunay
    rng = np.random.default_rng(5)
    mask = _samples(0.1, seed=5)
    points = np.column_stack(np.nonzero(mask))
    values = rng.uniform(1.0, 2.0, len(points))
    simplices = Delaunay(points.astype(float)).simplices
    whole = baselines._rasterize_triangles(points, simplices, values, (H, W))
    small = baselines._rasterize_triangles(points, simplices, values, (H, W), chunk=7)
    assert np.isfinite(whole).all()  # the corners are known: the hull covers the image
    assert np.allclose(whole, small, atol=1e-12)
