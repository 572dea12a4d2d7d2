"""The network: shapes, stride handling, the pre-fill, and the paper's building blocks."""
import numpy as np
import pytest
import torch

from ros2_depth_interp.learning.model import PRESETS, DepthInterpNet, NetConfig, PyramidPrefill, ResidualBlock, build_model
from ros2_depth_interp.core.preprocess import InputError, finish, padded_size, prepare


@pytest.mark.parametrize('preset', ['tiny', 'default'])
def test_output_shapes_match_padded_input(preset):
    model = build_model(preset).eval()
    x = torch.rand(2, 3, 2 * model.stride, 3 * model.stride)
    with torch.no_grad():
        depth, conf = model(x)
    assert depth.shape == (2, 1, 2 * model.stride, 3 * model.stride)
    assert conf.shape == depth.shape
    assert float(conf.min()) >= 0 and float(conf.max()) <= 1


@pytest.mark.parametrize('h,w', [(37, 51), (64, 64), (101, 3 * 32 + 1), (480, 640)])
def test_prepare_pads_to_stride_and_finish_crops_back(h, w):
    rng = np.random.default_rng(1)
    depth = rng.uniform(2, 4, (h, w)).astype(np.float32)
    mask = rng.random((h, w)) < 0.1
    intensity = rng.integers(0, 255, (h, w), dtype=np.uint8)
    prepared = prepare(depth, mask, intensity, 32)
    hp, wp = padded_size(h, w, 32)
    assert prepared.tensor.shape == (1, 3, hp, wp) and hp % 32 == 0 and wp % 32 == 0
    assert prepared.scale == pytest.approx(np.median(depth[mask]))
    assert not prepared.tensor[0, 1, h:, :].any() and not prepared.tensor[0, 1, :, w:].any()
    out, conf = finish(prepared, prepared.tensor[:, :1], np.ones((1, 1, hp, wp), np.float32))
    assert out.shape == (h, w) and conf.shape == (h, w)
    np.testing.assert_allclose(out[mask], depth[mask], rtol=1e-5)


def test_prepare_rejects_bad_inputs():
    d = np.ones((10, 10), np.float32)
    with pytest.raises(InputError, match='no known pixel'):
        prepare(d, np.zeros((10, 10), bool), np.zeros((10, 10), np.uint8), 8)
    with pytest.raises(InputError, match='same height and width'):
        prepare(d, np.ones((10, 11), bool), np.zeros((10, 10), np.uint8), 8)
    with pytest.raises(InputError, match='uint8'):
        prepare(d, np.ones((10, 10), bool), np.zeros((10, 10), np.float32), 8)
    nan = np.full((10, 10), np.nan, np.float32)
    with pytest.raises(InputError):
        prepare(nan, np.ones((10, 10), bool), np.zeros((10, 10), np.uint8), 8)


def test_prefill_keeps_known_values_and_fills_holes_from_neighbours():
    prefill = PyramidPrefill(levels=4, tau=0.01)
    depth = torch.zeros(1, 1, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    depth[..., :, :32] = 2.0   # left half known at 2 on a sparse grid, right half at 4
    depth[..., :, 32:] = 4.0
    mask[..., ::8, ::8] = 1.0
    fill = prefill(depth * mask, mask)
    known = mask.bool()
    assert torch.allclose(fill[known], depth[known], rtol=0.06)
    assert float(fill[..., 10, 2]) == pytest.approx(2.0, abs=0.2)
    assert float(fill[..., 10, 61]) == pytest.approx(4.0, abs=0.2)
    assert torch.isfinite(fill).all() and float(fill.min()) > 0


def test_network_is_built_from_the_papers_blocks():
    model = DepthInterpNet(NetConfig(stem_width=8, width=16, dilations=(1, 2, 4)))
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    # one projection block (the single x2 downsampling) + one block per dilation
    assert len(blocks) == 4
    assert isinstance(model.down.project, torch.nn.Conv2d) and model.down.project.kernel_size == (1, 1)
    assert [b.conv1.dilation[0] for b in model.blocks] == [1, 2, 4]
    strided = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.stride != (1, 1)]
    assert all(m.stride == (2, 2) for m in strided) and len(strided) == 2   # conv + its projection
    assert isinstance(model.shuffle, torch.nn.PixelShuffle)
    assert PRESETS['paper'].width > PRESETS['default'].width


