"""Image field <-> numpy conversion: round trips, row padding, byte order, validation, rclpy."""
import array
import sys

import numpy as np
import pytest

from ros2_depth_interp.core.encodings import (
    EncodingError, array_to_image_fields, depth_to_metres, image_to_array, intensity_to_mono8,
    mask_to_bool, msg_to_array, pixel_format)

ROUND_TRIP = [
    ('32FC1', np.float32, 1), ('64FC1', np.float64, 1), ('16UC1', np.uint16, 1),
    ('16SC1', np.int16, 1), ('8UC1', np.uint8, 1), ('mono8', np.uint8, 1),
    ('mono16', np.uint16, 1), ('rgb8', np.uint8, 3), ('bgr8', np.uint8, 3),
    ('rgba8', np.uint8, 4), ('bgra8', np.uint8, 4), ('8UC3', np.uint8, 3), ('8UC4', np.uint8, 4),
    ('32SC1', np.int32, 1), ('16UC3', np.uint16, 3), ('rgb16', np.uint16, 3),
]


def _random_image(dtype, channels, height=5, width=7, seed=0):
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    if np.dtype(dtype).kind == 'f':
        return (rng.standard_normal(shape) * 100).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def _pad_rows(arr, step):
    """Raw little-endian bytes of ``arr`` with each row padded to ``step`` bytes with 0xAB."""
    rows = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder('<'))
    rows = rows.reshape(arr.shape[0], -1).view(np.uint8)
    padded = np.full((arr.shape[0], step), 0xAB, dtype=np.uint8)
    padded[:, :rows.shape[1]] = rows
    return padded.tobytes()


@pytest.mark.parametrize('encoding,dtype,channels', ROUND_TRIP)
def test_round_trip_every_encoding(encoding, dtype, channels):
    original = _random_image(dtype, channels)
    fields = array_to_image_fields(original, encoding)
    fmt = pixel_format(encoding)
    assert fields['height'] == 5 and fields['width'] == 7 and fields['encoding'] == encoding
    assert fields['is_bigendian'] == 0
    assert fields['step'] == 7 * fmt.pixel_bytes
    assert len(bytes(fields['data'])) == fields['step'] * 5
    decoded = image_to_array(**fields)
    assert decoded.dtype == np.dtype(dtype)
    assert decoded.shape == original.shape
    np.testing.assert_array_equal(decoded, original)


@pytest.mark.parametrize('kind', ['bytes', 'bytearray', 'memoryview', 'array', 'numpy'])
def test_accepts_every_buffer_type(kind):
    original = _random_image(np.float32, 1, 4, 6, seed=1)
    raw = original.astype('<f4').tobytes()
    data = {'bytes': raw, 'bytearray': bytearray(raw), 'memoryview': memoryview(raw),
            'array': array.array('B', raw), 'numpy': np.frombuffer(raw, np.uint8).copy()}[kind]
    decoded = image_to_array('32FC1', 4, 6, 24, 0, data)
    np.testing.assert_array_equal(decoded, original)


@pytest.mark.skipif(sys.byteorder != 'little', reason='zero-copy check assumes a little-endian host')
def test_native_order_decode_is_zero_copy():
    original = _random_image(np.uint16, 3, 4, 5, seed=2)
    buffer = np.frombuffer(_pad_rows(original, 5 * 6 + 4), np.uint8).copy()
    decoded = image_to_array('16UC3', 4, 5, 34, 0, buffer)
    assert np.shares_memory(decoded, buffer)
    np.testing.assert_array_equal(decoded, original)


@pytest.mark.parametrize('encoding,dtype,channels,extra', [
    ('32FC1', np.float32, 1, 8), ('16UC1', np.uint16, 1, 3), ('rgb8', np.uint8, 3, 5),
    ('bgra8', np.uint8, 4, 1), ('64FC1', np.float64, 1, 4), ('mono16', np.uint16, 1, 1)])
def test_padded_step(encoding, dtype, channels, extra):
    # extra bytes per row, including amounts that break the channel alignment
    original = _random_image(dtype, channels, 6, 9, seed=3)
    step = 9 * pixel_format(encoding).pixel_bytes + extra
    decoded = image_to_array(encoding, 6, 9, step, 0, _pad_rows(original, step))
    np.testing.assert_array_equal(decoded, original)


def test_longer_buffer_than_needed_is_fine():
    original = _random_image(np.uint8, 1, 3, 4)
    decoded = image_to_array('mono8', 3, 4, 4, 0, original.tobytes() + b'\x00' * 10)
    np.testing.assert_array_equal(decoded, original)


