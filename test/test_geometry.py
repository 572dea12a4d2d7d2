"""Intrinsics, back-projection against analytic planes, invalid points, ray cache, PLY files."""
import math

import numpy as np
import pytest

from ros2_depth_interp.core.geometry import (
    FLOAT32, POINT_FIELDS, POINT_STEP, CameraIntrinsics, CloudBuilder, cloud_to_ply, read_ply)

K = CameraIntrinsics(fx=500.0, fy=480.0, cx=319.5, cy=239.5)


def test_intrinsics_from_k_and_matrix():
    k = [525.0, 0.0, 319.5, 0.0, 523.0, 241.25, 0.0, 0.0, 1.0]
    intr = CameraIntrinsics.from_k(k)
    assert intr == CameraIntrinsics(525.0, 523.0, 319.5, 241.25)
    np.testing.assert_array_equal(intr.as_matrix().reshape(-1), k)
    assert CameraIntrinsics.from_k(np.array(k).reshape(3, 3)) == intr
    with pytest.raises(ValueError, match='9 elements'):
        CameraIntrinsics.from_k(k[:8])
    with pytest.raises(dataclass_frozen_error()):
        intr.fx = 1.0


def dataclass_frozen_error():
    import dataclasses
    return dataclasses.FrozenInstanceError


@pytest.mark.parametrize('bad', [dict(fx=0.0), dict(fy=-1.0), dict(fx=math.nan), dict(fy=math.inf),
                                 dict(cx=math.nan), dict(cy=math.inf), dict(fx='500')])
def test_invalid_intrinsics_raise(bad):
    values = dict(fx=500.0, fy=500.0, cx=320.0, cy=240.0)
    values.update(bad)
    with pytest.raises(ValueError):
        CameraIntrinsics(**values).validate()


def test_all_zero_k_from_uncalibrated_camera_info_is_rejected():
    with pytest.raises(ValueError, match='fx'):
        CameraIntrinsics.from_k([0.0] * 9)


def test_scaled_keeps_pixel_centres_aligned():
    # Halving a 640x480 image whose principal point is the exact centre keeps it the exact centre.
    half = K.scaled(0.5, 0.5)
    assert half.fx == 250.0 and half.fy == 240.0
    assert half.cx == pytest.approx(159.5) and half.cy == pytest.approx(119.5)
    # A 3D point projects to the same continuous position (scaled) in both images.
    point = np.array([0.3, -0.2, 2.0])
    u, v = K.fx * point[0] / point[2] + K.cx, K.fy * point[1] / point[2] + K.cy
    u2, v2 = half.fx * point[0] / point[2] + half.cx, half.fy * point[1] / point[2] + half.cy
    assert (u2 + 0.5) == pytest.approx((u + 0.5) * 0.5) and (v2 + 0.5) == pytest.approx((v + 0.5) * 0.5)
    with pytest.raises(ValueError):
        K.scaled(0, 1)


def expected_point(intr, u, v, z):
    return (u - intr.cx) / intr.fx * z, (v - intr.cy) / intr.fy * z


@pytest.mark.parametrize('height,width,stride', [(48, 64, 1), (48, 64, 2), (47, 65, 2), (31, 50, 3),
                                                  (5, 7, 3), (30, 40, 4)])
