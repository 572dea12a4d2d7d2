"""LSD-SLAM keyframes to dense, world-scale depth, clouds and a dense map (ROS-free).

The live node (``ros/keyframe_input.py``) and the bag tool (``tools/bag.py``) run this same code,
so both give identical outputs for the same keyframe.

World scale. A keyframe's inverse depths ``q`` are in the keyframe's own monocular scale; its
``camToWorld`` Sim(3) maps keyframe-camera points to the world, ``x_w = s R x + t``. This module
publishes everything in the keyframe camera frame *at world scale*: depth ``s / q`` and points
``s x``, so that the rigid part alone, ``x_w = R (s x) + t`` (the ``/tf`` transform
``world -> keyframe frame``), places them correctly in the map. To get there the interpolation is
fed ``q / s`` (the viewer's filter still sees the keyframe's own ``q`` and ``s``), so dense depth,
cloud and the cloud filters ``min_depth`` / ``max_depth`` are all in world units.

``DenseMap`` keeps the dense cloud of every keyframe, in the keyframe's own scale and camera
frame, with the keyframe's latest Sim(3); a graph update (``decode_graph``) replaces the poses of
the keyframes it names (LSD-SLAM's loop closures move and rescale old keyframes) and the map is
rebuilt from the new poses, voxel-filtered in the world frame.
"""
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

from .lsd_slam import Keyframe, KeyframeError, KeyframeFilter, Sim3, _field, decode_keyframe, valid_mask
from .pipeline import FrameProcessor, FrameResult, PipelineConfig

__all__ = ['KEYFRAME_BAD_POSE', 'KEYFRAME_BAD_INTRINSICS', 'GRAPH_BAD_SIZE', 'KeyframeError',
           'RigidPose', 'KeyframeOutput', 'KeyframeProcessor', 'decode_graph', 'graph_fields', 'DenseMap',
           'voxel_filter', 'keyframe_config']

# Reason keys of keyframes that cannot be used (besides lsd_slam's empty / bad size).
KEYFRAME_BAD_POSE = 'keyframe_bad_pose'
KEYFRAME_BAD_INTRINSICS = 'keyframe_bad_intrinsics'
GRAPH_BAD_SIZE = 'graph_bad_size'

MIN_SCALE = 1e-6          # Sim(3) scales at or below this are unusable (a zero quaternion)

# keyframeGraphMsg records: LSD-SLAM dumps its x86 structs, little-endian.
GRAPH_FRAME_DTYPE = np.dtype([('id', '<i4'), ('cam_to_world', '<f4', (7,))])      # 32 bytes
GRAPH_CONSTRAINT_DTYPE = np.dtype([('from', '<i4'), ('to', '<i4'), ('err', '<f4')])  # 12 bytes


# --- the pose -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RigidPose:
    """The Sim(3) split into what ROS can carry: ``scale`` and the rigid ``rotation_xyzw`` (unit
    quaternion, w >= 0) and ``translation`` of ``world <- keyframe camera``."""
    scale: float
    rotation_xyzw: tuple
    translation: tuple

    @classmethod
    def from_sim3(cls, sim3: Sim3, kf_id: int = 0) -> 'RigidPose':
        """Raises ``KeyframeError(KEYFRAME_BAD_POSE)`` for a NaN/inf pose or a scale <= 1e-6."""
        values = np.concatenate([sim3.quaternion, sim3.translation])
        if not np.isfinite(values).all():
            raise KeyframeError(KEYFRAME_BAD_POSE, 'keyframe %d: camToWorld is not finite (%s)'
                                % (kf_id, ', '.join('%g' % v for v in values)))
        scale = sim3.scale
        if not scale > MIN_SCALE:
            raise KeyframeError(KEYFRAME_BAD_POSE, 'keyframe %d: camToWorld scale (quaternion norm) '
                                'is %g; it must be > 0' % (kf_id, scale))
        q = sim3.quaternion / scale
        if q[3] < 0:
            q = -q
        return cls(scale, tuple(float(v) for v in q), tuple(float(v) for v in sim3.translation))


# --- one keyframe --------------------------------------------------------------------------------------
@dataclass
class KeyframeOutput:
    """What one keyframe produced: ``result`` holds world-scale dense depth, confidence and the
    organized cloud in the keyframe camera frame (``result.cloud`` may be None, see FrameResult)."""
    keyframe: Keyframe
    pose: RigidPose
    result: FrameResult

    @property
    def stamp(self):
        return self.keyframe.stamp


