"""Colorization steps: Jacobi sweeps of Levin et al.'s colorization energy (2004) at full resolution,
with the measurements held, as the last step of a fill made at a coarser resolution.

Each unmeasured pixel becomes the weighted mean of its eight neighbours, w_rs = exp(-(I_r - I_s)^2 /
s_rs^2) with s_rs^2 = ``variance_scale`` x the mean of the two pixels' 3x3 intensity variances (at
least ``sigma_floor``^2), the weights of the shipped model's pre-fill (``prefill.PyramidPrefill``).
A few sweeps from a good start put back what the coarse fill lost between dense samples (the exact
course of an edge) and leave the large holes as they were. Parameter-free; each sweep is a shifting
``Conv``, a ``Mul``, a summing ``Conv`` and an ``Add`` in ONNX.
"""
import torch
from torch import nn
from torch.nn import functional as F

from .prefill import WEIGHT_FLOOR, local_variance, similarity


def _neighbour_kernels(neighbours):
    # the 8 (or 4 nearest) neighbours of each pixel as 3x3 one-hot kernels
    offsets = [(y, x) for y in range(3) for x in range(3)
               if (y, x) != (1, 1) and (neighbours == 8 or abs(y - 1) + abs(x - 1) == 1)]
    shift = torch.zeros(len(offsets), 1, 3, 3)
    for k, (y, x) in enumerate(offsets):
        shift[k, 0, y, x] = 1.0
    return shift


SHIFTS = {n: _neighbour_kernels(n) for n in (4, 8)}


class ColorizationSteps(nn.Module):
    """``steps`` Jacobi sweeps of the colorization energy (module docstring) over the 8 or the 4 nearest
    ``neighbours`` (4: half the work)."""

    def __init__(self, steps, neighbours=8, variance_scale=0.3, sigma_floor=0.005):
        super().__init__()
        if steps < 0 or neighbours not in SHIFTS or not (variance_scale > 0 and sigma_floor > 0):
            raise ValueError('colorization steps need steps >= 0, 4 or 8 neighbours, variance_scale > 0 and '
                             'sigma_floor > 0, got %r, %r, %r, %r' % (steps, neighbours, variance_scale, sigma_floor))
        self.steps = int(steps)
        self.shift = SHIFTS[neighbours]
        self.variance_scale = float(variance_scale)
        self.sigma_floor = float(sigma_floor)

    def weights(self, intensity):
        """(N, 1, H, W) intensity in [0, 1] -> (N, 8 or 4, H, W) neighbour weights, 0 outside the image."""
        shift = self.shift.to(intensity)
        inside = F.conv2d(torch.ones_like(intensity), shift, padding=1)
        variance = local_variance(intensity)
        w = similarity(F.conv2d(intensity, shift, padding=1) - intensity, variance,
                       F.conv2d(variance, shift, padding=1), self.variance_scale, self.sigma_floor)
        return (w + WEIGHT_FLOOR) * inside

    def forward(self, estimate, held, keep, intensity):
        """``estimate`` (N, 1, H, W) with the measurements ``held`` (0 elsewhere) where ``keep`` is 0
        -> the estimate after the sweeps; measured pixels keep their value."""
        if not self.steps:
            return estimate
        if estimate.dtype != torch.float32:
            return self(estimate.float(), held.float(), keep.float(), intensity.float()).to(estimate.dtype)
        weights = self.weights(intensity)
        shift = self.shift.to(estimate)
        total = torch.ones(1, shift.shape[0], 1, 1, dtype=estimate.dtype, device=estimate.device)
        # each sweep's per-pixel normalization folded into the weights: four operators a sweep
        weights = weights * (keep / F.conv2d(weights, total))
        for _ in range(self.steps):
            estimate = held + F.conv2d(F.conv2d(estimate, shift, padding=1) * weights, total)
        return estimate
