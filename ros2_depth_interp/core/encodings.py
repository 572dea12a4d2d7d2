"""sensor_msgs/Image fields <-> numpy arrays, with cv_bridge semantics but without cv_bridge.

Everything here works on the plain Image fields (encoding, height, width, step, is_bigendian, data),
so the same code decodes rclpy messages (``data`` is an ``array.array('B')``), ``rosbags`` messages
(``data`` is a numpy uint8 array) and hand-made byte buffers.

Why the care about copies and byte order:

* Decoding is zero-copy whenever the data is already in the machine's byte order: the array is a
  strided view on the message buffer that honours ``step`` row padding. Such a view is read-only
  when the buffer is (``bytes``); callers that want to write must copy.
* Encoding produces an ``array.array('B')``. That is what rclpy stores for ``uint8[]`` fields, and
  its generated setter keeps an ``array.array('B')`` as it is, while ``bytes`` are copied and, with
  ``ROS_PYTHON_CHECK_FIELDS=1``, checked element by element in Python (~150 ms for 640x480 32FC1);
  a ``memoryview`` is even iterated element by element (~100 ms) in every mode.

The post-processing helpers turn decoded arrays into what the pipeline works on: depth in metres
(0 = unknown), an 8-bit intensity image and a boolean "known" mask.
"""
import array as _array
import re
import sys
from typing import NamedTuple

import numpy as np

__all__ = [
    'EncodingError', 'PixelFormat', 'pixel_format', 'image_to_array', 'msg_to_array',
    'array_to_image_fields', 'depth_to_metres', 'intensity_to_mono8', 'mask_to_bool',
    'DEPTH_ENCODINGS', 'INTENSITY_ENCODINGS', 'MASK_ENCODINGS',
]


class EncodingError(ValueError):
    """An Image whose encoding, geometry or buffer does not describe a valid image."""


class PixelFormat(NamedTuple):
    """What one pixel of an encoding is made of."""

    dtype: np.dtype    # channel type in native byte order
    channels: int

    @property
    def pixel_bytes(self) -> int:
        return self.dtype.itemsize * self.channels


# Names from sensor_msgs/image_encodings.hpp. Generic "<bits><U|S|F>C<n>" names are parsed below.
_NAMED_FORMATS = {
    'mono8': (np.uint8, 1), 'mono16': (np.uint16, 1),
    'rgb8': (np.uint8, 3), 'bgr8': (np.uint8, 3), 'rgba8': (np.uint8, 4), 'bgra8': (np.uint8, 4),
    'rgb16': (np.uint16, 3), 'bgr16': (np.uint16, 3),
    'rgba16': (np.uint16, 4), 'bgra16': (np.uint16, 4),
    'yuv422': (np.uint8, 2), 'uyvy': (np.uint8, 2), 'yuyv': (np.uint8, 2), 'yuv422_yuy2': (np.uint8, 2),
}
for _pattern in ('rggb', 'bggr', 'gbrg', 'grbg'):
    _NAMED_FORMATS[f'bayer_{_pattern}8'] = (np.uint8, 1)
    _NAMED_FORMATS[f'bayer_{_pattern}16'] = (np.uint16, 1)

_GENERIC_RE = re.compile(r'^(8|16|32|64)([USF])C([1-9][0-9]*)$')
_GENERIC_TYPES = {
    ('8', 'U'): np.uint8, ('8', 'S'): np.int8, ('16', 'U'): np.uint16, ('16', 'S'): np.int16,
    ('32', 'S'): np.int32, ('32', 'F'): np.float32, ('64', 'F'): np.float64,
}

DEPTH_ENCODINGS = ('32FC1', '64FC1', '16UC1')
INTENSITY_ENCODINGS = ('mono8', '8UC1', 'mono16', '16UC1', 'rgb8', 'bgr8', 'rgba8', 'bgra8',
                       '8UC3', '8UC4', 'rgb16', 'bgr16', 'rgba16', 'bgra16')
MASK_ENCODINGS = ('mono8', '8UC1')

_MACHINE_IS_BIGENDIAN = sys.byteorder == 'big'


def pixel_format(encoding: str) -> PixelFormat:
    """Channel dtype and channel count of a sensor_msgs/image_encodings name."""
    named = _NAMED_FORMATS.get(encoding)
    if named is not None:
        return PixelFormat(np.dtype(named[0]), named[1])
    match = _GENERIC_RE.match(encoding) if isinstance(encoding, str) else None
    if match:
        base = _GENERIC_TYPES.get((match.group(1), match.group(2)))
        if base is not None:
            return PixelFormat(np.dtype(base), int(match.group(3)))
    raise EncodingError(f'unknown image encoding {encoding!r} '
                        f'(expected e.g. 32FC1, 16UC1, mono8, mono16, rgb8, bgr8, rgba8, bgra8, 8UC3)')


