"""One frame, arrays in and arrays out: the work the node, the bag tool and the benchmark share.

``FrameProcessor.process`` takes the decoded image arrays (depth, intensity, optional mask) and the
camera intrinsics, and returns the dense depth, the confidence map, the organized point cloud and
per-stage timings. It knows nothing about ROS, so the exact same code runs in the node's worker
thread, over a rosbag and in the benchmark.

Units, exactly:

- ``32FC1`` depth is metres; ``16UC1`` is multiplied by ``depth_scale`` (0.001: millimetres).
  0, NaN, inf and negative values mean "unknown".
- With ``input_inverse_depth`` the (scaled) values are inverse depth ``q``; known pixels become
  depth ``1/q`` before inference. The outputs are then *depth* (not inverse depth) in the
  reciprocal of the input's units: metres if ``q`` was 1/m, otherwise the SLAM map's own arbitrary
  monocular scale. The cloud, ``min_depth`` and ``max_depth`` use those same units.
- Otherwise the outputs are metres.

Anything that makes a frame unusable raises ``FrameError(reason_key, message)``; ``reason_key`` is
the name of the diagnostics drop counter, so the node counts and logs it without a lookup table.
"""
import math
import time
from dataclasses import dataclass, field, replace
from typing import Dict, Optional

import numpy as np

from . import encodings
from .geometry import CameraIntrinsics, CloudBuilder

# Reason keys (diagnostics counters ``dropped_<key>``), in one place so tests and docs agree.
BAD_ENCODING = 'bad_encoding'
SIZE_MISMATCH = 'size_mismatch'
EMPTY_DEPTH = 'empty_depth'
NO_VALID_DEPTH = 'no_valid_depth'
MASK_EMPTY = 'mask_empty'
NO_KNOWN_PIXEL = 'no_known_pixel'
INFERENCE_INPUT = 'inference_input'
INFERENCE_FAILED = 'inference_failed'
REASONS = (BAD_ENCODING, SIZE_MISMATCH, EMPTY_DEPTH, NO_VALID_DEPTH, MASK_EMPTY, NO_KNOWN_PIXEL,
           INFERENCE_INPUT, INFERENCE_FAILED)

# Why a frame got dense depth but no cloud (counted by the node as ``cloud_skipped_<key>``).
CLOUD_NO_INTRINSICS = 'no_intrinsics'


class FrameError(ValueError):
    """A frame that cannot be processed; ``reason_key`` names its diagnostics counter."""

    def __init__(self, reason_key, message):
        super().__init__('%s: %s' % (reason_key, message))
        self.reason_key = reason_key
        self.message = message


@dataclass(frozen=True)
class PipelineConfig:
    """The per-frame settings (a subset of the node parameters, same names and meanings)."""
    use_mask: bool = True
    input_inverse_depth: bool = False
    depth_scale: float = 0.001
    publish_cloud: bool = True
    cloud_stride: int = 1
    min_depth: float = 0.0
    max_depth: float = 0.0
    min_confidence: float = 0.0

    @classmethod
    def from_params(cls, values):
        """Build from a {parameter name: value} dict (extra names are ignored)."""
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: values[k] for k in names if k in values})

    def with_changes(self, **changes):
        return replace(self, **changes)


@dataclass
class FrameResult:
    """What one frame produced.

    ``dense_depth`` and ``confidence`` are float32 (H, W); ``cloud`` is float32
    (ceil(H/stride), ceil(W/stride), 4) x, y, z, intensity with NaN rows for invalid points, or None
    (``cloud_skipped`` then says why, unless publishing clouds is off); the cloud array is the
    processor's reused buffer, valid until the next ``process`` call (copy it to keep it).
    ``timings`` are seconds per
    stage: convert, normalize, infer, cloud. ``input_density`` is the fraction of known pixels and
    ``nonfinite_pixels`` the NaN/inf input values that were treated as unknown.
    """
    dense_depth: np.ndarray
    confidence: np.ndarray
    cloud: Optional[np.ndarray]
    timings: Dict[str, float]
    input_density: float
    nonfinite_pixels: int = 0
    cloud_skipped: Optional[str] = None
    known: Optional[np.ndarray] = field(default=None, repr=False)


