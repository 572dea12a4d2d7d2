"""numpy arrays -> rclpy message objects (Image, PointCloud2), and back for tests and tools.

rclpy's generated setter for ``uint8[] data`` walks a Python list element by element unless it is
handed an ``array.array('B')``; for a 640x480 float image that is the difference between
microseconds and a second. Everything here therefore moves pixels as one buffer copy.

``MessageCache`` keeps one message object per output and reuses its ``array.array`` when the size
does not change, so a steady stream allocates nothing per frame. Reuse is safe because
``Publisher.publish`` serializes the message before it returns.
"""
import array
import sys

import numpy as np
from sensor_msgs.msg import Image, PointCloud2, PointField

from . import encodings
from .geometry import POINT_FIELDS, POINT_STEP

_LITTLE_ENDIAN_HOST = sys.byteorder == 'little'


def _copy_into(target, buffer_bytes):
    """Put ``buffer_bytes`` (bytes-like, C-contiguous) into ``target`` (array('B') or None).

    Returns the array to assign: the reused one when its length matches (one memcpy, no
    allocation), else a new one.
    """
    view = memoryview(buffer_bytes).cast('B')
    if target is not None and len(target) == view.nbytes:
        np.frombuffer(target, dtype=np.uint8)[:] = np.frombuffer(view, dtype=np.uint8)
        return target
    out = array.array('B')
    out.frombytes(view)
    return out


def _array_bytes(array_like):
    arr = np.ascontiguousarray(array_like)
    return arr.reshape(-1).view(np.uint8)


def fill_image(msg, array_hw, encoding, header):
    """Set ``msg`` (sensor_msgs/Image) from a numpy image; returns ``msg``.

    Geometry fields come from ``encodings.array_to_image_fields`` (one definition of step and
    endianness for the whole project); the header object is assigned, not copied.
    """
    fields = encodings.array_to_image_fields(array_hw, encoding)
    msg.header = header
    msg.height = int(fields['height'])
    msg.width = int(fields['width'])
    msg.encoding = fields['encoding']
    msg.is_bigendian = int(bool(fields['is_bigendian']))
    msg.step = int(fields['step'])
    msg.data = _copy_into(msg.data if len(msg.data) else None, fields['data'])
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
    if cloud.ndim != 3 or cloud.shape[2] * 4 != POINT_STEP or cloud.dtype != np.float32:
        raise ValueError('cloud must be float32 (rows, cols, %d), got %s %s'
                         % (POINT_STEP // 4, cloud.dtype, cloud.shape))
    rows, cols = cloud.shape[:2]
    msg.header = header
    msg.height = int(rows)
    msg.width = int(cols)
    if len(msg.fields) != len(POINT_FIELDS):
        msg.fields = cloud_fields()
    if cloud.dtype.byteorder == '>' or (cloud.dtype.byteorder == '=' and not _LITTLE_ENDIAN_HOST):
        msg.is_bigendian = True
    else:
        msg.is_bigendian = False
    msg.point_step = POINT_STEP
    msg.row_step = POINT_STEP * int(cols)
    msg.is_dense = False
    msg.data = _copy_into(msg.data if len(msg.data) else None, _array_bytes(cloud))
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
