"""LSD-SLAM's own keyframe messages: the type definition, decoding and a viewer-like point filter.

LSD-SLAM (ROS 1) publishes ``lsd_slam_viewer/keyframeMsg`` on ``/lsd_slam/keyframes``. The message
carries no Image: the semi-dense map of one keyframe travels as a raw memory dump in
``uint8[] pointcloud``, ``width * height`` records of 12 bytes, row-major::

    float32 idepth        inverse depth, in the keyframe's own (monocular, arbitrary) scale
    float32 idepth_var    variance of that inverse depth
    uint8   color[4]      the grey value of the pixel, the same byte four times

Pixels without an estimate carry ``idepth = idepth_var = -1``. ``camToWorld`` is a Sophus Sim(3)
serialized as 7 floats: a quaternion x, y, z, w whose *norm* is the scale (LSD-SLAM's bundled
Sophus: ``RxSO3::scale() = quaternion().norm()``), then the translation.

Nothing here needs ROS: ``register_keyframe_type`` teaches a ``rosbags`` typestore the type from
its definition (below), so bags without embedded definitions can be read, and ``decode_keyframe``
works on any object with the message's attributes (a rosbags message, a namespace, a dict).

Which pixels count as measured: the LSD-SLAM viewer does not draw every pixel with a positive
inverse depth; it drops those whose depth variance is too high (in the keyframe's scale and in
world scale) and those without enough similar neighbours. ``KeyframeFilter`` reproduces those
rules with the viewer's default settings, so the interpolation starts from the points a user sees
in the viewer.
"""
import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .geometry import CameraIntrinsics

__all__ = [
    'KEYFRAME_MSGTYPE', 'KEYFRAME_DEFINITION', 'KEYFRAME2_MSGTYPE', 'KEYFRAME2_DEFINITION', 'POINT_DTYPE', 'POINT_BYTES', 'KeyframeError',
    'Sim3', 'Keyframe', 'KeyframeFilter', 'register_keyframe_type', 'keyframe_typestore',
    'is_keyframe_msgtype', 'decode_keyframe', 'keyframe_fields', 'encode_keyframe', 'valid_mask',
]

KEYFRAME_MSGTYPE = 'lsd_slam_viewer/msg/keyframeMsg'

# The message definition as LSD-SLAM ships it (lsd_slam_viewer/msg/keyframeMsg.msg), comments
# shortened. The same text is valid ROS 1 and ROS 2 .msg syntax.
KEYFRAME_DEFINITION = """\
int32 id
float64 time
bool isKeyframe

# camToWorld as serialization of a Sophus Sim(3): quaternion x y z w (norm = scale), translation
float32[7] camToWorld

# camera parameters (fx fy cx cy) and image size of the keyframe
float32 fx
float32 fy
float32 cx
float32 cy
uint32 height
uint32 width

# width x height records (float32 idepth, float32 idepth_var, uint8 color[4]), row-major; may be empty
uint8[] pointcloud
"""

# Its ROS 2 twin, the interface package lsd_slam_msgs of this repository (what ros1_bridge and a
# `ros2 bag record` next to the live node give): the same fields, types and order, ROS 2 names.
KEYFRAME2_MSGTYPE = 'lsd_slam_msgs/msg/Keyframe'
KEYFRAME2_DEFINITION = """\
int32 id
float64 time
bool is_keyframe
float32[7] cam_to_world
float32 fx
float32 fy
float32 cx
float32 cy
uint32 height
uint32 width
uint8[] pointcloud
"""

# One pointcloud record. LSD-SLAM dumps its x86 memory, hence little-endian.
POINT_DTYPE = np.dtype([('idepth', '<f4'), ('idepth_var', '<f4'), ('color', 'u1', (4,))])
POINT_BYTES = POINT_DTYPE.itemsize   # 12
INVALID = -1.0                       # idepth and idepth_var of pixels without an estimate

# Reason keys of undecodable keyframes (counted by the bag tool, like pipeline.FrameError keys).
KEYFRAME_EMPTY = 'keyframe_empty'
KEYFRAME_BAD_SIZE = 'keyframe_bad_size'


class KeyframeError(ValueError):
    """A keyframe message that holds no usable depth map; ``reason_key`` names its drop counter."""

    def __init__(self, reason_key, message):
        super().__init__('%s: %s' % (reason_key, message))
        self.reason_key = reason_key
        self.message = message


# --- the type ---------------------------------------------------------------------------------------
def is_keyframe_msgtype(msgtype: str) -> bool:
    """True for ``lsd_slam_viewer/msg/keyframeMsg`` and forks that kept the message name
    (``<package>/msg/keyframeMsg``; ROS 1 names without ``/msg/`` too), and for its ROS 2 twin
    ``lsd_slam_msgs/msg/Keyframe``."""
    if not isinstance(msgtype, str):
        return False
    return msgtype.rsplit('/', 1)[-1] == 'keyframeMsg' or msgtype.replace('/msg/', '/') == 'lsd_slam_msgs/Keyframe'


