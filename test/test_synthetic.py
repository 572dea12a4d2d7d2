"""Procedural scenes: determinism, valid depth, plausible ranges, smooth sequences."""
import numpy as np
import pytest

from ros2_depth_interp.learning import synthetic


def test_render_scene_types_and_ranges():
    for seed in range(6):
        f = synthetic.render_scene(np.random.default_rng(seed), 60, 80)
        assert f['depth'].dtype == np.float32 and f['depth'].shape == (60, 80)
        assert f['intensity'].dtype == np.uint8 and f['intensity'].shape == (60, 80)
        assert f['K'].shape == (3, 3) and f['K'].dtype == np.float64
        d = f['depth']
        assert np.all(np.isfinite(d)) and np.all(d > 0)
        assert d.min() > 0.2 and d.max() < 15.0
        assert f['intensity'].std() > 5       # not a blank image
        assert d.max() / d.min() > 1.2       # some depth structure


def test_render_scene_deterministic():
    a = synthetic.render_scene(np.random.default_rng(11), 48, 64)
    b = synthetic.render_scene(np.random.default_rng(11), 48, 64)
    c = synthetic.render_scene(np.random.default_rng(12), 48, 64)
    np.testing.assert_array_equal(a['depth'], b['depth'])
    np.testing.assert_array_equal(a['intensity'], b['intensity'])
    assert not np.array_equal(a['depth'], c['depth'])


def test_fov_sets_focal_length():
    f = synthetic.render_scene(np.random.default_rng(0), 100, 200, fov_deg=90.0)
    assert f['K'][0, 0] == pytest.approx(100.0)
    assert f['K'][0, 2] == pytest.approx(99.5) and f['K'][1, 2] == pytest.approx(49.5)


def test_depth_is_planar_z_of_room():
    """Camera facing a wall of an empty room: depth is that wall's distance in every pixel it covers."""
    scene = synthetic.Scene(room_min=np.zeros(3), room_max=np.array([4.0, 4.0, 6.0]),
                            room_textures=[synthetic.Texture('flat', 0.5, 0.0, 1.0, 0.0)] * 6,
                            light=np.array([2.0, 2.0, 5.8]))
    pose = synthetic.CameraPose(synthetic.look_rotation(0.0, 0.0), np.array([1.0, 2.0, 3.0]))
    K = synthetic.intrinsics(40, 40, 60.0)
    depth, intensity = synthetic.render(scene, pose, K, 40, 40)
    # the +x wall at x = 4 is 3 m ahead; with a 60 degree FOV it fills the whole view
    np.testing.assert_allclose(depth, 3.0, rtol=1e-5)
    assert intensity.dtype == np.uint8


def test_sphere_depth_matches_geometry():
    """A sphere straight ahead: the centre pixel sees its front surface at distance - radius."""
    scene = synthetic.Scene(room_min=np.zeros(3), room_max=np.array([8.0, 8.0, 3.0]),
                            room_textures=[synthetic.Texture('flat', 0.5, 0.0, 1.0, 0.0)] * 6,
                            light=np.array([4.0, 4.0, 2.8]))
    sphere = synthetic.Primitive('sphere', np.array([4.0, 5.0, 1.5]), np.eye(3), np.full(3, 0.5),
                                 synthetic.Texture('flat', 0.9, 0.0, 1.0, 0.0))
    scene.objects.append(sphere)
    pose = synthetic.CameraPose(synthetic.look_rotation(0.0, 0.0), np.array([1.0, 5.0, 1.5]))
    K = synthetic.intrinsics(41, 41, 60.0)
    depth, _ = synthetic.render(scene, pose, K, 41, 41)
    assert depth[20, 20] == pytest.approx(2.5, rel=1e-4)
    # the leftmost ray misses the sphere and meets the left wall (y = 8, 3 m to the side)
    x = (0 - K[0, 2]) / K[0, 0]          # normalized image x of column 0 (negative = left)
    assert depth[20, 0] == pytest.approx(3.0 / abs(x), rel=1e-4)


def test_sequence_reproducible_and_indexable():
    seq = synthetic.SyntheticSequence(seed=3, height=48, width=64, n_frames=5)
    again = synthetic.SyntheticSequence(seed=3, height=48, width=64, n_frames=5)
    assert len(seq) == 5
    f2, g2 = seq[2], again[2]
    np.testing.assert_array_equal(f2['depth'], g2['depth'])
    np.testing.assert_array_equal(f2['intensity'], g2['intensity'])
    np.testing.assert_array_equal(seq[-1]['depth'], seq[4]['depth'])
    assert f2['K'].shape == (3, 3)
    stamps = [seq[i]['stamp_ns'] for i in range(5)]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    with pytest.raises(IndexError):
        seq[5]
    other = synthetic.SyntheticSequence(seed=4, height=48, width=64, n_frames=5)
    assert not np.array_equal(other[0]['depth'], f2['depth'])


def test_sequence_moves_smoothly():
    seq = synthetic.SyntheticSequence(seed=1, height=48, width=64, n_frames=20)
    poses = [seq.pose(i) for i in range(20)]
    steps = [np.linalg.norm(b.position - a.position) for a, b in zip(poses, poses[1:])]
    turns = [np.degrees(np.arccos(np.clip((np.trace(a.rotation.T @ b.rotation) - 1) / 2, -1, 1)))
             for a, b in zip(poses, poses[1:])]
    assert 0.005 < min(steps) and max(steps) < 0.08
    assert max(turns) < 2.0
    # consecutive depth maps are similar but not identical
    d0, d1, d10 = seq[0]['depth'], seq[1]['depth'], seq[10]['depth']
    assert not np.array_equal(d0, d1)
    assert np.median(np.abs(d1 - d0) / d0) < 0.05
    assert np.median(np.abs(d10 - d0) / d0) > np.median(np.abs(d1 - d0) / d0)
    for i in (0, 10, 19):
        d = seq[i]['depth']
        assert np.all(np.isfinite(d)) and np.all(d > 0.2)
