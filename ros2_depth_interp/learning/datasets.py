"""Readers for real depth data sets, and the sampler that turns frames into training examples.

Every reader takes file paths (the data never enters the repository; see docs/data.md for where the
shared copies are) and returns a dict with at least ``intensity`` (uint8 (H, W)) and ``depth``
(float32 (H, W), metres, 0 = invalid); Middlebury gives ``disparity`` instead of ``depth``. The unit
conventions, each taken from the data folder's README or the data set's documentation, are stated
in the reader's docstring, since a wrong scale silently ruins training and evaluation.

Training examples come from :class:`TrainingSampler`, which draws a frame from one of several
*sources* (anything with ``draw(rng) -> dict(depth, intensity)``), augments it, crops it and
simulates a semi-dense SLAM input with :func:`ros2_depth_interp.learning.masks.make_semi_dense`.
"""
import glob
import os

import cv2
import numpy as np

from . import masks as _masks
from .masks import MASK_MODES
from .synthetic import render_scene

MIDDLEBURY_2005 = ('Art', 'Books', 'Dolls', 'Laundry', 'Moebius', 'Reindeer')
# Stored Middlebury disparities are in full-size pixels; divide by this for the size you hold.
MIDDLEBURY_SIZE_FACTORS = {'ThirdSize': 3, 'HalfSize': 2, 'FullSize': 1}
# The paper's Table-2 scenes: kept back for independent evaluation (not in the shared data).
KEPT_BACK_SCENES = ('Art', 'Dolls', 'Moebius', 'Aloe')
# Whole scene families held out of training for validation and evaluation: every sibling scene and
# both views of a family (Lampshade, Midd, Plastic from 2006; Laundry, Reindeer from 2005).
HELD_OUT_SCENES = ('Lampshade1', 'Lampshade2', 'Midd1', 'Midd2', 'Plastic', 'Laundry', 'Reindeer')
# Middlebury 2005/2006 full-size focal length (px) and view1-view5 baseline (mm), for metric depth.
MIDDLEBURY_FOCAL_PX = 3740.0
MIDDLEBURY_BASELINE_MM = 160.0

TUM_DEPTH_FACTOR = 5000.0
NYU_RAW_INVALID = 2047
# NYU toolbox camera parameters (RGB and depth cameras are distinct: raw depth is NOT registered).
NYU_K_RGB = np.array([[518.85790117450188, 0, 325.58244941119034],
                      [0, 519.46961112127485, 253.73616633400465], [0, 0, 1]])
NYU_K_DEPTH = np.array([[582.62448167737955, 0, 313.04475870804731],
                        [0, 582.69103270988637, 238.44389626620386], [0, 0, 1]])


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

def _imread(path, flags=cv2.IMREAD_UNCHANGED):
    img = cv2.imread(os.fspath(path), flags)
    if img is None:
        raise FileNotFoundError(f'cannot read image {path}')
    return img


def _read_rgb(path):
    """An 8-bit colour image as RGB uint8 (H, W, 3) (grey files are expanded)."""
    img = _imread(path, cv2.IMREAD_COLOR)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _read_u16(path):
    img = _imread(path)
    if img.dtype != np.uint16 or img.ndim != 2:
        raise ValueError(f'{path}: expected a single-channel 16-bit image, got {img.dtype} {img.shape}')
    return img