def _as_byte_buffer(data) -> np.ndarray:
    """A flat uint8 view of ``data`` without copying when it exposes a contiguous buffer."""
    if isinstance(data, np.ndarray):
        flat = np.ascontiguousarray(data).reshape(-1)
        return flat if flat.dtype == np.uint8 else flat.view(np.uint8)
    if isinstance(data, (list, tuple)):
        # Hand-made messages only; this path is slow but correct.
        try:
            return np.asarray(data, dtype=np.uint8)
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodingError(f'image data is not a sequence of bytes: {exc}') from None
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError, BufferError) as exc:
        raise EncodingError(
            f'image data of type {type(data).__name__} is not a contiguous bytes-like buffer: {exc}'
        ) from None


def image_to_array(encoding, height, width, step, is_bigendian, data) -> np.ndarray:
    """Decode Image fields into an array of shape (H, W) (one channel) or (H, W, C).

    Zero-copy (a strided view on ``data``) when the data is in native byte order; otherwise one
    byte-swapping copy. Raises EncodingError for unknown encodings, empty images, a ``step``
    shorter than a row of pixels or a buffer shorter than ``step * height``.
    """
    fmt = pixel_format(encoding)
    try:
        height, width, step = int(height), int(width), int(step)
    except (TypeError, ValueError):
        raise EncodingError(f'image height/width/step must be integers, got '
                            f'{height!r}/{width!r}/{step!r}') from None
    if height <= 0 or width <= 0:
        raise EncodingError(f'empty {encoding} image: height={height}, width={width}')
    row_bytes = width * fmt.pixel_bytes
    if step < row_bytes:
        raise EncodingError(f'{encoding} image step {step} is smaller than width {width} x '
                            f'{fmt.pixel_bytes} bytes per pixel = {row_bytes}')
    buffer = _as_byte_buffer(data)
    if buffer.size < step * height:
        raise EncodingError(f'{encoding} image data has {buffer.size} bytes, expected at least '
                            f'step {step} x height {height} = {step * height}')

    big = bool(is_bigendian)
    stored = fmt.dtype.newbyteorder('>' if big else '<') if fmt.dtype.itemsize > 1 else fmt.dtype
    itemsize = fmt.dtype.itemsize
    if fmt.channels == 1:
        shape, strides = (height, width), (step, itemsize)
    else:
        shape = (height, width, fmt.channels)
        strides = (step, fmt.pixel_bytes, itemsize)
    view = np.ndarray(shape, dtype=stored, buffer=buffer, offset=0, strides=strides)
    if fmt.dtype.itemsize > 1 and big != _MACHINE_IS_BIGENDIAN:
        return view.astype(fmt.dtype)   # byte-swapping copy into native order
    return view


def msg_to_array(msg) -> np.ndarray:
    """image_to_array() for any object with sensor_msgs/Image attributes (rclpy, rosbags, ...)."""
    return image_to_array(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)


def array_to_image_fields(array, encoding: str) -> dict:
    """Image fields for ``array`` as ``dict(height, width, encoding, is_bigendian=0, step, data)``.

    ``data`` is an ``array.array('B')`` filled with one buffer copy: the type rclpy stores for
    ``uint8[]``, accepted by ``sensor_msgs.msg.Image(**fields)`` without per-element work, and a
    bytes-like object for everything else (``bytes(data)``, ``np.frombuffer(data, np.uint8)``).
    The array's dtype must be the encoding's channel type (no silent casts) and its channel count
    must match; data is written little-endian, rows unpadded (step = width * pixel size).
    """
    fmt = pixel_format(encoding)
    arr = np.asarray(array)
    if arr.ndim == 2:
        channels = 1
    elif arr.ndim == 3:
        channels = arr.shape[2]
    else:
        raise EncodingError(f'cannot encode an array of shape {arr.shape} as an image '
                            f'(expected (H, W) or (H, W, C))')
    if channels != fmt.channels:
        raise EncodingError(f'{encoding} needs {fmt.channels} channel(s), the array of shape '
                            f'{arr.shape} has {channels}')
    if arr.dtype.newbyteorder('=') != fmt.dtype:
        raise EncodingError(f'{encoding} needs dtype {fmt.dtype}, got {arr.dtype}; '
                            f'convert explicitly with .astype()')
    height, width = arr.shape[:2]
    if height == 0 or width == 0:
        raise EncodingError(f'cannot encode an empty image of shape {arr.shape}')
    little = np.ascontiguousarray(arr, dtype=fmt.dtype.newbyteorder('<'))
    data = _array.array('B')
    data.frombytes(little.reshape(-1).view(np.uint8))
    return dict(height=int(height), width=int(width), encoding=encoding, is_bigendian=0,
                step=int(width * fmt.pixel_bytes), data=data)