def keyframe_config(config: PipelineConfig) -> PipelineConfig:
    """The per-frame settings for keyframes: inverse depth in, the viewer's selection as mask."""
    return config.with_changes(input_inverse_depth=True, use_mask=True)


class KeyframeProcessor:
    """Decode, filter and densify keyframes; see the module docstring.

    ``config`` (a ``PipelineConfig``) and ``rules`` (a ``KeyframeFilter``) may be swapped between
    keyframes. Not thread-safe: one processor per worker thread.
    """

    def __init__(self, interpolator, config: Optional[PipelineConfig] = None,
                 rules: Optional[KeyframeFilter] = None):
        self._frames = FrameProcessor(interpolator, keyframe_config(config or PipelineConfig()))
        self.rules = rules or KeyframeFilter()

    @property
    def config(self) -> PipelineConfig:
        return self._frames.config

    @config.setter
    def config(self, config: PipelineConfig):
        self._frames.config = keyframe_config(config)

    def process_message(self, msg: Any) -> KeyframeOutput:
        """From a keyframe message (``lsd_slam_msgs/Keyframe``, ``lsd_slam_viewer/keyframeMsg``, a
        dict); raises ``KeyframeError`` or ``FrameError`` (both have ``reason_key``)."""
        t0 = time.perf_counter()
        keyframe = decode_keyframe(msg)
        t_decode = time.perf_counter() - t0
        output = self.process(keyframe)
        output.result.timings['convert'] += t_decode
        return output

    def process(self, keyframe: Keyframe) -> KeyframeOutput:
        t0 = time.perf_counter()
        pose = RigidPose.from_sim3(keyframe.cam_to_world, keyframe.id)
        intrinsics = keyframe.intrinsics
        if intrinsics is None:
            raise KeyframeError(KEYFRAME_BAD_INTRINSICS, 'keyframe %d: unusable intrinsics fx=%g fy=%g '
                                'cx=%g cy=%g' % (keyframe.id, keyframe.fx, keyframe.fy, keyframe.cx,
                                                 keyframe.cy))
        valid = valid_mask(keyframe, self.rules)
        world_inverse_depth = keyframe.inverse_depth / np.float32(pose.scale)
        t_decode = time.perf_counter() - t0
        result = self._frames.process(world_inverse_depth, '32FC1', keyframe.intensity, 'mono8',
                                      valid.view(np.uint8), intrinsics, mask_encoding='mono8')
        result.timings['convert'] += t_decode
        return KeyframeOutput(keyframe, pose, result)


# --- the pose graph ------------------------------------------------------------------------------------
def decode_graph(msg: Any) -> Dict[int, Sim3]:
    """{keyframe id: camToWorld} of a graph message (``lsd_slam_msgs/KeyframeGraph`` or
    ``lsd_slam_viewer/keyframeGraphMsg`` field names); raises ``KeyframeError(GRAPH_BAD_SIZE)``
    when ``frame_data`` does not hold ``num_frames`` records of 32 bytes. Non-finite poses are left out."""
    names = ('num_frames', 'frame_data') if _has(msg, 'num_frames') else ('numFrames', 'frameData')
    count = int(_field(msg, names[0]))
    raw = np.frombuffer(bytes(_field(msg, names[1])), dtype=np.uint8)
    if count < 0 or raw.size != count * GRAPH_FRAME_DTYPE.itemsize:
        raise KeyframeError(GRAPH_BAD_SIZE, 'graph: frame_data has %d bytes, expected num_frames %d x %d'
                            % (raw.size, count, GRAPH_FRAME_DTYPE.itemsize))
    records = raw.view(GRAPH_FRAME_DTYPE)
    return {int(r['id']): Sim3.from_array(r['cam_to_world']) for r in records
            if np.isfinite(r['cam_to_world']).all()}


def _has(msg, name):
    return name in msg if isinstance(msg, dict) else hasattr(msg, name)


def graph_fields(poses: Dict[int, Sim3], constraints=()) -> dict:
    """The fields of a graph message (ROS 2 names) from {id: Sim3} and (from, to, err) triples."""
    frames = np.empty(len(poses), dtype=GRAPH_FRAME_DTYPE)
    for index, (kf_id, pose) in enumerate(sorted(poses.items())):
        frames[index] = (kf_id, pose.to_array())
    edges = np.array([tuple(c) for c in constraints], dtype=GRAPH_CONSTRAINT_DTYPE)
    return dict(num_frames=len(frames), frame_data=frames.view(np.uint8).copy(),
                num_constraints=len(edges), constraints_data=edges.view(np.uint8).copy())


