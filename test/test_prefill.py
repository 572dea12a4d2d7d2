"""The parameter-free pre-fill (learning/prefill.py): its solver against a direct solve, the
recursive filter against its definition, and what the domain-transform fill does at edges, in
wide holes and on slanted surfaces."""
import numpy as np
import pytest
import torch

from ros2_depth_interp.learning.prefill import PyramidPrefill, _link_products, _recursive_filter


def _wide_hole_problem(size=64):
    """A slanted plane known only on a sparse border ring and one column: wide holes to cross."""
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing='ij')
    depth = (1.0 + 0.02 * xx + 0.01 * yy)[None, None]
    mask = torch.zeros_like(depth)
    mask[..., :2, ::3] = mask[..., -2:, ::3] = mask[..., ::3, :2] = mask[..., ::3, -2:] = 1.0
    mask[..., ::4, size // 2] = 1.0
    intensity = torch.full_like(depth, 0.5)   # no edges: every neighbour weighs the same
    return depth, mask, intensity


def test_prefill_keeps_known_values_and_fills_holes_from_the_right_side():
    depth = torch.zeros(1, 1, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    depth[..., :, :32] = 2.0   # left half known at 2 on a sparse grid, right half at 4
    depth[..., :, 32:] = 4.0
    mask[..., ::8, ::8] = 1.0
    intensity = torch.where(torch.arange(64) < 32, 0.3, 0.7).expand(1, 1, 64, 64).contiguous()
    fill = PyramidPrefill(levels=2, iterations=(10, 10, 10))(depth * mask, mask, intensity)
    known = mask.bool()
    assert torch.allclose(fill[known], depth[known])
    assert float(fill[..., 10, 2]) == pytest.approx(2.0, abs=0.05)
    assert float(fill[..., 10, 61]) == pytest.approx(4.0, abs=0.05)
    assert torch.isfinite(fill).all()


def _variance_weighted_solution(depth, known, intensity, scale, floor):
    """The pre-fill's fixed point, solved directly (scipy) from its definition: unknown pixels r
    satisfy sum_s w_rs (x_r - x_s) = 0 over their 8 neighbours s, with
    w_rs = exp(-(I_r - I_s)^2 / max(scale (v_r + v_s) / 2, floor^2)) + 1e-4 and v the intensity
    variance of the 3x3 window (edge-replicated)."""
    import scipy.sparse
    import scipy.sparse.linalg
    h, w = depth.shape
    padded = np.pad(intensity, 1, mode='edge')
    windows = np.stack([padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    var = np.maximum((windows ** 2).mean(0) - windows.mean(0) ** 2, 0)
    rows, cols, vals = [], [], []
    for y in range(h):
        for x in range(w):
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    sy, sx = y + dy, x + dx
                    if (dy, dx) == (0, 0) or not (0 <= sy < h and 0 <= sx < w):
                        continue
                    sigma2 = max(scale * (var[y, x] + var[sy, sx]) / 2, floor ** 2)
                    rows.append(y * w + x)
                    cols.append(sy * w + sx)
                    vals.append(np.exp(-(intensity[y, x] - intensity[sy, sx]) ** 2 / sigma2) + 1e-4)
    weights = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(h * w, h * w))
    laplacian = scipy.sparse.diags(np.asarray(weights.sum(1)).ravel()) - weights
    k = known.ravel()
    u, kk = np.nonzero(~k)[0], np.nonzero(k)[0]
    x = depth.ravel().astype(np.float64).copy()
    x[u] = scipy.sparse.linalg.spsolve(laplacian[u][:, u].tocsc(), -(laplacian[u][:, kk] @ x[kk]))
    return x.reshape(h, w)


def test_conjugate_gradients_solve_the_variance_weighted_system():
    rng = np.random.default_rng(3)
    h, w = 24, 32
    yy, xx = np.mgrid[0:h, 0:w]
    intensity = np.where(xx < 13, 0.2, 0.7) + 0.05 * rng.random((h, w))    # an edge and some texture
    depth = np.where(xx < 13, 1.0, 2.5) + 0.01 * yy
    known = rng.random((h, w)) < 0.1
    expected = _variance_weighted_solution(depth, known, intensity, scale=0.3, floor=0.005)
    t = lambda a: torch.from_numpy(np.asarray(a, np.float32))[None, None]
    solve = lambda n, levels: PyramidPrefill(levels, iterations=(n,) * (levels + 1), variance_scale=0.3)(
        t(depth * known), t(known), t(intensity))[0, 0].numpy()
    # the coarse levels only give a start: the finest level's conjugate gradients reach the same solution
    for levels in (0, 1, 3):
        assert np.abs(solve(400, levels) - expected).max() < 1e-3
    # the depth edge follows the intensity edge
    assert np.abs(expected[:, :12] - depth[:, :12]).max() < 0.1 and np.abs(expected[:, 14:] - depth[:, 14:]).max() < 0.1
    # from the domain-transform start, the iterations only get closer
    error = lambda n: np.abs(solve(n, 1) - expected).mean()
    assert error(100) < 0.2 * error(0) and error(10) < 0.8 * error(0)


def test_conjugate_gradients_stay_finite_after_convergence_and_keep_measurements():
    depth, mask, intensity = _wide_hole_problem(16)
    fill = PyramidPrefill(2, iterations=(500, 500, 500))(depth * mask, mask, intensity)
    assert torch.isfinite(fill).all()
    assert torch.allclose(fill[mask.bool()], depth[mask.bool()])
    # and the fill stays within the measured range (a smoothing of the samples, no overshoot)
    known = depth[mask.bool()]
    assert float(fill.min()) >= float(known.min()) - 1e-3 and float(fill.max()) <= float(known.max()) + 1e-3


def _sequential_two_sided_sum(x, link, axis):
    """The recursive filter's definition, one pixel at a time: causal + anticausal sums - x."""
    x, link = np.moveaxis(x, axis, -1), np.moveaxis(link, axis, -1)
    forward, backward = x.copy(), x.copy()
    n = x.shape[-1]
    for i in range(1, n):
        forward[..., i] += link[..., i] * forward[..., i - 1]
    for i in range(n - 2, -1, -1):
        backward[..., i] += link[..., i + 1] * backward[..., i + 1]
    return np.moveaxis(forward + backward - x, -1, axis)


@pytest.mark.parametrize('dim', [2, 3])
def test_recursive_filter_scan_equals_the_sequential_recurrence(dim):
    rng = np.random.default_rng(5)
    x = rng.random((1, 2, 13, 21)).astype(np.float64)
    link = rng.uniform(0.5, 1.0, (1, 1, 13, 21))
    link[(slice(None),) * dim + (0,)] = 0.0      # nothing before the first pixel
    filtered = lambda steps, decay: _recursive_filter(
        torch.from_numpy(x), _link_products(torch.from_numpy(link), dim, steps), dim, decay).numpy()
    for decay in (1.0, 0.8):
        expected = _sequential_two_sided_sum(x, np.broadcast_to(link * decay, x.shape), dim)
        np.testing.assert_allclose(filtered(5, decay), expected, rtol=1e-10)
    # fewer steps reach fewer pixels: the sums are truncated, never wrong in sign or scale
    full, short = filtered(5, 1.0), filtered(2, 1.0)
    assert (short <= full + 1e-12).all() and (short >= x - 1e-12).all() and not np.allclose(short, full)


def _transform_only(**options):
    """The domain-transform fill at full resolution, without iterations."""
    return PyramidPrefill(0, iterations=(0,), **options)


def test_domain_transform_crosses_wide_holes_and_stops_at_intensity_edges():
    # one row: measurements only at the two ends, an intensity edge at column 40 (the weighted mean,
    # clamp 0: one measurement per side gives no plane)
    w = 96
    depth = torch.zeros(1, 1, 2, w)
    mask = torch.zeros(1, 1, 2, w)
    depth[..., 0], depth[..., -1] = 1.0, 3.0
    mask[..., 0] = mask[..., -1] = 1.0
    intensity = torch.where(torch.arange(w) < 40, 0.2, 0.8).expand(1, 1, 2, w).contiguous()
    fill = _transform_only(dt_sigma_s=500.0, dt_steps=8, dt_clamp=0.0)(depth, mask, intensity)[0, 0]
    assert torch.allclose(fill[:, :40], torch.tensor(1.0), atol=1e-3)
    assert torch.allclose(fill[:, 40:], torch.tensor(3.0), atol=1e-3)
    # where no support arrives (reach 2 pixels per scan), the fill is the mean of the measurements
    short = _transform_only(dt_passes=1, dt_steps=1)(depth, mask, intensity)[0, 0]
    assert float(short[0, 20]) == pytest.approx(2.0, abs=1e-4)
    assert torch.allclose(short[:, 0], depth[0, 0, :, 0]) and torch.allclose(short[:, -1], depth[0, 0, :, -1])
    # a stretch that only a very weak link reaches (an edge of contrast 0.6: link about 1e-18) still
    # takes its depth from across that link, from the nearer measurement, not the mean of all
    depth[..., -1], mask[..., -1], depth[..., 30], mask[..., 30] = 0.0, 0.0, 3.0, 1.0
    far = _transform_only(dt_sigma_s=20.0, dt_steps=8, dt_clamp=0.0)(depth, mask, intensity)[0, 0]
    assert float(far[0, 60]) > 2.6 and float(far[0, 39]) > 2.6


def _ramp(h, w, density, seed, left_only=False):
    """A slanted plane d = 1 + 0.01 x + 0.005 y (full resolution), measured at random pixels."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing='ij')
    depth = (1.0 + 0.01 * xx + 0.005 * yy)[None, None]
    mask = (torch.rand(1, 1, h, w, generator=gen) < density).float()
    if left_only:
        mask = mask * (xx < w // 3).float()
    return depth, mask, xx


def test_first_order_fill_follows_a_slanted_plane_where_the_mean_makes_steps():
    # gradient masks leave wide holes in slanted surfaces (a book, a floor); a weighted mean
    # (clamp 0) fills them as steps, the weighted local plane as the slope itself
    h, w = 48, 96
    depth, mask, _ = _ramp(h, w, 0.03, seed=0)
    intensity = torch.full_like(depth, 0.5)
    mean = _transform_only(dt_sigma_s=30.0, dt_clamp=0.0)(depth * mask, mask, intensity)
    plane = _transform_only(dt_sigma_s=30.0, dt_clamp=1e6)(depth * mask, mask, intensity)
    error = lambda fill: float((fill - depth).abs().max())
    assert error(plane) < 2e-3 < 0.05 < error(mean)
    known = mask.bool()
    assert torch.allclose(plane[known], depth[known], atol=2e-3) and torch.allclose(mean[known], depth[known], atol=2e-3)


def test_first_order_departure_from_the_mean_is_clamped():
    # measurements only in the left third: far to the right the plane would run away; it departs
    # from the weighted mean by at most clamp x the measurements' weighted standard deviation
    h, w = 32, 120
    depth, mask, xx = _ramp(h, w, 0.2, seed=1, left_only=True)
    intensity = torch.full_like(depth, 0.5)
    fill = lambda clamp: _transform_only(dt_sigma_s=40.0, dt_steps=8, dt_clamp=clamp)(depth * mask, mask, intensity)
    mean, free = fill(0.0), fill(1e6)
    spread = float(depth[mask.bool()].std())
    for clamp in (0.5, 1.0):
        clamped = fill(clamp)
        # (the local std is below the global one: the bound holds with the global one too)
        assert float((clamped - mean).abs().max()) <= clamp * spread + 1e-5
        # the clamped fill lies between the mean and the unclamped plane
        assert bool(((clamped - mean) * (free - clamped) >= -1e-6).all())
    # the unclamped plane extrapolates the slope to the right border; the mean stays at the left
    right = xx[None, None] >= w - 4
    assert float((free - depth).abs()[right].max()) < 0.02 and float((mean - depth).abs()[right].min()) > 0.3


def test_first_order_fill_stops_at_intensity_edges():
    # two flat surfaces of different intensity, each measured at a few pixels: the plane does not
    # carry one surface's depth into the other
    h, w, edge = 32, 96, 40
    gen = torch.Generator().manual_seed(2)
    xx = torch.arange(w, dtype=torch.float32).expand(1, 1, h, w)
    intensity = torch.where(xx < edge, 0.2, 0.8)
    depth = torch.where(xx < edge, 1.0, 3.0)
    mask = (torch.rand(1, 1, h, w, generator=gen) < 0.02).float()
    fill = _transform_only(dt_sigma_s=60.0, dt_steps=8)(depth * mask, mask, intensity)
    assert float((fill - depth).abs().max()) < 1e-3


@pytest.mark.parametrize('bad', [dict(levels=-1), dict(iterations=(2, -1)), dict(dt_sigma_r=0.0), dict(dt_passes=0),
                                 dict(dt_steps=0), dict(dt_ridge=0.0), dict(dt_clamp=-1.0), dict(variance_scale=0.0)])
def test_bad_options_are_refused(bad):
    with pytest.raises(ValueError):
        PyramidPrefill(**bad)
