"""core/keyframes.py without ROS: world scale, cloud geometry, the pose, bad keyframes, the graph, the map.

Keyframes are synthesized from a rendered scene with known metric depth and camera pose
(test/keyframe_scene.py), written at a keyframe scale 1/8 of the world's as LSD-SLAM does.
"""
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from ros2_depth_interp.core import keyframes as kf
from ros2_depth_interp.core import lsd_slam
from ros2_depth_interp.core.inference import DepthInterpolator
from ros2_depth_interp.core.lsd_slam import KeyframeError, Sim3, decode_keyframe
from ros2_depth_interp.core.pipeline import PipelineConfig

from keyframe_scene import TIME0, H, W, ros2_fields, scene_keyframe


@pytest.fixture(scope='module')
def processor(tiny_model_path):
    interpolator = DepthInterpolator(tiny_model_path, providers=['CPUExecutionProvider'], threads=1,
                                     warmup=False)
    return kf.KeyframeProcessor(interpolator, PipelineConfig())


@pytest.fixture(scope='module')
def scene():
    return scene_keyframe(index=0)


def test_rigid_pose_splits_the_sim3(scene):
    pose = kf.RigidPose.from_sim3(scene.sim3)
    assert pose.scale == pytest.approx(8.0, rel=1e-6)
    q = np.array(pose.rotation_xyzw)
    assert np.linalg.norm(q) == pytest.approx(1.0) and q[3] >= 0
    np.testing.assert_allclose(Sim3.from_scale_rotation_translation(1.0, q, [0, 0, 0]).rotation,
                               scene.rotation, atol=1e-6)
    np.testing.assert_allclose(pose.translation, scene.position, atol=1e-6)
    flipped = Sim3(-scene.sim3.quaternion, scene.sim3.translation)    # same rotation, w < 0
    np.testing.assert_allclose(kf.RigidPose.from_sim3(flipped).rotation_xyzw, pose.rotation_xyzw)


def test_world_scale_depth_and_cloud_against_intrinsics_and_pose(processor, scene):
    output = processor.process(decode_keyframe(scene.fields))
    result = output.result
    measured = result.known
    assert measured.sum() > 0.2 * H * W
    # keyframe inverse depth is scale / depth: the output is back at world (metric) scale (the
    # untrained test model moves measured pixels by about 1 %; the keyframe scale is 8)
    np.testing.assert_allclose(result.dense_depth[measured], scene.depth[measured], rtol=0.03)
    assert np.all(result.dense_depth > 0)
    cloud = result.cloud
    assert cloud.shape == (H, W, 4)
    np.testing.assert_allclose(cloud[:, :, 2], result.dense_depth, rtol=1e-6)
    fx, fy, cx, cy = scene.K[0, 0], scene.K[1, 1], scene.K[0, 2], scene.K[1, 2]
    v, u = np.mgrid[0:H, 0:W]
    np.testing.assert_allclose(cloud[:, :, 0], (u - cx) / fx * result.dense_depth, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cloud[:, :, 1], (v - cy) / fy * result.dense_depth, rtol=1e-5, atol=1e-6)
    # the rigid part of the Sim(3) alone places the world-scale cloud in the world
    rotation = Sim3.from_scale_rotation_translation(1.0, output.pose.rotation_xyzw, [0, 0, 0]).rotation
    world = cloud[:, :, :3] @ rotation.T + np.array(output.pose.translation)
    error = np.linalg.norm(world - scene.world_points(), axis=-1)
    assert np.all(error[measured] <= 0.03 * scene.depth[measured])


def test_min_and_max_depth_are_world_units(processor, scene):
    keyframe = decode_keyframe(scene.fields)
    near = float(np.percentile(scene.depth[scene.known], 50))
    processor.config = PipelineConfig(max_depth=near)
    try:
        cloud = processor.process(keyframe).result.cloud
    finally:
        processor.config = PipelineConfig()
    z = cloud[:, :, 2]
    assert np.isfinite(z).any() and np.nanmax(z) <= near


