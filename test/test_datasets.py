"""Readers (on tiny files written here, in each data set's own format) and the training sampler."""
import os
import pickle

import cv2
import numpy as np
import pytest

from ros2_depth_interp.learning import datasets as ds
from ros2_depth_interp.learning.masks import MASK_MODES
from ros2_depth_interp.core.resources import shared_data_dir


def _write_rgb(path, rgb):
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _rgb(h, w, seed=0):
    rgb = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    rgb[0, 0] = (255, 0, 0)      # a pure red pixel tells RGB from BGR
    return rgb


# --- Middlebury -----------------------------------------------------------------------------

def _middlebury_scene(folder, h=12, w=16, dmin=None):
    folder.mkdir(parents=True)
    _write_rgb(folder / 'view1.png', _rgb(h, w, 1))
    _write_rgb(folder / 'view5.png', _rgb(h, w, 5))
    disp = np.arange(h * w, dtype=np.uint8).reshape(h, w) % 200
    disp[3, 4] = 0
    cv2.imwrite(str(folder / 'disp1.png'), disp)
    cv2.imwrite(str(folder / 'disp5.png'), disp[:, ::-1].copy())
    if dmin is not None:
        (folder / 'dmin.txt').write_text(f'{dmin}\n')
    return disp


def test_read_middlebury_units(tmp_path):
    disp = _middlebury_scene(tmp_path / 'ThirdSize' / 'Books')
    f = ds.read_middlebury(tmp_path / 'ThirdSize' / 'Books', size_factor=3)
    assert f['name'] == 'Books'
    assert f['disparity'].dtype == np.float32 and f['intensity'].dtype == np.uint8
    assert f['rgb'].shape == (12, 16, 3) and tuple(f['rgb'][0, 0]) == (255, 0, 0)
    np.testing.assert_allclose(f['disparity'], disp / 3.0, rtol=1e-6)
    assert f['valid'][3, 4] == np.False_ and f['disparity'][3, 4] == 0
    assert f['valid'].sum() == np.count_nonzero(disp)
    assert f['dmin'] is None
    full = ds.read_middlebury(tmp_path / 'ThirdSize' / 'Books', size_factor=1)
    np.testing.assert_allclose(full['disparity'], disp.astype(np.float32))


def test_read_middlebury_infers_size_and_reads_dmin(tmp_path):
    disp = _middlebury_scene(tmp_path / 'HalfSize' / 'Baby1', dmin=300)
    f = ds.read_middlebury(tmp_path / 'HalfSize' / 'Baby1', size_factor=None)
    assert f['size_factor'] == 2 and f['dmin'] == 300.0
    np.testing.assert_allclose(f['disparity'], disp / 2.0, rtol=1e-6)
    f5 = ds.read_middlebury(tmp_path / 'HalfSize' / 'Baby1', size_factor=2, view=5)
    np.testing.assert_allclose(f5['disparity'], disp[:, ::-1] / 2.0, rtol=1e-6)


def test_list_middlebury(tmp_path):
    _middlebury_scene(tmp_path / 'ThirdSize' / 'Reindeer')
    _middlebury_scene(tmp_path / 'ThirdSize' / 'Laundry')
    (tmp_path / 'ThirdSize' / 'Empty').mkdir()
    found = ds.list_middlebury(tmp_path)
    assert [os.path.basename(p) for p in found] == ['Laundry', 'Reindeer']
    assert ds.list_middlebury(tmp_path, 'HalfSize') == []
    assert ds.MIDDLEBURY_2005 == ('Art', 'Books', 'Dolls', 'Laundry', 'Moebius', 'Reindeer')


def test_real_middlebury_scene():
    root = os.path.join(shared_data_dir(), 'middlebury')
    if not os.path.isdir(os.path.join(root, 'ThirdSize')):
        pytest.skip(f'real Middlebury data not present at {root}')
    scenes = ds.list_middlebury(root)
    assert scenes
    f = ds.read_middlebury(scenes[0])
    h, w = f['intensity'].shape
    assert h == 370 and f['rgb'].shape == (h, w, 3)
    # third-size disparities of these scenes stay under 256 / 3 pixels
    assert 10 < f['disparity'].max() <= 255 / 3
    assert 0.5 < f['valid'].mean() <= 1.0


# --- TUM ------------------------------------------------------------------------------------

