"""Pinhole camera geometry: intrinsics, back-projection to an organized point cloud, PLY export.

The cloud is organized (rows x cols, like the image it comes from) and packed as float32
x, y, z, intensity in the camera's optical frame (x right, y down, z forward), which is exactly
the memory layout of a PointCloud2 with ``POINT_FIELDS``/``POINT_STEP``: the array's buffer can be
published as it is. Invalid points keep their place with NaN coordinates, as PointCloud2
consumers expect from organized clouds (``is_dense = False``).

Back-projection only needs, per sampled pixel, the ray direction (x/z, y/z); those depend on the
image size, the intrinsics and the stride only, so ``CloudBuilder`` computes them once and reuses
them (and its output buffer) for every frame.
"""
import dataclasses
import math
from typing import Optional, Sequence

import numpy as np

__all__ = ['CameraIntrinsics', 'CloudBuilder', 'cloud_to_ply', 'read_ply',
           'POINT_FIELDS', 'POINT_STEP', 'FLOAT32']

FLOAT32 = 7   # sensor_msgs/PointField.FLOAT32
POINT_FIELDS = (('x', 0), ('y', 4), ('z', 8), ('intensity', 12))   # (name, byte offset), FLOAT32
POINT_STEP = 16


@dataclasses.dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels (principal point in pixel-index coordinates, as CameraInfo.k)."""

    fx: float
    fy: float
    cx: float
    cy: float

    def validate(self) -> 'CameraIntrinsics':
        """Raise ValueError unless focal lengths are finite and > 0 and the principal point finite."""
        for name in ('fx', 'fy'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float, np.floating, np.integer))
                    and math.isfinite(value) and value > 0):
                raise ValueError(f'camera intrinsics: {name} must be finite and > 0, got {value!r}')
        for name in ('cx', 'cy'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value)):
                raise ValueError(f'camera intrinsics: {name} must be finite, got {value!r}')
        return self

    @classmethod
    def from_k(cls, k: Sequence[float]) -> 'CameraIntrinsics':
        """From a row-major 3x3 K (CameraInfo.k, 9 numbers, or a 3x3 array); validated."""
        values = np.asarray(k, dtype=np.float64).reshape(-1)
        if values.size != 9:
            raise ValueError(f'camera matrix K must have 9 elements, got {values.size}')
        return cls(fx=float(values[0]), fy=float(values[4]),
                   cx=float(values[2]), cy=float(values[5])).validate()

    def as_matrix(self) -> np.ndarray:
        """The 3x3 float64 K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, sx: float, sy: float) -> 'CameraIntrinsics':
        """Intrinsics of the image resized by (sx, sy), e.g. new_width / width.

        Pixel centres are kept aligned (the convention of cv2.resize): pixel u of the original
        covers [u, u + 1), so the principal point maps as (c + 0.5) * s - 0.5.
        """
        if not (math.isfinite(sx) and math.isfinite(sy) and sx > 0 and sy > 0):
            raise ValueError(f'scale factors must be finite and > 0, got {sx!r}, {sy!r}')
        return CameraIntrinsics(fx=self.fx * sx, fy=self.fy * sy,
                                cx=(self.cx + 0.5) * sx - 0.5, cy=(self.cy + 0.5) * sy - 0.5)


