"""LSD-SLAM keyframe messages: layout, decoding, Sim(3), the viewer-like filter, and keyframe bags
(ROS 1, as LSD-SLAM records them, and rosbag2) processed by ``depth_interp bag``.

The synthetic keyframes are built from the documented layout (12-byte records: float32 inverse
depth, float32 variance, 4 grey bytes; -1/-1 for no estimate), never from LSD-SLAM itself.
"""
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag1 import Writer as Writer1
from rosbags.rosbag2 import StoragePlugin, Writer

from ros2_depth_interp.core import lsd_slam, params
from ros2_depth_interp.tools.bag import BagJob, process_bag
from ros2_depth_interp.core.inference import DepthInterpolator
from ros2_depth_interp.core.lsd_slam import (KEYFRAME_MSGTYPE, Keyframe, KeyframeError, KeyframeFilter,
                                        Sim3, decode_keyframe, encode_keyframe, keyframe_fields,
                                        valid_mask)

H, W = 48, 64
FX, FY, CX, CY = 52.0, 51.0, 32.0, 24.0
TIME0 = 1500000000.25


def scene(i=0, variance=1e-5):
    """Inverse depth of a plane 2..2.8 (keyframe units) on two dense bands, plus pixels the
    viewer rules reject: two isolated ones (no near support) and a high-variance block.

    The variance is consistent with the plane's slope (neighbours differ by less than
    sqrt(2 var) in inverse depth), as the viewer's near-support test expects of a real map."""
    u = np.arange(W, dtype=np.float32)[None, :]
    v = np.arange(H, dtype=np.float32)[:, None]
    depth = (2.0 + 0.5 * u / W + 0.1 * v / H + 0.05 * i).astype(np.float32)
    idepth = np.full((H, W), -1.0, np.float32)
    var = np.full((H, W), variance, np.float32)
    bands = np.zeros((H, W), bool)
    bands[8:40, 5:21] = True
    bands[8:40, 35:59] = True
    idepth[bands] = 1.0 / depth[bands]
    for y, x in ((3, 30), (44, 30)):           # isolated: fail the near-support test
        idepth[y, x] = 1.0 / depth[y, x]
    idepth[20:28, 24:32] = 1.0 / depth[20:28, 24:32]
    var[20:28, 24:32] = 1.0                      # far too uncertain
    grey = ((u * 3 + v * 2) % 256).astype(np.uint8) + np.zeros((H, W), np.uint8)
    return idepth, var, grey, depth, bands


def rotation_z(angle):
    return np.array([0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2)])


# --- layout and decoding ---------------------------------------------------------------------------------
def test_encoded_pointcloud_follows_the_documented_layout():
    idepth, var, grey, _, _ = scene()
    fields = keyframe_fields(idepth, var, grey, FX, FY, CX, CY, id=7, time=TIME0)
    blob = fields['pointcloud'].tobytes()
    assert len(blob) == W * H * 12
    for v, u in [(0, 0), (10, 6), (30, 40), (3, 30), (H - 1, W - 1)]:
        q, q_var, c0, c1, c2, c3 = struct.unpack_from('<ffBBBB', blob, (v * W + u) * 12)
        if idepth[v, u] > 0:
            assert q == pytest.approx(idepth[v, u]) and q_var == pytest.approx(var[v, u])
        else:
            assert (q, q_var) == (-1.0, -1.0)
        assert c0 == c1 == c2 == c3 == grey[v, u]
    assert fields['width'] == W and fields['height'] == H and fields['isKeyframe'] is True