def register_keyframe_type(typestore, msgtype: str = KEYFRAME_MSGTYPE):
    """Add the keyframe type ``msgtype`` to a ``rosbags`` typestore, and ``lsd_slam_msgs/msg/Keyframe``
    too (no-op for what is there); returns the store."""
    from rosbags.typesys import get_types_from_msg
    for name, definition in ((msgtype, KEYFRAME_DEFINITION), (KEYFRAME2_MSGTYPE, KEYFRAME2_DEFINITION)):
        if name not in typestore.fielddefs:
            typestore.register(get_types_from_msg(definition, name))
    return typestore


def keyframe_typestore(ros1: bool = False):
    """A fresh ``rosbags`` typestore with the standard messages (ROS 2 Kilted, or ROS 1 Noetic)
    plus the keyframe type."""
    from rosbags.typesys import Stores, get_typestore
    return register_keyframe_type(get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_KILTED))


# --- the pose ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sim3:
    """A similarity transform x -> s R x + t, stored like Sophus' Sim3f (quaternion, translation).

    ``quaternion`` is x, y, z, w and *not* normalized: its norm is the scale ``s``.
    """
    quaternion: np.ndarray = field(default_factory=lambda: np.array([0, 0, 0, 1], np.float64))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float64))

    @classmethod
    def from_array(cls, seven) -> 'Sim3':
        values = np.asarray(seven, dtype=np.float64).reshape(-1)
        if values.size != 7:
            raise ValueError('camToWorld must hold 7 numbers (quaternion x y z w, translation), '
                             'got %d' % values.size)
        return cls(values[:4].copy(), values[4:].copy())

    @classmethod
    def from_scale_rotation_translation(cls, scale, rotation_xyzw, translation) -> 'Sim3':
        """Build from a scale, any rotation quaternion (normalized here) and a translation."""
        q = np.asarray(rotation_xyzw, dtype=np.float64)
        return cls(q / np.linalg.norm(q) * float(scale), np.asarray(translation, np.float64).copy())

    def to_array(self) -> np.ndarray:
        """The 7 float32 of ``camToWorld``."""
        return np.concatenate([self.quaternion, self.translation]).astype(np.float32)

    @property
    def scale(self) -> float:
        return float(np.linalg.norm(self.quaternion))

    @property
    def rotation(self) -> np.ndarray:
        """3x3 rotation matrix of the normalized quaternion."""
        x, y, z, w = self.quaternion / self.scale
        return np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ])

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix [[s R, t], [0, 1]]."""
        out = np.eye(4)
        out[:3, :3] = self.scale * self.rotation
        out[:3, 3] = self.translation
        return out

    def transform(self, points) -> np.ndarray:
        """Map (..., 3) points from the keyframe's camera frame to the world: s R p + t."""
        points = np.asarray(points, dtype=np.float64)
        return points @ (self.scale * self.rotation).T + self.translation


# --- one decoded keyframe ---------------------------------------------------------------------------
@dataclass
class Keyframe:
    """A decoded keyframe message. Arrays are (height, width), row-major like the image.

    ``inverse_depth`` and ``inverse_depth_variance`` keep LSD-SLAM's values (-1 where there is no
    estimate); ``valid_mask`` decides which pixels count as measured. Depth ``1 / inverse_depth``
    is in the keyframe's own scale; multiply by ``cam_to_world.scale`` for the world (map) scale.
    """
    id: int
    time: float
    is_keyframe: bool
    cam_to_world: Sim3
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    inverse_depth: np.ndarray
    inverse_depth_variance: np.ndarray
    intensity: np.ndarray

    @property
    def intrinsics(self) -> Optional[CameraIntrinsics]:
        """The keyframe's pinhole intrinsics, or None when they are unusable (e.g. fx = 0)."""
        try:
            return CameraIntrinsics(float(self.fx), float(self.fy),
                                    float(self.cx), float(self.cy)).validate()
        except ValueError:
            return None

    @property
    def stamp(self):
        """(sec, nanosec) of ``time`` (seconds, the keyframe image's time stamp)."""
        return seconds_to_stamp(self.time)


def seconds_to_stamp(seconds: float):
    """(sec, nanosec) of a float time in seconds, nanosec always in [0, 1e9)."""
    seconds = float(seconds)
    if not math.isfinite(seconds) or seconds < 0:
        return 0, 0
    sec = int(math.floor(seconds))
    nanosec = int(round((seconds - sec) * 1e9))
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return sec, nanosec


