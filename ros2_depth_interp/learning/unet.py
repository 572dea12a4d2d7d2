"""The multi-scale interpolation network: a normalized-convolution pyramid and a small U-Net.

The network does the interpolation itself, with few, large operators:

1. ``SparsePyramid``: the known depth and its mask are average-pooled level by level (normalized
   convolution of the sparse input with a box kernel); each level's normalized depth ``s / w`` and
   support ``w`` are inputs of the encoder at that resolution; the coarsest level is spread into
   the blocks without samples by repeated 3x3 normalized averaging, and a coarse-to-fine blend of
   the levels (pull-push) gives a complete first guess at full resolution. Parameter-free.
2. ``UNet``: an encoder of residual blocks (3x3 convolutions, ELU) that halves the resolution five
   times (receptive field of the whole frame at 640x480), a decoder that adds each encoder level back
   (skip connections) and a head at half resolution whose pixel shuffle gives the full-resolution
   correction of the first guess and a confidence logit.
3. Variants that steer learned spatial propagation with the decoder's features: ``DepthSPN`` at
   every level down to full resolution, ``DepthCoarseSPN`` only at the coarse levels (1/32 to 1/4),
   whose estimate replaces the pull-push fill under the U-Net's correction. The affinities start as
   an intensity prior (colorization-like), so the untrained network already follows image edges.

Input: (N, 3, H, W) as described in ``core.preprocess`` (H, W multiples of ``stride``).
Output: (depth, confidence), each (N, 1, H, W): normalized depth and a confidence in [0, 1].
"""
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .layers import ResidualBlock, conv3x3, elu


EPS = 1e-6
OUTSIDE = 4.0     # intensity (in [0, 1] inside) of the pixels around the image
HOLD_BIAS = 4.0   # initial firmness logit of the pooled measurements (sigmoid: 0.98)


@dataclass
class UNetConfig:
    widths: tuple = (16, 24, 40, 64, 96)   # features at 1/2, 1/4, 1/8, 1/16, 1/32 of the input size
    blocks: tuple = (0, 1, 1, 2, 2)        # residual blocks per level, after its downsampling
    pyramid_gain: float = 8.0              # pull-push: a level's own value counts min(1, gain * support)
    pyramid_spread: int = 12               # 3x3 spreading rounds at the coarsest level (1/32)
    arch: str = 'unet'

    @property
    def stride(self):
        return 2 ** len(self.widths)

    def to_dict(self):
        d = asdict(self)
        d['widths'] = list(self.widths)
        d['blocks'] = list(self.blocks)
        return d

    @classmethod
    def from_dict(cls, d):
        d = {k: v for k, v in dict(d).items() if k in cls.__dataclass_fields__}
        for key in ('widths', 'blocks'):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


@dataclass
class PropagationConfig(UNetConfig):
    """Settings of the learned propagation shared by the 'spn' and 'spn_coarse' candidates."""
    propagation: dict = None       # level (1 = 1/2, 2 = 1/4, 3 = 1/8 ...) -> propagation steps there
    prior_sigma: float = 0.02      # initial intensity range of the affinities' prior (intensity in [0, 1])
    default_propagation = {}       # class attribute (not a field): the steps when none are given

    def __post_init__(self):
        steps = self.default_propagation if self.propagation is None else self.propagation
        self.propagation = {int(k): int(v) for k, v in steps.items()}


@dataclass
class SPNConfig(PropagationConfig):
    full_iterations: int = 4       # propagation steps at full resolution
    full_width: int = 8            # full-resolution features of the input
    lift_width: int = 4            # decoder features brought to full resolution by a pixel shuffle
    arch: str = 'spn'
    default_propagation = {5: 16, 4: 14, 3: 10, 2: 8, 1: 6}


@dataclass
class CoarseSPNConfig(PropagationConfig):
    arch: str = 'spn_coarse'
    default_propagation = {5: 16, 4: 12, 3: 8, 2: 6}     # 1/32 to 1/4 only


