"""Losses: zero for identical inputs, growing with the error, honest about the VGG weights."""
import pytest
import torch

from ros2_depth_interp.learning.losses import (CombinedLoss, PerceptualLoss, VGGWeightsMissing, gradient_loss,
                                      load_vgg16_features, masked_l1, masked_mse, total_variation)


def _pair(noise):
    gen = torch.Generator().manual_seed(0)
    gt = 1 + torch.rand(2, 1, 32, 32, generator=gen)
    pred = gt + noise * torch.randn(2, 1, 32, 32, generator=gen)
    valid = torch.ones_like(gt, dtype=torch.bool)
    valid[..., :4, :] = False
    return pred, gt, valid


def test_missing_imagenet_weights_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    with pytest.raises(VGGWeightsMissing, match='perceptual-fallback random'):
        load_vgg16_features('relu2_2')


def test_vgg_weights_load_from_torchvision_style_file(tmp_path):
    features, _ = load_vgg16_features('relu1_2', fallback='random')
    state = {'features.' + k: torch.full_like(v, 0.5) for k, v in features.state_dict().items()}
    path = tmp_path / 'vgg16-397923af.pth'
    torch.save(state, path)
    loaded, description = load_vgg16_features('relu1_2', weights=str(path))
    assert 'ImageNet' in description
    assert torch.all(loaded[0].weight == 0.5)


@pytest.mark.parametrize('name', ['l1', 'mse', 'grad', 'perceptual'])
def test_loss_is_zero_for_identical_inputs_and_grows_with_error(name):
    perceptual = PerceptualLoss('relu1_2', fallback='random') if name == 'perceptual' else None
    fn = {'l1': masked_l1, 'mse': masked_mse, 'grad': gradient_loss, 'perceptual': perceptual}[name]
    values = []
    for noise in (0.0, 0.05, 0.2):
        pred, gt, valid = _pair(noise)
        values.append(float(fn(pred, gt, valid)))
    assert values[0] == pytest.approx(0.0, abs=1e-7)
    assert values[0] < values[1] < values[2]


def test_invalid_pixels_do_not_count():
    pred, gt, valid = _pair(0.0)
    pred = pred.clone()
    pred[~valid] += 10.0
    assert float(masked_l1(pred, gt, valid)) == pytest.approx(0.0, abs=1e-7)
    assert float(masked_mse(pred, gt, valid)) == pytest.approx(0.0, abs=1e-7)
    assert float(PerceptualLoss('relu1_2', fallback='random')(pred, gt, valid)) == pytest.approx(0.0, abs=1e-6)


def test_tv_of_constant_is_zero():
    assert float(total_variation(torch.ones(1, 1, 8, 8))) == 0.0
    assert float(total_variation(torch.rand(1, 1, 8, 8))) > 0.0


def test_combined_loss_describes_its_terms_and_skips_zero_weights():
    loss = CombinedLoss(l1=1.0, grad=0.0, perceptual=0.1, tv=0.01, confidence=0.1, perceptual_layer='relu1_2',
                        perceptual_fallback='random')
    text = loss.describe()
    assert 'l1 x 1' in text and 'grad' not in text and 'RANDOM-weight VGG-16' in text
    pred, gt, valid = _pair(0.1)
    total, terms = loss(pred, torch.full_like(pred, 0.5), gt, valid)
    assert set(terms) == {'l1', 'perceptual', 'tv', 'confidence'}
    assert float(total) > 0