def test_untrained_network_returns_the_prefill():
    # the head starts at zero: an untrained network is exactly the classical pre-fill
    model = build_model('default').eval()
    x = torch.zeros(1, 3, 64, 64)
    x[0, 0, ::4, ::4] = 1.5
    x[0, 1, ::4, ::4] = 1.0
    depth, _ = model(x)
    assert torch.allclose(depth, model.prefill(x[:, :1], x[:, 1:2]))


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


def test_prefill_momentum_reaches_the_same_solution_as_plain_sweeps_and_sooner():
    depth, mask, intensity = _wide_hole_problem()
    solve = lambda sweeps, momentum: PyramidPrefill(levels=0, iterations=(sweeps,), momentum=momentum)(
        depth * mask, mask, intensity)
    converged = solve(6000, 0.0)
    # stable: heavy-ball sweeps settle on the fixed point of the plain sweeps
    assert torch.allclose(solve(1500, 0.95), converged, atol=1e-4)
    # and get there in far fewer sweeps
    plain_error = float((solve(100, 0.0) - converged).abs().max())
    heavy_error = float((solve(100, 0.95) - converged).abs().max())
    assert heavy_error < 0.2 * plain_error
    # and the fill stays within the measured range (a smoothing of the samples, no overshoot)
    known = depth[mask.bool()]
    assert float(converged.min()) >= float(known.min()) - 1e-4 and float(converged.max()) <= float(known.max()) + 1e-4
    with pytest.raises(ValueError, match='momentum'):
        PyramidPrefill(levels=2, momentum=1.0)