class SparsePyramid(nn.Module):
    """Normalized-convolution pyramid of the sparse depth, and its pull-push fill."""

    def __init__(self, levels, gain, spread):
        super().__init__()
        self.levels, self.gain, self.spread = levels, gain, spread

    def forward(self, depth, mask):
        """-> (fills, pyramid): the pull-push fill at full resolution, 1/2, 1/4, ... and
        [(normalized depth, support)] at the same resolutions (full resolution: depth and mask)."""
        value, support = depth * mask, mask
        pyramid = []
        for _ in range(self.levels):
            value, support = F.avg_pool2d(value, 2), F.avg_pool2d(support, 2)
            pyramid.append((value / (support + EPS), support))
        # coarse to fine: a level keeps its own value where it has support, the coarser fill elsewhere
        pyramid = [(depth, mask)] + pyramid
        fills = [self._coarsest(*pyramid[-1])]
        for normalized, support in reversed(pyramid[:-1]):
            fill = F.interpolate(fills[0], scale_factor=2.0, mode='bilinear', align_corners=False)
            own = torch.clamp(support * self.gain, max=1.0)
            fills.insert(0, own * normalized + (1.0 - own) * fill)
        return fills, pyramid

    def _coarsest(self, normalized, support):
        """The coarsest level, spread by repeated 3x3 normalized averaging (reach ``spread`` pixels of
        that level) into blocks without samples; the frame's mean where nothing arrives."""
        value, weight = normalized * support, support
        for _ in range(self.spread):
            value = F.avg_pool2d(value, 3, stride=1, padding=1, count_include_pad=False)
            weight = F.avg_pool2d(weight, 3, stride=1, padding=1, count_include_pad=False)
        total = (normalized * support).sum((2, 3), keepdim=True)
        mean = total / (support.sum((2, 3), keepdim=True) + EPS)
        reached = torch.clamp(weight * 1e6, max=1.0)
        spread = reached * value / (weight + EPS) + (1.0 - reached) * mean
        own = torch.clamp(support * self.gain, max=1.0)
        return own * normalized + (1.0 - own) * spread


class DepthUNet(nn.Module):

    def __init__(self, config=None):
        super().__init__()
        self.config = config = config or UNetConfig()
        widths = config.widths
        self.pyramid = SparsePyramid(len(widths), config.pyramid_gain, config.pyramid_spread)
        # encoder: level k sees the previous level's features and its own pyramid level (2 channels)
        cins = [4] + [w + 2 for w in widths[:-1]]
        self.down = nn.ModuleList(conv3x3(cin, w, stride=2) for cin, w in zip(cins, widths))
        self.encode = nn.ModuleList(
            nn.Sequential(*[ResidualBlock(w, w, dilation=1 if i < 3 else 2 ** (b % 2)) for b in range(n)])
            for i, (w, n) in enumerate(zip(widths, config.blocks)))
        # decoder: coarse features, reduced to the finer width by a 1x1 convolution, upsampled, added
        self.reduce = nn.ModuleList(nn.Conv2d(widths[i + 1], widths[i], 1) for i in range(len(widths) - 1))
        self.decode = nn.ModuleList(conv3x3(widths[i], widths[i]) for i in range(len(widths) - 1))
        # half resolution -> 2x2 sub-pixels of (depth correction, confidence logit)
        self.head = conv3x3(widths[0], 2 * 4)
        self.shuffle = nn.PixelShuffle(2)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def stride(self):
        return self.config.stride

    def encoder_decoder(self, depth, mask, intensity, fills, pyramid):
        """-> decoder features at 1/2, 1/4, ... (the coarsest level: the encoder's own)."""
        features = torch.cat([depth, mask, intensity, fills[0]], dim=1)
        skips = []
        for level, (down, encode) in enumerate(zip(self.down, self.encode)):
            features = encode(elu(down(features)))
            skips.append(features)
            if level + 1 < len(self.down):
                normalized, support = pyramid[level + 1]
                features = torch.cat([features, normalized, support], dim=1)
        decoded = [skips[-1]]
        for level in reversed(range(len(skips) - 1)):
            up = F.interpolate(self.reduce[level](decoded[0]), scale_factor=2.0, mode='nearest')
            decoded.insert(0, elu(self.decode[level](elu(up + skips[level]))))
        return decoded

    def forward(self, x):
        depth, mask, intensity = x[:, 0:1], x[:, 1:2], x[:, 2:3]
        fills, pyramid = self.pyramid(depth, mask)
        decoded = self.encoder_decoder(depth, mask, intensity, fills, pyramid)
        out = self.shuffle(self.head(decoded[0]))
        dense = fills[0] + out[:, 0:1]
        confidence = torch.sigmoid(out[:, 1:2] + 2.0)
        return dense, confidence


