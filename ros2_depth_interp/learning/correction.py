"""A small network that looks at a finished fill and corrects it, at half resolution.

The U-Net of ``geodesic.DepthGeodesic`` runs before the propagation: it sets the step costs, and its
own correction cannot see what the propagation then made. ``FillCorrection`` runs after it. Per 2x2
block it sees the fill's four sub-pixels relative to the block's mean, the fill's contrast to its
3x3 neighbourhood of blocks and its departure from the pull-push fill (all in the normalized depth
units, so the absolute depth never enters), the mask and the intensity of the four sub-pixels, and
the U-Net's half-resolution features. Three 3x3 convolutions (dilations 1, 2, 4 by default, ELU)
and a head give, per sub-pixel (pixel shuffle), a depth correction and a confidence logit.

The head is zero-initialized: untrained, the correction changes nothing.
"""
import torch
from torch import nn
from torch.nn import functional as F

from .layers import conv3x3, elu

FILL_CHANNELS = 4 + 4 + 4 + 1 + 1   # sub-pixels of fill, mask, intensity; contrast; departure


class FillCorrection(nn.Module):
    """(fill, mask, intensity, pull-push fill at half resolution, U-Net features at half resolution)
    -> (correction, confidence logit), each (N, 1, H, W)."""

    def __init__(self, features, width=16, dilations=(1, 2, 4)):
        super().__init__()
        if width < 1 or not dilations or min(dilations) < 1:
            raise ValueError('fill correction: width >= 1 and dilations >= 1 needed, got %r, %r' % (width, dilations))
        self.unshuffle, self.shuffle = nn.PixelUnshuffle(2), nn.PixelShuffle(2)
        cins = [FILL_CHANNELS + features] + [width] * (len(dilations) - 1)
        self.convs = nn.ModuleList(conv3x3(cin, width, dilation=d) for cin, d in zip(cins, dilations))
        self.head = conv3x3(width, 2 * 4)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, fill, mask, intensity, smooth_half, features):
        block = F.avg_pool2d(fill, 2)
        x = torch.cat([self.unshuffle(fill) - block,
                       self.unshuffle(mask),
                       self.unshuffle(intensity),
                       block - F.avg_pool2d(block, 3, stride=1, padding=1, count_include_pad=False),
                       block - smooth_half,
                       features], dim=1)
        for conv in self.convs:
            x = elu(conv(x))
        out = self.shuffle(self.head(x))
        return out[:, 0:1], out[:, 1:2]
