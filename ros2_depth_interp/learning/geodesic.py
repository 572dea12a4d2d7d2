"""Geodesic propagation steered by a U-Net: the sparse depth spreads along straight paths whose cost
is the image's edges, at full resolution, with a few large operators.

1. ``edge_steps``: the cost of each one-pixel step, right and down, from the (slightly blurred)
   intensity; the U-Net scales it per pixel and adds a learned cost (edges that the depth samples
   show and the intensity does not, texture that is no depth edge).
2. ``GeodesicPropagation``: the step costs summed along rows and columns (``CumSum``) give the cost
   of the straight path to the pixel ``d`` away in each of the four directions for every pixel at
   once (one ``Conv`` of the sums), so a path that crosses an edge costs what the edge costs (a
   parallel form of the domain transform). Normalized convolution then spreads (depth x certainty,
   certainty) from far to near: at each distance (256, 128, ..., 2, 1, then 2 and 1 px again) every
   pixel becomes the mean of itself and its four neighbours at that distance, weighted by
   exp(-path cost) and by the neighbours' certainty; measured pixels keep their value. One step is a
   shifting ``Conv``, a ``Mul``, a summing ``Conv`` and a multiply-add.
3. Optional harmonic smoothing (``smoothing`` distances, ``smoothing_rounds`` times): with the
   measurements held, every unmeasured pixel becomes the weighted mean of itself and its four
   neighbours at each distance, with the same path weights (neighbours outside the image left out).
   The normalized convolution gives a surface the mean of the samples that reach it; these Jacobi
   steps of the weighted Laplace equation bend it towards the samples nearest each pixel, so a
   slanted surface measured only at its outline is filled as a slope, not a step.
4. Optionally (``propagation_scale`` 2) points 2 and 3 run at half resolution, on the measurements
   pooled per 2x2 block and the step costs summed over each two-pixel step, and the result is
   upsampled (bilinear) with the measurements put back (the step costs then come from the head at
   half resolution: the mean of its four sub-pixel outputs). A quarter of the propagation's work.
   Optionally (``fine_distances``) the upsampled result is the start of a short propagation at full
   resolution: every unmeasured pixel holds it with a small certainty (``fine_prior_certainty``), the
   full-resolution measurements with certainty 1, and the steps at ``fine_distances`` (then
   ``fine_smoothing``) with the full-resolution step costs correct it where the blocks mixed both
   sides of an edge. ``colorization_steps`` Jacobi sweeps of the colorization energy at full
   resolution (``colorization.ColorizationSteps``) then restore what is left between dense samples.
5. The result, with the measurements put back, plus the U-Net's correction; the confidence from the
   U-Net head. Optionally (``correction_width``) a small network at half resolution looks at this
   finished fill (``correction.FillCorrection``) and adds its own correction (unmeasured pixels only)
   and confidence logit.

Untrained (zero-initialized head) it is a classical edge-aware interpolation that already follows
image edges; training teaches the U-Net where the intensity edges lie about the depth edges.

Input and output as ``unet.DepthUNet``.
"""
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .colorization import ColorizationSteps
from .correction import FillCorrection
from .layers import conv3x3
from .unet import DepthUNet, UNetConfig


FALLBACK_CERTAINTY = 1e-9   # certainty of the pull-push fill where no measurement's path arrives
TINY = 1e-30
NEIGHBOURHOOD = 5           # a step's taps: the four neighbours d away and the pixel itself
COST_CHANNELS = 4           # per pixel: log scale of the intensity cost and an added cost, right and down
COST_BIAS = -6.0            # initial added cost per step: exp(-6) = 0.0025


