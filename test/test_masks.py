"""Semi-dense mask generators: density, validity, edge preference, LSD-like noise."""
import numpy as np
import pytest

from ros2_depth_interp.learning import masks
from ros2_depth_interp.learning.synthetic import render_scene


@pytest.fixture(scope='module')
def frame():
    return render_scene(np.random.default_rng(7), 120, 160, fov_deg=60.0)


@pytest.mark.parametrize('density', [0.05, 0.1, 0.2])
def test_gradient_mask_hits_density(frame, density):
    mask = masks.gradient_adaptive_mask(frame['intensity'], density, np.random.default_rng(0))
    assert mask.dtype == bool and mask.shape == frame['intensity'].shape
    assert abs(mask.mean() - density) <= 0.01


def test_gradient_mask_prefers_edges(frame):
    """Selected pixels have much stronger gradients than the image as a whole."""
    g = masks.gradient_magnitude(frame['intensity'])
    mask = masks.gradient_adaptive_mask(frame['intensity'], 0.1, np.random.default_rng(0))
    assert np.median(g[mask]) > 3 * np.median(g)


def test_gradient_mask_leaves_flat_regions_empty():
    """A step edge on a flat image: the selection sits on the edge, not in the flat halves."""
    img = np.full((64, 64), 60, np.uint8)
    img[:, 32:] = 200
    mask = masks.gradient_adaptive_mask(img, 0.05, np.random.default_rng(0))
    cols = np.nonzero(mask)[1]
    assert abs(mask.mean() - 0.05) <= 0.01
    assert np.all(np.abs(cols - 31.5) <= 2)


def test_uniform_mask_density_and_spread():
    rng = np.random.default_rng(3)
    mask = masks.uniform_mask((200, 300), 0.1, rng)
    assert abs(mask.mean() - 0.1) <= 0.005
    # spread over the image: every quadrant gets roughly its share
    for q in (mask[:100, :150], mask[100:, :150], mask[:100, 150:], mask[100:, 150:]):
        assert 0.08 < q.mean() < 0.12


@pytest.mark.parametrize('mode', masks.MASK_MODES)
def test_make_semi_dense_never_selects_invalid(frame, mode):
    depth = frame['depth'].copy()
    depth[:, :40] = 0.0
    depth[10:20, 60:] = np.nan
    depth[50:60, 60:] = -1.0
    depth[70:75, :] = np.inf
    sparse, mask = masks.make_semi_dense(depth, frame['intensity'], mode, 0.1, np.random.default_rng(1))
    valid = np.isfinite(depth) & (depth > 0)
    assert sparse.dtype == np.float32 and mask.dtype == bool
    assert not np.any(mask & ~valid)
    assert np.all(sparse[~mask] == 0)
    assert np.all(sparse[mask] > 0)
    assert abs(mask.mean() - 0.1) <= 0.01
    if mode != 'lsd':
        np.testing.assert_array_equal(sparse[mask], depth[mask])


def test_make_semi_dense_caps_at_valid_pixels(frame):
    depth = np.zeros_like(frame['depth'])
    depth[:5, :5] = 2.0
    sparse, mask = masks.make_semi_dense(depth, frame['intensity'], 'gradient', 0.2, np.random.default_rng(0))
    assert mask.sum() == 25


def test_unknown_mode_raises(frame):
    with pytest.raises(ValueError):
        masks.make_semi_dense(frame['depth'], frame['intensity'], 'sift', 0.1, np.random.default_rng(0))


def test_masks_reproducible(frame):
    for mode in masks.MASK_MODES:
        a = masks.make_semi_dense(frame['depth'], frame['intensity'], mode, 0.1, np.random.default_rng(5))
        b = masks.make_semi_dense(frame['depth'], frame['intensity'], mode, 0.1, np.random.default_rng(5))
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_lsd_noise_grows_with_depth():
    """On a textured ramp from 1 m to 8 m, the relative depth error of far pixels exceeds near ones."""
    h, w = 200, 200
    rng = np.random.default_rng(0)
    depth = np.repeat(np.linspace(1.0, 8.0, w, dtype=np.float32)[None], h, axis=0)
    intensity = (rng.random((h, w)) * 255).astype(np.uint8)
    mask, noisy = masks.lsd_slam_like(depth, intensity, 0.2, np.random.default_rng(1),
                                      rel_noise=0.02, outlier_fraction=0.0)
    assert noisy.dtype == np.float32
    assert np.all(noisy[~mask] == 0) and np.all(noisy[mask] > 0)
    rel = np.abs(noisy - depth) / depth
    near = mask & (depth < 2.5)
    far = mask & (depth > 6.0)
    assert rel[far].std() > 2 * rel[near].std()
    # the noise is not zero, and small at the median depth (about rel_noise)
    mid = mask & (np.abs(depth - np.median(depth)) < 0.5)
    assert 0.005 < np.sqrt(np.mean(rel[mid] ** 2)) < 0.05


def test_lsd_outliers():
    h, w = 100, 100
    depth = np.full((h, w), 3.0, np.float32)
    intensity = (np.random.default_rng(0).random((h, w)) * 255).astype(np.uint8)
    mask, noisy = masks.lsd_slam_like(depth, intensity, 0.2, np.random.default_rng(2),
                                      rel_noise=0.001, outlier_fraction=0.05)
    gross = np.abs(noisy[mask] / 3.0 - 1) > 0.2
    assert abs(gross.sum() - round(0.05 * mask.sum())) <= 1
