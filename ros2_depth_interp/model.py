"""The interpolation network (torch; used for training, export and the torch inference backend).

After Makarov et al., "Depth Map Interpolation using Perceptual Loss" (ISMAR 2017): residual blocks
of two 3x3 convolutions with ELU, projection blocks (1x1 convolution on the identity path) where the
width changes, dilations that grow with depth, ONE x2 downsampling stage, dropout before the last
convolution, and a final pixel shuffle (depth-to-space) back to full size. ELU everywhere but the
last convolution.

One addition, measured in models/README.md: a parameter-free, intensity-guided pull-push pyramid
(``PyramidPrefill``) fills every hole from the finest scale that has a measurement and lets depth
follow intensity edges, and the network predicts a correction to that fill. Holes of semi-dense
SLAM depth are often wider than any affordable receptive field; with the pre-fill the network only
has to fix edges and shapes.

Input: (N, 3, H, W) as described in ``preprocess`` (H, W multiples of ``stride``).
Output: (depth, confidence), each (N, 1, H, W): normalized depth and a confidence in [0, 1].
"""
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class NetConfig:
    stem_width: int = 8                  # full-resolution features
    width: int = 16                      # features after the single x2 downsampling
    dilations: tuple = (1, 2, 4, 8, 1)   # one residual block per entry, growing receptive field
    prefill_levels: int = 5              # pyramid depth of the pre-fill (stride = 2 ** levels)
    prefill_tau: float = 0.0             # 0: pull-push; > 0: plain normalized convolution (first variant)
    prefill_spread: int = 4              # 3x3 growing rounds at the coarsest level
    prefill_iterations: tuple = ()       # intensity-guided sweeps per pyramid level, finest first
    prefill_sigma: float = 0.02          # std of the intensity-similarity weight (intensity in [0, 1])
    prefill_momentum: float = 0.0        # heavy-ball momentum of the sweeps (0: plain Jacobi sweeps)
    prefill_momentum_ramp: float = 3.0   # sweep k of a level uses momentum * k / (k + ramp)
    dropout: float = 0.5                 # before the last convolution, training only
    extra: dict = field(default_factory=dict)

    @property
    def stride(self):
        return max(2, 2 ** self.prefill_levels)

    def to_dict(self):
        d = asdict(self)
        d['dilations'] = list(self.dilations)
        d['prefill_iterations'] = list(self.prefill_iterations)
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d['dilations'] = tuple(d.get('dilations', cls.dilations))
        d['prefill_iterations'] = tuple(d.get('prefill_iterations', ()))
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


PRESETS = {
    # real time on a 2-core CPU (see models/README.md for the timing that chose it)
    'default': NetConfig(dilations=(1, 2, 4, 8), prefill_iterations=(1, 4, 20, 40, 60, 60), prefill_momentum=0.95),
    # the paper-sized variant
    'paper': NetConfig(stem_width=32, width=64, dilations=(1, 2, 4, 8, 16, 1),
                       prefill_iterations=(2, 4, 12, 12, 12, 12)),
    # for tests: exported in a second
    'tiny': NetConfig(stem_width=4, width=8, dilations=(1, 2), prefill_levels=3, prefill_iterations=(1, 1, 2, 2)),
}