@pytest.mark.parametrize('change, reason', [
    (dict(pointcloud=np.zeros(12 * 10, np.uint8)), 'keyframe_bad_size'),
    (dict(pointcloud=np.zeros(0, np.uint8)), 'keyframe_empty'),
    (dict(fx=0.0, fy=0.0), 'keyframe_bad_intrinsics'),
    (dict(camToWorld=np.array([0, 0, 0, 1, math.nan, 0, 0], np.float32)), 'keyframe_bad_pose'),
    (dict(camToWorld=np.zeros(7, np.float32)), 'keyframe_bad_pose'),
])
def test_bad_keyframes_are_keyframe_errors(processor, scene, change, reason):
    with pytest.raises(KeyframeError) as info:
        processor.process_message(dict(scene.fields, **change))
    assert info.value.reason_key == reason


def test_graph_round_trip_both_spellings():
    poses = {3: Sim3.from_scale_rotation_translation(1.5, [0, 0, 0.3, 0.95], [1, 2, 3]),
             7: Sim3.from_scale_rotation_translation(0.5, [0.1, 0, 0, 1], [-1, 0, 0])}
    fields = kf.graph_fields(poses, constraints=[(3, 7, 0.25)])
    assert fields['num_frames'] == 2 and len(fields['frame_data']) == 64
    assert fields['num_constraints'] == 1 and len(fields['constraints_data']) == 12
    for message in (fields, {'numFrames': fields['num_frames'], 'frameData': fields['frame_data']}):
        decoded = kf.decode_graph(message)
        assert sorted(decoded) == [3, 7]
        for kf_id in poses:
            np.testing.assert_allclose(decoded[kf_id].to_array(), poses[kf_id].to_array())
    with pytest.raises(KeyframeError) as info:
        kf.decode_graph(dict(fields, num_frames=3))
    assert info.value.reason_key == kf.GRAPH_BAD_SIZE


def test_voxel_filter_averages_per_voxel():
    points = np.array([[0.01, 0.01, 0.01, 10], [0.03, 0.03, 0.03, 20], [0.5, 0.5, 0.5, 5]], np.float32)
    out = kf.voxel_filter(points, 0.1)
    out = out[np.argsort(out[:, 0])]
    np.testing.assert_allclose(out, [[0.02, 0.02, 0.02, 15], [0.5, 0.5, 0.5, 5]], rtol=1e-5)
    assert kf.voxel_filter(points, 0.0) is points


def test_map_in_world_frame_and_re_posed_by_a_graph_update(processor, scene):
    output = processor.process(decode_keyframe(scene.fields))
    dense_map = kf.DenseMap(voxel=0.0)
    assert not dense_map.changed and dense_map.points() is None     # nothing to publish yet
    dense_map.add(0, output.result.cloud, scene.sim3)
    first = dense_map.points()
    assert dense_map.points() is None             # unchanged: nothing to rebuild
    assert len(first) == H * W
    known = output.result.known
    error = np.linalg.norm(first[:, :3].reshape(H, W, 3) - scene.world_points(), axis=-1)
    assert np.all(error[known] <= 0.03 * scene.depth[known])
    # a loop closure moves and rescales keyframe 0: the map follows the new Sim(3)
    new_pose = Sim3.from_scale_rotation_translation(3.0, [0, 0, math.sin(0.2), math.cos(0.2)], [1.0, -2.0, 0.5])
    assert dense_map.update_poses({0: new_pose, 99: new_pose}) == 1
    second = dense_map.points()
    old_in_keyframe = (first[:, :3] - scene.sim3.translation) @ scene.sim3.rotation / scene.sim3.scale
    np.testing.assert_allclose(second[:, :3], new_pose.transform(old_in_keyframe), atol=1e-4)
    np.testing.assert_array_equal(second[:, 3], first[:, 3])


def test_map_voxel_filter_and_keyframe_limit(processor):
    dense_map = kf.DenseMap(voxel=0.2, max_keyframes=2)
    for index in range(3):
        scene = scene_keyframe(index=index * 10)
        output = processor.process(decode_keyframe(scene.fields))
        dense_map.add(index, output.result.cloud, scene.sim3)
    assert len(dense_map) == 2 and dense_map.pose(0) is None
    points = dense_map.points()
    keys = np.floor(points[:, :3] / 0.2).astype(np.int64)
    assert len(np.unique(keys, axis=0)) == len(points)      # one point per voxel
    assert 0 < len(points) < 2 * H * W


