"""The network that corrects a finished geodesic fill (learning/correction.py, ``correction_width``):
untrained it changes nothing, it corrects only unmeasured pixels, it never sees the absolute depth,
and it is refused where it cannot apply."""
import pytest
import torch

from ros2_depth_interp.learning.correction import FillCorrection
from ros2_depth_interp.learning.geodesic import GeodesicConfig
from ros2_depth_interp.learning.model import build_model

BASE = dict(widths=(4, 6), blocks=(0, 1), distances=(16, 4, 1), smoothing=(2, 1), smoothing_rounds=1,
            colorization_steps=2, colorization_neighbours=4)


def _input(seed=0, h=32, w=48):
    torch.manual_seed(seed)
    mask = (torch.rand(1, 1, h, w) < 0.15).float()
    depth = (1.0 + torch.linspace(0, 1, w).expand(1, 1, h, w)) * mask
    return torch.cat([depth, mask, torch.rand(1, 1, h, w)], dim=1)


def _with_random_correction(seed=3):
    torch.manual_seed(0)
    corrected = build_model(GeodesicConfig(correction_width=5, **BASE)).eval()
    torch.manual_seed(seed)
    for p in corrected.correct.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return corrected


def test_untrained_the_correction_changes_nothing():
    torch.manual_seed(0)
    plain = build_model(GeodesicConfig(**BASE)).eval()
    corrected = build_model(GeodesicConfig(correction_width=5, **BASE)).eval()
    corrected.load_state_dict(plain.state_dict(), strict=False)
    x = _input()
    with torch.no_grad():
        for a, b in zip(plain(x), corrected(x)):
            assert torch.equal(a, b)


def test_a_trained_correction_moves_only_unmeasured_pixels():
    torch.manual_seed(0)
    plain = build_model(GeodesicConfig(**BASE)).eval()
    corrected = _with_random_correction()
    corrected.load_state_dict({**corrected.state_dict(), **plain.state_dict()})
    x = _input()
    with torch.no_grad():
        before, after = plain(x)[0], corrected(x)[0]
    measured = x[:, 1:2] > 0
    assert torch.equal(before[measured], after[measured])
    assert float((before - after)[~measured].abs().mean()) > 1e-3


def test_the_correction_does_not_depend_on_the_absolute_depth():
    # a fill shifted by a constant gives the same correction: only differences of the fill enter
    net = _with_random_correction().correct
    torch.manual_seed(1)
    fill, mask = torch.rand(1, 1, 16, 24) + 1.0, (torch.rand(1, 1, 16, 24) < 0.2).float()
    intensity = torch.rand(1, 1, 16, 24)
    smooth, features = torch.nn.functional.avg_pool2d(fill, 2) + 0.1, torch.rand(1, 4, 8, 12)
    with torch.no_grad():
        a = net(fill, mask, intensity, smooth, features)
        b = net(fill + 5.0, mask, intensity, smooth + 5.0, features)
    for u, v in zip(a, b):
        assert torch.allclose(u, v, atol=1e-5)


@pytest.mark.parametrize('width, dilations', [(0, (1,)), (4, ()), (4, (0, 1))])
def test_a_bad_width_or_dilation_is_refused(width, dilations):
    with pytest.raises(ValueError):
        FillCorrection(4, width, dilations)
    with pytest.raises(ValueError):
        GeodesicConfig(correction_width=-1, **BASE)
