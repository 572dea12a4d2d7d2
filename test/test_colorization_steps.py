"""Colorization sweeps at full resolution (learning/colorization.py): the shipped pre-fill's weights,
measurements held, a constant kept constant, an intensity edge kept, and a half-resolution geodesic
fill that they sharpen."""
import pytest
import torch

from ros2_depth_interp.learning.colorization import ColorizationSteps
from ros2_depth_interp.learning.geodesic import GeodesicConfig
from ros2_depth_interp.learning.prefill import PyramidPrefill


def _two_sides(h=12, w=20):
    # dark left half, bright right half; a measured column each side
    intensity = torch.full((1, 1, h, w), 0.2)
    intensity[..., w // 2:] = 0.8
    depth, mask = torch.zeros(1, 1, h, w), torch.zeros(1, 1, h, w)
    depth[..., 2], mask[..., 2] = 1.0, 1.0
    depth[..., w - 3], mask[..., w - 3] = 2.0, 1.0
    return intensity, depth, mask


def test_weights_are_the_shipped_prefills_and_the_four_nearest_are_among_them():
    torch.manual_seed(0)
    intensity = torch.rand(1, 1, 12, 15)
    eight = ColorizationSteps(1).weights(intensity)
    prefill = torch.cat(PyramidPrefill()._edge_weights(intensity), dim=1)
    assert torch.allclose(eight, prefill, atol=1e-6)
    four = ColorizationSteps(1, neighbours=4).weights(intensity)
    assert torch.allclose(four, eight[:, [1, 3, 4, 6]], atol=1e-6)   # up, left, right, down
    assert float(eight[..., 0, 0, :].abs().sum()) == 0.0              # above the first row: outside


@pytest.mark.parametrize('neighbours', [4, 8])
def test_sweeps_hold_measurements_keep_a_constant_and_stop_at_an_intensity_edge(neighbours):
    intensity, depth, mask = _two_sides()
    steps = ColorizationSteps(400, neighbours=neighbours)
    start = torch.full_like(depth, 1.5) * (1 - mask) + depth
    out = steps(start, depth * mask, 1 - mask, intensity)[0, 0]
    assert torch.equal(out[:, 2], torch.ones(12)) and torch.equal(out[:, 17], torch.full((12,), 2.0))
    # the start (1.5 everywhere) has moved to each side's samples, and not across the edge
    assert torch.allclose(out[:, :10], torch.tensor(1.0), atol=0.02)
    assert torch.allclose(out[:, 10:], torch.tensor(2.0), atol=0.02)
    constant = steps(torch.full_like(depth, 1.5), 1.5 * mask, 1 - mask, intensity)
    assert torch.allclose(constant, torch.tensor(1.5), atol=1e-5)


def test_no_steps_returns_the_estimate_and_bad_settings_are_refused():
    intensity, depth, mask = _two_sides()
    estimate = torch.rand_like(depth)
    assert ColorizationSteps(0)(estimate, depth * mask, 1 - mask, intensity) is estimate
    for kwargs in (dict(steps=-1), dict(steps=1, neighbours=6), dict(steps=1, variance_scale=0.0)):
        with pytest.raises(ValueError):
            ColorizationSteps(**kwargs)
    for kwargs in (dict(propagation_scale=4), dict(colorization_steps=-1), dict(colorization_neighbours=5)):
        with pytest.raises(ValueError):
            GeodesicConfig(**kwargs)


def test_sweeps_after_a_half_resolution_fill_restore_a_one_pixel_stripe():
    # a one-pixel bright stripe of far depth in a near wall, measured densely: the half-resolution
    # propagation blurs the stripe into its neighbours (2x2 blocks), the sweeps put it back
    from ros2_depth_interp.learning.model import build_model
    h, w = 32, 48
    intensity = torch.full((1, 1, h, w), 0.3)
    intensity[..., 21] = 0.9
    truth = torch.ones(1, 1, h, w)
    truth[..., 21] = 3.0
    torch.manual_seed(1)
    mask = (torch.rand(1, 1, h, w) < 0.3).float()
    x = torch.cat([truth * mask, mask, intensity], dim=1)
    errors = {}
    for steps in (0, 8):
        config = GeodesicConfig(widths=(4, 6), blocks=(0, 1), distances=(16, 4, 1), propagation_scale=2,
                                colorization_steps=steps)
        with torch.no_grad():
            dense = build_model(config).eval()(x)[0]
        assert torch.equal(dense[mask > 0], truth[mask > 0])
        errors[steps] = float((dense - truth).abs()[..., 19:24].mean())
    assert errors[8] < 0.5 * errors[0]