@dataclass
class GeodesicConfig(UNetConfig):
    # one propagation step per distance (px): a reach of 511 px, so that every pixel of a 640x480 frame
    # hears from a measurement; a final 2, 1 sharpens
    distances: tuple = (256, 128, 64, 32, 16, 8, 4, 2, 1, 2, 1)
    edge_gain: float = 30.0                   # path cost per unit of intensity change (intensity in [0, 1])
    # harmonic smoothing after the propagation (module docstring, point 3): one round's distances (px)
    # and how many rounds; () or 0 rounds: none
    smoothing: tuple = ()
    smoothing_rounds: int = 0
    # 1: propagate and smooth at full resolution; 2: at half resolution (module docstring, point 4),
    # ``distances`` and ``smoothing`` then in half-resolution pixels
    propagation_scale: int = 1
    # with propagation_scale 2: a propagation at full resolution from the upsampled result (module
    # docstring, point 4), its distances (px; (): none), smoothing and the certainty of its start
    fine_distances: tuple = ()
    fine_smoothing: tuple = ()
    fine_smoothing_rounds: int = 0
    fine_prior_certainty: float = 0.03
    colorization_steps: int = 0               # Jacobi sweeps of the colorization energy at full resolution
    colorization_neighbours: int = 8          # over the 8 or the 4 nearest neighbours
    # a network after the fill (``correction.FillCorrection``): its width (0: none) and dilations
    correction_width: int = 0
    correction_dilations: tuple = (1, 2, 4)
    arch: str = 'geodesic'

    def __post_init__(self):
        if self.propagation_scale not in (1, 2) or self.colorization_steps < 0 or self.colorization_neighbours not in (4, 8):
            raise ValueError('geodesic: propagation_scale must be 1 or 2, colorization_steps >= 0 and '
                             'colorization_neighbours 4 or 8, got %r, %r, %r'
                             % (self.propagation_scale, self.colorization_steps, self.colorization_neighbours))
        if self.correction_width < 0:
            raise ValueError('geodesic: correction_width must be >= 0 (0: no correction), got %r'
                             % self.correction_width)
        if self.fine_distances and (self.propagation_scale != 2 or not 0.0 < self.fine_prior_certainty <= 1.0):
            raise ValueError('geodesic: fine_distances need propagation_scale 2 and 0 < fine_prior_certainty <= 1, '
                             'got %r, %r' % (self.propagation_scale, self.fine_prior_certainty))

    def to_dict(self):
        d = super().to_dict()
        for key in ('distances', 'smoothing', 'fine_distances', 'fine_smoothing', 'correction_dilations'):
            d[key] = list(getattr(self, key))
        return d

    @classmethod
    def from_dict(cls, d):
        config = super().from_dict(d)
        for key in ('distances', 'smoothing', 'fine_distances', 'fine_smoothing', 'correction_dilations'):
            setattr(config, key, tuple(getattr(config, key)))
        return config


def _kernels():
    blur = torch.tensor([1.0, 2.0, 1.0])
    blur = (blur[:, None] * blur[None, :] / 16.0).view(1, 1, 3, 3)
    # step into a pixel from its left and from above: I(p) - I(p - 1)
    step = torch.zeros(2, 1, 3, 3)
    step[:, 0, 1, 1] = 1.0
    step[0, 0, 1, 0] = -1.0
    step[1, 0, 0, 1] = -1.0
    # path sums to the neighbour d away (dilated 3x3, channels: right, left, down, up) from the
    # cumulative step costs along rows (input 0) and columns (input 1): C(p + d) - C(p), C(p) - C(p - d)
    path = torch.zeros(4, 2, 3, 3)
    path[0, 0, 1, 2], path[0, 0, 1, 1] = 1.0, -1.0
    path[1, 0, 1, 1], path[1, 0, 1, 0] = 1.0, -1.0
    path[2, 1, 2, 1], path[2, 1, 1, 1] = 1.0, -1.0
    path[3, 1, 1, 1], path[3, 1, 0, 1] = 1.0, -1.0
    # the four neighbours d away (dilated 3x3, same order) and the pixel itself, for each of two
    # inputs (groups=2)
    shift = torch.zeros(2 * NEIGHBOURHOOD, 1, 3, 3)
    for g in range(2):
        for k, (y, x) in enumerate(((1, 2), (1, 0), (2, 1), (0, 1), (1, 1))):
            shift[NEIGHBOURHOOD * g + k, 0, y, x] = 1.0
    # sums of the weighted neighbourhood of each input
    total = torch.zeros(2, 2 * NEIGHBOURHOOD, 1, 1)
    total[0, :NEIGHBOURHOOD] = 1.0
    total[1, NEIGHBOURHOOD:] = 1.0
    return blur, step, path, shift, total


BLUR, STEP, PATH, SHIFT, TOTAL = _kernels()


def edge_steps(intensity):
    """(N, 1, H, W) intensity in [0, 1] -> (N, 2, H, W): |change| of the blurred intensity on the step
    into each pixel from its left and from above (0 in the first column / row)."""
    blurred = F.conv2d(F.pad(intensity, (1, 1, 1, 1), mode='replicate'), BLUR.to(intensity))
    return torch.abs(F.conv2d(F.pad(blurred, (1, 1, 1, 1), mode='replicate'), STEP.to(intensity)))