def _field(msg, name, *other_names):
    """Field ``name`` of a message object or dict; ``other_names`` are tried when it is missing
    (the ROS 2 spelling of ``lsd_slam_msgs/Keyframe``: ``is_keyframe``, ``cam_to_world``)."""
    for candidate in (name,) + other_names:
        if isinstance(msg, dict):
            if candidate in msg:
                return msg[candidate]
        elif hasattr(msg, candidate):
            return getattr(msg, candidate)
    raise KeyError('message has no field %s' % ' or '.join((name,) + other_names))


def decode_keyframe(msg: Any) -> Keyframe:
    """Decode a keyframe message (any object or dict with the field names of
    ``lsd_slam_viewer/keyframeMsg`` or of its ROS 2 twin ``lsd_slam_msgs/Keyframe``).

    Raises ``KeyframeError`` when the pointcloud is empty (LSD-SLAM publishes pose-only updates)
    or its size is not ``width * height * 12`` bytes. The arrays are copies, so the message buffer
    may be released afterwards.
    """
    width, height = int(_field(msg, 'width')), int(_field(msg, 'height'))
    raw = _field(msg, 'pointcloud')
    raw = raw if isinstance(raw, np.ndarray) else np.frombuffer(bytes(raw) if isinstance(raw, list)
                                                               else raw, dtype=np.uint8)
    raw = np.ascontiguousarray(raw).reshape(-1)
    if raw.dtype != np.uint8:
        raw = raw.view(np.uint8)
    kf_id = int(_field(msg, 'id'))
    if raw.size == 0:
        raise KeyframeError(KEYFRAME_EMPTY, 'keyframe %d carries no depth map (empty pointcloud)' % kf_id)
    expected = width * height * POINT_BYTES
    if width <= 0 or height <= 0 or raw.size != expected:
        raise KeyframeError(KEYFRAME_BAD_SIZE, 'keyframe %d: pointcloud has %d bytes, expected width %d '
                            'x height %d x %d bytes = %d' % (kf_id, raw.size, width, height,
                                                             POINT_BYTES, expected))
    records = raw.view(POINT_DTYPE).reshape(height, width)
    try:
        pose = Sim3.from_array(_field(msg, 'camToWorld', 'cam_to_world'))
    except ValueError as exc:
        raise KeyframeError(KEYFRAME_BAD_SIZE, 'keyframe %d: %s' % (kf_id, exc)) from None
    return Keyframe(
        id=kf_id, time=float(_field(msg, 'time')), is_keyframe=bool(_field(msg, 'isKeyframe', 'is_keyframe')),
        cam_to_world=pose,
        fx=float(_field(msg, 'fx')), fy=float(_field(msg, 'fy')),
        cx=float(_field(msg, 'cx')), cy=float(_field(msg, 'cy')),
        width=width, height=height,
        inverse_depth=records['idepth'].astype(np.float32),           # native order, contiguous
        inverse_depth_variance=records['idepth_var'].astype(np.float32),
        intensity=np.ascontiguousarray(records['color'][:, :, 0]))


def keyframe_fields(inverse_depth, inverse_depth_variance, intensity, fx, fy, cx, cy,
                    cam_to_world: Optional[Sim3] = None, id=0, time=0.0, is_keyframe=True) -> dict:
    """The message fields of a keyframe built from arrays (the inverse of ``decode_keyframe``).

    Pixels whose inverse depth is not a positive finite number are written as LSD-SLAM writes
    them: -1 / -1. ``intensity`` (uint8) goes into all four colour bytes.
    """
    idepth = np.asarray(inverse_depth, dtype=np.float32)
    variance = np.asarray(inverse_depth_variance, dtype=np.float32)
    grey = np.asarray(intensity)
    if idepth.ndim != 2 or variance.shape != idepth.shape or grey.shape != idepth.shape:
        raise ValueError('inverse depth, variance and intensity must be (H, W) arrays of one shape, '
                         'got %s, %s, %s' % (idepth.shape, variance.shape, grey.shape))
    if grey.dtype != np.uint8:
        raise ValueError('intensity must be uint8, got %s' % grey.dtype)
    height, width = idepth.shape
    records = np.empty((height, width), dtype=POINT_DTYPE)
    with np.errstate(invalid='ignore'):
        known = np.isfinite(idepth) & (idepth > 0)
    records['idepth'] = np.where(known, idepth, np.float32(INVALID))
    records['idepth_var'] = np.where(known, variance, np.float32(INVALID))
    records['color'] = grey[:, :, None]
    pose = cam_to_world if cam_to_world is not None else Sim3()
    return dict(id=int(id), time=float(time), isKeyframe=bool(is_keyframe),
                camToWorld=pose.to_array(),
                fx=float(fx), fy=float(fy), cx=float(cx), cy=float(cy),
                height=int(height), width=int(width),
                pointcloud=records.reshape(-1).view(np.uint8).copy())


