"""FrameProcessor on generated arrays: every encoding path, units, cloud, and every FrameError key.

Runs a real ONNX Runtime session of a tiny untrained network exported with the project's export
code. That network starts from a parameter-free pre-fill of the known values, so a plane comes back
as (nearly) the same plane, which is what the value checks rely on.
"""
import math

import numpy as np
import pytest

from ros2_depth_interp.core import pipeline
from ros2_depth_interp.core.geometry import CameraIntrinsics
from ros2_depth_interp.core.inference import DepthInterpolator
from ros2_depth_interp.core.pipeline import FrameError, FrameProcessor, PipelineConfig

from node_helpers import plane_frame, tiny_model

H, W = 48, 64
K = CameraIntrinsics(fx=50.0, fy=55.0, cx=31.5, cy=23.5)


@pytest.fixture(scope='module')
def interpolator(tmp_path_factory):
    path = tiny_model(tmp_path_factory.mktemp('model'))
    return DepthInterpolator(path, providers=['CPUExecutionProvider'], threads=1)


@pytest.fixture
def processor(interpolator):
    return FrameProcessor(interpolator, PipelineConfig())


@pytest.fixture(scope='module')
def plane():
    return plane_frame(H, W, depth_m=2.0, density=0.1, seed=1)


def assert_plane(result, depth_m, rtol=0.05):
    assert result.dense_depth.shape == (H, W) and result.dense_depth.dtype == np.float32
    assert np.isfinite(result.dense_depth).all()
    np.testing.assert_allclose(result.dense_depth, depth_m, rtol=rtol)
    assert result.confidence.shape == (H, W) and result.confidence.dtype == np.float32
    assert result.confidence.min() >= 0.0 and result.confidence.max() <= 1.0