class GeodesicPropagation(nn.Module):
    """Normalized convolution along straight paths, far to near (module docstring, point 2)."""

    def __init__(self, distances, smoothing=(), smoothing_rounds=0, prior_certainty=FALLBACK_CERTAINTY):
        super().__init__()
        self.prior_certainty = float(prior_certainty)
        self.distances = tuple(int(d) for d in distances)
        self.smoothing = tuple(int(d) for d in smoothing) if smoothing_rounds else ()
        self.smoothing_rounds = int(smoothing_rounds) if self.smoothing else 0

    def forward(self, depth, mask, fallback, step_costs):
        """``step_costs`` (N, 2, H, W): cost of the step into each pixel from the left and from above;
        ``fallback``: every unmeasured pixel's start, held with certainty ``prior_certainty``.
        -> the propagated depth (N, 1, H, W), measured pixels included. Always computed in float32
        (the row and column sums of the costs exceed float16's precision)."""
        if depth.dtype != torch.float32:
            return self(depth.float(), mask.float(), fallback.float(), step_costs.float()).to(depth.dtype)
        held = torch.cat([depth * mask, mask], dim=1)
        keep = 1.0 - mask
        unreached = self.prior_certainty * keep
        state = held + torch.cat([unreached * fallback, unreached], dim=1)   # (depth x certainty, certainty)
        path_weights = self.path_weights(step_costs, keep)
        # a step: held + scale x (pixel + weighted neighbours), the scale folded into the weights of
        # the pixel and its neighbours, so that one step is four operators; the same for both channels
        weights = {}
        for d in dict.fromkeys(self.distances):
            w, scale = path_weights[d]
            w = w * scale
            weights[d] = torch.cat([w, scale, w, scale], dim=1)
        for d in self.distances:
            neighbours = F.conv2d(state, SHIFT.to(state), padding=d, dilation=d, groups=2)
            state = held + F.conv2d(neighbours * weights[d], TOTAL.to(state))
        measured = held[:, 0:1]
        estimate = measured + keep * state[:, 0:1] / (state[:, 1:2] + TINY)
        return self.smooth(estimate, measured, keep, path_weights)

    def smooth(self, estimate, held, keep, path_weights):
        """Harmonic smoothing (module docstring, point 3): ``smoothing_rounds`` rounds of one Jacobi
        step per distance of ``smoothing``; the measurements (``held``, where ``keep`` is 0) stay."""
        if not self.smoothing_rounds:
            return estimate
        shift, total = SHIFT[:NEIGHBOURHOOD].to(estimate), TOTAL[:1, :NEIGHBOURHOOD].to(estimate)
        ones = torch.ones_like(estimate)
        steps = {}
        for d in dict.fromkeys(self.smoothing):
            # a pair of opposite neighbours counts only if both lie in the image, so that a slope
            # stays a slope at the border; per distance: the weights of the four neighbours and of the
            # pixel itself, times 1 / (1 + the neighbours' sum) (0 at the measurements)
            inside = F.conv2d(ones, shift[:4], padding=d, dilation=d)
            across, along = inside[:, 0:1] * inside[:, 1:2], inside[:, 2:3] * inside[:, 3:4]
            w = path_weights[d][0] * torch.cat([across, across, along, along], dim=1)
            scale = keep / (1.0 + F.conv2d(w, total[:, :4]))
            steps[d] = torch.cat([w * scale, scale], dim=1)
        for _ in range(self.smoothing_rounds):
            for d in self.smoothing:
                neighbours = F.conv2d(estimate, shift, padding=d, dilation=d)
                estimate = held + F.conv2d(neighbours * steps[d], total)
        return estimate

    def path_weights(self, step_costs, keep):
        """Per distance d (each once): exp(-cost of the straight path to the four neighbours d away)
        (N, 4, H, W; right, left, down, up) and how it normalizes a step of the pixels to fill
        (``keep`` / (1 + their sum))."""
        sums = torch.cat([torch.cumsum(step_costs[:, 0:1], dim=3), torch.cumsum(step_costs[:, 1:2], dim=2)], dim=1)
        weights = {}
        for d in dict.fromkeys(self.distances + self.smoothing):
            w = torch.exp(-torch.relu(F.conv2d(sums, PATH.to(sums), padding=d, dilation=d)))
            weights[d] = w, keep / (1.0 + w.sum(1, keepdim=True))
        return weights


