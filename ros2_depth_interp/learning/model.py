"""The interpolation networks (torch; used for training, export and the torch inference backend) and
their presets.

The shipped model (preset ``default``) is ``geodesic.DepthGeodesic``: a small U-Net steers a
geodesic propagation of the sparse depth at full resolution (``learning/geodesic.py``).

``DepthInterpNet`` (preset ``prefill_cnn``, model 0.6.0's architecture) follows Makarov et al., "Depth
Map Interpolation using Perceptual Loss" (ISMAR 2017): residual blocks of two 3x3 convolutions with
ELU, projection blocks (1x1 convolution on the identity path) where the width changes, dilations
that grow with depth, ONE x2 downsampling stage, dropout before the last convolution, and a final
pixel shuffle (depth-to-space) back to full size. ELU everywhere but the last convolution.

One addition: a parameter-free, intensity-guided pre-fill (``PyramidPrefill``; in the
``prefill_cnn`` preset an edge-aware normalized convolution of first order, a weighted local plane
per pixel, at half resolution, then conjugate-gradient iterations on the colorization energy)
fills every hole and lets depth follow intensity edges, and the network
predicts a correction to that fill. Holes of semi-dense SLAM depth are often wider than any
affordable receptive field; with the pre-fill the network only has to fix edges and shapes.

Input: (N, 3, H, W) as described in ``preprocess`` (H, W multiples of ``stride``).
Output: (depth, confidence), each (N, 1, H, W): normalized depth and a confidence in [0, 1].
"""
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .layers import ELU, ResidualBlock, conv3x3
from .prefill import PyramidPrefill
from .geodesic import DepthGeodesic, GeodesicConfig
from .unet import CoarseSPNConfig, DepthCoarseSPN, DepthSPN, DepthUNet, SPNConfig, UNetConfig


@dataclass
class NetConfig:
    """``DepthInterpNet``'s architecture; the defaults are model 0.6.0's (the 'prefill_cnn' preset)."""
    stem_width: int = 8                  # full-resolution features
    width: int = 16                      # features after the single x2 downsampling
    dilations: tuple = (1, 2, 4)         # one residual block per entry, growing receptive field
    prefill_levels: int = 1              # pyramid halvings of the pre-fill (stride = 2 ** levels, at least 2)
    prefill_iterations: tuple = (20, 40)  # conjugate-gradient iterations per level, finest first
    prefill_variance_scale: float = 0.3  # neighbour weights: sigma_rs^2 = scale * mean of the two window variances
    prefill_sigma_floor: float = 0.005   # neighbour weights: sigma never below this (intensity in [0, 1])
    prefill_dt_sigma_s: float = 120.0    # domain transform: spatial range, in pixels of the coarsest level
    prefill_dt_sigma_r: float = 0.02     # domain transform: intensity range
    prefill_dt_passes: int = 2           # domain transform: horizontal + vertical passes
    prefill_dt_steps: int = 6            # domain transform: doubling steps per scan (reach 2^steps pixels)
    prefill_dt_ridge: float = 1.0        # first-order fill: ridge on the plane's slopes, in pixels of that level
    prefill_dt_clamp: float = 1.0        # first-order fill: the plane departs from the mean by at most clamp x std
    dropout: float = 0.0                 # before the last convolution, training only
    extra: dict = field(default_factory=dict)

    @property
    def stride(self):
        return max(2, 2 ** self.prefill_levels)

    def prefill_options(self):
        """The ``PyramidPrefill`` arguments."""
        return {k[len('prefill_'):]: v for k, v in asdict(self).items() if k.startswith('prefill_')}

    def to_dict(self):
        d = asdict(self)
        d['dilations'] = list(self.dilations)
        d['prefill_iterations'] = list(self.prefill_iterations)
        return d

    @classmethod
    def from_dict(cls, d):
        """A config from ``to_dict`` or a checkpoint. Checkpoints up to model 0.6.0 also record the
        options of pre-fills this version no longer has; they load when those options select the
        shipped pre-fill, and give one clear error otherwise."""
        d = dict(d)
        _check_earlier_prefill(d)
        d['dilations'] = tuple(d.get('dilations', cls.dilations))
        d['prefill_iterations'] = tuple(d.get('prefill_iterations', cls.prefill_iterations))
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# Options of the pre-fills of models before 0.6.0 and the one value each that this version
# supports: checkpoints record every option, with these defaults where the option did not exist yet.
EARLIER_PREFILL_OPTIONS = {
    # key: (default in those checkpoints, the value model 0.6.0's pre-fill needs)
    'prefill_tau': (0.0, 0.0),
    'prefill_top': ('pull_push', 'domain_transform'),
    'prefill_solver': ('heavy_ball', 'cg'),
    'prefill_weights': ('global', 'variance'),
    'prefill_neighbours': (8, 8),
    'prefill_dt_order': (0, 1),
}


def _check_earlier_prefill(d):
    if not any(k in d for k in EARLIER_PREFILL_OPTIONS):
        return
    for key, (default, needed) in EARLIER_PREFILL_OPTIONS.items():
        if d.get(key, default) != needed:
            raise ValueError('this checkpoint was trained on a pre-fill this version does not have (%s = %r; '
                             "model 0.6.0's pre-fill has %r): load it with release 0.6.0's code, or export it there"
                             % (key, d.get(key, default), needed))