def test_decode_inverts_encode_through_both_serializations():
    idepth, var, grey, _, _ = scene()
    pose = Sim3.from_scale_rotation_translation(2.0, rotation_z(0.3), [1.0, -2.0, 0.5])
    for ros1 in (False, True):
        store = lsd_slam.keyframe_typestore(ros1=ros1)
        msg = encode_keyframe(idepth, var, grey, FX, FY, CX, CY, cam_to_world=pose, id=11,
                              time=TIME0, typestore=store)
        if ros1:
            back = store.deserialize_ros1(store.serialize_ros1(msg, KEYFRAME_MSGTYPE), KEYFRAME_MSGTYPE)
        else:
            back = store.deserialize_cdr(store.serialize_cdr(msg, KEYFRAME_MSGTYPE), KEYFRAME_MSGTYPE)
        kf = decode_keyframe(back)
        assert isinstance(kf, Keyframe)
        assert (kf.id, kf.width, kf.height, kf.is_keyframe) == (11, W, H, True)
        assert kf.time == TIME0 and kf.stamp == (1500000000, 250000000)
        assert (kf.fx, kf.fy, kf.cx, kf.cy) == (FX, FY, CX, CY)
        assert kf.intrinsics.fx == FX and kf.intrinsics.cy == CY
        np.testing.assert_array_equal(kf.inverse_depth, np.where(idepth > 0, idepth, -1))
        np.testing.assert_array_equal(kf.inverse_depth_variance, np.where(idepth > 0, var, -1))
        np.testing.assert_array_equal(kf.intensity, grey)
        assert kf.inverse_depth.flags.c_contiguous and kf.inverse_depth.dtype == np.float32
        assert kf.cam_to_world.scale == pytest.approx(2.0, rel=1e-6)
        np.testing.assert_allclose(kf.cam_to_world.translation, [1.0, -2.0, 0.5])


def test_decode_accepts_plain_fields_with_bytes():
    idepth, var, grey, _, _ = scene()
    fields = keyframe_fields(idepth, var, grey, FX, FY, CX, CY, id=3)
    fields['pointcloud'] = fields['pointcloud'].tobytes()
    kf = decode_keyframe(fields)
    np.testing.assert_array_equal(kf.intensity, grey)


def test_empty_and_wrongly_sized_pointclouds_are_keyframe_errors():
    idepth, var, grey, _, _ = scene()
    fields = keyframe_fields(idepth, var, grey, FX, FY, CX, CY, id=5)
    with pytest.raises(KeyframeError) as info:
        decode_keyframe(dict(fields, pointcloud=np.zeros(0, np.uint8)))
    assert info.value.reason_key == 'keyframe_empty'
    with pytest.raises(KeyframeError) as info:
        decode_keyframe(dict(fields, pointcloud=fields['pointcloud'][:-12]))
    assert info.value.reason_key == 'keyframe_bad_size'
    assert 'expected width 64 x height 48 x 12 bytes = 36864' in str(info.value)
    with pytest.raises(KeyframeError, match='camToWorld must hold 7'):
        decode_keyframe(dict(fields, camToWorld=np.zeros(6, np.float32)))
    kf = decode_keyframe(dict(fields, fx=0.0))
    assert kf.intrinsics is None


def test_type_registration_and_names():
    store = lsd_slam.keyframe_typestore()
    assert KEYFRAME_MSGTYPE in store.types
    lsd_slam.register_keyframe_type(store)          # a second time is a no-op
    fields = [name for name, _ in store.fielddefs[KEYFRAME_MSGTYPE][1]]
    assert fields == ['id', 'time', 'isKeyframe', 'camToWorld', 'fx', 'fy', 'cx', 'cy', 'height',
                      'width', 'pointcloud']
    text, _ = store.generate_msgdef(KEYFRAME_MSGTYPE, ros_version=2)
    assert 'float32[7] camToWorld' in text and 'uint8[] pointcloud' in text
    assert lsd_slam.is_keyframe_msgtype('lsd_slam_viewer/msg/keyframeMsg')
    assert lsd_slam.is_keyframe_msgtype('lsd_slam_viewer/keyframeMsg')
    assert not lsd_slam.is_keyframe_msgtype('lsd_slam_viewer/msg/keyframeGraphMsg')