@pytest.mark.parametrize('encoding,values', [
    ('mono16', np.array([[0, 1, 256], [4660, 65535, 43981]], np.uint16)),
    ('16UC1', np.array([[1000, 2, 65534], [258, 0, 771]], np.uint16)),
    ('32FC1', np.array([[1.5, -2.25, np.inf], [3.0e-3, 0.0, 12345.678]], np.float32)),
    ('64FC1', np.array([[1.5, -2.25, 1e300], [3.0e-3, 0.0, 12345.678]], np.float64)),
])
def test_big_endian_data_decodes_to_native_values(encoding, values):
    big = values.astype(values.dtype.newbyteorder('>')).tobytes()
    assert big != values.astype(values.dtype.newbyteorder('<')).tobytes()
    step = values.shape[1] * values.dtype.itemsize
    decoded = image_to_array(encoding, 2, 3, step, 1, big)
    assert decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, values)


def test_big_endian_with_padding():
    values = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1001
    rows = values.astype('>u2').view(np.uint8).reshape(3, 8)
    padded = np.zeros((3, 11), np.uint8)
    padded[:, :8] = rows
    decoded = image_to_array('16UC1', 3, 4, 11, 1, padded.tobytes())
    np.testing.assert_array_equal(decoded, values)


def test_big_endian_machine_independent_for_bytes():
    # 8-bit data has no byte order: is_bigendian must not change it
    values = _random_image(np.uint8, 3, 2, 2)
    np.testing.assert_array_equal(image_to_array('rgb8', 2, 2, 6, 1, values.tobytes()), values)


@pytest.mark.parametrize('encoding', ['', 'rgb', '32FC', '32UC1', '8FC1', 'MONO8', 'foo', '16FC1'])
def test_unknown_encoding_raises(encoding):
    with pytest.raises(EncodingError, match='unknown image encoding'):
        image_to_array(encoding, 2, 2, 8, 0, bytes(64))


def test_truncated_data_raises():
    with pytest.raises(EncodingError, match='expected at least'):
        image_to_array('32FC1', 4, 4, 16, 0, bytes(16 * 4 - 1))


def test_step_too_small_raises():
    with pytest.raises(EncodingError, match='step'):
        image_to_array('32FC1', 4, 4, 15, 0, bytes(64))


@pytest.mark.parametrize('height,width', [(0, 4), (4, 0), (0, 0), (-1, 4)])
def test_zero_size_raises(height, width):
    with pytest.raises(EncodingError, match='empty'):
        image_to_array('mono8', height, width, 4, 0, bytes(16))


def test_non_buffer_data_raises():
    with pytest.raises(EncodingError):
        image_to_array('mono8', 1, 1, 1, 0, object())


def test_error_is_a_value_error():
    assert issubclass(EncodingError, ValueError)


def test_array_to_image_fields_rejects_mismatches():
    with pytest.raises(EncodingError, match='channel'):
        array_to_image_fields(np.zeros((2, 2, 3), np.uint8), 'mono8')
    with pytest.raises(EncodingError, match='dtype'):
        array_to_image_fields(np.zeros((2, 2), np.float64), '32FC1')
    with pytest.raises(EncodingError, match='empty'):
        array_to_image_fields(np.zeros((0, 2), np.float32), '32FC1')
    with pytest.raises(EncodingError, match='unknown'):
        array_to_image_fields(np.zeros((2, 2), np.float32), 'float')
    with pytest.raises(EncodingError, match='shape'):
        array_to_image_fields(np.zeros(4, np.float32), '32FC1')


def test_array_to_image_fields_handles_views_and_big_endian_arrays():
    base = _random_image(np.float32, 1, 6, 8, seed=4)
    view = base[::2, 1::3]                      # non-contiguous
    np.testing.assert_array_equal(image_to_array(**array_to_image_fields(view, '32FC1')), view)
    big = base.astype('>f4')                    # values equal, stored big-endian
    fields = array_to_image_fields(big, '32FC1')
    assert bytes(fields['data']) == base.astype('<f4').tobytes()


def test_msg_to_array_uses_attributes():
    class FakeImage:  # any object with the Image attributes, e.g. a rosbags message
        encoding, height, width, step, is_bigendian = 'mono16', 2, 2, 4, 0
        data = np.array([1, 0, 2, 0, 3, 0, 4, 1], np.uint8)
    np.testing.assert_array_equal(msg_to_array(FakeImage), [[1, 2], [3, 260]])