def _variance_weighted_solution(depth, known, intensity, scale, floor):
    """The 'variance' pre-fill's fixed point, solved directly (scipy) from its definition: unknown
    pixels r satisfy sum_s w_rs (x_r - x_s) = 0 over their 8 neighbours s, with
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


def test_cg_prefill_solves_the_variance_weighted_system():
    rng = np.random.default_rng(3)
    h, w = 24, 32
    yy, xx = np.mgrid[0:h, 0:w]
    intensity = np.where(xx < 13, 0.2, 0.7) + 0.05 * rng.random((h, w))    # an edge and some texture
    depth = np.where(xx < 13, 1.0, 2.5) + 0.01 * yy
    known = rng.random((h, w)) < 0.1
    expected = _variance_weighted_solution(depth, known, intensity, scale=0.3, floor=0.005)
    t = lambda a: torch.from_numpy(np.asarray(a, np.float32))[None, None]
    solve = lambda n, levels: PyramidPrefill(levels, iterations=(n,) * (levels + 1), solver='cg', weights='variance',
                                             variance_scale=0.3)(t(depth * known), t(known), t(intensity))[0, 0].numpy()
    # the cascade only gives a start: the finest level's conjugate gradients reach the same solution
    for levels in (0, 1, 3):
        assert np.abs(solve(400, levels) - expected).max() < 1e-3
    # the depth edge follows the intensity edge
    assert np.abs(expected[:, :12] - depth[:, :12]).max() < 0.1 and np.abs(expected[:, 14:] - depth[:, 14:]).max() < 0.1
    # a few iterations from the coarse-to-fine start get most of the way
    assert np.abs(solve(10, 3) - expected).mean() < 0.5 * np.abs(solve(0, 3) - expected).mean()


def test_cg_prefill_stays_finite_after_convergence_and_keeps_measurements():
    depth, mask, intensity = _wide_hole_problem(16)
    fill = PyramidPrefill(2, iterations=(500, 500, 500), solver='cg', weights='variance')(depth * mask, mask, intensity)
    assert torch.isfinite(fill).all()
    assert torch.allclose(fill[mask.bool()], depth[mask.bool()])
    with pytest.raises(ValueError, match='solver'):
        PyramidPrefill(2, solver='sor')
    with pytest.raises(ValueError, match='neighbours'):
        PyramidPrefill(2, solver='cg', neighbours=6)


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
    from ros2_depth_interp.learning.model import _link_products, _recursive_filter
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


def test_domain_transform_fill_crosses_wide_holes_and_stops_at_intensity_edges():
    # one row: measurements only at the two ends, an intensity edge at column 40
    w = 96
    depth = torch.zeros(1, 1, 2, w)
    mask = torch.zeros(1, 1, 2, w)
    depth[..., 0], depth[..., -1] = 1.0, 3.0
    mask[..., 0] = mask[..., -1] = 1.0
    intensity = torch.where(torch.arange(w) < 40, 0.2, 0.8).expand(1, 1, 2, w).contiguous()
    prefill = PyramidPrefill(0, top='domain_transform', dt_sigma_s=500.0, dt_sigma_r=0.02)
    fill = prefill(depth, mask, intensity)[0, 0]
    assert torch.allclose(fill[:, :40], torch.tensor(1.0), atol=1e-3)
    assert torch.allclose(fill[:, 40:], torch.tensor(3.0), atol=1e-3)
    # the pull-push top level blurs the same edge: the hole takes the mean of both ends
    blurred = PyramidPrefill(0, spread=0)(depth, mask, intensity)[0, 0]
    assert abs(float(blurred[0, 20]) - 2.0) < 0.1
    # where no support arrives (reach 2 pixels per scan), the fill is the mean of the measurements
    short = PyramidPrefill(0, top='domain_transform', dt_passes=1, dt_steps=1)(depth, mask, intensity)[0, 0]
    assert float(short[0, 20]) == pytest.approx(2.0, abs=1e-4)
    assert torch.equal(short[:, 0], depth[0, 0, :, 0]) and torch.equal(short[:, -1], depth[0, 0, :, -1])
    # a stretch that only a very weak link reaches (an edge of contrast 0.6: link about 1e-18) still
    # takes its depth from across that link, from the nearer measurement, not the mean of all
    depth[..., -1], mask[..., -1], depth[..., 30], mask[..., 30] = 0.0, 0.0, 3.0, 1.0
    far = PyramidPrefill(0, top='domain_transform', dt_sigma_s=20.0)(depth, mask, intensity)[0, 0]
    assert float(far[0, 60]) > 2.6 and float(far[0, 39]) > 2.6
    for bad in (dict(top='nearest'), dict(top='domain_transform', dt_sigma_r=0.0),
                dict(top='domain_transform', dt_passes=0)):
        with pytest.raises(ValueError, match='top|domain_transform'):
            PyramidPrefill(1, **bad)


def test_domain_transform_prefill_follows_an_edge_the_cascade_blurs():
    # a wide hole between two surfaces of different intensity, known only along the left and right
    # borders: the cascade's few iterations cannot carry depth 70 pixels, the domain transform can
    h, w, edge = 64, 160, 75
    xx = torch.arange(w, dtype=torch.float32).expand(h, w)
    intensity = torch.where(xx < edge, 0.3, 0.6)[None, None]
    depth = torch.where(xx < edge, 1.0, 2.0)[None, None]
    mask = torch.zeros_like(depth)
    mask[..., :, :2] = mask[..., :, -2:] = 1.0
    options = dict(solver='cg', weights='variance', variance_scale=0.3)
    transform = PyramidPrefill(1, iterations=(2, 4), top='domain_transform', **options)(depth * mask, mask, intensity)
    cascade = PyramidPrefill(3, iterations=(2, 4, 4, 4), **options)(depth * mask, mask, intensity)
    away = (xx - edge + 0.5).abs() > 3     # more than 3 pixels from the edge
    error = lambda fill: float((fill - depth).abs()[..., away].max())
    assert error(transform) < 0.1 and error(cascade) > 0.3


def _ramp(h, w, density, seed, left_only=False):
    """A slanted plane d = 1 + 0.01 x + 0.005 y (full resolution), measured at random pixels."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing='ij')
    depth = (1.0 + 0.01 * xx + 0.005 * yy)[None, None]
    mask = (torch.rand(1, 1, h, w, generator=gen) < density).float()
    if left_only:
        mask = mask * (xx < w // 3).float()
    return depth, mask, xx


def test_first_order_domain_transform_fills_a_slanted_plane_as_a_slope():
    # gradient masks leave wide holes in slanted surfaces (a book, a floor); a weighted mean fills
    # them as steps, the weighted local plane (dt_order=1) as the slope itself
    h, w = 48, 96
    depth, mask, _ = _ramp(h, w, 0.03, seed=0)
    intensity = torch.full_like(depth, 0.5)
    options = dict(top='domain_transform', dt_sigma_s=30.0)
    mean = PyramidPrefill(0, **options)(depth * mask, mask, intensity)
    plane = PyramidPrefill(0, dt_order=1, dt_clamp=1e6, **options)(depth * mask, mask, intensity)
    error = lambda fill: float((fill - depth).abs().max())
    assert error(plane) < 2e-3 < 0.05 < error(mean)
    # measurements keep their values in both
    known = mask.bool()
    assert torch.allclose(plane[known], depth[known], atol=2e-3) and torch.allclose(mean[known], depth[known], atol=2e-3)


def test_first_order_departure_from_the_mean_is_clamped():
    # measurements only in the left third: far to the right the plane would run away; it departs
    # from the weighted mean by at most clamp x the measurements' weighted standard deviation
    h, w = 32, 120
    depth, mask, xx = _ramp(h, w, 0.2, seed=1, left_only=True)
    intensity = torch.full_like(depth, 0.5)
    fill = lambda **kw: PyramidPrefill(0, top='domain_transform', dt_sigma_s=40.0, **kw)(depth * mask, mask, intensity)
    mean, free = fill(), fill(dt_order=1, dt_clamp=1e6)
    known = depth[mask.bool()]
    spread = float(known.std())
    for clamp in (0.5, 1.0):
        clamped = fill(dt_order=1, dt_clamp=clamp)
        # (the local std is below the global one: the bound holds with the global one too)
        assert float((clamped - mean).abs().max()) <= clamp * spread + 1e-5
        # the clamped fill lies between the mean and the unclamped plane
        assert bool(((clamped - mean) * (free - clamped) >= -1e-6).all())
    assert torch.equal(fill(dt_order=1, dt_clamp=0.0), mean)
    # the unclamped plane extrapolates the slope to the right border; the mean stays at the left
    right = xx[None, None] >= w - 4
    assert float((free - depth).abs()[right].max()) < 0.02 and float((mean - depth).abs()[right].min()) > 0.3


def test_first_order_domain_transform_still_stops_at_intensity_edges():
    # two flat surfaces of different intensity, each measured at a few pixels: neither the mean nor
    # the plane carries one surface's depth into the other
    h, w, edge = 32, 96, 40
    gen = torch.Generator().manual_seed(2)
    xx = torch.arange(w, dtype=torch.float32).expand(1, 1, h, w)
    intensity = torch.where(xx < edge, 0.2, 0.8)
    depth = torch.where(xx < edge, 1.0, 3.0)
    mask = (torch.rand(1, 1, h, w, generator=gen) < 0.02).float()
    for order in (0, 1):
        fill = PyramidPrefill(0, top='domain_transform', dt_sigma_s=60.0, dt_order=order)(depth * mask, mask, intensity)
        assert float((fill - depth).abs().max()) < 1e-3, order


def test_first_order_options_are_checked_and_old_configs_keep_order_zero():
    for bad in (dict(dt_order=2), dict(dt_order=1, dt_ridge=0.0), dict(dt_order=1, dt_clamp=-1.0)):
        with pytest.raises(ValueError, match='order'):
            PyramidPrefill(1, top='domain_transform', **bad)
    # a checkpoint written before the option existed has no key for it: it loads as order 0
    old = {k: v for k, v in PRESETS['default'].to_dict().items() if not k.startswith('prefill_dt_o')}
    assert NetConfig.from_dict(old).prefill_dt_order == 0
    assert build_model('default').prefill.dt_order == 1