# --- Sim(3) ---------------------------------------------------------------------------------------------------
def test_sim3_scale_is_the_quaternion_norm():
    pose = Sim3.from_array([0.0, 0.0, math.sin(math.pi / 4) * 3, math.cos(math.pi / 4) * 3, 1.0, 2.0, 3.0])
    assert pose.scale == pytest.approx(3.0)
    np.testing.assert_allclose(pose.rotation, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(pose.transform([1.0, 0.0, 0.0]), [1.0, 5.0, 3.0], atol=1e-12)
    points = np.random.default_rng(0).normal(size=(5, 3))
    homogeneous = np.c_[points, np.ones(5)] @ pose.matrix().T
    np.testing.assert_allclose(homogeneous[:, :3], pose.transform(points), atol=1e-12)
    np.testing.assert_allclose(Sim3.from_array(pose.to_array()).quaternion, pose.quaternion, rtol=1e-6)
    identity = Sim3()
    assert identity.scale == 1.0 and np.allclose(identity.transform([[1, 2, 3]]), [[1, 2, 3]])


# --- the viewer-like filter ---------------------------------------------------------------------------------
def make_keyframe(idepth, var, grey, scale=1.0):
    pose = Sim3.from_scale_rotation_translation(scale, [0, 0, 0, 1], [0, 0, 0])
    return decode_keyframe(keyframe_fields(idepth, var, grey, FX, FY, CX, CY, cam_to_world=pose))


def viewer_reference(kf, rules):
    """The viewer's rules pixel by pixel (a plain loop, independent of the vectorized code)."""
    q, var = kf.inverse_depth, kf.inverse_depth_variance
    height, width = q.shape
    out = np.zeros(q.shape, bool)
    scale = kf.cam_to_world.scale
    for y in range(1, height - 1):
        for x in range(1, width - 1):
            if not q[y, x] > 0:
                continue
            depth4 = (1.0 / q[y, x]) ** 4
            if var[y, x] * depth4 > rules.max_scaled_depth_variance:
                continue
            if var[y, x] * depth4 * scale * scale > rules.max_abs_depth_variance:
                continue
            if rules.min_near_support > 1:
                support = sum(1 for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                              if q[y + dy, x + dx] > 0
                              and (q[y + dy, x + dx] - q[y, x]) ** 2 < 2 * var[y, x])
                if support < rules.min_near_support:
                    continue
            out[y, x] = True
    return out


def test_filter_defaults_keep_the_dense_bands_only():
    idepth, var, grey, _, bands = scene()
    kf = make_keyframe(idepth, var, grey)
    mask = valid_mask(kf)
    assert mask[20, 10] and mask[30, 50]                         # inside the bands
    assert not mask[3, 30] and not mask[44, 30]                  # isolated pixels
    assert not mask[20:28, 24:32].any()                          # high variance
    assert not mask[~bands].any()
    assert mask.sum() > 0.8 * bands.sum()
    np.testing.assert_array_equal(mask, viewer_reference(kf, KeyframeFilter()))
    # near support off: the isolated pixels come back; border pixels never do
    loose = valid_mask(kf, KeyframeFilter(min_near_support=0))
    assert loose[3, 30] and loose[44, 30]
    assert not loose[0].any() and not loose[:, -1].any()


def test_filter_scale_and_thresholds():
    idepth, var, grey, depth, bands = scene()
    # var/q^4 = 1e-5 * depth^4 with depth 2..2.6: 1.6e-4 .. 4.6e-4, under the 1e-3 default
    assert valid_mask(make_keyframe(idepth, var, grey)).sum() > 0.8 * bands.sum()
    # a map scale of 40: the world-scale variance (x 1600) breaks the absolute threshold 0.1
    far = make_keyframe(idepth, var, grey, scale=40.0)
    assert not valid_mask(far).any()
    assert valid_mask(far, KeyframeFilter(max_abs_depth_variance=math.inf)).sum() > 0.8 * bands.sum()
    # a tighter scaled threshold keeps only the nearer part of the plane (smaller depth^4)
    tight = valid_mask(make_keyframe(idepth, var, grey), KeyframeFilter(max_scaled_depth_variance=3e-4))
    limit = (3e-4 / 1e-5) ** 0.25
    assert tight.sum() > 100 and (depth[tight] <= limit * 1.0001).all()
    assert (bands & (depth > limit * 1.01))[1:-1, 1:-1].any()
    # the plain cap on the inverse-depth variance
    assert not valid_mask(make_keyframe(idepth, var, grey),
                          KeyframeFilter(max_inverse_depth_variance=1e-6)).any()


def test_filter_matches_the_viewer_rules_on_random_keyframes():
    rng = np.random.default_rng(4)
    for trial in range(4):
        q = rng.uniform(0.2, 1.0, (12, 16)).astype(np.float32)
        q[rng.random(q.shape) < 0.3] = -1
        var = (10.0 ** rng.uniform(-6, -1, q.shape)).astype(np.float32)
        kf = make_keyframe(q, var, np.zeros(q.shape, np.uint8), scale=float(rng.uniform(0.5, 3)))
        for rules in (KeyframeFilter(), KeyframeFilter(min_near_support=3, max_scaled_depth_variance=1e-2)):
            np.testing.assert_array_equal(valid_mask(kf, rules), viewer_reference(kf, rules))


def test_filter_validation():
    with pytest.raises(ValueError, match='min_near_support'):
        KeyframeFilter(min_near_support=10).validate()
    with pytest.raises(ValueError, match='max_scaled_depth_variance'):
        KeyframeFilter(max_scaled_depth_variance=0).validate()
    KeyframeFilter(max_abs_depth_variance=math.inf).validate()


# --- keyframe bags processed by the bag tool ---------------------------------------------------------------
KF_TOPIC = '/lsd_slam/keyframes'
SCALE = 2.0


def write_keyframe_bag(path, ros1):
    """Three good keyframes, a pose-only update (empty pointcloud) and one whose every pixel is
    too uncertain, on /lsd_slam/keyframes; log time = keyframe time + 20 ms."""
    store = lsd_slam.keyframe_typestore(ros1=ros1)
    writer = Writer1(Path(path)) if ros1 else Writer(Path(path), version=9,
                                                     storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conn = writer.add_connection(KF_TOPIC, KEYFRAME_MSGTYPE, typestore=store)
    pose = Sim3.from_scale_rotation_translation(SCALE, rotation_z(0.2), [0.1, 0.2, 0.3])
    for i in range(5):
        idepth, var, grey, _, _ = scene(i)
        if i == 4:
            var[:] = 1.0
        msg = encode_keyframe(idepth, var, grey, FX, FY, CX, CY, cam_to_world=pose, id=i,
                              time=TIME0 + 0.5 * i, typestore=store)
        if i == 3:
            msg.pointcloud = np.zeros(0, np.uint8)
        data = store.serialize_ros1(msg, KEYFRAME_MSGTYPE) if ros1 else store.serialize_cdr(msg, KEYFRAME_MSGTYPE)
        writer.write(conn, int(round((TIME0 + 0.5 * i) * 1e9)) + 20_000_000, data)
    writer.close()
    return str(path)


@pytest.fixture(scope='module')
def interpolator(tiny_model_path):
    return DepthInterpolator(tiny_model_path, providers=['CPUExecutionProvider'], threads=1, warmup=False)


@pytest.mark.parametrize('ros1', [True, False], ids=['ros1', 'rosbag2'])
def test_keyframe_bag_gives_world_scale_depth_and_cloud_with_its_intrinsics(tmp_path, interpolator, ros1):
    src = write_keyframe_bag(tmp_path / ('kf.bag' if ros1 else 'kf'), ros1)
    dst = tmp_path / 'out'
    job = BagJob(str(src), str(dst), keyframe_topic=KF_TOPIC, values=params.defaults())
    summary = process_bag(job, interpolator=interpolator)

    stats = summary.keyframes
    assert summary.complete
    assert stats.inputs == 5 and stats.sets == 4 and stats.written == 3 and stats.clouds == 3
    assert dict(stats.dropped) == {'keyframe_empty': 1, 'mask_empty': 1}
    assert summary.frames.inputs == 0

    out = {}
    with AnyReader([dst]) as reader:
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
    assert sorted(out) == sorted([KF_TOPIC, '/lsd_slam/dense_confidence', '/lsd_slam/dense_depth',
                                  '/lsd_slam/points'])
    assert len(out[KF_TOPIC]) == 5   # copied, pose-only update included
    kept = [0, 1, 2]
    for topic in ('/lsd_slam/dense_depth', '/lsd_slam/dense_confidence', '/lsd_slam/points'):
        msgs = out[topic]
        assert len(msgs) == 3
        for (t, msg), i in zip(msgs, kept):
            sec, nanosec = lsd_slam.seconds_to_stamp(TIME0 + 0.5 * i)
            assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (sec, nanosec)
            assert msg.header.frame_id == 'lsd_slam_camera'
            assert t == int(round((TIME0 + 0.5 * i) * 1e9)) + 20_000_000

    for (_, depth_msg), (_, cloud_msg), i in zip(out['/lsd_slam/dense_depth'], out['/lsd_slam/points'], kept):
        idepth, var, grey, depth, _ = scene(i)
        dense = np.frombuffer(bytes(depth_msg.data), '<f4').reshape(H, W)
        kf = make_keyframe(idepth, var, grey, scale=SCALE)
        measured = valid_mask(kf)
        assert measured.sum() > 500
        # depth = Sim(3) scale / inverse depth: world scale, as the live node publishes it
        np.testing.assert_allclose(dense[measured], SCALE * depth[measured], rtol=0.05)
        cloud = np.frombuffer(bytes(cloud_msg.data), '<f4').reshape(H, W, 4)
        assert (cloud_msg.height, cloud_msg.width, cloud_msg.is_dense) == (H, W, False)
        np.testing.assert_allclose(cloud[:, :, 2], dense, rtol=1e-6)
        for v, u in [(0, 0), (20, 10), (H - 1, W - 1)]:
            np.testing.assert_allclose(cloud[v, u, 0], (u - CX) / FX * dense[v, u], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(cloud[v, u, 1], (v - CY) / FY * dense[v, u], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(cloud[:, :, 3], grey.astype(np.float32))


def test_frames_and_keyframes_in_one_pass(tmp_path, interpolator):
    """A bag with both an image stream and keyframes: each gets its outputs in its own namespace."""
    store = lsd_slam.keyframe_typestore()
    types = store.types
    src = tmp_path / 'both'
    writer = Writer(src, version=9, storage_plugin=StoragePlugin.SQLITE3)
    writer.open()
    kf_conn = writer.add_connection(KF_TOPIC, KEYFRAME_MSGTYPE, typestore=store)
    image_conns = [writer.add_connection(t, 'sensor_msgs/msg/Image', typestore=store)
                   for t in ('/cam/semi_dense_depth', '/cam/image')]
    for i in range(2):
        idepth, var, grey, depth, bands = scene(i)
        msg = encode_keyframe(idepth, var, grey, FX, FY, CX, CY, id=i, time=TIME0 + i, typestore=store)
        log = int((TIME0 + i) * 1e9)
        writer.write(kf_conn, log, store.serialize_cdr(msg, KEYFRAME_MSGTYPE))
        header = types['std_msgs/msg/Header'](
            stamp=types['builtin_interfaces/msg/Time'](sec=int(TIME0) + i, nanosec=0), frame_id='cam')
        sparse = np.where(bands, depth, 0).astype(np.float32)
        for conn, array, encoding in ((image_conns[0], sparse, '32FC1'), (image_conns[1], grey, 'mono8')):
            image = types['sensor_msgs/msg/Image'](
                header=header, height=H, width=W, encoding=encoding, is_bigendian=0,
                step=W * array.itemsize, data=array.reshape(-1).view(np.uint8))
            writer.write(conn, log + 1, store.serialize_cdr(image, 'sensor_msgs/msg/Image'))
    writer.close()

    values = params.defaults()
    values.update(use_mask=False, fx=FX, fy=FY, cx=CX, cy=CY)
    job = BagJob(str(src), str(tmp_path / 'out'), depth_topic='/cam/semi_dense_depth',
                 image_topic='/cam/image', keyframe_topic=KF_TOPIC, values=values, copy_inputs=False)
    summary = process_bag(job, interpolator=interpolator)
    assert summary.frames.written == 2 and summary.keyframes.written == 2
    with AnyReader([tmp_path / 'out']) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts == {name: 2 for name in (
        '/cam/dense_depth', '/cam/dense_confidence', '/cam/points',
        '/lsd_slam/dense_depth', '/lsd_slam/dense_confidence', '/lsd_slam/points')}