# --- the interface package and the bag tool ---------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]
# LSD-SLAM's lsd_slam_viewer/msg/keyframeGraphMsg.msg, comments dropped
KEYFRAME_GRAPH_ROS1 = 'uint32 numFrames\nuint8[] frameData\nuint32 numConstraints\nuint8[] constraintsData\n'


def msg_fields(text):
    """[(type, name)] of a .msg text, comments and blank lines dropped."""
    fields = []
    for line in text.splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            kind, name = line.split()[:2]
            fields.append((kind, name))
    return fields


@pytest.mark.parametrize('ros2_file, ros1_text, ros1_message', [
    ('Keyframe.msg', lsd_slam.KEYFRAME_DEFINITION, 'keyframeMsg'),
    ('KeyframeGraph.msg', KEYFRAME_GRAPH_ROS1, 'keyframeGraphMsg'),
])
def test_interface_package_mirrors_lsd_slam_field_for_field(ros2_file, ros1_text, ros1_message):
    ros2 = msg_fields((REPO / 'lsd_slam_msgs' / 'msg' / ros2_file).read_text())
    ros1 = msg_fields(ros1_text)
    assert [kind for kind, _ in ros2] == [kind for kind, _ in ros1]
    rules = yaml.safe_load((REPO / 'lsd_slam_msgs' / 'mapping_rules.yaml').read_text())
    rule = next(r for r in rules if r['ros1_message_name'] == ros1_message)
    assert (rule['ros1_package_name'], rule['ros2_package_name']) == ('lsd_slam_viewer', 'lsd_slam_msgs')
    assert rule['ros2_message_name'] == ros2_file[:-len('.msg')]
    assert list(rule['fields_1_to_2'].items()) == [(n1, n2) for (_, n1), (_, n2) in zip(ros1, ros2)]
    if ros2_file == 'Keyframe.msg':
        assert ros2 == msg_fields(lsd_slam.KEYFRAME2_DEFINITION)
    package = (REPO / 'lsd_slam_msgs' / 'package.xml').read_text()
    assert '<ros1_bridge mapping_rules="mapping_rules.yaml"/>' in package
    assert 'install(FILES mapping_rules.yaml DESTINATION share/${PROJECT_NAME})' in \
        (REPO / 'lsd_slam_msgs' / 'CMakeLists.txt').read_text()


def test_bag_tool_reads_both_keyframe_types_alike(tiny_model_path, tmp_path):
    """A bag recorded in ROS 2 next to the live node holds lsd_slam_msgs/msg/Keyframe; one recorded
    next to LSD-SLAM in ROS 1 holds lsd_slam_viewer keyframeMsg: the bag tool gives the same outputs."""
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import StoragePlugin, Writer
    from ros2_depth_interp.core import params
    from ros2_depth_interp.tools.bag import BagJob, process_bag
    scenes = [scene_keyframe(index=i, kf_id=i, time=TIME0 + i) for i in (0, 30)]
    outputs = []
    for msgtype in (lsd_slam.KEYFRAME_MSGTYPE, lsd_slam.KEYFRAME2_MSGTYPE):
        store = lsd_slam.keyframe_typestore()
        src, dst = tmp_path / msgtype.split('/')[0], tmp_path / (msgtype.split('/')[0] + '_out')
        writer = Writer(src, version=9, storage_plugin=StoragePlugin.MCAP)
        writer.open()
        conn = writer.add_connection('/lsd_slam/keyframes', msgtype, typestore=store)
        for scene in scenes:
            fields = scene.fields if msgtype == lsd_slam.KEYFRAME_MSGTYPE else ros2_fields(scene.fields)
            writer.write(conn, int(fields['time'] * 1e9), store.serialize_cdr(store.types[msgtype](**fields), msgtype))
        writer.close()
        interpolator = DepthInterpolator(tiny_model_path, providers=['CPUExecutionProvider'], threads=1,
                                         warmup=False)
        summary = process_bag(BagJob(str(src), str(dst), keyframe_topic='/lsd_slam/keyframes',
                                     values=params.defaults(), copy_inputs=False), interpolator=interpolator)
        assert summary.keyframes.written == 2
        with AnyReader([dst]) as reader:
            outputs.append(sorted((conn.topic, t, bytes(raw)) for conn, t, raw in reader.messages()))
    assert len(outputs[0]) == 6 and outputs[0] == outputs[1]
