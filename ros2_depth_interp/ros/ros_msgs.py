"""numpy arrays -> rclpy message objects (Image, PointCloud2, LSD-SLAM Keyframe), and back for
tests and tools.

rclpy's generated setter for ``uint8[] data`` walks a Python list element by element unless it is
handed an ``array.array('B')``; for a 640x480 float image that is the difference between
microseconds and a second. Everything here therefore moves pixels as one buffer copy.

``MessageCache`` keeps one message object per output and, when the size does not change, copies
the new pixels into the message's existing ``array.array`` (the generated setter would copy again),
so a steady stream costs one memcpy per output and allocates nothing. Reuse is safe because
``Publisher.publish`` serializes the message before it returns.
"""
import array

import numpy as np
from sensor_msgs.msg import Image, PointCloud2, PointField

from ..core import encodings
from ..core.geometry import POINT_FIELDS, POINT_STEP


def _write_in_place(msg, payload):
    """Copy ``payload`` (uint8 array) into ``msg.data`` when the sizes match; True if done.

    The generated setter of ``uint8[]`` fields copies whatever it is given; writing through the
    getter's ``array.array`` instead updates the message with one memcpy and no allocation.
    """
    current = msg.data
    if not isinstance(current, array.array) or len(current) != payload.nbytes or payload.nbytes == 0:
        return False
    np.frombuffer(current, dtype=np.uint8)[:] = payload
    return True


def _little_endian_bytes(arr, dtype):
    """uint8 view of ``arr`` as contiguous little-endian ``dtype`` (copies only when needed)."""
    return np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder('<')).reshape(-1).view(np.uint8)


def fill_image(msg, array_hw, encoding, header):
    """Set ``msg`` (sensor_msgs/Image) from a numpy image; returns ``msg``.

    The first fill (or one with a new size or encoding) takes its fields from
    ``encodings.array_to_image_fields`` (one definition of step and byte order for the whole
    project); later fills of the same geometry only copy the pixels into the existing buffer.
    The header object is assigned, not copied.
    """
    arr = np.asarray(array_hw)
    fmt = encodings.pixel_format(encoding)
    same_geometry = (msg.encoding == encoding and (msg.height, msg.width) == arr.shape[:2]
                     and arr.ndim in (2, 3) and (arr.shape[2] if arr.ndim == 3 else 1) == fmt.channels
                     and arr.dtype.newbyteorder('=') == fmt.dtype and not msg.is_bigendian)
    if not (same_geometry and _write_in_place(msg, _little_endian_bytes(arr, fmt.dtype))):
        fields = encodings.array_to_image_fields(arr, encoding)
        msg.height = int(fields['height'])
        msg.width = int(fields['width'])
        msg.encoding = fields['encoding']
        msg.is_bigendian = int(bool(fields['is_bigendian']))
        msg.step = int(fields['step'])
        msg.data = fields['data']
    msg.header = header
    return msg


def make_image(array_hw, encoding, header):
    return fill_image(Image(), array_hw, encoding, header)


def cloud_fields():
    """PointField list for x, y, z, intensity FLOAT32 at the offsets geometry.py packs."""
    return [PointField(name=name, offset=int(offset), datatype=PointField.FLOAT32, count=1)
            for name, offset in POINT_FIELDS]


def fill_cloud(msg, cloud, header):
    """Set ``msg`` (sensor_msgs/PointCloud2) from an organized (rows, cols, 4) float32 cloud.

    The cloud keeps its image layout (height = rows, width = cols) so a consumer can index a
    point by pixel; invalid points are NaN, hence ``is_dense = False``.
    """
    cloud = np.asarray(cloud)
    if cloud.ndim != 3 or cloud.shape[2] * 4 != POINT_STEP or cloud.dtype.newbyteorder('=') != np.float32:
        raise ValueError('cloud must be float32 (rows, cols, %d), got %s %s'
                         % (POINT_STEP // 4, cloud.dtype, cloud.shape))
    rows, cols = cloud.shape[:2]
    payload = _little_endian_bytes(cloud, np.float32)
    msg.header = header
    msg.height = int(rows)
    msg.width = int(cols)
    if len(msg.fields) != len(POINT_FIELDS):
        msg.fields = cloud_fields()
    msg.is_bigendian = False
    msg.point_step = POINT_STEP
    msg.row_step = POINT_STEP * int(cols)
    msg.is_dense = False
    if not _write_in_place(msg, payload):
        data = array.array('B')
        data.frombytes(payload)
        msg.data = data
    return msg


def make_cloud(cloud, header):
    return fill_cloud(PointCloud2(), cloud, header)


def cloud_msg_to_array(msg):
    """(height, width, 4) float32 x, y, z, intensity from a PointCloud2 with our field layout.

    Works for any point_step/row_step padding as long as x, y, z, intensity are FLOAT32 fields;
    used by tests and the demo recorder.
    """
    offsets = {f.name: f.offset for f in msg.fields if f.datatype == PointField.FLOAT32}
    missing = [name for name, _ in POINT_FIELDS if name not in offsets]
    if missing:
        raise ValueError('PointCloud2 lacks FLOAT32 fields %s' % missing)
    dtype = np.dtype({'names': [name for name, _ in POINT_FIELDS],
                      'formats': ['>f4' if msg.is_bigendian else '<f4'] * len(POINT_FIELDS),
                      'offsets': [offsets[name] for name, _ in POINT_FIELDS],
                      'itemsize': msg.point_step})
    raw = np.frombuffer(msg.data, dtype=np.uint8)
    rows = raw[:msg.height * msg.row_step].reshape(msg.height, msg.row_step)[:, :msg.width * msg.point_step]
    points = np.ascontiguousarray(rows).view(dtype).reshape(msg.height, msg.width)
    return np.stack([points[name].astype(np.float32) for name, _ in POINT_FIELDS], axis=-1)


class MessageCache:
    """One reusable message object per output topic (see the module docstring)."""

    def __init__(self):
        self._images = {}
        self._cloud = PointCloud2()

    def image(self, key, array_hw, encoding, header):
        msg = self._images.get(key)
        if msg is None:
            msg = self._images[key] = Image()
        return fill_image(msg, array_hw, encoding, header)

    def cloud(self, cloud, header):
        return fill_cloud(self._cloud, cloud, header)


def make_keyframe(fields):
    """An ``lsd_slam_msgs/Keyframe`` from keyframe fields in ROS 2 names (``id``, ``time``,
    ``is_keyframe``, ``cam_to_world``, ``fx`` ... ``width``, ``pointcloud`` as bytes or uint8):
    what a publisher of LSD-SLAM keyframes sends (tools, experiments, tests)."""
    from lsd_slam_msgs.msg import Keyframe
    msg = Keyframe(id=int(fields['id']), time=float(fields['time']), is_keyframe=bool(fields.get('is_keyframe', True)),
                   fx=float(fields['fx']), fy=float(fields['fy']), cx=float(fields['cx']), cy=float(fields['cy']),
                   height=int(fields['height']), width=int(fields['width']))
    msg.cam_to_world = np.asarray(fields['cam_to_world'], dtype=np.float32)
    raw = fields['pointcloud']       # bytes, a uint8 or record array, or a list of byte values
    if not isinstance(raw, (bytes, bytearray)):
        raw = np.ascontiguousarray(raw if isinstance(raw, np.ndarray) else np.asarray(raw, np.uint8)).tobytes()
    cloud = array.array('B')
    cloud.frombytes(raw)
    msg.pointcloud = cloud
    return msg