# --- the map -------------------------------------------------------------------------------------------
def voxel_filter(points: np.ndarray, voxel: float) -> np.ndarray:
    """Centroid (x, y, z and intensity averaged) of the points in each cubic voxel of edge ``voxel``.

    ``points`` is (N, 4) x, y, z, intensity, finite; ``voxel`` <= 0 returns the points unchanged.
    """
    if voxel <= 0 or len(points) == 0:
        return points
    cells = np.floor(points[:, :3] / voxel).astype(np.int64)
    cells -= cells.min(axis=0)
    extent = cells.max(axis=0) + 1
    if float(extent[0]) * float(extent[1]) * float(extent[2]) < 2.0 ** 62:
        keys = (cells[:, 0] * extent[1] + cells[:, 1]) * extent[2] + cells[:, 2]   # one int64 per voxel
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    else:
        _, inverse, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    out = np.empty((len(counts), 4), dtype=np.float32)
    for column in range(4):
        out[:, column] = np.bincount(inverse, weights=points[:, column], minlength=len(counts)) / counts
    return out


class DenseMap:
    """The dense clouds of all keyframes so far, re-posed by graph updates; thread-safe.

    ``add`` stores one keyframe's cloud (replacing an earlier one with the same id) in the
    keyframe's own scale, thinned to about one point per ``voxel`` (world units) so memory stays
    bounded; ``update_poses`` applies a graph's poses; ``points`` builds the (N, 4) world cloud
    (x, y, z, intensity), voxel-filtered, when something changed since the last call.
    """

    def __init__(self, voxel: float = 0.05, max_keyframes: int = 0):
        self.voxel = float(voxel)
        self.max_keyframes = int(max_keyframes)
        self._clouds: Dict[int, np.ndarray] = {}
        self._poses: Dict[int, Sim3] = {}
        self._lock = threading.Lock()
        self._version = 0
        self._built_version = 0       # nothing to publish before the first keyframe
        self.graph_updates = 0

    def __len__(self):
        with self._lock:
            return len(self._clouds)

    def add(self, kf_id: int, cloud: np.ndarray, pose: Sim3):
        """``cloud``: organized (rows, cols, 4) world-scale cloud in the keyframe camera frame."""
        points = np.asarray(cloud, dtype=np.float32).reshape(-1, 4)
        points = points[np.isfinite(points[:, :3]).all(axis=1)].copy()
        scale = pose.scale
        points[:, :3] /= scale                   # keyframe scale: re-scaled by later graph poses
        points = voxel_filter(points, self.voxel / scale)
        with self._lock:
            self._clouds[int(kf_id)] = points
            self._poses[int(kf_id)] = pose
            if self.max_keyframes > 0:
                while len(self._clouds) > self.max_keyframes:
                    oldest = next(iter(self._clouds))
                    del self._clouds[oldest], self._poses[oldest]
            self._version += 1

    def update_poses(self, poses: Dict[int, Sim3]) -> int:
        """Apply a graph update; returns how many stored keyframes it moved."""
        moved = 0
        with self._lock:
            for kf_id, pose in poses.items():
                if kf_id in self._clouds and pose.scale > MIN_SCALE:
                    self._poses[kf_id] = pose
                    moved += 1
            if moved:
                self._version += 1
                self.graph_updates += 1
        return moved

    def pose(self, kf_id: int) -> Optional[Sim3]:
        with self._lock:
            return self._poses.get(kf_id)

    @property
    def changed(self) -> bool:
        with self._lock:
            return self._version != self._built_version

    def points(self, force: bool = False) -> Optional[np.ndarray]:
        """(N, 4) float32 world cloud, or None when nothing changed since the last call."""
        with self._lock:
            if self._version == self._built_version and not force:
                return None
            self._built_version = self._version
            items = [(self._clouds[k], self._poses[k]) for k in self._clouds]
        parts = []
        for points, pose in items:
            world = np.empty_like(points)
            world[:, :3] = pose.transform(points[:, :3])
            world[:, 3] = points[:, 3]
            parts.append(world)
        if not parts:
            return np.zeros((0, 4), dtype=np.float32)
        return voxel_filter(np.concatenate(parts), self.voxel)