def test_fronto_parallel_plane(height, width, stride):
    intr = CameraIntrinsics(fx=55.0, fy=52.0, cx=width / 2 - 0.3, cy=height / 2 + 0.7)
    depth = np.full((height, width), 2.5, np.float32)
    intensity = (np.arange(height * width) % 251).astype(np.uint8).reshape(height, width)
    cloud = CloudBuilder().build(depth, intensity, intr, stride=stride)
    rows, cols = math.ceil(height / stride), math.ceil(width / stride)
    assert cloud.shape == (rows, cols, 4) and cloud.dtype == np.float32
    assert cloud.flags.c_contiguous and cloud.strides[1] == POINT_STEP
    np.testing.assert_array_equal(cloud[:, :, 2], 2.5)
    # chosen pixels, including the last sampled row/column of odd sizes
    for r, c in [(0, 0), (rows - 1, cols - 1), (rows // 2, 1), (1, cols - 1)]:
        u, v = c * stride, r * stride
        x, y = expected_point(intr, u, v, 2.5)
        assert cloud[r, c, 0] == pytest.approx(x, rel=1e-6, abs=1e-6)
        assert cloud[r, c, 1] == pytest.approx(y, rel=1e-6, abs=1e-6)
        assert cloud[r, c, 3] == intensity[v, u]


def test_tilted_plane():
    # Plane z = z0 + a * x (tilted about the y axis): the depth along the ray through (u, v) is
    # z = z0 / (1 - a * (u - cx) / fx). Back-projected points must lie on the plane.
    height, width = 40, 60
    intr = CameraIntrinsics(fx=50.0, fy=50.0, cx=29.5, cy=19.5)
    z0, a = 3.0, 0.4
    u = np.arange(width)[None, :]
    depth = np.broadcast_to(z0 / (1 - a * (u - intr.cx) / intr.fx), (height, width)).astype(np.float32)
    cloud = CloudBuilder().build(depth, None, intr)
    x, z = cloud[:, :, 0], cloud[:, :, 2]
    np.testing.assert_allclose(z, z0 + a * x, rtol=1e-5)
    np.testing.assert_array_equal(cloud[:, :, 3], 0.0)
    assert z[0, -1] > z[0, 0]   # tilted away on the right
    # y is proportional to the row offset times depth
    np.testing.assert_allclose(cloud[:, 7, 1], (np.arange(height) - intr.cy) / intr.fy * z[:, 7],
                               rtol=1e-5, atol=1e-6)


def test_invalid_points_are_nan():
    depth = np.array([[1.0, 0.0, np.nan, -2.0, np.inf],
                      [0.5, 1.0, 9.0, 10.0, 4.0]], np.float32)
    confidence = np.array([[1.0, 1.0, 1.0, 1.0, 1.0],
                           [1.0, 0.2, 1.0, 1.0, np.nan]], np.float32)
    intensity = np.full(depth.shape, 7, np.uint8)
    cloud = CloudBuilder().build(depth, intensity, K, min_depth=0.6, max_depth=9.0,
                                 confidence=confidence, min_confidence=0.5)
    expected_valid = np.array([[True, False, False, False, False],
                               [False, False, True, False, False]])
    valid = np.isfinite(cloud[:, :, :3]).all(axis=2)
    np.testing.assert_array_equal(valid, expected_valid)
    assert np.isnan(cloud[~expected_valid][:, :3]).all()
    np.testing.assert_array_equal(cloud[:, :, 3], 7.0)   # intensity kept for every point
    # without range/confidence limits only depth <= 0 and non-finite are invalid
    cloud = CloudBuilder().build(depth, intensity, K)
    np.testing.assert_array_equal(np.isfinite(cloud[:, :, 2]),
                                  [[True, False, False, False, False], [True] * 5])


def test_ray_cache_reused_and_rebuilt():
    builder = CloudBuilder()
    depth = np.ones((20, 30), np.float32)
    first = builder.build(depth, None, K)
    builder.build(depth * 2, None, K)
    assert builder.ray_builds == 1
    second = builder.build(depth * 3, None, K)
    assert second is first                      # output buffer reused
    np.testing.assert_array_equal(second[:, :, 2], 3.0)
    builder.build(depth, None, CameraIntrinsics(500.0, 480.0, 319.5, 239.5))  # equal K: cached
    assert builder.ray_builds == 1
    other_k = CameraIntrinsics(400.0, 480.0, 319.5, 239.5)
    cloud = builder.build(depth, None, other_k)
    assert builder.ray_builds == 2
    assert cloud[0, 0, 0] == pytest.approx((0 - 319.5) / 400.0)
    cloud = builder.build(np.ones((21, 30), np.float32), None, other_k)
    assert builder.ray_builds == 3 and cloud.shape == (21, 30, 4)
    cloud = builder.build(np.ones((21, 30), np.float32), None, other_k, stride=2)
    assert builder.ray_builds == 4 and cloud.shape == (11, 15, 4)


def test_build_accepts_other_dtypes_and_rejects_bad_shapes():
    builder = CloudBuilder()
    depth64 = np.full((4, 4), 1.25, np.float64)
    cloud = builder.build(depth64, np.full((4, 4), 0.5, np.float32), K)
    np.testing.assert_array_equal(cloud[:, :, 2], 1.25)
    np.testing.assert_array_equal(cloud[:, :, 3], 0.5)
    with pytest.raises(ValueError):
        builder.build(np.ones((4, 4, 1)), None, K)
    with pytest.raises(ValueError):
        builder.build(np.ones((4, 4)), np.ones((4, 5)), K)
    with pytest.raises(ValueError):
        builder.build(np.ones((4, 4)), None, K, confidence=np.ones((3, 4)))
    with pytest.raises(ValueError):
        builder.build(np.ones((4, 4)), None, K, stride=0)
    with pytest.raises(ValueError):
        builder.build(np.ones((4, 4)), None, CameraIntrinsics(0.0, 1.0, 0.0, 0.0))


def test_point_layout_constants_match_the_buffer():
    assert FLOAT32 == 7 and POINT_STEP == 16
    cloud = CloudBuilder().build(np.full((2, 3), 2.0, np.float32), np.full((2, 3), 9, np.uint8), K)
    record = cloud[1, 2].tobytes()
    assert len(record) == POINT_STEP
    for (name, offset), value in zip(POINT_FIELDS, cloud[1, 2]):
        assert np.frombuffer(record, np.float32, count=1, offset=offset)[0] == value
    assert [name for name, _ in POINT_FIELDS] == ['x', 'y', 'z', 'intensity']


def test_ply_written_and_readable(tmp_path):
    depth = np.array([[1.0, 0.0, 2.0], [np.nan, 3.0, 4.0]], np.float32)
    intensity = np.array([[10, 20, 30], [40, 50, 60]], np.uint8)
    cloud = CloudBuilder().build(depth, intensity, K)
    path = tmp_path / 'cloud.ply'
    assert cloud_to_ply(path, cloud) == 4
    blob = path.read_bytes()
    header, _, body = blob.partition(b'end_header\n')
    lines = header.decode('ascii').splitlines()
    assert lines[0] == 'ply' and 'format binary_little_endian 1.0' in lines
    assert 'element vertex 4' in lines
    assert [line for line in lines if line.startswith('property')] == [
        'property float x', 'property float y', 'property float z', 'property float intensity']
    assert len(body) == 4 * 16
    points = read_ply(path)
    valid = np.isfinite(cloud[:, :, 2])
    np.testing.assert_array_equal(points, cloud[valid])
    np.testing.assert_array_equal(points[:, 3], [10, 30, 50, 60])


def test_ply_of_empty_cloud(tmp_path):
    cloud = CloudBuilder().build(np.zeros((3, 3), np.float32), None, K)
    assert cloud_to_ply(tmp_path / 'empty.ply', cloud) == 0
    assert read_ply(tmp_path / 'empty.ply').shape == (0, 4)