def test_round_trip_through_rclpy_image_message():
    from sensor_msgs.msg import Image
    from rclpy.serialization import deserialize_message, serialize_message
    # rclpy stores uint8[] as array.array('B'). Its setter keeps an array.array('B') as is; bytes
    # are copied (and checked per element with ROS_PYTHON_CHECK_FIELDS=1), a memoryview is
    # iterated per element. array_to_image_fields therefore hands out an array.array('B').
    depth = _random_image(np.float32, 1, 48, 64, seed=5)
    fields = array_to_image_fields(depth, '32FC1')
    assert isinstance(fields['data'], array.array) and fields['data'].typecode == 'B'
    msg = Image(**fields)
    assert isinstance(msg.data, array.array)
    checked = Image(check_fields=True)
    checked.data = fields['data']
    assert checked.data is fields['data']        # accepted without conversion
    np.testing.assert_array_equal(msg_to_array(msg), depth)
    received = deserialize_message(serialize_message(msg), Image)
    np.testing.assert_array_equal(msg_to_array(received), depth)


def test_depth_to_metres():
    f32 = np.array([[1.5, 0.0, -1.0], [np.nan, np.inf, 2.0]], np.float32)
    np.testing.assert_array_equal(depth_to_metres(f32, '32FC1'), [[1.5, 0, 0], [0, 0, 2.0]])
    f64 = np.array([[1.5, 1e300, -np.inf]], np.float64)
    out = depth_to_metres(f64, '64FC1')
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1.5, 0, 0]])
    mm = np.array([[1000, 0, 65535]], np.uint16)
    np.testing.assert_allclose(depth_to_metres(mm, '16UC1'), [[1.0, 0, 65.535]], rtol=1e-6)
    np.testing.assert_allclose(depth_to_metres(mm, '16UC1', depth_scale=0.0002), [[0.2, 0, 13.107]],
                               rtol=1e-6)
    assert depth_to_metres(f32, '32FC1') is not f32
    for bad in ('mono16', 'mono8', 'rgb8'):
        with pytest.raises(EncodingError):
            depth_to_metres(mm, bad)
    with pytest.raises(ValueError):
        depth_to_metres(mm, '16UC1', depth_scale=0)


def test_depth_to_metres_does_not_modify_input_view():
    raw = np.array([[np.nan, 1.0]], np.float32)
    view = image_to_array(**array_to_image_fields(raw, '32FC1'))
    depth_to_metres(view, '32FC1')
    assert np.isnan(view[0, 0])


def test_intensity_to_mono8():
    import cv2
    mono = _random_image(np.uint8, 1, 3, 4)
    np.testing.assert_array_equal(intensity_to_mono8(mono, 'mono8'), mono)
    np.testing.assert_array_equal(intensity_to_mono8(mono, '8UC1'), mono)
    np.testing.assert_array_equal(
        intensity_to_mono8(np.array([[0, 255, 256, 65535]], np.uint16), 'mono16'), [[0, 0, 1, 255]])
    rgb = _random_image(np.uint8, 3, 3, 4, seed=6)
    expected = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(intensity_to_mono8(rgb, 'rgb8'), expected)
    np.testing.assert_array_equal(intensity_to_mono8(rgb[..., ::-1], 'bgr8'), expected)
    np.testing.assert_array_equal(intensity_to_mono8(rgb[..., ::-1], '8UC3'), expected)
    alpha = np.full(rgb.shape[:2] + (1,), 7, np.uint8)
    np.testing.assert_array_equal(intensity_to_mono8(np.concatenate([rgb, alpha], 2), 'rgba8'),
                                  expected)
    np.testing.assert_array_equal(
        intensity_to_mono8(np.concatenate([rgb[..., ::-1], alpha], 2), 'bgra8'), expected)
    # pure red and pure blue differ in luma, so channel order must matter
    red = np.zeros((1, 1, 3), np.uint8)
    red[..., 0] = 255
    assert intensity_to_mono8(red, 'rgb8')[0, 0] == 76 and intensity_to_mono8(red, 'bgr8')[0, 0] == 29
    with pytest.raises(EncodingError):
        intensity_to_mono8(mono, '32FC1')
    with pytest.raises(EncodingError):
        intensity_to_mono8(rgb, 'mono8')


def test_mask_to_bool():
    mask = np.array([[0, 1, 255], [0, 0, 9]], np.uint8)
    expected = [[False, True, True], [False, False, True]]
    np.testing.assert_array_equal(mask_to_bool(mask, 'mono8'), expected)
    assert mask_to_bool(mask, '8UC1').dtype == bool
    with pytest.raises(EncodingError):
        mask_to_bool(mask.astype(np.float32), '32FC1')