def _single_channel(array, encoding: str) -> np.ndarray:
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise EncodingError(f'{encoding} image must have shape (H, W), got {arr.shape}')
    return arr


def depth_to_metres(array, encoding: str, depth_scale: float = 0.001) -> np.ndarray:
    """Depth in metres as a new float32 (H, W) array where 0 means unknown.

    32FC1/64FC1 are taken as metres (REP 118), 16UC1 is multiplied by ``depth_scale`` (millimetres
    by default). NaN, +-inf and values <= 0 all become 0, the single "unknown" value downstream.
    """
    if encoding not in DEPTH_ENCODINGS:
        raise EncodingError(f'depth image encoding must be one of {", ".join(DEPTH_ENCODINGS)}, '
                            f'got {encoding!r}')
    arr = _single_channel(array, encoding)
    if encoding == '16UC1':
        scale = float(depth_scale)
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f'depth_scale must be finite and > 0, got {depth_scale!r}')
        depth = arr.astype(np.float32)
        depth *= np.float32(scale)
    else:
        with np.errstate(over='ignore', invalid='ignore'):   # float64 beyond float32 -> inf -> 0
            depth = arr.astype(np.float32)
    depth[~((depth > 0) & (depth < np.inf))] = 0.0
    return depth


# Colour conversions respecting channel order; 8UC3/8UC4 follow OpenCV's BGR(A) convention.
_TO_GREY = {'rgb': 'COLOR_RGB2GRAY', 'bgr': 'COLOR_BGR2GRAY',
            'rgba': 'COLOR_RGBA2GRAY', 'bgra': 'COLOR_BGRA2GRAY'}
_COLOUR_ORDER = {'rgb8': 'rgb', 'bgr8': 'bgr', 'rgba8': 'rgba', 'bgra8': 'bgra', '8UC3': 'bgr',
                 '8UC4': 'bgra', 'rgb16': 'rgb', 'bgr16': 'bgr', 'rgba16': 'rgba', 'bgra16': 'bgra'}


def intensity_to_mono8(array, encoding: str) -> np.ndarray:
    """An 8-bit grey (H, W) image from a mono or colour image.

    mono8/8UC1 are returned as they are, mono16/16UC1 keep their high byte, colour images are
    converted with the usual luma weights (OpenCV) in their channel order, alpha ignored.
    """
    if encoding in ('mono8', '8UC1'):
        arr = _single_channel(array, encoding)
        if arr.dtype != np.uint8:
            raise EncodingError(f'{encoding} image must be uint8, got {arr.dtype}')
        return arr
    if encoding in ('mono16', '16UC1'):
        arr = _single_channel(array, encoding)
        if arr.dtype != np.uint16:
            raise EncodingError(f'{encoding} image must be uint16, got {arr.dtype}')
        return (arr >> 8).astype(np.uint8)
    order = _COLOUR_ORDER.get(encoding)
    if order is None:
        raise EncodingError(f'intensity image encoding must be one of '
                            f'{", ".join(INTENSITY_ENCODINGS)}, got {encoding!r}')
    fmt = pixel_format(encoding)
    arr = np.asarray(array)
    if arr.ndim != 3 or arr.shape[2] != fmt.channels or arr.dtype != fmt.dtype:
        raise EncodingError(f'{encoding} image must be {fmt.dtype} of shape (H, W, {fmt.channels}), '
                            f'got {arr.dtype} {arr.shape}')
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    import cv2  # only needed for colour input
    return cv2.cvtColor(np.ascontiguousarray(arr), getattr(cv2, _TO_GREY[order]))


def mask_to_bool(array, encoding: str) -> np.ndarray:
    """Boolean (H, W) "depth is known here" mask from a mono8/8UC1 image (non-zero = known)."""
    if encoding not in MASK_ENCODINGS:
        raise EncodingError(f'mask image encoding must be one of {", ".join(MASK_ENCODINGS)}, '
                            f'got {encoding!r}')
    arr = _single_channel(array, encoding)
    if arr.dtype != np.uint8:
        raise EncodingError(f'{encoding} mask must be uint8, got {arr.dtype}')
    return arr != 0
