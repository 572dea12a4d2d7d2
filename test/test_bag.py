"""``depth_interp bag`` on bags the tests write with rosbags: rosbag2 sqlite3, rosbag2 mcap, ROS 1.

Each input bag holds a few 48x64 frames of a tilted plane (semi-dense 32FC1 depth, mono8 image,
mono8 mask), a camera_info recorded after the first frame, an unrelated String topic, one depth
message with no partner within the slop and one frame whose mask is empty. The outputs are read
back with rosbags and checked for values (measured pixels, cloud geometry), headers, log times,
counts and the copied inputs. A real ONNX Runtime session runs the tiny test model.
"""
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.highlevel import AnyReader
from rosbags.rosbag1 import Writer as Writer1
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from ros2_depth_interp.tools import bag

from ros2_depth_interp.core import params
from ros2_depth_interp.tools.bag import BagConfigError, BagJob, BagReadError, process_bag
from ros2_depth_interp.core.inference import DepthInterpolator

H, W = 48, 64
FX, FY, CX, CY = 50.0, 55.0, 31.5, 23.5
NS = '/cam'
DEPTH_T, IMAGE_T, MASK_T, INFO_T, CHAT_T = (NS + '/semi_dense_depth', NS + '/image', NS + '/mask',
                                            NS + '/camera_info', '/chatter')
FRAME_ID = 'cam_optical'
GOOD_FRAMES = 4                 # frames 0..3 are complete; frame 4 has an empty mask
STAMP0 = 100 * 10 ** 9
PERIOD = 10 ** 8                # 0.1 s between frames
LOG_DELAY = 5 * 10 ** 6         # log time = stamp + 5 ms, so the two are told apart
SLOP = 0.01


def plane_depth(i):
    """A plane tilted along x, moving slightly per frame: 1.5 .. 2.5 m."""
    u = np.arange(W, dtype=np.float32)[None, :]
    v = np.arange(H, dtype=np.float32)[:, None]
    return (1.5 + u / W + 0.2 * v / H + 0.05 * i).astype(np.float32)


def frame_arrays(i):
    rng = np.random.default_rng(i)
    mask = rng.random((H, W)) < 0.2
    if i == GOOD_FRAMES:
        mask[:] = False                                     # -> FrameError mask_empty
    depth = plane_depth(i)
    sparse = np.where(rng.random((H, W)) < 0.5, depth, 0).astype(np.float32)
    sparse[mask] = depth[mask]                              # every masked pixel is measured
    intensity = (np.arange(W, dtype=np.uint8)[None, :] * 3 + np.arange(H, dtype=np.uint8)[:, None])
    return sparse, intensity.astype(np.uint8), (mask * 255).astype(np.uint8)


def stamp_of(i):
    return STAMP0 + i * PERIOD


def _image(types, ros1, stamp_ns, array, encoding, seq=0):
    header = _header(types, ros1, stamp_ns, seq)
    step = array.shape[1] * array.itemsize
    return types['sensor_msgs/msg/Image'](
        header=header, height=array.shape[0], width=array.shape[1], encoding=encoding, is_bigendian=0,
        step=step, data=np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def _header(types, ros1, stamp_ns, seq=0):
    sec, nanosec = divmod(stamp_ns, 10 ** 9)
    stamp = types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec)
    if ros1:
        return types['std_msgs/msg/Header'](seq=seq, stamp=stamp, frame_id=FRAME_ID)
    return types['std_msgs/msg/Header'](stamp=stamp, frame_id=FRAME_ID)