def encode_keyframe(inverse_depth, inverse_depth_variance, intensity, fx, fy, cx, cy,
                    cam_to_world: Optional[Sim3] = None, id=0, time=0.0, is_keyframe=True,
                    typestore=None, msgtype: str = KEYFRAME_MSGTYPE):
    """A ``rosbags`` keyframe message object (serialize it with the typestore's
    ``serialize_cdr`` or ``serialize_ros1``); the typestore gets the type registered if needed.
    Default: a fresh ROS 2 typestore from ``keyframe_typestore()``."""
    store = typestore if typestore is not None else keyframe_typestore()
    register_keyframe_type(store, msgtype)
    fields = keyframe_fields(inverse_depth, inverse_depth_variance, intensity, fx, fy, cx, cy,
                             cam_to_world=cam_to_world, id=id, time=time, is_keyframe=is_keyframe)
    return store.types[msgtype](**fields)


# --- which pixels are measured ----------------------------------------------------------------------
@dataclass(frozen=True)
class KeyframeFilter:
    """Viewer-like selection of the measured pixels of a keyframe.

    A pixel is kept when (the rules and defaults of the LSD-SLAM viewer, whose settings are
    log10 values -3 and -1 and 7):

    - its inverse depth ``q`` is positive and finite, and it is not on the 1-pixel image border;
    - ``var_q / q**4`` (the variance of depth, in the keyframe's scale) is at most
      ``max_scaled_depth_variance`` (viewer ``scaledDepthVarTH`` = 1e-3);
    - that times ``scale**2`` (variance of depth in world scale) is at most
      ``max_abs_depth_variance`` (viewer ``absDepthVarTH`` = 1e-1);
    - at least ``min_near_support`` pixels of its 3x3 neighbourhood (itself included) have a
      positive inverse depth within sqrt(2 var_q) of its own (viewer ``minNearSupport`` = 7;
      0 or 1 switch the test off).

    ``max_inverse_depth_variance`` > 0 adds a plain cap on ``var_q`` (off by default). A threshold
    of ``inf`` switches its rule off.
    """
    max_scaled_depth_variance: float = 1e-3
    max_abs_depth_variance: float = 1e-1
    min_near_support: int = 7
    max_inverse_depth_variance: float = 0.0

    def validate(self) -> 'KeyframeFilter':
        for name in ('max_scaled_depth_variance', 'max_abs_depth_variance'):
            value = getattr(self, name)
            if not (value > 0):   # also rejects NaN; inf is allowed (rule off)
                raise ValueError('%s must be > 0 (inf = no limit), got %r' % (name, value))
        if not (self.max_inverse_depth_variance >= 0):
            raise ValueError('max_inverse_depth_variance must be >= 0 (0 = no limit), got %r'
                             % self.max_inverse_depth_variance)
        if not 0 <= int(self.min_near_support) <= 9:
            raise ValueError('min_near_support must be in [0, 9], got %r' % self.min_near_support)
        return self


def valid_mask(keyframe: Keyframe, rules: KeyframeFilter = KeyframeFilter()) -> np.ndarray:
    """Boolean (H, W): the pixels ``rules`` keep (see ``KeyframeFilter``). Vectorized."""
    q = keyframe.inverse_depth
    var = keyframe.inverse_depth_variance
    with np.errstate(invalid='ignore', divide='ignore', over='ignore'):
        valid = np.isfinite(q) & (q > 0) & np.isfinite(var) & (var >= 0)
        q_safe = np.where(valid, q, np.float32(1)).astype(np.float64)
        depth_variance = var / q_safe ** 4          # var_q * depth**4
        valid &= depth_variance <= rules.max_scaled_depth_variance
        scale = keyframe.cam_to_world.scale
        valid &= depth_variance * (scale * scale) <= rules.max_abs_depth_variance
        if rules.max_inverse_depth_variance > 0:
            valid &= var <= rules.max_inverse_depth_variance
        if rules.min_near_support > 1:
            valid &= _near_support(q, var) >= rules.min_near_support
    valid[0, :] = valid[-1, :] = False
    valid[:, 0] = valid[:, -1] = False
    return valid


def _near_support(q, var):
    """Per pixel: how many of its 3x3 neighbours (itself included) have a positive inverse depth
    whose squared difference to its own is below 2 var (the viewer's outlier test)."""
    height, width = q.shape
    padded = np.full((height + 2, width + 2), -1.0, dtype=np.float64)
    padded[1:-1, 1:-1] = np.where(np.isfinite(q), q, -1.0)
    centre = padded[1:-1, 1:-1]
    limit = 2.0 * var.astype(np.float64)
    count = np.zeros((height, width), dtype=np.int32)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            neighbour = padded[dy:dy + height, dx:dx + width]
            count += (neighbour > 0) & ((neighbour - centre) ** 2 < limit)
    return count