PRESETS = {
    # the shipped model (models/README.md): geodesic_swept's network and propagation, three rounds of
    # harmonic smoothing reaching 16 px and 8 colorization sweeps (its weights were trained as
    # geodesic_swept; the parameter-free steps share every tensor)
    'default': GeodesicConfig(widths=(16, 24), blocks=(1, 2), smoothing=(16, 8, 4, 2, 1), smoothing_rounds=3,
                              colorization_steps=8, colorization_neighbours=4),
    # model 0.6.0: the classical pre-fill (domain transform, conjugate gradients) and a CNN correcting it
    'prefill_cnn': NetConfig(),
    # the paper-sized network on the same pre-fill
    'paper': NetConfig(stem_width=32, width=64, dilations=(1, 2, 4, 8, 16, 1), dropout=0.5),
    # for tests: exported in a second
    'tiny': NetConfig(stem_width=4, width=8, dilations=(1, 2), prefill_iterations=(2, 4), prefill_dt_steps=4),
    # the candidates measured beside the shipped model (docs/model_designs.md, "The candidates")
    'unet': UNetConfig(),
    'unet_tiny': UNetConfig(widths=(4, 6, 8, 8, 8), blocks=(0, 0, 1, 1, 1)),
    'spn': SPNConfig(),
    'spn_coarse': CoarseSPNConfig(),
    'geodesic': GeodesicConfig(),
    # the same propagation under a narrower U-Net (0.19 M parameters against 0.69 M)
    'geodesic_light': GeodesicConfig(widths=(8, 16, 24, 32, 48)),
    # a two-level U-Net (half and quarter resolution) and four rounds of harmonic smoothing
    'geodesic_harmonic': GeodesicConfig(widths=(16, 24), blocks=(1, 2), smoothing=(8, 4, 2, 1), smoothing_rounds=4),
    # the same with five colorization sweeps at full resolution after it
    'geodesic_swept': GeodesicConfig(widths=(16, 24), blocks=(1, 2), smoothing=(8, 4, 2, 1), smoothing_rounds=4,
                                     colorization_steps=5, colorization_neighbours=4),
    # the same at half resolution (the same reach and smoothing in full-resolution pixels), then five
    # colorization sweeps at full resolution
    'geodesic_half': GeodesicConfig(widths=(16, 24), blocks=(1, 2), distances=(128, 64, 32, 16, 8, 4, 2, 1, 2, 1),
                                    smoothing=(4, 2, 1), smoothing_rounds=4, propagation_scale=2,
                                    colorization_steps=5, colorization_neighbours=4),
    # geodesic_swept, then a small network at half resolution that sees the finished fill and corrects it
    'geodesic_corrected': GeodesicConfig(widths=(16, 24), blocks=(1, 2), smoothing=(8, 4, 2, 1), smoothing_rounds=4,
                                         colorization_steps=5, colorization_neighbours=4, correction_width=16),
    # geodesic_half, then a short propagation at full resolution from its result (4, 2, 1, 2, 1 px)
    # before the colorization sweeps
    'geodesic_mixed': GeodesicConfig(widths=(16, 24), blocks=(1, 2), distances=(128, 64, 32, 16, 8, 4, 2, 1, 2, 1),
                                     smoothing=(4, 2, 1), smoothing_rounds=4, propagation_scale=2,
                                     fine_distances=(4, 2, 1, 2, 1), colorization_steps=5, colorization_neighbours=4),
}


class DepthInterpNet(nn.Module):

    def __init__(self, config=None):
        super().__init__()
        self.config = config = config or NetConfig()
        self.prefill = PyramidPrefill(**config.prefill_options())
        # full resolution: known depth, mask, intensity and the pre-fill
        self.stem = nn.Sequential(conv3x3(4, config.stem_width), ELU())
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
        fill = self.prefill(depth, mask, intensity)   # in float32 also in a float16 network
        features = self.stem(torch.cat([depth, mask, intensity, fill], dim=1))
        features = self.down(features)
        features = self.blocks(features)
        out = self.shuffle(self.head(self.dropout(features)))
        dense = fill + out[:, 0:1]
        confidence = torch.sigmoid(out[:, 1:2] + 2.0)
        return dense, confidence


def config_from_dict(d):
    return {'unet': UNetConfig, 'spn': SPNConfig, 'spn_coarse': CoarseSPNConfig,
            'geodesic': GeodesicConfig}.get(d.get('arch'), NetConfig).from_dict(d)


def build_model(config=None):
    if isinstance(config, str):
        config = PRESETS[config]
    elif isinstance(config, dict):
        config = config_from_dict(config)
    if isinstance(config, SPNConfig):
        return DepthSPN(config)
    if isinstance(config, CoarseSPNConfig):
        return DepthCoarseSPN(config)
    if isinstance(config, GeodesicConfig):
        return DepthGeodesic(config)
    return DepthUNet(config) if isinstance(config, UNetConfig) else DepthInterpNet(config)


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())