def test_metric_32fc1_plane_and_cloud_geometry(processor, plane):
    sparse, mask, intensity = plane
    result = processor.process(sparse, '32FC1', intensity, 'mono8', mask, K)
    assert_plane(result, 2.0)
    assert result.input_density == pytest.approx(np.count_nonzero(mask) / mask.size)
    assert set(result.timings) == {'convert', 'normalize', 'infer', 'cloud'}
    assert all(t >= 0 for t in result.timings.values())

    cloud = result.cloud
    assert cloud.shape == (H, W, 4) and cloud.dtype == np.float32
    z = cloud[:, :, 2]
    np.testing.assert_allclose(z, result.dense_depth, rtol=1e-6)
    for v, u in [(0, 0), (10, 50), (H - 1, W - 1), (23, 31)]:
        np.testing.assert_allclose(cloud[v, u, 0], (u - K.cx) / K.fx * z[v, u], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(cloud[v, u, 1], (v - K.cy) / K.fy * z[v, u], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(cloud[:, :, 3], intensity.astype(np.float32))


def test_measured_pixels_come_back_close_on_a_ramp(processor):
    rng = np.random.default_rng(3)
    ramp = np.linspace(1.0, 4.0, W, dtype=np.float32)[None, :].repeat(H, axis=0)
    known = rng.random((H, W)) < 0.15
    sparse = np.where(known, ramp, 0).astype(np.float32)
    intensity = rng.integers(0, 256, (H, W), dtype=np.uint8)
    result = processor.process(sparse, '32FC1', intensity, 'mono8', None, None)
    np.testing.assert_allclose(result.dense_depth[known], ramp[known], rtol=0.05)
    assert np.isfinite(result.dense_depth).all()


@pytest.mark.parametrize('scale, raw_value', [(0.001, 2000), (0.0001, 20000)])
def test_16uc1_is_scaled_to_metres(interpolator, plane, scale, raw_value):
    sparse, mask, intensity = plane
    raw = np.where(mask > 0, raw_value, 0).astype(np.uint16)
    processor = FrameProcessor(interpolator, PipelineConfig(depth_scale=scale))
    assert_plane(processor.process(raw, '16UC1', intensity, 'mono8', mask, K), 2.0)


def test_64fc1_is_metres(processor, plane):
    sparse, mask, intensity = plane
    assert_plane(processor.process(sparse.astype(np.float64), '64FC1', intensity, 'mono8', mask, K), 2.0)


def test_inverse_depth_becomes_depth_in_reciprocal_units(interpolator, plane):
    sparse, mask, intensity = plane
    inverse = np.where(mask > 0, np.float32(0.5), np.float32(0))   # 1/2 per unit -> depth 2 units
    processor = FrameProcessor(interpolator, PipelineConfig(input_inverse_depth=True))
    result = processor.process(inverse, '32FC1', intensity, 'mono8', mask, K)
    assert_plane(result, 2.0)
    np.testing.assert_allclose(result.cloud[:, :, 2], result.dense_depth, rtol=1e-6)


def test_inverse_depth_keeps_relative_structure(interpolator):
    rng = np.random.default_rng(5)
    depth = np.linspace(1.0, 3.0, H, dtype=np.float32)[:, None].repeat(W, axis=1)
    known = rng.random((H, W)) < 0.2
    inverse = np.where(known, 1.0 / depth, 0).astype(np.float32)
    processor = FrameProcessor(interpolator, PipelineConfig(input_inverse_depth=True, use_mask=False))
    result = processor.process(inverse, '32FC1', np.zeros((H, W), np.uint8), 'mono8', None, None)
    np.testing.assert_allclose(result.dense_depth[known], depth[known], rtol=0.05)


@pytest.mark.parametrize('encoding', ['mono8', 'mono16', 'rgb8', 'bgr8', 'rgba8', 'bgra8'])
def test_every_intensity_encoding(processor, plane, encoding):
    sparse, mask, _ = plane
    grey = np.full((H, W), 77, np.uint8)
    image = {
        'mono8': grey,
        'mono16': grey.astype(np.uint16) << 8,
        'rgb8': np.dstack([grey] * 3), 'bgr8': np.dstack([grey] * 3),
        'rgba8': np.dstack([grey] * 3 + [np.full_like(grey, 255)]),
        'bgra8': np.dstack([grey] * 3 + [np.zeros_like(grey)]),
    }[encoding]
    result = processor.process(sparse, '32FC1', image, encoding, mask, K)
    assert_plane(result, 2.0)
    np.testing.assert_array_equal(result.cloud[:, :, 3], 77.0)


def test_mask_selection(interpolator, plane):
    sparse, mask, intensity = plane
    full = np.full((H, W), 2.0, np.float32)
    with_mask = FrameProcessor(interpolator, PipelineConfig(use_mask=True))
    result = with_mask.process(full, '32FC1', intensity, 'mono8', mask, None)
    np.testing.assert_array_equal(result.known, mask > 0)
    # no mask message: every valid depth is known
    result = with_mask.process(sparse, '32FC1', intensity, 'mono8', None, None)
    np.testing.assert_array_equal(result.known, sparse > 0)
    # use_mask false ignores a mask that is passed anyway
    without = FrameProcessor(interpolator, PipelineConfig(use_mask=False))
    result = without.process(full, '32FC1', intensity, 'mono8', np.zeros((H, W), np.uint8), None)
    assert result.input_density == 1.0


def test_nan_inf_and_negative_are_unknown(processor, plane):
    sparse, mask, intensity = plane
    noisy = sparse.copy()
    noisy[0, :5] = np.nan
    noisy[1, :5] = np.inf
    noisy[2, :5] = -np.inf
    noisy[3, :5] = -1.0
    result = processor.process(noisy, '32FC1', intensity, 'mono8', None, K)
    assert result.nonfinite_pixels == 15
    assert not result.known[:4, :5].any()
    assert_plane(result, 2.0)


def test_cloud_stride_filters_and_runtime_config_swap(processor, plane):
    sparse, mask, intensity = plane
    processor.config = processor.config.with_changes(cloud_stride=3)
    result = processor.process(sparse, '32FC1', intensity, 'mono8', mask, K)
    assert result.cloud.shape == (math.ceil(H / 3), math.ceil(W / 3), 4)
    np.testing.assert_allclose(result.cloud[:, :, 2], result.dense_depth[::3, ::3], rtol=1e-6)
    v, u = 5, 7   # cloud index -> pixel (15, 21)
    np.testing.assert_allclose(result.cloud[v, u, 0], (3 * u - K.cx) / K.fx * result.cloud[v, u, 2], rtol=1e-5)

    processor.config = processor.config.with_changes(cloud_stride=1, max_depth=1.5)
    result = processor.process(sparse, '32FC1', intensity, 'mono8', mask, K)
    assert np.isnan(result.cloud[:, :, :3]).all()
    assert np.isfinite(result.dense_depth).all()        # filters touch the cloud only

    processor.config = processor.config.with_changes(max_depth=0.0, min_depth=2.5)
    assert np.isnan(processor.process(sparse, '32FC1', intensity, 'mono8', mask, K).cloud[:, :, :3]).all()

    processor.config = processor.config.with_changes(min_depth=0.0)
    first = processor.process(sparse, '32FC1', intensity, 'mono8', mask, K)
    threshold = float(np.median(first.confidence))
    processor.config = processor.config.with_changes(min_confidence=threshold)
    result = processor.process(sparse, '32FC1', intensity, 'mono8', mask, K)
    np.testing.assert_array_equal(np.isnan(result.cloud[:, :, 2]), result.confidence < threshold)


def test_no_cloud_without_intrinsics_or_when_off(interpolator, plane):
    sparse, mask, intensity = plane
    result = FrameProcessor(interpolator).process(sparse, '32FC1', intensity, 'mono8', mask, None)
    assert result.cloud is None and result.cloud_skipped == pipeline.CLOUD_NO_INTRINSICS
    assert_plane(result, 2.0)
    off = FrameProcessor(interpolator, PipelineConfig(publish_cloud=False))
    result = off.process(sparse, '32FC1', intensity, 'mono8', mask, K)
    assert result.cloud is None and result.cloud_skipped is None


def _bad_cases():
    sparse, mask, intensity = plane_frame(H, W, 2.0, 0.1, seed=1)
    disjoint = np.where(sparse > 0, 0, 255).astype(np.uint8)
    return [
        ('depth as mono8', (mask, 'mono8', intensity, 'mono8', mask), 'bad_encoding'),
        ('depth with 3 channels', (np.dstack([sparse] * 3), '32FC3', intensity, 'mono8', mask), 'bad_encoding'),
        ('image yuv422', (sparse, '32FC1', np.zeros((H, W, 2), np.uint8), 'yuv422', mask), 'bad_encoding'),
        ('image dtype lies', (sparse, '32FC1', intensity.astype(np.float32), 'mono8', mask), 'bad_encoding'),
        ('mask 16UC1', (sparse, '32FC1', intensity, 'mono8', mask.astype(np.uint16)), 'bad_encoding'),
        ('image smaller', (sparse, '32FC1', intensity[:-8], 'mono8', mask), 'size_mismatch'),
        ('mask wider', (sparse, '32FC1', intensity, 'mono8', np.pad(mask, ((0, 0), (0, 4)))), 'size_mismatch'),
        ('empty depth', (np.zeros((0, 0), np.float32), '32FC1', intensity, 'mono8', mask), 'empty_depth'),
        ('all zero depth', (np.zeros((H, W), np.float32), '32FC1', intensity, 'mono8', mask), 'no_valid_depth'),
        ('all NaN depth', (np.full((H, W), np.nan, np.float32), '32FC1', intensity, 'mono8', mask), 'no_valid_depth'),
        ('all negative depth', (-np.ones((H, W), np.float32), '32FC1', intensity, 'mono8', mask), 'no_valid_depth'),
        ('empty mask', (sparse, '32FC1', intensity, 'mono8', np.zeros((H, W), np.uint8)), 'mask_empty'),
        ('disjoint mask', (sparse, '32FC1', intensity, 'mono8', disjoint), 'no_known_pixel'),
        ('1x1 frame', (np.ones((1, 1), np.float32), '32FC1', np.zeros((1, 1), np.uint8), 'mono8', None),
         'inference_input'),
    ]


@pytest.mark.parametrize('label, args, key', _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_bad_frames_raise_frame_error_with_counter_key(processor, label, args, key):
    depth, depth_enc, image, image_enc, mask = args
    mask_encoding = '16UC1' if mask is not None and mask.dtype == np.uint16 else 'mono8'
    with pytest.raises(FrameError) as info:
        processor.process(depth, depth_enc, image, image_enc, mask, K, mask_encoding=mask_encoding)
    assert info.value.reason_key == key
    assert key in pipeline.REASONS
    assert info.value.message and key in str(info.value)


def test_processor_survives_bad_frames(processor, plane):
    sparse, mask, intensity = plane
    for _ in range(2):
        with pytest.raises(FrameError):
            processor.process(np.zeros((H, W), np.float32), '32FC1', intensity, 'mono8', mask, K)
        assert_plane(processor.process(sparse, '32FC1', intensity, 'mono8', mask, K), 2.0)


def test_fallback_intrinsics():
    assert pipeline.fallback_intrinsics(0.0, 0.0, 0.0, 0.0, W, H) is None
    centred = pipeline.fallback_intrinsics(50.0, 55.0, 0.0, 0.0, W, H)
    assert (centred.cx, centred.cy) == ((W - 1) / 2.0, (H - 1) / 2.0)
    explicit = pipeline.fallback_intrinsics(50.0, 55.0, 30.0, 20.0, W, H)
    assert explicit == CameraIntrinsics(50.0, 55.0, 30.0, 20.0)


def test_intrinsics_scaled_to_the_depth_size():
    k = [500.0, 0, 319.5, 0, 510.0, 239.5, 0, 0, 1]
    same = pipeline.intrinsics_for_size(k, 640, 480, 640, 480)
    assert same == CameraIntrinsics(500.0, 510.0, 319.5, 239.5)
    tenth = pipeline.intrinsics_for_size(k, 640, 480, 64, 48)
    assert tenth.fx == pytest.approx(50.0) and tenth.fy == pytest.approx(51.0)
    assert tenth.cx == pytest.approx(31.5) and tenth.cy == pytest.approx(23.5)
    with pytest.raises(ValueError):
        pipeline.intrinsics_for_size([0.0, 0, 319.5, 0, 510.0, 239.5, 0, 0, 1], 640, 480, 64, 48)
    with pytest.raises(ValueError):
        pipeline.intrinsics_for_size([-5.0, 0, 319.5, 0, 510.0, 239.5, 0, 0, 1], 640, 480, 640, 480)


def test_config_from_params_takes_the_pipeline_subset():
    from ros2_depth_interp.core import params
    values = params.defaults()
    values.update(cloud_stride=4, input_inverse_depth=True, min_confidence=0.3)
    config = PipelineConfig.from_params(values)
    assert (config.cloud_stride, config.input_inverse_depth, config.min_confidence) == (4, True, 0.3)
    for name in PipelineConfig.__dataclass_fields__:
        assert name in params.SPECS   # every pipeline setting is a node parameter of the same name