def _camera_info(types, ros1, stamp_ns):
    k = np.array([FX, 0, CX, 0, FY, CY, 0, 0, 1], dtype=np.float64)
    p = np.array([FX, 0, CX, 0, 0, FY, CY, 0, 0, 0, 1, 0], dtype=np.float64)
    roi = types['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                    do_rectify=False)
    names = ('D', 'K', 'R', 'P') if ros1 else ('d', 'k', 'r', 'p')
    values = dict(zip(names, (np.zeros(5), k, np.eye(3).reshape(-1), p)))
    return types['sensor_msgs/msg/CameraInfo'](
        header=_header(types, ros1, stamp_ns), height=H, width=W, distortion_model='plumb_bob',
        binning_x=0, binning_y=0, roi=roi, **values)


def input_messages(types, ros1, chatter_topic=CHAT_T):
    """(topic, msgtype, log_ns, message) in log-time order."""
    out = []
    for i in range(GOOD_FRAMES + 1):
        sparse, intensity, mask = frame_arrays(i)
        t = stamp_of(i)
        out.append((DEPTH_T, 'Image', t + LOG_DELAY, _image(types, ros1, t, sparse, '32FC1', i)))
        out.append((IMAGE_T, 'Image', t + LOG_DELAY + 1, _image(types, ros1, t, intensity, 'mono8', i)))
        out.append((MASK_T, 'Image', t + LOG_DELAY + 2, _image(types, ros1, t, mask, 'mono8', i)))
        if i == 0:
            # camera_info recorded after the first frame: the bag tool still uses it from frame 0
            out.append((INFO_T, 'CameraInfo', t + LOG_DELAY + 3, _camera_info(types, ros1, t)))
        if i == 1:
            # a depth image whose image/mask partners are 50 ms away, beyond the 10 ms slop
            extra = stamp_of(1) + PERIOD // 2
            out.append((DEPTH_T, 'Image', extra + LOG_DELAY,
                        _image(types, ros1, extra, plane_depth(9), '32FC1', 99)))
        out.append((chatter_topic, 'String', t + LOG_DELAY + 4, types['std_msgs/msg/String'](data='tick %d' % i)))
    return out


def write_input_bag(path, fmt, chatter_topic=CHAT_T):
    """Write the test bag in ``fmt``: 'sqlite3', 'mcap' (rosbag2) or 'ros1' (path must end .bag)."""
    ros1 = fmt == 'ros1'
    store = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_KILTED)
    if ros1:
        writer = Writer1(Path(path))
    else:
        writer = Writer(Path(path), version=9, storage_plugin=StoragePlugin[fmt.upper()])
    writer.open()
    conns = {}
    for topic, short, log_ns, msg in input_messages(store.types, ros1, chatter_topic):
        msgtype = {'Image': 'sensor_msgs/msg/Image', 'CameraInfo': 'sensor_msgs/msg/CameraInfo',
                   'String': 'std_msgs/msg/String'}[short]
        if topic not in conns:
            conns[topic] = writer.add_connection(topic, msgtype, typestore=store)
        data = store.serialize_ros1(msg, msgtype) if ros1 else store.serialize_cdr(msg, msgtype)
        writer.write(conns[topic], log_ns, data)
    writer.close()
    return str(path)


def read_bag(path):
    """{topic: [(log_ns, message), ...]}, {topic: msgtype} of a bag, via AnyReader."""
    out, types = {}, {}
    with AnyReader([Path(path)]) as reader:
        for conn in reader.connections:
            types[conn.topic] = conn.msgtype
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
    return out, types


def raw_messages(path):
    with AnyReader([Path(path)]) as reader:
        return {(conn.topic, t, bytes(raw)) for conn, t, raw in reader.messages()}


def image_array(msg):
    from ros2_depth_interp.core import encodings
    return np.array(encodings.msg_to_array(msg))


def cloud_array(msg):
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1), ('intensity', 12, 7, 1)]
    assert msg.point_step == 16 and msg.row_step == 16 * msg.width and not msg.is_bigendian
    assert msg.is_dense is False
    return np.frombuffer(bytes(msg.data), dtype='<f4').reshape(msg.height, msg.width, 4)


@pytest.fixture(scope='module')
def interpolator(tiny_model_path):
    return DepthInterpolator(tiny_model_path, providers=['CPUExecutionProvider'], threads=1, warmup=False)


def frame_job(src, dst, **changes):
    values = params.defaults()
    values['sync_slop'] = SLOP
    values.update(changes.pop('values', {}))
    topics = dict(depth_topic=DEPTH_T, image_topic=IMAGE_T, mask_topic=MASK_T, camera_info_topic=INFO_T)
    topics.update(changes)
    return BagJob(input_path=str(src), output_path=str(dst), values=values, **topics)


def input_path(tmp_path, fmt):
    return tmp_path / ('in.bag' if fmt == 'ros1' else 'in_' + fmt)