def _as_2d(array, what):
    """(H, W) view of a single-channel array ((H, W, 1) is accepted)."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2:
        raise FrameError(SIZE_MISMATCH, '%s must be a single-channel image, got shape %s'
                         % (what, array.shape))
    return array


def _shape_text(shape):
    return '%dx%d' % (shape[1], shape[0])


class FrameProcessor:
    """Runs ``interpolator`` (a ``DepthInterpolator``) on decoded frames; see the module docstring.

    ``config`` may be swapped between frames (``processor.config = ...``) for runtime parameter
    changes: one frame always uses one consistent config object.
    """

    def __init__(self, interpolator, config=None):
        self.interpolator = interpolator
        self.config = config or PipelineConfig()
        self._clouds = CloudBuilder()

    # --- stage 1: input arrays -> depth (float32, 0 = unknown), known mask, intensity ----------------
    def _convert(self, depth_array, depth_encoding, image_array, image_encoding, mask_array,
                 mask_encoding, config):
        depth_array = np.asarray(depth_array)
        if depth_array.size == 0:
            raise FrameError(EMPTY_DEPTH, 'depth image is empty (%s)' % (depth_array.shape,))
        try:  # the encoding checks come first: a 3-channel "depth" is a wrong encoding
            depth = encodings.depth_to_metres(depth_array, depth_encoding, config.depth_scale)
            intensity = encodings.intensity_to_mono8(image_array, image_encoding)
        except encodings.EncodingError as exc:
            raise FrameError(BAD_ENCODING, str(exc)) from None
        depth = _as_2d(np.asarray(depth, dtype=np.float32), 'depth')
        nonfinite = 0
        if np.issubdtype(depth_array.dtype, np.floating):
            nonfinite = int(depth_array.size - np.count_nonzero(np.isfinite(depth_array)))
        intensity = _as_2d(intensity, 'intensity')
        if intensity.shape != depth.shape:
            raise FrameError(SIZE_MISMATCH, 'image is %s but depth is %s'
                             % (_shape_text(intensity.shape), _shape_text(depth.shape)))

        valid = np.isfinite(depth) & (depth > 0)
        if not valid.any():
            raise FrameError(NO_VALID_DEPTH, 'no finite positive depth in a %s frame'
                             % _shape_text(depth.shape))
        if config.input_inverse_depth:
            # Reciprocal only where valid; elsewhere stay 0 (unknown) without dividing by zero.
            depth = np.divide(1.0, depth, out=np.zeros_like(depth), where=valid)
            valid &= np.isfinite(depth)
        else:
            depth = np.where(valid, depth, np.float32(0))

        known = valid
        if config.use_mask and mask_array is not None:
            try:
                mask = encodings.mask_to_bool(mask_array, mask_encoding)
            except encodings.EncodingError as exc:
                raise FrameError(BAD_ENCODING, 'mask: %s' % exc) from None
            mask = _as_2d(mask, 'mask')
            if mask.shape != depth.shape:
                raise FrameError(SIZE_MISMATCH, 'mask is %s but depth is %s'
                                 % (_shape_text(mask.shape), _shape_text(depth.shape)))
            if not mask.any():
                raise FrameError(MASK_EMPTY, 'mask marks no pixel as known')
            known = valid & mask
            if not known.any():
                raise FrameError(NO_KNOWN_PIXEL, 'no pixel is both in the mask and has valid depth')
        return depth, known, np.ascontiguousarray(intensity, dtype=np.uint8), nonfinite

    # --- the whole frame --------------------------------------------------------------------------
    def process(self, depth_array, depth_encoding, image_array, image_encoding,
                mask_array=None, intrinsics=None, mask_encoding='mono8'):
        """Dense depth, confidence and cloud for one frame; raises ``FrameError``."""
        config = self.config
        t0 = time.perf_counter()
        depth, known, intensity, nonfinite = self._convert(
            depth_array, depth_encoding, image_array, image_encoding, mask_array, mask_encoding, config)
        t_convert = time.perf_counter() - t0

        try:
            result = self.interpolator.run(depth, known, intensity)
        except ValueError as exc:  # inference.InputError is a ValueError
            raise FrameError(INFERENCE_INPUT, str(exc)) from None
        except Exception as exc:  # a runtime failure of the backend must not kill the caller
            raise FrameError(INFERENCE_FAILED, '%s: %s' % (type(exc).__name__, exc)) from None
        dense = np.asarray(result.depth, dtype=np.float32)
        confidence = np.asarray(result.confidence, dtype=np.float32)
        if dense.shape != depth.shape or confidence.shape != depth.shape:
            raise FrameError(INFERENCE_FAILED, 'model returned %s / %s for a %s input'
                             % (dense.shape, confidence.shape, depth.shape))
        if not np.isfinite(dense).all():
            raise FrameError(INFERENCE_FAILED, 'model returned non-finite depth')
        timings = {'convert': t_convert,
                   'normalize': float(result.timings.get('normalize', 0.0)),
                   'infer': float(result.timings.get('infer', 0.0)),
                   'cloud': 0.0}

        cloud, skipped = None, None
        if config.publish_cloud:
            if intrinsics is None:
                skipped = CLOUD_NO_INTRINSICS
            else:
                t1 = time.perf_counter()
                cloud = self._clouds.build(
                    dense, intensity, intrinsics, stride=config.cloud_stride,
                    min_depth=config.min_depth,
                    max_depth=config.max_depth if config.max_depth > 0 else math.inf,
                    confidence=confidence, min_confidence=config.min_confidence)
                timings['cloud'] = time.perf_counter() - t1

        return FrameResult(dense_depth=dense, confidence=confidence, cloud=cloud, timings=timings,
                           input_density=float(np.count_nonzero(known)) / known.size,
                           nonfinite_pixels=nonfinite, cloud_skipped=skipped, known=known)

    def process_messages(self, depth_msg, image_msg, mask_msg, intrinsics_for):
        """The same from Image messages (rclpy or rosbags: anything with the Image fields).

        ``mask_msg`` may be None; ``intrinsics_for(width, height)`` returns the intrinsics for the
        depth image's size, or None. Decoding time is added to the ``convert`` stage.
        """
        t0 = time.perf_counter()
        if depth_msg.height == 0 or depth_msg.width == 0 or len(depth_msg.data) == 0:
            raise FrameError(EMPTY_DEPTH, 'depth image is empty (%dx%d, %d bytes)'
                             % (depth_msg.width, depth_msg.height, len(depth_msg.data)))
        try:
            depth = encodings.msg_to_array(depth_msg)
            image = encodings.msg_to_array(image_msg)
            mask = encodings.msg_to_array(mask_msg) if mask_msg is not None else None
        except (encodings.EncodingError, ValueError) as exc:
            raise FrameError(BAD_ENCODING, str(exc)) from None
        t_decode = time.perf_counter() - t0
        intrinsics = intrinsics_for(depth.shape[1], depth.shape[0]) if depth.ndim >= 2 else None
        result = self.process(depth, depth_msg.encoding, image, image_msg.encoding, mask, intrinsics,
                              mask_encoding=mask_msg.encoding if mask_msg is not None else 'mono8')
        result.timings['convert'] += t_decode
        return result


def fallback_intrinsics(fx, fy, cx, cy, width, height):
    """Intrinsics from the fx fy cx cy parameters, or None when the focal lengths are unset (0).

    A principal point left at 0 means the image centre ((W-1)/2, (H-1)/2), the usual guess when
    only the field of view is known.
    """
    if fx <= 0 or fy <= 0:
        return None
    return CameraIntrinsics(float(fx), float(fy),
                            float(cx) if cx > 0 else (width - 1) / 2.0,
                            float(cy) if cy > 0 else (height - 1) / 2.0)


def intrinsics_for_size(k, info_width, info_height, width, height):
    """CameraIntrinsics from a row-major 3x3 K calibrated at info size, scaled to width x height.

    camera_info often describes the full sensor while SLAM depth comes downscaled; scaling K with
    the image keeps the cloud geometry right. Raises ValueError for a non-positive focal length.
    """
    intrinsics = CameraIntrinsics.from_k(k)
    if info_width > 0 and info_height > 0 and (info_width, info_height) != (width, height):
        intrinsics = intrinsics.scaled(width / float(info_width), height / float(info_height))
    return intrinsics.validate()