def rgb_to_intensity(rgb):
    """Luma (ITU-R 601, what cv2 and most SLAM front ends use) as uint8 (H, W)."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def _rgb_frame(rgb, **fields):
    return dict(rgb=rgb, intensity=rgb_to_intensity(rgb), **fields)


# ---------------------------------------------------------------------------------------------
# Middlebury 2005 / 2006
# ---------------------------------------------------------------------------------------------

def read_middlebury(scene_dir, size_factor=3, view=1):
    """One Middlebury scene: the left view and its ground-truth disparity.

    ``disp<view>.png`` stores the disparity in *full-size* pixels whatever the image size, so the
    disparity in the pixels of the image read is value / ``size_factor`` (3 ThirdSize, 2 HalfSize,
    1 FullSize; ``None`` infers it from the parent folder's name). Stored 0 means unknown.

    Returns ``dict(intensity, rgb, disparity float32 (0 = unknown), valid bool, name, size_factor,
    dmin)``; ``dmin`` (full-size pixels, from ``dmin.txt``, else None) gives metric depth as
    ``Z[mm] = MIDDLEBURY_FOCAL_PX * MIDDLEBURY_BASELINE_MM / (value + dmin)`` with the stored value.
    """
    scene_dir = os.fspath(scene_dir).rstrip('/\\')
    if size_factor is None:
        parent = os.path.basename(os.path.dirname(scene_dir))
        if parent not in MIDDLEBURY_SIZE_FACTORS:
            raise ValueError(f'cannot infer size_factor from folder {parent!r}; pass it')
        size_factor = MIDDLEBURY_SIZE_FACTORS[parent]
    rgb = _read_rgb(os.path.join(scene_dir, f'view{view}.png'))
    raw = _imread(os.path.join(scene_dir, f'disp{view}.png'), cv2.IMREAD_GRAYSCALE)
    if raw.shape != rgb.shape[:2]:
        raise ValueError(f'{scene_dir}: disparity {raw.shape} and view {rgb.shape[:2]} differ in size')
    dmin = None
    dmin_path = os.path.join(scene_dir, 'dmin.txt')
    if os.path.isfile(dmin_path):
        with open(dmin_path) as f:
            dmin = float(f.read().split()[0])
    valid = raw > 0
    disparity = np.where(valid, raw.astype(np.float32) / float(size_factor), 0).astype(np.float32)
    return _rgb_frame(rgb, disparity=disparity, valid=valid, name=os.path.basename(scene_dir),
                      size_factor=size_factor, dmin=dmin)


def list_middlebury(root, size='ThirdSize'):
    """Scene folders under ``root/size`` that hold view1.png and disp1.png, sorted by name."""
    base = os.path.join(os.fspath(root), size)
    return sorted(d for d in glob.glob(os.path.join(base, '*'))
                  if os.path.isfile(os.path.join(d, 'view1.png')) and os.path.isfile(os.path.join(d, 'disp1.png')))


# ---------------------------------------------------------------------------------------------
# TUM RGB-D
# ---------------------------------------------------------------------------------------------

def read_tum(color_path, depth_path, depth_factor=TUM_DEPTH_FACTOR):
    """A TUM RGB-D frame: 16-bit depth PNG registered to the colour image, value / 5000 = metres, 0 missing.

    Returns ``dict(rgb, intensity, depth float32 metres (0 = invalid))``.
    """
    rgb = _read_rgb(color_path)
    raw = _read_u16(depth_path)
    if raw.shape != rgb.shape[:2]:
        raise ValueError(f'TUM depth {raw.shape} and colour {rgb.shape[:2]} differ in size')
    return _rgb_frame(rgb, depth=(raw.astype(np.float32) / np.float32(depth_factor)))


def _tum_timestamp(path):
    try:
        return float(os.path.splitext(os.path.basename(path))[0])
    except ValueError:
        return None


def _associate_by_time(colors, depths, max_dt):
    """Pairs of TUM-native files (names are timestamps) whose stamps differ by at most ``max_dt`` s."""
    c = sorted((t, p) for p in colors if (t := _tum_timestamp(p)) is not None)
    d = sorted((t, p) for p in depths if (t := _tum_timestamp(p)) is not None)
    if not c or not d:
        return []
    d_times = np.array([t for t, _ in d])
    pairs = []
    for t, p in c:
        j = int(np.clip(np.searchsorted(d_times, t), 1, len(d_times) - 1)) if len(d_times) > 1 else 0
        if len(d_times) > 1 and abs(d_times[j - 1] - t) < abs(d_times[j] - t):
            j -= 1
        if abs(d_times[j] - t) <= max_dt:
            pairs.append((p, d[j][1]))
    return pairs


def list_tum_frames(root, max_dt=0.02):
    """(colour, depth) path pairs found anywhere under ``root``.

    Understands the TUM sequence layout (``rgb/<stamp>.png`` + ``depth/<stamp>.png``, associated by
    nearest timestamp within ``max_dt`` seconds) and single-frame layouts such as ``1.png`` +
    ``1_depth.png`` or ``X_color.png`` + ``X_depth.png``. Sorted, deterministic.
    """
    pairs = []
    for dirpath, dirnames, filenames in os.walk(os.fspath(root)):
        dirnames.sort()
        if 'rgb' in dirnames and 'depth' in dirnames:
            pairs += _associate_by_time(glob.glob(os.path.join(dirpath, 'rgb', '*.png')),
                                        glob.glob(os.path.join(dirpath, 'depth', '*.png')), max_dt)
            dirnames[:] = [n for n in dirnames if n not in ('rgb', 'depth')]
        names = set(filenames)
        for name in sorted(filenames):
            if not name.endswith('_depth.png'):
                continue
            stem = name[:-len('_depth.png')]
            for candidate in (stem + '.png', stem + '_color.png', stem + '_rgb.png'):
                if candidate in names:
                    pairs.append((os.path.join(dirpath, candidate), os.path.join(dirpath, name)))
                    break
    return sorted(pairs)


# ---------------------------------------------------------------------------------------------
# NYU Depth v2
# ---------------------------------------------------------------------------------------------

def _read_pgm16(path, byteorder='<'):
    """A binary 16-bit PGM whose samples are in ``byteorder`` (NYU raw: little-endian despite the
    standard's big-endian rule, so generic readers return byte-swapped values)."""
    with open(path, 'rb') as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b'#':          # comment line
            pos = data.index(b'\n', pos) + 1
            continue
        end = pos
        while end < len(data) and not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    magic, width, height, maxval = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    if magic != b'P5' or maxval < 256:
        raise ValueError(f'{path}: not a 16-bit binary PGM ({magic!r}, maxval {maxval})')
    pos += 1                                      # exactly one whitespace byte before the samples
    n = width * height
    if len(data) - pos < 2 * n:
        raise ValueError(f'{path}: truncated ({len(data) - pos} bytes for {n} samples)')
    return np.frombuffer(data, dtype=np.dtype(byteorder + 'u2'), count=n, offset=pos).reshape(height, width)


def nyu_raw_to_metres(raw):
    """NYU toolbox relation for raw Kinect counts: depth_m = 351.3 / (1092.5 - raw); 2047 = no reading."""
    raw = np.asarray(raw)
    denom = 1092.5 - raw.astype(np.float32)
    valid = (raw < NYU_RAW_INVALID) & (denom > 0)
    with np.errstate(divide='ignore'):
        return np.where(valid, np.float32(351.3) / denom, 0).astype(np.float32)


def read_nyu_raw(color_ppm, depth_pgm, byteorder='<'):
    """A raw NYU Depth v2 frame (``r-*.ppm`` colour + ``d-*.pgm`` Kinect counts).

    The depth is in the *depth camera's* image, NOT registered to the colour image (different
    intrinsics ``K_depth`` / ``K_rgb`` and an extrinsic offset), so the pair is only good for
    qualitative use unless registered first. ``registered`` is False to make that explicit.

    Returns ``dict(rgb, intensity, depth float32 metres (0 = invalid), raw uint16, K_rgb, K_depth,
    registered=False)``.
    """
    rgb = _read_rgb(color_ppm)
    raw = _read_pgm16(depth_pgm, byteorder)
    return _rgb_frame(rgb, depth=nyu_raw_to_metres(raw), raw=raw, K_rgb=NYU_K_RGB.copy(),
                      K_depth=NYU_K_DEPTH.copy(), registered=False)


def read_nyu_v2_labeled(mat_path, index):
    """Frame ``index`` of ``nyu_depth_v2_labeled.mat`` (aligned RGB + depth in metres, in-painted).

    The file is MATLAB v7.3, i.e. HDF5, read with h5py (not a dependency of this package). MATLAB
    stores arrays column-major, so h5py sees ``images`` as (N, 3, W, H) and ``depths`` as (N, W, H).
    """
    try:
        import h5py
    except ImportError as exc:
        raise ImportError('reading the NYU v2 labeled .mat (MATLAB v7.3 = HDF5) needs h5py: '
                          'pip install h5py') from exc
    with h5py.File(os.fspath(mat_path), 'r') as f:
        rgb = np.ascontiguousarray(np.asarray(f['images'][index]).transpose(2, 1, 0)).astype(np.uint8)
        depth = np.ascontiguousarray(np.asarray(f['depths'][index]).T).astype(np.float32)
    depth[~(np.isfinite(depth) & (depth > 0))] = 0
    return _rgb_frame(rgb, depth=depth)


# ---------------------------------------------------------------------------------------------
# SceneNet RGB-D, KITTI depth completion
# ---------------------------------------------------------------------------------------------

def scenenet_intrinsics(height=240, width=320, hfov_deg=60.0, vfov_deg=45.0):
    """SceneNet RGB-D's pinhole (60 x 45 degree field of view, pixel centres at x + 0.5)."""
    fx = width / (2 * np.tan(np.radians(hfov_deg) / 2))
    fy = height / (2 * np.tan(np.radians(vfov_deg) / 2))
    return np.array([[fx, 0, width / 2 - 0.5], [0, fy, height / 2 - 0.5], [0, 0, 1]])


def read_scenenet(depth_png, photo_jpg, to_z=True):
    """A SceneNet RGB-D frame: 16-bit depth PNG in millimetres (0 = invalid) + the rendered photo.

    SceneNet stores the *Euclidean distance along each pixel's ray*, not the z coordinate; with
    ``to_z`` (default) it is converted to z-depth (what every other source here gives) with the
    data set's fixed intrinsics. Returns ``dict(rgb, intensity, depth float32 metres, K)``.
    """
    rgb = _read_rgb(photo_jpg)
    raw = _read_u16(depth_png)
    h, w = raw.shape
    K = scenenet_intrinsics(h, w)
    depth = raw.astype(np.float32) / np.float32(1000.0)
    if to_z:
        x = (np.arange(w) - K[0, 2]) / K[0, 0]
        y = (np.arange(h) - K[1, 2]) / K[1, 1]
        ray_len = np.sqrt(1.0 + x[None, :] ** 2 + y[:, None] ** 2).astype(np.float32)
        depth = depth / ray_len
    if rgb.shape[:2] != raw.shape:
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    return _rgb_frame(rgb, depth=depth.astype(np.float32), K=K)


def read_kitti_depth_completion(velodyne_png, groundtruth_png, image_png):
    """A KITTI depth-completion sample: uint16 PNGs with value / 256 = metres, 0 = no data.

    Returns ``dict(rgb, intensity, depth (ground truth), sparse (projected LiDAR), mask)`` where
    ``mask`` marks the LiDAR pixels.
    """
    rgb = _read_rgb(image_png)
    velo = _read_u16(velodyne_png).astype(np.float32) / np.float32(256.0)
    gt = _read_u16(groundtruth_png).astype(np.float32) / np.float32(256.0)
    if velo.shape != gt.shape or gt.shape != rgb.shape[:2]:
        raise ValueError('KITTI image, velodyne and ground truth differ in size')
    return _rgb_frame(rgb, depth=gt, sparse=velo, mask=velo > 0)


# ---------------------------------------------------------------------------------------------
# Training sources and sampler
# ---------------------------------------------------------------------------------------------

class SyntheticSource:
    """Procedural indoor frames (:func:`synthetic.render_scene`), a new scene per draw by default.

    ``pool_size`` > 0 renders that many scenes once per process (seeded by ``pool_seed``) and reuses
    them, for when rendering is the bottleneck; the pool is not pickled.
    """

    def __init__(self, height=240, width=320, pool_size=0, pool_seed=0):
        self.height, self.width = int(height), int(width)
        self.pool_size, self.pool_seed = int(pool_size), int(pool_seed)
        self._pool = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_pool'] = None
        return state

    def draw(self, rng):
        if self.pool_size <= 0:
            f = render_scene(rng, self.height, self.width)
            return dict(depth=f['depth'], intensity=f['intensity'])
        if self._pool is None:
            pool_rng = np.random.default_rng(self.pool_seed)
            self._pool = [render_scene(pool_rng, self.height, self.width) for _ in range(self.pool_size)]
        f = self._pool[int(rng.integers(len(self._pool)))]
        return dict(depth=f['depth'], intensity=f['intensity'])


class MiddleburySource:
    """Middlebury scenes with the ground-truth *disparity* as the 'depth' field.

    The network normalizes its input per frame and is scale-agnostic: any positive scalar field with
    depth-like structure works. Both views (disp1 for view1, disp5 for view5) are used when present.
    Images are read on first use and cached (a few MB for the third-size set).
    """

    def __init__(self, scene_dirs, size_factor=3):
        self.scene_dirs = [os.fspath(d) for d in scene_dirs]
        if not self.scene_dirs:
            raise ValueError('MiddleburySource needs at least one scene folder')
        self.size_factor = size_factor
        self._cache = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_cache'] = {}
        return state

    def _frame(self, scene_dir, view):
        key = (scene_dir, view)
        if key not in self._cache:
            f = read_middlebury(scene_dir, self.size_factor, view=view)
            self._cache[key] = dict(depth=f['disparity'], intensity=f['intensity'])
        return self._cache[key]

    def draw(self, rng):
        scene_dir = self.scene_dirs[int(rng.integers(len(self.scene_dirs)))]
        view = 5 if (rng.random() < 0.5 and os.path.isfile(os.path.join(scene_dir, 'disp5.png'))) else 1
        f = self._frame(scene_dir, view)
        return dict(depth=f['depth'].copy(), intensity=f['intensity'].copy())


class TrainingSampler:
    """Turns source frames into training examples: ``dict(gt, sparse, mask, intensity)``.

    Per example: pick a source (uniformly, or by ``weights``), draw a frame, bring it to ``crop``
    size, augment (horizontal flip, brightness/contrast jitter of the intensity), then pick a mask
    mode from ``mask_modes`` and a density uniformly in ``densities`` and build the semi-dense input.
    The mask is computed on the *augmented* intensity, as a SLAM front end would see it.

    ``tilt`` (0: off) adds a random plane to the depth of each example: a slope of up to ``tilt`` x
    the median depth across the crop's longer side, in a random direction, raised where needed so that
    the smallest depth stays at least a fifth of the median. Planes stay planes and depth edges stay
    where they are, but the depths a network could learn by heart for a scene change with every
    example, so what it can learn is how depth follows the image.

    Crop policy: a frame smaller than the crop in either dimension is first *resized up* (keeping its
    aspect ratio; nearest-neighbour for depth, so no depth is invented across edges or holes), then a
    random window (centre window without ``augment``) is cut out. Windows with under 30 % valid depth
    are redrawn (a few tries).

    Picklable (sources drop their caches when pickled); in a torch DataLoader each worker should pass
    its own generator, e.g. ``sampler.sample(sampler.worker_rng(worker_id))`` once per worker.
    """

    def __init__(self, sources, crop=(240, 320), mask_modes=MASK_MODES, densities=(0.05, 0.2), seed=0,
                 augment=True, weights=None, tilt=0.0):
        self.sources = list(sources)
        if not self.sources:
            raise ValueError('TrainingSampler needs at least one source')
        self.crop = (int(crop[0]), int(crop[1]))
        self.mask_modes = tuple(mask_modes)
        for mode in self.mask_modes:
            if mode not in MASK_MODES:
                raise ValueError(f'unknown mask mode {mode!r}; expected one of {MASK_MODES}')
        lo, hi = float(densities[0]), float(densities[1])
        if not 0 < lo <= hi <= 1:
            raise ValueError(f'densities must satisfy 0 < low <= high <= 1, got {densities}')
        self.densities = (lo, hi)
        self.seed = int(seed)
        self.augment = bool(augment)
        self.tilt = float(tilt)
        if not self.tilt >= 0:
            raise ValueError(f'tilt must be a non-negative number, got {tilt}')
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (len(self.sources),) or np.any(weights < 0) or weights.sum() <= 0:
                raise ValueError('weights: one non-negative number per source, not all zero')
            weights = weights / weights.sum()
        self.weights = weights
        self.rng = np.random.default_rng(self.seed)

    def worker_rng(self, worker_id):
        """An independent, reproducible generator for DataLoader worker ``worker_id``."""
        return np.random.default_rng([self.seed, int(worker_id)])

    def _fit(self, depth, intensity):
        """Resize up (if needed) so that the crop fits."""
        ch, cw = self.crop
        h, w = depth.shape
        scale = max(ch / h, cw / w)
        if scale > 1:
            size = (max(cw, int(np.ceil(w * scale))), max(ch, int(np.ceil(h * scale))))
            depth = cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST)
            intensity = cv2.resize(intensity, size, interpolation=cv2.INTER_LINEAR)
        return depth, intensity

    def _crop(self, depth, intensity, rng):
        ch, cw = self.crop
        h, w = depth.shape
        for attempt in range(5):
            if self.augment:
                r0, c0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            else:
                r0, c0 = (h - ch) // 2, (w - cw) // 2
            d = depth[r0:r0 + ch, c0:c0 + cw]
            if not self.augment or np.count_nonzero(d > 0) >= 0.3 * d.size:
                break
        return d, intensity[r0:r0 + ch, c0:c0 + cw]

    def _jitter(self, intensity, rng):
        """Brightness/contrast jitter around the image mean, so the network does not key on absolute grey."""
        contrast = rng.uniform(0.7, 1.3)
        brightness = rng.uniform(-25.0, 25.0)
        img = intensity.astype(np.float32)
        mean = float(img.mean())
        img = (img - mean) * contrast + mean + brightness
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)

    def _tilted(self, depth, rng):
        """``depth`` plus a random plane (class docstring); unknown pixels (0) stay unknown."""
        valid = depth > 0
        if not self.tilt or not valid.any():
            return depth
        median = float(np.median(depth[valid]))
        h, w = depth.shape
        angle = rng.uniform(0.0, 2.0 * np.pi)
        slope = rng.uniform(0.0, self.tilt) * median / max(h, w)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        plane = slope * (np.cos(angle) * (xs - 0.5 * w) + np.sin(angle) * (ys - 0.5 * h))
        tilted = depth + plane
        lift = max(0.0, 0.2 * median - float(tilted[valid].min()))
        return np.where(valid, tilted + lift, 0.0).astype(np.float32)

    def sample(self, rng=None):
        rng = self.rng if rng is None else rng
        k = int(rng.choice(len(self.sources), p=self.weights))
        frame = self.sources[k].draw(rng)
        depth = np.asarray(frame['depth'], dtype=np.float32)
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)
        intensity = np.asarray(frame['intensity'])
        if intensity.ndim == 3:
            intensity = rgb_to_intensity(intensity)
        if intensity.dtype != np.uint8:
            raise ValueError(f'source {k} gave intensity of dtype {intensity.dtype}, expected uint8')
        depth, intensity = self._fit(depth, intensity)
        gt, intensity = self._crop(depth, intensity, rng)
        if self.augment:
            if rng.random() < 0.5:
                gt, intensity = gt[:, ::-1], intensity[:, ::-1]
            intensity = self._jitter(intensity, rng)
            gt = self._tilted(gt, rng)
        gt = np.ascontiguousarray(gt, dtype=np.float32)
        intensity = np.ascontiguousarray(intensity, dtype=np.uint8)
        mode = self.mask_modes[int(rng.integers(len(self.mask_modes)))]
        density = float(rng.uniform(*self.densities))
        sparse, mask = _masks.make_semi_dense(gt, intensity, mode, density, rng)
        return dict(gt=gt, sparse=sparse, mask=mask, intensity=intensity)