# --- every input format -------------------------------------------------------------------------------
@pytest.mark.parametrize('fmt', ['sqlite3', 'mcap', 'ros1'])
def test_frames_processed_from_each_format(tmp_path, interpolator, fmt):
    src = write_input_bag(input_path(tmp_path, fmt), fmt)
    dst = tmp_path / 'out'
    summary = process_bag(frame_job(src, dst), interpolator=interpolator)

    # counts: 4 frames written, the empty mask dropped, the lone depth message unpaired
    frames = summary.frames
    assert summary.complete
    assert frames.inputs == 3 * (GOOD_FRAMES + 1) + 1
    assert frames.sets == GOOD_FRAMES + 1
    assert frames.written == GOOD_FRAMES and frames.clouds == GOOD_FRAMES
    assert dict(frames.dropped) == {'mask_empty': 1}
    assert sum(frames.sync_dropped.values()) == 1
    assert summary.messages_read == summary.messages_total == len(input_messages(
        get_typestore(Stores.ROS2_KILTED).types, False))
    assert summary.output_topics == {'frames/dense_depth': NS + '/dense_depth',
                                     'frames/dense_confidence': NS + '/dense_confidence',
                                     'frames/points': NS + '/points'}

    out, types = read_bag(dst)
    assert types[NS + '/dense_depth'] == 'sensor_msgs/msg/Image'
    assert types[NS + '/points'] == 'sensor_msgs/msg/PointCloud2'
    for topic in (NS + '/dense_depth', NS + '/dense_confidence', NS + '/points'):
        assert len(out[topic]) == GOOD_FRAMES, topic
        # headers: the depth message's stamp and frame id; log time: the depth message's
        assert [m.header.frame_id for _, m in out[topic]] == [FRAME_ID] * GOOD_FRAMES
        assert [m.header.stamp.sec * 10 ** 9 + m.header.stamp.nanosec for _, m in out[topic]] == \
            [stamp_of(i) for i in range(GOOD_FRAMES)]
        assert [t for t, _ in out[topic]] == [stamp_of(i) + LOG_DELAY for i in range(GOOD_FRAMES)]

    for i, ((_, depth_msg), (_, conf_msg), (_, cloud_msg)) in enumerate(zip(
            out[NS + '/dense_depth'], out[NS + '/dense_confidence'], out[NS + '/points'])):
        assert depth_msg.encoding == '32FC1' and (depth_msg.height, depth_msg.width) == (H, W)
        dense = image_array(depth_msg)
        sparse, _, mask = frame_arrays(i)
        known = mask > 0
        np.testing.assert_allclose(dense[known], sparse[known], rtol=0.05)
        confidence = image_array(conf_msg)
        assert confidence.shape == (H, W) and 0 <= confidence.min() and confidence.max() <= 1
        cloud = cloud_array(cloud_msg)
        assert cloud.shape == (H, W, 4)
        np.testing.assert_allclose(cloud[:, :, 2], dense, rtol=1e-6)   # z is the dense depth
        for v, u in [(0, 0), (7, 50), (H - 1, W - 1), (24, 31)]:
            z = dense[v, u]
            np.testing.assert_allclose(cloud[v, u, 0], (u - CX) / FX * z, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(cloud[v, u, 1], (v - CY) / FY * z, rtol=1e-5, atol=1e-6)
        _, intensity, _ = frame_arrays(i)
        np.testing.assert_array_equal(cloud[:, :, 3], intensity.astype(np.float32))

    # every input topic copied, every message of it
    source, _ = read_bag(src)
    for topic in (DEPTH_T, IMAGE_T, MASK_T, INFO_T, CHAT_T):
        assert [t for t, _ in out[topic]] == [t for t, _ in source[topic]], topic
    assert types[INFO_T] == 'sensor_msgs/msg/CameraInfo'
    info = out[INFO_T][0][1]
    np.testing.assert_array_equal(info.k, [FX, 0, CX, 0, FY, CY, 0, 0, 1])  # ROS 2 field names
    assert not hasattr(out[DEPTH_T][0][1].header, 'seq')
    for (_, a), (_, b) in zip(out[DEPTH_T], source[DEPTH_T]):
        np.testing.assert_array_equal(image_array(a), image_array(b))
        assert (a.header.stamp.sec, a.header.stamp.nanosec) == (b.header.stamp.sec, b.header.stamp.nanosec)
    assert [m.data for _, m in out[CHAT_T]] == ['tick %d' % i for i in range(GOOD_FRAMES + 1)]
    if fmt != 'ros1':   # rosbag2 input: copied byte for byte
        copied = {item for item in raw_messages(dst) if item[0] in source}
        assert copied == raw_messages(src)


def test_no_copy_inputs_sqlite3_output_and_output_namespace(tmp_path, interpolator, capsys):
    src = write_input_bag(tmp_path / 'in', 'mcap')
    dst = tmp_path / 'out'
    summary = process_bag(frame_job(src, dst, copy_inputs=False, storage='sqlite3',
                                    output_namespace='/processed'), interpolator=interpolator,
                          progress=True)
    # the progress bar counts messages, with a rate
    err = capsys.readouterr().err
    assert 'depth_interp bag' in err and '17/17' in err and 'msg/s' in err
    assert summary.messages_copied == 0
    # only the inputs the processing needs were read
    assert summary.messages_read == 3 * (GOOD_FRAMES + 1) + 1 + 1
    out, _ = read_bag(dst)
    assert sorted(out) == ['/processed/dense_confidence', '/processed/dense_depth', '/processed/points']
    assert list((dst).glob('*.db3'))


def test_parameters_reach_the_processing(tmp_path, interpolator):
    """Cloud stride and depth limits from the parameters, as the node applies them; the mask
    turned off (use_mask false) so every frame is a depth+image pair."""
    src = write_input_bag(tmp_path / 'in', 'sqlite3')
    dst = tmp_path / 'out'
    values = {'cloud_stride': 2, 'max_depth': 2.0, 'use_mask': False}
    summary = process_bag(frame_job(src, dst, mask_topic=None, values=values, copy_inputs=False),
                          interpolator=interpolator)
    # without the mask, the empty-mask frame is a good frame too
    assert summary.frames.written == GOOD_FRAMES + 1 and not summary.frames.dropped
    out, _ = read_bag(dst)
    for (_, depth_msg), (_, cloud_msg) in zip(out[NS + '/dense_depth'], out[NS + '/points']):
        dense = image_array(depth_msg)
        cloud = cloud_array(cloud_msg)
        assert cloud.shape == (H // 2, W // 2, 4)
        z = dense[::2, ::2]
        far = z > 2.0
        assert far.any() and (~far).any()
        assert np.isnan(cloud[:, :, 2][far]).all()
        np.testing.assert_allclose(cloud[:, :, 2][~far], z[~far], rtol=1e-6)


def test_no_camera_info_and_no_intrinsics_gives_depth_without_cloud(tmp_path, interpolator):
    src = write_input_bag(tmp_path / 'in', 'mcap')
    dst = tmp_path / 'out'
    summary = process_bag(frame_job(src, dst, camera_info_topic=None, copy_inputs=False),
                          interpolator=interpolator)
    assert summary.frames.written == GOOD_FRAMES and summary.frames.clouds == 0
    assert dict(summary.frames.cloud_skipped) == {'no_intrinsics': GOOD_FRAMES}
    out, _ = read_bag(dst)
    assert len(out[NS + '/dense_depth']) == GOOD_FRAMES and NS + '/points' not in out


# --- corrupt and truncated input --------------------------------------------------------------------------
def many_frames_bag(path, fmt, count=30):
    """A longer bag (depth + image pairs only) for the corruption tests."""
    ros1 = fmt == 'ros1'
    store = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_KILTED)
    writer = Writer1(Path(path)) if ros1 else Writer(Path(path), version=9,
                                                     storage_plugin=StoragePlugin[fmt.upper()])
    if ros1:
        writer.chunk_threshold = 64 * 1024   # several chunks, so a damaged one is mid-file
    writer.open()
    conns = [writer.add_connection(t, 'sensor_msgs/msg/Image', typestore=store) for t in (DEPTH_T, IMAGE_T)]
    for i in range(count):
        sparse, intensity, _ = frame_arrays(i % GOOD_FRAMES)
        for conn, array, enc in ((conns[0], sparse, '32FC1'), (conns[1], intensity, 'mono8')):
            msg = _image(store.types, ros1, stamp_of(i), array, enc, i)
            writer.write(conn, stamp_of(i) + LOG_DELAY,
                         store.serialize_ros1(msg, msg.__msgtype__) if ros1 else
                         store.serialize_cdr(msg, msg.__msgtype__))
    writer.close()
    return str(path)


def overwrite_middle(file_path, fraction=0.5, size=4096):
    size_total = os.path.getsize(file_path)
    with open(file_path, 'r+b') as f:
        f.seek(int(size_total * fraction) // 4096 * 4096)
        f.write(bytes(range(256)) * (size // 256))


@pytest.mark.parametrize('fmt', ['sqlite3', 'ros1'])
def test_corrupt_bag_stops_with_position_and_leaves_a_valid_partial_output(tmp_path, interpolator, fmt):
    src = many_frames_bag(tmp_path / ('in.bag' if fmt == 'ros1' else 'in'), fmt)
    data_file = src if fmt == 'ros1' else next(Path(src).glob('*.db3'))
    overwrite_middle(data_file)
    dst = tmp_path / 'out'
    job = frame_job(src, dst, mask_topic=None, camera_info_topic=None, values={'use_mask': False})
    with pytest.raises(BagReadError) as info:
        process_bag(job, interpolator=interpolator)
    text = str(info.value)
    assert 'corrupt' in text and src in text
    assert 'message #' in text and 'log time' in text and 'topic /cam/' in text
    partial = info.value.summary
    assert partial is not None and not partial.complete
    assert 0 < partial.messages_read < partial.messages_total
    # what was written before the error is a valid bag: it opens and every message decodes
    out, _ = read_bag(dst)
    written = len(out.get(NS + '/dense_depth', []))
    assert written == partial.frames.written
    assert 0 < written < 30
    assert len(out[DEPTH_T]) >= written


@pytest.mark.parametrize('fmt', ['sqlite3', 'mcap', 'ros1'])
def test_truncated_bag_gives_a_clear_error_and_no_output(tmp_path, interpolator, fmt):
    src = many_frames_bag(tmp_path / ('in.bag' if fmt == 'ros1' else 'in'), fmt, count=6)
    data_file = Path(src) if fmt == 'ros1' else next(p for p in Path(src).iterdir() if p.suffix != '.yaml')
    with open(data_file, 'r+b') as f:
        f.truncate(os.path.getsize(data_file) // 2)
    dst = tmp_path / 'out'
    job = frame_job(src, dst, mask_topic=None, camera_info_topic=None, values={'use_mask': False})
    with pytest.raises(BagReadError) as info:
        process_bag(job, interpolator=interpolator)
    assert 'cannot open input bag %s' % src in str(info.value)
    assert 'reindex' in str(info.value)
    assert not dst.exists()


def test_skip_corrupt_message_counts_it_and_goes_on(tmp_path, interpolator):
    """A message whose bytes do not decode: stop by default, skip and count with skip_corrupt."""
    src = tmp_path / 'in'
    store = get_typestore(Stores.ROS2_KILTED)
    writer = Writer(src, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conns = [writer.add_connection(t, 'sensor_msgs/msg/Image', typestore=store) for t in (DEPTH_T, IMAGE_T)]
    for i in range(3):
        sparse, intensity, _ = frame_arrays(i)
        for conn, array, enc in ((conns[0], sparse, '32FC1'), (conns[1], intensity, 'mono8')):
            data = store.serialize_cdr(_image(store.types, False, stamp_of(i), array, enc), 'sensor_msgs/msg/Image')
            if i == 1 and conn is conns[0]:
                data = bytes(data[:40])   # cut short: cannot be deserialized
            writer.write(conn, stamp_of(i) + LOG_DELAY, data)
    writer.close()
    job = frame_job(src, tmp_path / 'stop', mask_topic=None, camera_info_topic=None,
                    values={'use_mask': False})
    with pytest.raises(BagReadError, match=r'at message #3 \(topic /cam/semi_dense_depth'):
        process_bag(job, interpolator=interpolator)
    assert len(read_bag(tmp_path / 'stop')[0][NS + '/dense_depth']) == 1

    job = frame_job(src, tmp_path / 'skip', mask_topic=None, camera_info_topic=None,
                    values={'use_mask': False}, skip_corrupt=True)
    summary = process_bag(job, interpolator=interpolator)
    assert summary.complete and summary.ignored['corrupt_message'] == 1
    assert summary.frames.written == 2
    assert sum(summary.frames.sync_dropped.values()) == 1   # the image of frame 1 lost its depth


# --- configuration errors -----------------------------------------------------------------------------------
def test_configuration_errors_name_the_problem(tmp_path, interpolator):
    src = write_input_bag(tmp_path / 'in', 'mcap')
    with pytest.raises(BagConfigError, match=r'topic /cam/nothing is not in the bag; the bag has: .*'
                                             r'/cam/image \(sensor_msgs/msg/Image\)'):
        process_bag(frame_job(src, tmp_path / 'o1', depth_topic='/cam/nothing'), interpolator=interpolator)
    with pytest.raises(BagConfigError, match='topic /chatter has type std_msgs/msg/String'):
        process_bag(frame_job(src, tmp_path / 'o2', image_topic=CHAT_T), interpolator=interpolator)
    with pytest.raises(BagConfigError, match='give --mask-topic'):
        process_bag(frame_job(src, tmp_path / 'o3', mask_topic=None), interpolator=interpolator)
    with pytest.raises(BagConfigError, match='sync_slop must be in'):
        process_bag(frame_job(src, tmp_path / 'o4', values={'sync_slop': -1.0}), interpolator=interpolator)
    clash = write_input_bag(tmp_path / 'clash', 'mcap', chatter_topic=NS + '/points')
    with pytest.raises(BagConfigError, match='output topics /cam/points already exist in the input bag'):
        process_bag(frame_job(clash, tmp_path / 'o5'), interpolator=interpolator)
    existing = tmp_path / 'exists'
    existing.mkdir()
    with pytest.raises(BagConfigError, match='exists already'):
        process_bag(frame_job(src, existing), interpolator=interpolator)
    for name in ('o1', 'o2', 'o3', 'o4', 'o5'):
        assert not (tmp_path / name).exists()


# --- parameters from the node's params files ------------------------------------------------------------
CONFIG = Path(__file__).resolve().parent.parent / 'config'


def test_load_params_reads_the_shipped_configs_like_ros2_merges_them():
    robot = bag.load_params(str(CONFIG / 'robot.yaml'))          # '/**/depth_interp' entry
    assert robot['input_inverse_depth'] is True and robot['use_mask'] is False
    assert robot['sync_slop'] == pytest.approx(0.02)
    vehicle = CONFIG / 'autonomous_vehicle.yaml'
    front = bag.load_params(str(vehicle), '/front/depth_interp')
    left = bag.load_params(str(vehicle), 'left/depth_interp')
    assert front['max_depth'] == 60.0 and isinstance(front['max_depth'], float)
    assert front['cloud_stride'] == 2 and left['cloud_stride'] == 3 and left['max_depth'] == 40.0
    # overrides come last, YAML-typed
    tuned = bag.load_params(str(vehicle), '/front/depth_interp', ['cloud_stride=4', 'use_mask=false'])
    assert tuned['cloud_stride'] == 4 and tuned['use_mask'] is False


def test_load_params_errors(tmp_path):
    path = tmp_path / 'other.yaml'
    path.write_text(yaml.safe_dump({'/other_node': {'ros__parameters': {'cloud_stride': 2}}}))
    with pytest.raises(BagConfigError, match='no entry for node /depth_interp'):
        bag.load_params(str(path))
    with pytest.raises(BagConfigError, match="unknown parameter 'cloud_strid'"):
        bag.load_params(None, overrides=['cloud_strid=2'])
    with pytest.raises(BagConfigError, match='cloud_stride must be in'):
        bag.load_params(None, overrides=['cloud_stride=0'])
    with pytest.raises(BagConfigError, match='NAME=VALUE'):
        bag.load_params(None, overrides=['cloud_stride'])
    with pytest.raises(BagConfigError, match='cannot read params file'):
        bag.load_params(str(tmp_path / 'missing.yaml'))


def test_output_topic_naming():
    assert bag.output_topic('/camera/semi_dense_depth', 'dense_depth') == '/camera/dense_depth'
    assert bag.output_topic('/a/b/depth', 'points') == '/a/b/points'
    assert bag.output_topic('/depth', 'points') == '/points'
    assert bag.output_topic('camera/depth', 'points') == '/camera/points'
    assert bag.output_topic('/camera/depth', 'points', namespace='/out/') == '/out/points'
    assert bag.output_topic('/camera/depth', 'points', namespace='/') == '/points'


# --- the command line ------------------------------------------------------------------------------------
def test_command_line_with_a_params_file(tmp_path, tiny_model_path, capsys):
    src = write_input_bag(tmp_path / 'in', 'sqlite3')
    params_file = tmp_path / 'robot.yaml'
    params_file.write_text(yaml.safe_dump({'/**/depth_interp': {'ros__parameters': {
        'cloud_stride': 2, 'sync_slop': SLOP, 'providers': ['CPUExecutionProvider']}}}))
    dst = tmp_path / 'out'
    rc = bag.main([src, str(dst), '--depth-topic', DEPTH_T, '--image-topic', IMAGE_T,
                   '--mask-topic', MASK_T, '--camera-info-topic', INFO_T, '--params-file', str(params_file),
                   '--model', tiny_model_path, '--storage', 'sqlite3', '--no-progress'])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert '4 written (4 with a cloud), 1 dropped' in captured.out
    assert 'dropped frames: mask_empty 1' in captured.out
    assert 'unpaired messages (synchronizer): no_match_within_slop 1' in captured.out
    assert '[mask_empty]' in captured.err                # the first drop of a kind is reported
    out, _ = read_bag(dst)
    assert all(cloud_array(m).shape == (H // 2, W // 2, 4) for _, m in out[NS + '/points'])

    # through the depth_interp dispatcher too, with a configuration error: exit code 2
    from ros2_depth_interp.tools import cli
    rc = cli.main(['bag', src, str(tmp_path / 'out2'), '--depth-topic', '/nope', '--image-topic', IMAGE_T,
                   '--mask-topic', MASK_T, '--model', tiny_model_path, '--no-progress'])
    captured = capsys.readouterr()
    assert rc == bag.EXIT_CONFIG_ERROR
    assert 'topic /nope is not in the bag' in captured.err and not (tmp_path / 'out2').exists()


def test_command_line_exit_codes_for_bad_input(tmp_path, tiny_model_path, capsys):
    src = many_frames_bag(tmp_path / 'in', 'sqlite3', count=6)
    db = next(Path(src).glob('*.db3'))
    with open(db, 'r+b') as f:
        f.truncate(os.path.getsize(db) // 2)
    rc = bag.main([src, str(tmp_path / 'out'), '--depth-topic', DEPTH_T, '--image-topic', IMAGE_T,
                   '-p', 'use_mask=false', '--model', tiny_model_path, '--no-progress'])
    assert rc == bag.EXIT_READ_ERROR
    assert 'cannot open input bag' in capsys.readouterr().err
    rc = bag.main([src, str(tmp_path / 'out'), '--lsd-keyframes', '/lsd_slam/keyframes', '--model', tiny_model_path,
                   '--max-scaled-depth-variance', '0', '--no-progress'])
    assert rc == bag.EXIT_CONFIG_ERROR
    assert 'max_scaled_depth_variance must be > 0' in capsys.readouterr().err
    rc = bag.main([src, str(tmp_path / 'out'), '--model', tiny_model_path, '--no-progress'])
    assert rc == bag.EXIT_CONFIG_ERROR
    assert 'nothing to process' in capsys.readouterr().err


def test_stamps_jumping_back_flush_and_reset_the_synchronizer(tmp_path, interpolator):
    """Two recordings in one bag: header stamps restart 50 s earlier while log times go on. Image
    stamps trail depth by 2 ms, so the synchronizer still holds the last set of the first part
    when the jump comes; it is flushed (the node would drop it), nothing is lost."""
    store = get_typestore(Stores.ROS2_KILTED)
    src = tmp_path / 'in'
    writer = Writer(src, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conns = [writer.add_connection(t, 'sensor_msgs/msg/Image', typestore=store) for t in (DEPTH_T, IMAGE_T)]
    stamps = [stamp_of(i) for i in range(3)] + [stamp_of(i) - 50 * 10 ** 9 for i in range(3)]
    for n, stamp in enumerate(stamps):
        sparse, intensity, _ = frame_arrays(n % GOOD_FRAMES)
        log = STAMP0 + n * PERIOD + LOG_DELAY
        writer.write(conns[0], log, store.serialize_cdr(
            _image(store.types, False, stamp, sparse, '32FC1'), 'sensor_msgs/msg/Image'))
        writer.write(conns[1], log + 1, store.serialize_cdr(
            _image(store.types, False, stamp + 2_000_000, intensity, 'mono8'), 'sensor_msgs/msg/Image'))
    writer.close()
    dst = tmp_path / 'out'
    summary = process_bag(frame_job(src, dst, mask_topic=None, camera_info_topic=None,
                                    values={'use_mask': False}), interpolator=interpolator)
    assert summary.frames.time_jumps == 1
    assert summary.frames.written == 6 and not summary.frames.sync_dropped
    out, _ = read_bag(dst)
    assert [m.header.stamp.sec * 10 ** 9 + m.header.stamp.nanosec for _, m in out[NS + '/dense_depth']] == stamps
    assert 'jumped back 1 time(s)' in summary.text()