class Propagation(nn.Module):
    """``iterations`` steps of learned spatial propagation: each pixel becomes the affinity-weighted
    mean of its 3x3 neighbourhood (itself included; the affinities a softmax over the nine), then
    measured values are put back where the level has support."""

    def __init__(self, iterations):
        super().__init__()
        self.iterations = iterations

    def forward(self, x, affinity, held, keep):
        weights = keep * affinity   # held + keep * sum(a * n) = held + sum((keep * a) * n): one Mul less a step
        for _ in range(self.iterations):
            x = held + (weights * neighbours(x)).sum(1, keepdim=True)
        return x


def _shift_kernels():
    kernels = torch.zeros(9, 1, 3, 3)
    for k in range(9):
        kernels[k, 0, k // 3, k % 3] = 1.0
    return kernels


SHIFTS = _shift_kernels()


def neighbours(x):
    """(N, 1, H, W) -> (N, 9, H, W): the 3x3 neighbourhood of every pixel (zero outside), one Conv."""
    return F.conv2d(x, SHIFTS.to(x), padding=1)   # the input's dtype and device


def intensity_prior(intensity, scale):
    """Affinity logits that follow intensity: -scale x squared intensity difference to each of the nine
    neighbours (0 for the pixel itself). Outside the image the intensity is taken as ``OUTSIDE``, so
    that neighbours there get no weight."""
    shifted = intensity - OUTSIDE   # its zero padding is padding with OUTSIDE
    difference = neighbours(shifted) - shifted
    return -scale * (difference * difference)


class LevelPropagation:
    """Coarse-to-fine learned propagation over the levels ``self.levels`` (coarsest first), for a
    U-Net with ``affinity`` convolutions and ``propagate`` steps per level."""

    def build_levels(self, extra_scales=0):
        """The per-level modules: 9 affinity logits and how firmly the level's pooled measurements are
        held (a block that pools both sides of a depth edge should not be), zero-initialized so that
        the intensity prior alone steers at first; the prior's weight (log scale) per level and for
        ``extra_scales`` further propagations."""
        config, widths = self.config, self.config.widths
        self.levels = sorted((int(l) for l in config.propagation), reverse=True)   # coarsest first
        self.affinity = nn.ModuleList(conv3x3(widths[l - 1], 10) for l in self.levels)
        self.propagate = nn.ModuleList(Propagation(config.propagation[l]) for l in self.levels)
        prior = math.log(1.0 / (2.0 * config.prior_sigma ** 2))
        self.prior_log_scale = nn.Parameter(torch.full((len(self.levels) + extra_scales,), prior))
        for conv in self.affinity:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
            nn.init.constant_(conv.bias[9:], HOLD_BIAS)

    def propagate_levels(self, intensity, fills, pyramid, decoded, scales):
        """From the pull-push fill of the coarsest level, propagation level by level; -> the finest
        level's estimate upsampled to full resolution. ``scales``: the intensity prior's weight per level."""
        shades = [intensity]
        for _ in range(self.levels[0]):
            shades.append(F.avg_pool2d(shades[-1], 2))
        estimate, previous = fills[self.levels[0]], self.levels[0]
        for i, (level, affinity, propagate) in enumerate(zip(self.levels, self.affinity, self.propagate)):
            if level != previous:
                estimate = F.interpolate(estimate, scale_factor=2.0 ** (previous - level), mode='bilinear',
                                         align_corners=False)
                previous = level
            out = affinity(decoded[level - 1])
            held, keep = self._held(*pyramid[level], torch.sigmoid(out[:, 9:10]))
            logits = out[:, :9] + intensity_prior(shades[level], scales[i])
            estimate = propagate(held + keep * estimate, torch.softmax(logits, dim=1), held, keep)
        return F.interpolate(estimate, scale_factor=2.0 ** previous, mode='bilinear', align_corners=False)

    def _held(self, normalized, support, firmness=None):
        """(held values, weight of the propagated estimate) of one level."""
        own = torch.clamp(support * self.config.pyramid_gain, max=1.0)
        if firmness is not None:
            own = own * firmness
        return own * normalized, 1.0 - own


class DepthSPN(LevelPropagation, DepthUNet):
    """The U-Net predicts affinities for coarse-to-fine learned propagation of the sparse depth."""

    def __init__(self, config=None):
        super().__init__(config or SPNConfig())
        config, widths = self.config, self.config.widths
        self.build_levels(extra_scales=1)   # the last prior scale: full resolution
        self.full = Propagation(config.full_iterations)
        # full resolution: features of the input beside the decoder's, lifted from half resolution by
        # a pixel shuffle, give the 9 affinities, a depth correction and a confidence logit
        self.full_features = conv3x3(4, config.full_width)
        self.lift = conv3x3(widths[0], 4 * config.lift_width)
        self.head = conv3x3(config.full_width + config.lift_width, 11)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        depth, mask, intensity = x[:, 0:1], x[:, 1:2], x[:, 2:3]
        fills, pyramid = self.pyramid(depth, mask)
        decoded = self.encoder_decoder(depth, mask, intensity, fills, pyramid)
        scales = torch.exp(self.prior_log_scale)
        estimate = self.propagate_levels(intensity, fills, pyramid, decoded, scales)
        full = torch.cat([elu(self.full_features(torch.cat([depth, mask, intensity, fills[0]], dim=1))),
                          elu(self.shuffle(self.lift(decoded[0])))], dim=1)
        out = self.head(full)
        held, keep = self._held(depth, mask)
        logits = out[:, :9] + intensity_prior(intensity, scales[-1])
        estimate = self.full(held + keep * estimate, torch.softmax(logits, dim=1), held, keep)
        dense = estimate + keep * out[:, 9:10]
        confidence = torch.sigmoid(out[:, 10:11] + 2.0)
        return dense, confidence


class DepthCoarseSPN(LevelPropagation, DepthUNet):
    """The U-Net steers learned propagation of the sparse depth at the coarse levels only (1/32 to
    1/4 by default, where a step costs little); the propagated estimate, upsampled to full resolution
    with the measurements put back, replaces the pull-push fill under the U-Net's correction."""

    def __init__(self, config=None):
        super().__init__(config or CoarseSPNConfig())
        self.build_levels()

    def forward(self, x):
        depth, mask, intensity = x[:, 0:1], x[:, 1:2], x[:, 2:3]
        fills, pyramid = self.pyramid(depth, mask)
        decoded = self.encoder_decoder(depth, mask, intensity, fills, pyramid)
        estimate = self.propagate_levels(intensity, fills, pyramid, decoded, torch.exp(self.prior_log_scale))
        held, keep = self._held(depth, mask)
        out = self.shuffle(self.head(decoded[0]))
        dense = held + keep * estimate + out[:, 0:1]
        confidence = torch.sigmoid(out[:, 1:2] + 2.0)
        return dense, confidence