class CloudBuilder:
    """Organized point clouds from depth images, reusing the ray grid and the output buffer.

    The array returned by ``build`` belongs to the builder and is overwritten by the next call
    with the same shape; copy it (or serialize it) before building the next one.
    """

    def __init__(self):
        self._key = None
        self._ray_x = None     # (1, cols) float32: (u - cx) / fx for sampled columns
        self._ray_y = None     # (rows, 1) float32: (v - cy) / fy for sampled rows
        self._out = None
        self.ray_builds = 0    # how often the ray grid was (re)computed

    def rays(self, height: int, width: int, intrinsics: CameraIntrinsics, stride: int = 1):
        """(x/z, y/z) for the sampled pixels, broadcastable to (rows, cols); cached."""
        key = (int(height), int(width), intrinsics, int(stride))
        if key != self._key:
            intrinsics.validate()
            if stride < 1 or height < 1 or width < 1:
                raise ValueError(f'need height, width, stride >= 1, got {height}, {width}, {stride}')
            u = np.arange(0, width, stride, dtype=np.float64)
            v = np.arange(0, height, stride, dtype=np.float64)
            self._ray_x = ((u - intrinsics.cx) / intrinsics.fx).astype(np.float32)[None, :]
            self._ray_y = ((v - intrinsics.cy) / intrinsics.fy).astype(np.float32)[:, None]
            self._key = key
            self.ray_builds += 1
        return self._ray_x, self._ray_y

    def build(self, depth: np.ndarray, intensity: Optional[np.ndarray],
              intrinsics: CameraIntrinsics, stride: int = 1, min_depth: float = 0.0,
              max_depth: float = math.inf, confidence: Optional[np.ndarray] = None,
              min_confidence: float = 0.0) -> np.ndarray:
        """float32 (ceil(H/stride), ceil(W/stride), 4) array of x, y, z, intensity.

        Samples pixels (v * stride, u * stride). x, y, z are NaN where the depth is <= 0,
        not finite, outside [min_depth, max_depth] or where confidence < min_confidence
        (or is NaN). ``intensity`` (any numeric dtype, stored as float) may be None (zeros).
        """
        depth = np.asarray(depth)
        if depth.ndim != 2:
            raise ValueError(f'depth must be (H, W), got shape {depth.shape}')
        stride = int(stride)
        height, width = depth.shape
        ray_x, ray_y = self.rays(height, width, intrinsics, stride)
        rows, cols = ray_y.shape[0], ray_x.shape[1]
        if self._out is None or self._out.shape[:2] != (rows, cols):
            self._out = np.empty((rows, cols, 4), dtype=np.float32)
        out = self._out

        z = out[:, :, 2]
        np.copyto(z, depth[::stride, ::stride], casting='unsafe')
        with np.errstate(invalid='ignore'):
            valid = (z > 0) & (z < np.inf) & (z >= min_depth) & (z <= max_depth)
            if confidence is not None:
                confidence = np.asarray(confidence)
                if confidence.shape != depth.shape:
                    raise ValueError(f'confidence shape {confidence.shape} != depth shape {depth.shape}')
                valid &= confidence[::stride, ::stride] >= min_confidence
        np.multiply(ray_x, z, out=out[:, :, 0])
        np.multiply(ray_y, z, out=out[:, :, 1])
        np.copyto(out[:, :, :3], np.float32(np.nan), where=~valid[:, :, None])

        if intensity is None:
            out[:, :, 3] = 0.0
        else:
            intensity = np.asarray(intensity)
            if intensity.shape != depth.shape:
                raise ValueError(f'intensity shape {intensity.shape} != depth shape {depth.shape}')
            np.copyto(out[:, :, 3], intensity[::stride, ::stride], casting='unsafe')
        return out


_PLY_PROPERTIES = ('x', 'y', 'z', 'intensity')


def cloud_to_ply(path, cloud: np.ndarray) -> int:
    """Write the valid points (finite x, y, z) of a (..., 4) cloud as binary little-endian PLY.

    Returns the number of points written; opens in MeshLab, CloudCompare, Open3D.
    """
    points = np.asarray(cloud, dtype=np.float32).reshape(-1, 4)
    points = points[np.isfinite(points[:, :3]).all(axis=1)]
    header = ['ply', 'format binary_little_endian 1.0', 'comment ros2_depth_interp point cloud',
              f'element vertex {len(points)}']
    header += [f'property float {name}' for name in _PLY_PROPERTIES]
    header.append('end_header')
    with open(path, 'wb') as f:
        f.write(('\n'.join(header) + '\n').encode('ascii'))
        f.write(np.ascontiguousarray(points, dtype='<f4').tobytes())
    return len(points)


def read_ply(path) -> np.ndarray:
    """Read back an (N, 4) float32 array written by cloud_to_ply (for tests and tools)."""
    with open(path, 'rb') as f:
        blob = f.read()
    end = blob.find(b'end_header\n')
    if not blob.startswith(b'ply\n') or end < 0:
        raise ValueError(f'{path}: not a PLY file')
    lines = blob[:end].decode('ascii').splitlines()
    if 'format binary_little_endian 1.0' not in lines:
        raise ValueError(f'{path}: only binary little-endian PLY is supported')
    count = next(int(line.split()[2]) for line in lines if line.startswith('element vertex'))
    properties = [line.split()[2] for line in lines if line.startswith('property float')]
    data = np.frombuffer(blob, dtype='<f4', offset=end + len(b'end_header\n'))
    if data.size != count * len(properties):
        raise ValueError(f'{path}: expected {count} vertices of {len(properties)} floats, '
                         f'found {data.size} floats')
    return data.reshape(count, len(properties)).astype(np.float32)