def conv3x3(cin, cout, dilation=1, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with ELU and an identity skip; a projection block (1x1 convolution on
    the identity path) where the width or the resolution changes."""

    def __init__(self, cin, cout, dilation=1, stride=1):
        super().__init__()
        self.conv1 = conv3x3(cin, cout, dilation, stride)
        self.conv2 = conv3x3(cout, cout, dilation)
        projects = cin != cout or stride != 1
        self.project = nn.Conv2d(cin, cout, 1, stride=stride) if projects else nn.Identity()

    def forward(self, x):
        y = F.elu(self.conv1(x))
        y = self.conv2(y)
        return F.elu(y + self.project(x))


class PyramidPrefill(nn.Module):
    """Fill unknown pixels by an intensity-guided pull-push over a 2x pyramid, coarse to fine.

    Pull (Gortler et al. 1996): level k holds, per 2^k block, the mean of its known values and the
    count of known pixels; at the coarsest level, blocks without support take the mean of their
    neighbours (``spread`` rounds of 3x3), then the mean of all known values.
    Push: going from coarse to fine, a block keeps its own mean in proportion to its support
    (weight = min(count, 1)) and takes the upsampled coarser fill for the rest. A hole is thus filled
    from the finest scale that has any measurement.
    Guidance: at each level, ``iterations[k]`` Jacobi sweeps of the colorization energy (Levin et
    al. 2004) propagate values between 3x3 neighbours of similar intensity, measurements held in
    proportion to their support; neighbours weigh exp(-dI^2 / 2 sigma^2). Starting every level from
    the coarser solution makes a few sweeps per level enough (a cascadic multigrid), so depth
    follows intensity edges at a fraction of colorization's cost.
    ``momentum`` > 0 makes the sweeps heavy-ball iterations, x <- J(x) + m_k (x - x_previous) on
    unknown pixels, with m_k = momentum * k / (k + momentum_ramp) at the k-th sweep of a level:
    values cross wide holes (gradient masks) in far fewer sweeps, and the ramp keeps the first
    sweeps plain, so a level that is nearly solved already (dense masks) does not overshoot. The
    weights are symmetric (w_rs = w_sr), so the Jacobi operator has a real spectrum in (-1, 1) and
    the heavy-ball iteration converges for any momentum below 1; Levin et al.'s variance-scaled
    weights are not symmetric, and with momentum they diverged on some of our scenes.
    ``tau`` > 0 instead selects plain normalized convolution without guidance (the first variant we
    measured; kept so older models load). No trainable parameters; exports to ONNX as pooling,
    fixed convolutions and Resize.
    """

    def __init__(self, levels, tau=0.0, spread=4, iterations=(), sigma=0.02, momentum=0.0, momentum_ramp=3.0):
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError('momentum must be in [0, 1), got %r' % (momentum,))
        self.levels = levels
        self.tau = tau
        self.spread = spread
        self.iterations = tuple(iterations)
        self.sigma = sigma
        self.momentum = float(momentum)
        self.momentum_ramp = float(momentum_ramp)
        # one-hot 3x3 kernels: neighbour j of every pixel as channel j
        self.register_buffer('shifts', torch.eye(9).view(9, 1, 3, 3), persistent=False)

    def _neighbours(self, x):
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode='replicate'), self.shifts)

    def _affinity(self, intensity):
        diff = self._neighbours(intensity) - intensity
        weights = torch.exp(diff * diff * (-0.5 / (self.sigma * self.sigma)))
        return weights / weights.sum(dim=1, keepdim=True)

    def forward(self, depth, mask, intensity=None):
        sums, counts, images = [depth * mask], [mask], [intensity]
        for level in range(1, self.levels + 1):
            # sums and counts per block (avg pooling times the block area)
            sums.append(F.avg_pool2d(sums[-1], 2) * 4.0)
            counts.append(F.avg_pool2d(counts[-1], 2) * 4.0)
            images.append(F.avg_pool2d(images[-1], 2) if intensity is not None else None)
        total = sums[-1].sum(dim=(2, 3), keepdim=True)
        count = counts[-1].sum(dim=(2, 3), keepdim=True)
        global_mean = total / count.clamp_min(1e-6)
        top_sum, top_count = sums[-1], counts[-1]
        for _ in range(self.spread if self.tau <= 0 else 0):
            has = (top_count > 0).to(top_sum.dtype)
            near_sum = F.avg_pool2d(top_sum / top_count.clamp_min(1e-6) * has, 3, 1, 1, count_include_pad=False)
            near_cnt = F.avg_pool2d(has, 3, 1, 1, count_include_pad=False)
            grown = near_sum / near_cnt.clamp_min(1e-6)
            top_sum = torch.where(top_count > 0, top_sum, grown * (near_cnt > 0).to(top_sum.dtype))
            top_count = torch.where(top_count > 0, top_count, (near_cnt > 0).to(top_sum.dtype))
        fill = global_mean.expand_as(top_sum)
        sums[-1], counts[-1] = top_sum, top_count
        for level in range(self.levels, -1, -1):
            if level < self.levels:
                fill = F.interpolate(fill, scale_factor=2.0, mode='bilinear', align_corners=False)
            if self.tau > 0:
                area = float(4 ** level)
                fill = (sums[level] / area + self.tau * fill) / (counts[level] / area + self.tau)
                continue
            weight = counts[level].clamp(max=1.0)
            held = weight * sums[level] / counts[level].clamp_min(1e-6)
            free = 1.0 - weight
            fill = held + free * fill
            sweeps = self.iterations[level] if level < len(self.iterations) else 0
            if sweeps and images[level] is not None:
                affinity = self._affinity(images[level])
                previous = fill
                for k in range(sweeps):
                    swept = held + free * (self._neighbours(fill) * affinity).sum(dim=1, keepdim=True)
                    momentum = self.momentum * k / (k + self.momentum_ramp) if self.momentum_ramp > 0 else self.momentum
                    if momentum > 0:
                        swept = swept + (momentum * free) * (fill - previous)
                    fill, previous = swept, fill
        return fill


class DepthInterpNet(nn.Module):

    def __init__(self, config=None):
        super().__init__()
        self.config = config = config or NetConfig()
        self.prefill = PyramidPrefill(config.prefill_levels, config.prefill_tau, config.prefill_spread,
                                      config.prefill_iterations, config.prefill_sigma, config.prefill_momentum,
                                      config.prefill_momentum_ramp)
        # full resolution: known depth, mask, intensity and the pre-fill
        self.stem = nn.Sequential(conv3x3(4, config.stem_width), nn.ELU())
        # the single x2 downsampling stage: a projection block
        self.down = ResidualBlock(config.stem_width, config.width, stride=2)
        self.blocks = nn.Sequential(*[ResidualBlock(config.width, config.width, d) for d in config.dilations])
        self.dropout = nn.Dropout(config.dropout)
        # depth correction and confidence logit for each of the 2x2 sub-pixels
        self.head = conv3x3(config.width, 2 * 4)
        self.shuffle = nn.PixelShuffle(2)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def stride(self):
        return self.config.stride

    def forward(self, x):
        depth, mask, intensity = x[:, 0:1], x[:, 1:2], x[:, 2:3]
        fill = self.prefill(depth, mask, intensity)
        features = self.stem(torch.cat([depth, mask, intensity, fill], dim=1))
        features = self.down(features)
        features = self.blocks(features)
        out = self.shuffle(self.head(self.dropout(features)))
        dense = fill + out[:, 0:1]
        confidence = torch.sigmoid(out[:, 1:2] + 2.0)
        return dense, confidence


def build_model(config=None):
    if isinstance(config, str):
        config = PRESETS[config]
    elif isinstance(config, dict):
        config = NetConfig.from_dict(config)
    return DepthInterpNet(config)


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())