def test_read_tum_units(tmp_path):
    raw = np.array([[0, 5000, 10000], [2500, 65535, 1]], dtype=np.uint16)
    cv2.imwrite(str(tmp_path / 'd.png'), raw)
    _write_rgb(tmp_path / 'c.png', _rgb(2, 3))
    f = ds.read_tum(tmp_path / 'c.png', tmp_path / 'd.png')
    assert f['depth'].dtype == np.float32
    np.testing.assert_allclose(f['depth'], raw / 5000.0, rtol=1e-6)
    assert f['depth'][0, 0] == 0
    assert tuple(f['rgb'][0, 0]) == (255, 0, 0) and f['intensity'].shape == (2, 3)
    f2 = ds.read_tum(tmp_path / 'c.png', tmp_path / 'd.png', depth_factor=1000.0)
    assert f2['depth'][0, 1] == pytest.approx(5.0)


def test_list_tum_frames(tmp_path):
    a = tmp_path / 'single'
    a.mkdir()
    for name in ('1.png', '1_depth.png', '2.png', '2_depth.png', 'X_color.png', 'X_depth.png', 'lonely.png'):
        (a / name).write_bytes(b'')
    seq = tmp_path / 'rgbd_dataset_freiburg1_xyz'
    (seq / 'rgb').mkdir(parents=True)
    (seq / 'depth').mkdir()
    for t in ('1305031102.175304', '1305031102.211214', '1305031109.000000'):
        (seq / 'rgb' / f'{t}.png').write_bytes(b'')
    for t in ('1305031102.160407', '1305031102.226738', '1305031105.000000'):
        (seq / 'depth' / f'{t}.png').write_bytes(b'')
    pairs = [(os.path.relpath(c, tmp_path), os.path.relpath(d, tmp_path)) for c, d in ds.list_tum_frames(tmp_path)]
    assert pairs == [
        ('rgbd_dataset_freiburg1_xyz/rgb/1305031102.175304.png', 'rgbd_dataset_freiburg1_xyz/depth/1305031102.160407.png'),
        ('rgbd_dataset_freiburg1_xyz/rgb/1305031102.211214.png', 'rgbd_dataset_freiburg1_xyz/depth/1305031102.226738.png'),
        ('single/1.png', 'single/1_depth.png'),
        ('single/2.png', 'single/2_depth.png'),
        ('single/X_color.png', 'single/X_depth.png'),
    ]


# --- NYU ------------------------------------------------------------------------------------

def _write_nyu_pgm(path, raw, comment=False):
    h, w = raw.shape
    header = b'P5\n# kinect\n' if comment else b'P5 '
    header += f'{w} {h} 65535\n'.encode()
    path.write_bytes(header + raw.astype('<u2').tobytes())


