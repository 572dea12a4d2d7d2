"""What the network sees, written once for training, export and every inference backend.

The network is scale-agnostic: each frame is divided by the median of its known values, so metric
depth, monocular depth at any scale, and disparity all reach the network as numbers around 1. The
input tensor is (1, 3, H', W') float32 with channels

    0: known value / scale, 0 where unknown (clipped to [0, MAX_NORMALIZED])
    1: mask of known values (1 known, 0 unknown)
    2: intensity / 255

where H', W' are H, W padded up to the model's stride (zero depth, zero mask, edge-replicated
intensity). The network returns normalized depth (times ``scale`` gives the input's units) and a
confidence in [0, 1]; both are cropped back to (H, W).
"""
from dataclasses import dataclass

import numpy as np

MAX_NORMALIZED = 64.0
INPUT_CHANNELS = ('depth_over_median', 'mask', 'intensity_over_255')


class InputError(ValueError):
    """The arrays cannot be interpolated (shape mismatch, no known pixel, wrong dtype)."""


@dataclass
class Prepared:
    tensor: np.ndarray      # (1, 3, Hp, Wp) float32
    scale: float            # multiply the network's depth by this to get the input's units
    height: int
    width: int


def check_inputs(depth, mask, intensity):
    """Validate shapes and dtypes; return (depth float32, known bool, intensity uint8)."""
    depth = np.asarray(depth)
    mask = np.asarray(mask)
    intensity = np.asarray(intensity)
    if depth.ndim != 2:
        raise InputError('depth must be 2-D (H, W), got shape %s' % (depth.shape,))
    if mask.shape != depth.shape or intensity.shape[:2] != depth.shape:
        raise InputError('depth %s, mask %s and intensity %s must have the same height and width'
                         % (depth.shape, mask.shape, intensity.shape))
    if intensity.ndim != 2:
        raise InputError('intensity must be single-channel (H, W), got shape %s' % (intensity.shape,))
    if depth.shape[0] < 2 or depth.shape[1] < 2:
        raise InputError('image too small: %s' % (depth.shape,))
    if intensity.dtype != np.uint8:
        raise InputError('intensity must be uint8, got %s' % intensity.dtype)
    depth = depth.astype(np.float32, copy=False)
    known = mask.astype(bool, copy=False) & np.isfinite(depth) & (depth > 0)
    if not known.any():
        raise InputError('no known pixel: the mask is empty or every masked depth is invalid')
    return depth, known, intensity


def frame_scale(depth, known):
    """The per-frame normalization constant: median of the known values."""
    return float(np.median(depth[known]))


def padded_size(height, width, stride):
    return -(-height // stride) * stride, -(-width // stride) * stride


def prepare(depth, mask, intensity, stride):
    """Arrays in the caller's units -> the network's input tensor (see module docstring)."""
    depth, known, intensity = check_inputs(depth, mask, intensity)
    h, w = depth.shape
    scale = frame_scale(depth, known)
    hp, wp = padded_size(h, w, stride)
    tensor = np.zeros((1, 3, hp, wp), np.float32)
    np.divide(depth, scale, out=tensor[0, 0, :h, :w], where=known)
    np.clip(tensor[0, 0], 0.0, MAX_NORMALIZED, out=tensor[0, 0])
    tensor[0, 1, :h, :w] = known
    tensor[0, 2, :h, :w] = intensity
    if hp > h:
        tensor[0, 2, h:, :w] = intensity[-1:, :]
    if wp > w:
        tensor[0, 2, :, w:] = tensor[0, 2, :, w - 1:w]
    tensor[0, 2] *= 1.0 / 255.0
    return Prepared(tensor, scale, h, w)


def finish(prepared, depth_out, confidence_out):
    """Network outputs (1, 1, Hp, Wp) -> (depth in the input's units, confidence), both (H, W) float32."""
    h, w = prepared.height, prepared.width
    depth = np.asarray(depth_out, dtype=np.float32)[0, 0, :h, :w] * np.float32(prepared.scale)
    confidence = np.clip(np.asarray(confidence_out, dtype=np.float32)[0, 0, :h, :w], 0.0, 1.0)
    # The network never returns non-positive depth for a positive field; guard the output anyway.
    np.maximum(depth, np.float32(1e-6 * prepared.scale), out=depth)
    return depth, confidence
