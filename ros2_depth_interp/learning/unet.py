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

Input: (N, 3, H, W) as described in ``core.preprocess`` (H, W multiples of ``stride``).
Output: (depth, confidence), each (N, 1, H, W): normalized depth and a confidence in [0, 1].
"""
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


EPS = 1e-6


def elu(x):
    """ELU; in an ONNX export written as max(x, exp(min(x, 0)) - 1), the same function, because
    ONNX Runtime's CPU Elu kernel is several times slower than Exp, Min and Max."""
    if torch.onnx.is_in_onnx_export():
        return torch.maximum(x, torch.exp(torch.clamp(x, max=0.0)) - 1.0)
    return F.elu(x)


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
class SPNConfig(UNetConfig):
    propagation: dict = None       # level (1 = 1/2, 2 = 1/4, 3 = 1/8 ...) -> propagation steps there
    full_iterations: int = 4       # propagation steps at full resolution
    arch: str = 'spn'

    def __post_init__(self):
        if self.propagation is None:
            self.propagation = {5: 8, 4: 12, 3: 12, 2: 10, 1: 6}
        self.propagation = {int(k): int(v) for k, v in self.propagation.items()}


def conv3x3(cin, cout, stride=1, dilation=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with ELU around an identity skip."""

    def __init__(self, width, dilation=1):
        super().__init__()
        self.conv1 = conv3x3(width, width, dilation=dilation)
        self.conv2 = conv3x3(width, width, dilation=dilation)

    def forward(self, x):
        return elu(x + self.conv2(elu(self.conv1(x))))


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
            nn.Sequential(*[ResidualBlock(w, dilation=1 if i < 3 else 2 ** (b % 2)) for b in range(n)])
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
        shifts = torch.zeros(9, 1, 3, 3)
        for k in range(9):
            shifts[k, 0, k // 3, k % 3] = 1.0
        self.register_buffer('shifts', shifts, persistent=False)

    def forward(self, x, affinity, held, keep):
        for _ in range(self.iterations):
            neighbours = F.conv2d(x, self.shifts, padding=1)
            x = held + keep * (affinity * neighbours).sum(1, keepdim=True)
        return x


class DepthSPN(DepthUNet):
    """The U-Net predicts affinities for coarse-to-fine learned propagation of the sparse depth."""

    def __init__(self, config=None):
        super().__init__(config or SPNConfig())
        config, widths = self.config, self.config.widths
        levels = sorted(config.propagation, reverse=True)          # coarsest first, e.g. 3, 2, 1
        self.levels = [int(l) for l in levels]
        self.affinity = nn.ModuleList(conv3x3(widths[l - 1], 9) for l in self.levels)
        self.propagate = nn.ModuleList(Propagation(config.propagation[l]) for l in self.levels)
        self.full = Propagation(config.full_iterations)
        # half resolution -> 2x2 sub-pixels of (9 affinities, depth correction, confidence logit)
        self.head = conv3x3(widths[0], 11 * 4)
        for conv in list(self.affinity) + [self.head]:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x):
        depth, mask, intensity = x[:, 0:1], x[:, 1:2], x[:, 2:3]
        fills, pyramid = self.pyramid(depth, mask)
        decoded = self.encoder_decoder(depth, mask, intensity, fills, pyramid)
        estimate = fills[self.levels[0]]
        for level, affinity, propagate in zip(self.levels, self.affinity, self.propagate):
            if level != self.levels[0]:
                estimate = F.interpolate(estimate, scale_factor=2.0, mode='bilinear', align_corners=False)
            held, keep = self._held(*pyramid[level])
            weights = torch.softmax(affinity(decoded[level - 1]), dim=1)
            estimate = propagate(held + keep * estimate, weights, held, keep)
        estimate = F.interpolate(estimate, scale_factor=2.0 ** self.levels[-1], mode='bilinear', align_corners=False)
        out = self.shuffle(self.head(decoded[0]))
        held, keep = self._held(depth, mask)
        estimate = self.full(held + keep * estimate, torch.softmax(out[:, :9], dim=1), held, keep)
        dense = estimate + keep * out[:, 9:10]
        confidence = torch.sigmoid(out[:, 10:11] + 2.0)
        return dense, confidence

    def _held(self, normalized, support):
        own = torch.clamp(support * self.config.pyramid_gain, max=1.0)
        return own * normalized, 1.0 - own
