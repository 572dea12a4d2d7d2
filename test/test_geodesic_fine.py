"""The full-resolution propagation after a half-resolution geodesic fill (learning/geodesic.py,
``fine_distances``): it restores the depth beside an edge that runs through the 2x2 blocks, keeps the
measurements, starts from the half-resolution result where no measurement is near, and is refused
where it cannot apply."""
import pytest
import torch

from ros2_depth_interp.learning.geodesic import GeodesicConfig, GeodesicPropagation
from ros2_depth_interp.learning.model import build_model

H, W = 32, 48
EDGE = 21   # the first column of the far side: the blocks of columns 20-21 hold both sides


def _edge_through_blocks(seed=1):
    intensity = torch.full((1, 1, H, W), 0.3)
    intensity[..., EDGE:] = 0.8
    truth = torch.ones(1, 1, H, W)
    truth[..., EDGE:] = 3.0
    torch.manual_seed(seed)
    mask = (torch.rand(1, 1, H, W) < 0.3).float()
    return torch.cat([truth * mask, mask, intensity], dim=1), truth, mask


def _config(**fine):
    return GeodesicConfig(widths=(4, 6), blocks=(0, 1), distances=(16, 4, 1), propagation_scale=2, **fine)


def test_fine_steps_restore_the_columns_beside_an_edge_inside_the_blocks():
    x, truth, mask = _edge_through_blocks()
    errors = {}
    for name, fine in (('half', {}), ('fine', dict(fine_distances=(2, 1, 2, 1)))):
        with torch.no_grad():
            dense = build_model(_config(**fine)).eval()(x)[0]
        assert torch.equal(dense[mask > 0], truth[mask > 0])
        errors[name] = float((dense - truth).abs()[..., EDGE - 2:EDGE + 2].mean())
    assert errors['half'] > 0.1            # the blocks mixed the two sides
    assert errors['fine'] < 0.25 * errors['half']


def test_the_start_holds_where_no_measurement_reaches():
    # one measured column before a wall of high step costs: the pixels beyond the wall keep the start
    depth, mask = torch.zeros(1, 1, 8, 16), torch.zeros(1, 1, 8, 16)
    depth[..., 2], mask[..., 2] = 5.0, 1.0
    start = torch.full((1, 1, 8, 16), 2.0)
    steps = torch.full((1, 2, 8, 16), 1e-3)
    steps[:, 0, :, 8] = 50.0   # the step into column 8 from its left
    out = GeodesicPropagation((4, 2, 1, 2, 1), prior_certainty=0.03)(depth, mask, start, steps)
    assert torch.allclose(out[..., 9:], torch.tensor(2.0), atol=1e-4)
    # this side: the measurement outweighs the start, most near it
    assert torch.allclose(out[..., 1:4], torch.tensor(5.0), atol=0.1) and float(out[..., :8].min()) > 4.0
    assert torch.equal(out[..., 2], depth[..., 2])


@pytest.mark.parametrize('fine', [dict(fine_distances=(1,), propagation_scale=1),
                                  dict(fine_distances=(1,), propagation_scale=2, fine_prior_certainty=0.0),
                                  dict(fine_distances=(1,), propagation_scale=2, fine_prior_certainty=1.5)])
def test_fine_steps_without_a_half_resolution_fill_or_with_a_bad_certainty_are_refused(fine):
    with pytest.raises(ValueError):
        GeodesicConfig(**fine)
