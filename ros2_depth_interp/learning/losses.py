"""Training losses: the paper's perceptual loss plus the terms a practitioner wants as options.

Every loss works on normalized depth (see ``preprocess``) and only where ground truth is valid.

Perceptual loss (paper): mean squared difference of VGG-16 feature maps of prediction and ground
truth. Depth has one channel; VGG expects an ImageNet-normalized RGB image. We feed each depth map
as a grey image: the normalized depth (median 1) is divided by 2 and clipped to [0, 1], replicated
to three channels and normalized with the ImageNet mean and std. Invalid ground-truth pixels are
filled with the (detached) prediction on both sides, so they contribute nothing.

ImageNet VGG-16 weights cannot be downloaded here. ``load_vgg16_features`` takes them from a path or
from torchvision's cache (``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth``); when they are absent
it fails with a clear message, unless the caller explicitly asks for the ``random`` fallback: a VGG-16
with fixed, seeded random weights (random deep features still measure structure, but this is not the
paper's loss, and every log and model card says so).
"""
import os

import torch
from torch import nn
from torch.nn import functional as F

# VGG-16 "features" layout (torchvision index order), 'M' = max pool.
_VGG16 = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M')
# name -> index of the ReLU in the features Sequential
VGG_LAYERS = {'relu1_2': 3, 'relu2_2': 8, 'relu3_3': 15, 'relu4_3': 22}
VGG16_FILE = 'vgg16-397923af.pth'
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGWeightsMissing(RuntimeError):
    pass


def _vgg16_features(upto):
    layers, cin = [], 3
    for item in _VGG16:
        if item == 'M':
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU(inplace=False)]
            cin = item
    return nn.Sequential(*layers[:upto + 1])


def vgg16_cache_candidates():
    torch_home = os.environ.get('TORCH_HOME') or os.path.join(
        os.environ.get('XDG_CACHE_HOME', os.path.expanduser('~/.cache')), 'torch')
    return [os.path.join(torch_home, 'hub', 'checkpoints', VGG16_FILE)]


def load_vgg16_features(layer='relu2_2', weights=None, fallback=None, seed=0):
    """(features module, description). ``weights``: a path; ``fallback``: None or 'random'."""
    if layer not in VGG_LAYERS:
        raise ValueError('unknown VGG layer %r (choose from %s)' % (layer, ', '.join(VGG_LAYERS)))
    features = _vgg16_features(VGG_LAYERS[layer])
    paths = [weights] if weights else vgg16_cache_candidates()
    found = next((p for p in paths if p and os.path.isfile(p)), None)
    if found:
        state = torch.load(found, map_location='cpu', weights_only=True)
        state = {k[len('features.'):]: v for k, v in state.items() if k.startswith('features.')}
        features.load_state_dict({k: v for k, v in state.items() if k in features.state_dict()})
        description = 'ImageNet VGG-16 (%s) up to %s' % (found, layer)
    elif fallback == 'random':
        gen = torch.Generator().manual_seed(seed)
        for module in features:
            if isinstance(module, nn.Conv2d):
                fan_in = module.in_channels * 9
                module.weight.data = torch.randn(module.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5
                module.bias.data.zero_()
        description = ('RANDOM-weight VGG-16 up to %s (fallback: ImageNet weights not found at %s)'
                       % (layer, ', '.join(paths)))
    else:
        raise VGGWeightsMissing(
            'ImageNet VGG-16 weights not found (looked for %s). Put torchvision\'s %s there or pass '
            '--vgg-weights PATH; or choose --perceptual-fallback random explicitly (not the paper\'s loss).'
            % (', '.join(paths), VGG16_FILE))
    for p in features.parameters():
        p.requires_grad_(False)
    return features.eval(), description


class PerceptualLoss(nn.Module):

    def __init__(self, layer='relu2_2', weights=None, fallback=None):
        super().__init__()
        self.features, self.description = load_vgg16_features(layer, weights, fallback)
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode=True):  # the feature extractor stays frozen in eval mode
        super().train(mode)
        self.features.eval()
        return self

    def _as_image(self, depth):
        grey = (depth * 0.5).clamp(0.0, 1.0).expand(-1, 3, -1, -1)
        return (grey - self.mean) / self.std

    def forward(self, pred, gt, valid):
        gt = torch.where(valid, gt, pred.detach())
        return F.mse_loss(self.features(self._as_image(pred)), self.features(self._as_image(gt)))


def masked_l1(pred, gt, valid):
    weight = valid.float()
    return (weight * (pred - gt).abs()).sum() / weight.sum().clamp_min(1.0)


def masked_mse(pred, gt, valid):
    """Mean squared error over valid pixels: what PSNR measures, so large errors weigh most."""
    weight = valid.float()
    return (weight * (pred - gt) ** 2).sum() / weight.sum().clamp_min(1.0)


def gradient_loss(pred, gt, valid):
    """L1 between finite-difference gradients, where both pixels of a difference are valid."""
    def diffs(x):
        return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]
    (pdx, pdy), (gdx, gdy) = diffs(pred), diffs(gt)
    vx = valid[..., :, 1:] & valid[..., :, :-1]
    vy = valid[..., 1:, :] & valid[..., :-1, :]
    return masked_l1(pdx, gdx, vx) + masked_l1(pdy, gdy, vy)


def total_variation(pred):
    return (pred[..., :, 1:] - pred[..., :, :-1]).abs().mean() + (pred[..., 1:, :] - pred[..., :-1, :]).abs().mean()


def confidence_target(pred, gt, valid, tolerance=0.03):
    """What the confidence head learns: exp(-|error| / tolerance) in normalized units."""
    return torch.exp(-(pred.detach() - gt).abs() / tolerance) * valid


class CombinedLoss(nn.Module):
    """Weighted sum of the terms; a weight of 0 switches a term off (and skips its cost)."""

    def __init__(self, l1=1.0, grad=0.5, perceptual=0.0, tv=0.0, confidence=0.1,
                 perceptual_layer='relu2_2', vgg_weights=None, perceptual_fallback=None, mse=0.0):
        super().__init__()
        self.weights = dict(l1=l1, mse=mse, grad=grad, perceptual=perceptual, tv=tv, confidence=confidence)
        self.perceptual = (PerceptualLoss(perceptual_layer, vgg_weights, perceptual_fallback)
                           if perceptual > 0 else None)

    def describe(self):
        terms = ['%s x %g' % (k, v) for k, v in self.weights.items() if v > 0]
        text = ' + '.join(terms)
        if self.perceptual is not None:
            text += '; perceptual features: ' + self.perceptual.description
        return text

    def forward(self, pred, confidence, gt, valid):
        w = self.weights
        terms = {}
        if w['l1'] > 0:
            terms['l1'] = masked_l1(pred, gt, valid)
        if w['mse'] > 0:
            terms['mse'] = masked_mse(pred, gt, valid)
        if w['grad'] > 0:
            terms['grad'] = gradient_loss(pred, gt, valid)
        if w['perceptual'] > 0:
            terms['perceptual'] = self.perceptual(pred, gt, valid)
        if w['tv'] > 0:
            terms['tv'] = total_variation(pred)
        if w['confidence'] > 0:
            target = confidence_target(pred, gt, valid)
            bce = F.binary_cross_entropy(confidence.clamp(1e-6, 1 - 1e-6), target, reduction='none')
            terms['confidence'] = (bce * valid).sum() / valid.sum().clamp_min(1.0)
        total = sum(w[k] * v for k, v in terms.items())
        return total, {k: float(v.detach()) for k, v in terms.items()}