class DepthGeodesic(DepthUNet):
    """The U-Net sets the step costs of a geodesic propagation of the sparse depth at full resolution
    and corrects its result."""

    # ONNX Runtime's CPU layout transformation (NCHWc, level 'all') wraps each of the propagation's
    # few-channel convolutions in reorders (an earlier 12-step graph at 640x480: 124 ms, 'extended' 80 ms)
    ort_graph_optimization = 'extended'

    def __init__(self, config=None):
        super().__init__(config or GeodesicConfig())
        config = self.config
        self.propagate = GeodesicPropagation(config.distances, config.smoothing, config.smoothing_rounds)
        self.refine = (GeodesicPropagation(config.fine_distances, config.fine_smoothing, config.fine_smoothing_rounds,
                                           config.fine_prior_certainty) if config.fine_distances else None)
        self.colorize = ColorizationSteps(config.colorization_steps, config.colorization_neighbours)
        self.correct = (FillCorrection(config.widths[0], config.correction_width, config.correction_dilations)
                        if config.correction_width else None)
        # half resolution -> 2x2 sub-pixels of (cost scale right, down, added cost right, down,
        # depth correction, confidence logit)
        self.head = conv3x3(config.widths[0], (COST_CHANNELS + 2) * 4)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        with torch.no_grad():
            self.head.bias.view(COST_CHANNELS + 2, 4)[2:4] = COST_BIAS

    def forward(self, x):
        depth, mask, intensity = x[:, 0:1], x[:, 1:2], x[:, 2:3]
        fills, pyramid = self.pyramid(depth, mask)
        decoded = self.encoder_decoder(depth, mask, intensity, fills, pyramid)
        out = self.shuffle(self.head(decoded[0]))
        costs, out = out[:, :COST_CHANNELS], out[:, COST_CHANNELS:]
        image_steps = edge_steps(intensity)
        held, keep = depth * mask, 1.0 - mask
        # every stage returns the measured pixels with their measured values
        if self.config.propagation_scale == 2:
            estimate = self.propagate_at_half_resolution(depth, mask, fills[0], costs, image_steps)
            if self.refine is not None:   # the start of unmeasured pixels only
                estimate = self.refine(depth, mask, estimate, self.step_costs(costs, image_steps))
            else:
                estimate = held + keep * estimate
        else:
            estimate = self.propagate(depth, mask, fills[0], self.step_costs(costs, image_steps))
        estimate = self.colorize(estimate, held, keep, intensity)
        correction, logit = out[:, 0:1], out[:, 1:2]
        if self.correct is not None:   # a second look, at the finished fill
            more, more_logit = self.correct(estimate, mask, intensity, fills[1], decoded[0])
            correction, logit = correction + keep * more, logit + more_logit
        dense = estimate + correction
        confidence = torch.sigmoid(logit + 2.0)
        return dense, confidence

    def step_costs(self, costs, image_steps):
        """The head's cost channels and the image's step sizes (``edge_steps``) -> the cost of the step
        into each pixel from the left and from above (N, 2, H, W)."""
        return self.config.edge_gain * torch.exp(costs[:, 0:2]) * image_steps + torch.exp(costs[:, 2:4])

    def propagate_at_half_resolution(self, depth, mask, fallback, costs, image_steps):
        """The propagation on 2x2 blocks (module docstring, point 4). A block's measurement is the mean
        of its measured pixels; its step costs come from the head's cost channels averaged over its
        four sub-pixels and the two one-pixel image steps it spans (summed, averaged over the block's
        two rows or columns). -> the full-resolution estimate (bilinear; measured pixels not yet put back)."""
        steps = 2.0 * self.step_costs(F.avg_pool2d(costs, 2), F.avg_pool2d(image_steps, 2))
        count = F.avg_pool2d(mask, 2) * 4.0
        block_depth = F.avg_pool2d(depth * mask, 2) * 4.0 / count.clamp_min(1.0)
        block_mask = torch.clamp(count, max=1.0)
        estimate = self.propagate(block_depth, block_mask, F.avg_pool2d(fallback, 2), steps)
        return F.interpolate(estimate, scale_factor=2.0, mode='bilinear', align_corners=False)