@pytest.mark.parametrize('comment', [False, True])
def test_read_nyu_raw_little_endian_and_metres(tmp_path, comment):
    raw = np.array([[839, 1000, 2047], [1092, 1093, 900]], dtype=np.uint16)
    _write_nyu_pgm(tmp_path / 'd.pgm', raw, comment)
    rgb = _rgb(2, 3)
    assert cv2.imwrite(str(tmp_path / 'r.ppm'), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    f = ds.read_nyu_raw(tmp_path / 'r.ppm', tmp_path / 'd.pgm')
    np.testing.assert_array_equal(f['raw'], raw)          # not byte-swapped
    expected = np.where((raw < 2047) & (raw < 1092.5), 351.3 / (1092.5 - raw.astype(np.float64)), 0)
    np.testing.assert_allclose(f['depth'], expected, rtol=1e-5)
    assert f['depth'][0, 0] == pytest.approx(1.3858, abs=1e-3)
    assert f['depth'][0, 2] == 0 and f['depth'][1, 1] == 0
    assert f['registered'] is False and f['K_depth'][0, 0] != f['K_rgb'][0, 0]
    np.testing.assert_array_equal(f['rgb'], rgb)


def test_read_nyu_raw_rejects_8bit(tmp_path):
    (tmp_path / 'd.pgm').write_bytes(b'P5 2 1 255\n\x01\x02')
    with pytest.raises(ValueError):
        ds._read_pgm16(tmp_path / 'd.pgm')


def test_nyu_labeled_without_h5py_says_so(tmp_path):
    try:
        import h5py  # noqa: F401
        pytest.skip('h5py is installed; the reader itself is tested below')
    except ImportError:
        pass
    with pytest.raises(ImportError, match='h5py'):
        ds.read_nyu_v2_labeled(tmp_path / 'nyu_depth_v2_labeled.mat', 0)


def test_nyu_labeled_layout(tmp_path):
    h5py = pytest.importorskip('h5py')
    rgb = _rgb(4, 5)
    depth = np.linspace(0.5, 9.0, 20, dtype=np.float32).reshape(4, 5)
    with h5py.File(tmp_path / 'l.mat', 'w') as f:   # MATLAB v7.3 keeps column-major order
        f['images'] = np.stack([np.zeros_like(rgb), rgb]).transpose(0, 3, 2, 1)
        f['depths'] = np.stack([np.zeros_like(depth), depth]).transpose(0, 2, 1)
    out = ds.read_nyu_v2_labeled(tmp_path / 'l.mat', 1)
    np.testing.assert_array_equal(out['rgb'], rgb)
    np.testing.assert_array_equal(out['depth'], depth)


# --- SceneNet, KITTI --------------------------------------------------------------------------

def test_read_scenenet_ray_length_to_z(tmp_path):
    h, w = 24, 32
    K = ds.scenenet_intrinsics(h, w)
    x = (np.arange(w) - K[0, 2]) / K[0, 0]
    y = (np.arange(h) - K[1, 2]) / K[1, 1]
    ray_len = np.sqrt(1 + x[None] ** 2 + y[:, None] ** 2)
    raw = np.rint(2000.0 * ray_len).astype(np.uint16)   # a wall 2 m ahead, stored as ray length in mm
    raw[0, 0] = 0
    cv2.imwrite(str(tmp_path / 'd.png'), raw)
    assert cv2.imwrite(str(tmp_path / 'p.jpg'), _rgb(h, w))
    f = ds.read_scenenet(tmp_path / 'd.png', tmp_path / 'p.jpg')
    assert f['depth'].dtype == np.float32 and f['intensity'].shape == (h, w)
    np.testing.assert_allclose(f['depth'][raw > 0], 2.0, atol=1e-3)
    assert f['depth'][0, 0] == 0
    flat = ds.read_scenenet(tmp_path / 'd.png', tmp_path / 'p.jpg', to_z=False)
    np.testing.assert_allclose(flat['depth'], raw / 1000.0, rtol=1e-6)
    # 60 x 45 degree field of view
    assert 2 * np.degrees(np.arctan(w / 2 / K[0, 0])) == pytest.approx(60.0)
    assert 2 * np.degrees(np.arctan(h / 2 / K[1, 1])) == pytest.approx(45.0)


def test_read_kitti_depth_completion(tmp_path):
    gt = np.array([[0, 256, 2560], [25600, 300, 0]], dtype=np.uint16)
    velo = np.array([[0, 0, 2560], [0, 0, 0]], dtype=np.uint16)
    cv2.imwrite(str(tmp_path / 'g.png'), gt)
    cv2.imwrite(str(tmp_path / 'v.png'), velo)
    _write_rgb(tmp_path / 'i.png', _rgb(2, 3))
    f = ds.read_kitti_depth_completion(tmp_path / 'v.png', tmp_path / 'g.png', tmp_path / 'i.png')
    np.testing.assert_allclose(f['depth'], gt / 256.0)
    np.testing.assert_allclose(f['sparse'], velo / 256.0)
    np.testing.assert_array_equal(f['mask'], velo > 0)
    assert f['depth'][1, 0] == pytest.approx(100.0)


def test_reader_errors_on_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        ds.read_tum(tmp_path / 'nope.png', tmp_path / 'nope_depth.png')


# --- training sampler -------------------------------------------------------------------------

class _RampSource:
    """A small frame (smaller than the crop) with a hole, to exercise resizing and validity."""

    def draw(self, rng):
        depth = np.tile(np.linspace(1.0, 4.0, 40, dtype=np.float32), (30, 1))
        depth[:, :6] = 0
        intensity = (np.random.default_rng(int(rng.integers(1 << 30))).random((30, 40)) * 255).astype(np.uint8)
        return dict(depth=depth, intensity=intensity)


def _check_example(x, crop, densities):
    assert set(x) == {'gt', 'sparse', 'mask', 'intensity'}
    assert x['gt'].shape == crop and x['gt'].dtype == np.float32
    assert x['sparse'].shape == crop and x['sparse'].dtype == np.float32
    assert x['mask'].shape == crop and x['mask'].dtype == bool
    assert x['intensity'].shape == crop and x['intensity'].dtype == np.uint8
    assert not np.any(x['mask'] & (x['gt'] <= 0))
    assert np.all(x['sparse'][~x['mask']] == 0) and np.all(x['sparse'][x['mask']] > 0)
    assert densities[0] - 0.011 <= x['mask'].mean() <= densities[1] + 0.011


def test_sampler_shapes_and_masks():
    crop, dens = (48, 64), (0.05, 0.2)
    sampler = ds.TrainingSampler([ds.SyntheticSource(60, 80), _RampSource()], crop=crop, densities=dens, seed=1)
    rng = np.random.default_rng(0)
    for _ in range(12):
        _check_example(sampler.sample(rng), crop, dens)


@pytest.mark.parametrize('mode', ['gradient', 'uniform'])
def test_sampler_exact_modes_copy_gt(mode):
    sampler = ds.TrainingSampler([ds.SyntheticSource(60, 80)], crop=(48, 64), mask_modes=(mode,),
                                 densities=(0.1, 0.1), seed=2)
    x = sampler.sample()
    np.testing.assert_array_equal(x['sparse'][x['mask']], x['gt'][x['mask']])
    assert abs(x['mask'].mean() - 0.1) <= 0.01


def test_sampler_resizes_small_frames_up():
    sampler = ds.TrainingSampler([_RampSource()], crop=(60, 100), augment=False, seed=0)
    x = sampler.sample()
    assert x['gt'].shape == (60, 100)
    # the ramp survives nearest-neighbour resizing: values come from the source, monotone along rows
    row = x['gt'][10][x['gt'][10] > 0]
    assert row.min() >= 1.0 and row.max() <= 4.0 and np.all(np.diff(row) >= 0)


def test_sampler_reproducible_and_picklable():
    sources = [ds.SyntheticSource(60, 80, pool_size=2), _RampSource()]
    sampler = ds.TrainingSampler(sources, crop=(48, 64), seed=3)
    sampler.sample(np.random.default_rng(9))                      # fills the pool
    clone = pickle.loads(pickle.dumps(sampler))
    assert clone.sources[0]._pool is None                        # caches are not shipped to workers
    a = sampler.sample(np.random.default_rng(4))
    b = clone.sample(np.random.default_rng(4))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    w0, w1 = sampler.worker_rng(0), sampler.worker_rng(1)
    assert w0.random() != w1.random()


def test_sampler_with_middlebury_source(tmp_path):
    _middlebury_scene(tmp_path / 'ThirdSize' / 'Books', h=40, w=50)
    source = ds.MiddleburySource(ds.list_middlebury(tmp_path), size_factor=3)
    frame = source.draw(np.random.default_rng(0))
    assert frame['depth'].dtype == np.float32 and frame['intensity'].shape == (40, 50)
    sampler = ds.TrainingSampler([source], crop=(32, 32), seed=0)
    x = sampler.sample()
    _check_example(x, (32, 32), (0.05, 0.2))
    assert pickle.loads(pickle.dumps(source))._cache == {}


def test_sampler_rejects_bad_config():
    with pytest.raises(ValueError):
        ds.TrainingSampler([], crop=(8, 8))
    with pytest.raises(ValueError):
        ds.TrainingSampler([_RampSource()], mask_modes=('magic',))
    with pytest.raises(ValueError):
        ds.TrainingSampler([_RampSource()], densities=(0.3, 0.1))
    assert set(MASK_MODES) == {'gradient', 'uniform', 'lsd'}


class _FlatSource:
    """A fronto-parallel wall at depth 2 with a hole, and a flat grey image."""

    def draw(self, rng):
        depth = np.full((60, 80), 2.0, np.float32)
        depth[20:30, 30:40] = 0.0
        return dict(depth=depth, intensity=np.full((60, 80), 128, np.uint8))


def test_sampler_tilt_adds_a_plane_and_keeps_holes():
    flat = ds.TrainingSampler([_FlatSource()], crop=(60, 80), mask_modes=('uniform',), seed=5)
    tilted = ds.TrainingSampler([_FlatSource()], crop=(60, 80), mask_modes=('uniform',), seed=5, tilt=0.8)
    slopes = []
    for seed in range(8):
        a, b = flat.sample(np.random.default_rng(seed)), tilted.sample(np.random.default_rng(seed))
        np.testing.assert_array_equal(a['gt'] > 0, b['gt'] > 0)          # unknown stays unknown
        np.testing.assert_array_equal(a['gt'][a['gt'] > 0], 2.0)          # without tilt: the wall as drawn
        known = b['gt'] > 0
        assert b['gt'][known].min() >= 0.2 * 2.0 - 1e-5                   # stays positive, at least a fifth
        # a plane: second differences vanish on the known pixels of the rows and columns
        rows = np.diff(b['gt'][:, :30], 2, axis=1)
        np.testing.assert_allclose(rows, 0.0, atol=1e-4)
        slope = np.hypot(*np.gradient(b['gt'][40:, :], axis=(0, 1))).mean()
        assert slope <= 0.8 * 2.0 / 80 * 1.01                            # at most tilt x median per longer side
        slopes.append(slope)
        np.testing.assert_array_equal(b['sparse'][b['mask']], b['gt'][b['mask']])   # samples from the tilted depth
    assert max(slopes) > 0.3 * 0.8 * 2.0 / 80                            # it does tilt


def test_sampler_rejects_negative_tilt():
    with pytest.raises(ValueError, match='tilt'):
        ds.TrainingSampler([_FlatSource()], tilt=-1.0)
