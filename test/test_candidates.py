"""The candidate networks of the next design (learning/unet.py, presets 'unet', 'spn' and
'spn_coarse'; learning/geodesic.py, presets 'geodesic', 'geodesic_light', 'geodesic_harmonic',
'geodesic_half', 'geodesic_swept', 'geodesic_mixed', 'geodesic_corrected'; not shipped): they build from their configs,
keep measured pixels, follow image edges before training, and export to plain ONNX that matches
torch and that the node loads with the graph optimization the model asks for."""
import numpy as np
import pytest
import torch

from ros2_depth_interp.learning.export import export_onnx
from ros2_depth_interp.learning.model import PRESETS, build_model, config_from_dict
from ros2_depth_interp.learning.geodesic import GeodesicConfig
from ros2_depth_interp.learning.unet import CoarseSPNConfig, SPNConfig, UNetConfig

SMALL_SPN = SPNConfig(widths=(4, 6, 8, 8, 8), blocks=(0, 0, 1, 1, 1), propagation={5: 2, 3: 2, 1: 2},
                      full_iterations=2, full_width=4, lift_width=2)
SMALL_COARSE_SPN = CoarseSPNConfig(widths=(4, 6, 8, 8, 8), blocks=(0, 0, 1, 1, 1), propagation={5: 2, 3: 4, 2: 4})
SMALL_GEODESIC = GeodesicConfig(widths=(4, 6, 8, 8, 8), blocks=(0, 0, 1, 1, 1), distances=(32, 8, 2, 1))
SMALL_HARMONIC = GeodesicConfig(widths=(4, 6), blocks=(0, 1), distances=(32, 8, 2, 1), smoothing=(4, 1),
                                smoothing_rounds=2)
SMALL_HALF = GeodesicConfig(widths=(4, 6), blocks=(0, 1), distances=(16, 4, 1), smoothing=(2, 1), smoothing_rounds=2,
                            propagation_scale=2, colorization_steps=3, colorization_neighbours=4)
SMALL_MIXED = GeodesicConfig(widths=(4, 6), blocks=(0, 1), distances=(16, 4, 1), smoothing=(2, 1), smoothing_rounds=2,
                             propagation_scale=2, fine_distances=(2, 1), fine_smoothing=(1,), fine_smoothing_rounds=1,
                             colorization_steps=2, colorization_neighbours=4)
SMALL_CORRECTED = GeodesicConfig(widths=(4, 6), blocks=(0, 1), distances=(32, 8, 2, 1), smoothing=(4, 1),
                                 smoothing_rounds=2, colorization_steps=2, colorization_neighbours=4,
                                 correction_width=6, correction_dilations=(1, 2))
CANDIDATES = [PRESETS['unet_tiny'], SMALL_SPN, SMALL_COARSE_SPN, SMALL_GEODESIC, SMALL_HARMONIC, SMALL_HALF, SMALL_MIXED,
              SMALL_CORRECTED]
CANDIDATE_IDS = ['unet_tiny', 'spn_small', 'spn_coarse_small', 'geodesic_small', 'geodesic_harmonic_small',
                 'geodesic_half_small', 'geodesic_mixed_small', 'geodesic_corrected_small']


def _input(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    depth = (1.0 + 0.3 * (xx > w // 2) + 0.002 * yy).astype(np.float32)
    mask = (rng.random((h, w)) < 0.1).astype(np.float32)
    intensity = np.where(xx > w // 2, 0.7, 0.3).astype(np.float32)
    x = torch.from_numpy(np.stack([depth * mask, mask, intensity])[None])
    return x, depth, mask.astype(bool)


@pytest.mark.parametrize('config', CANDIDATES, ids=CANDIDATE_IDS)
def test_candidate_runs_on_its_stride_and_round_trips_its_config(config):
    model = build_model(config).eval()
    assert config_from_dict(config.to_dict()) == config
    x, depth, mask = _input(2 * model.stride, 3 * model.stride)
    with torch.no_grad():
        dense, confidence = model(x)
    assert dense.shape == confidence.shape == (1, 1, 2 * model.stride, 3 * model.stride)
    assert torch.isfinite(dense).all() and float(confidence.min()) >= 0 and float(confidence.max()) <= 1
    # untrained, the fill is a propagation of the measurements: close to them where they are
    error = np.abs(dense[0, 0].numpy() - depth)
    assert np.median(error[mask]) < 0.05


@pytest.mark.parametrize('config', [SMALL_SPN, SMALL_COARSE_SPN, SMALL_GEODESIC, SMALL_HALF, SMALL_MIXED],
                         ids=['spn_small', 'spn_coarse_small', 'geodesic_small', 'geodesic_half_small',
                              'geodesic_mixed_small'])
def test_propagation_follows_intensity_before_training(config):
    # the intensity prior of the propagation alone keeps the two surfaces apart: across the step
    # (columns 40-56) it is closer to the truth than the pull-push fill, which ignores intensity
    x, depth, mask = _input(64, 96, seed=1)
    with torch.no_grad():
        dense = build_model(config).eval()(x)[0][0, 0].numpy()
        pull_push = build_model(PRESETS['unet_tiny']).eval()(x)[0][0, 0].numpy()   # zero head: the fill
    left, right = dense[:, :40], dense[:, 56:]
    assert abs(float(np.median(left)) - 1.06) < 0.1 and abs(float(np.median(right)) - 1.36) < 0.1
    band = np.s_[:, 40:56]
    assert np.abs(dense - depth)[band].mean() < 0.85 * np.abs(pull_push - depth)[band].mean()


@pytest.mark.parametrize('config', CANDIDATES, ids=CANDIDATE_IDS)
def test_candidate_exports_to_plain_onnx_matching_torch(tmp_path, config):
    torch.manual_seed(0)
    model = build_model(config)
    for p in model.parameters():     # away from the zero-initialized heads
        torch.nn.init.normal_(p, std=0.02) if p.dim() > 1 else None
    rng = np.random.default_rng(2)
    sample = (rng.uniform(1, 3, (70, 90)).astype(np.float32), rng.random((70, 90)) < 0.1,
              rng.integers(0, 256, (70, 90), dtype=np.uint8))
    report = export_onnx(model, str(tmp_path / 'candidate.onnx'), sample=sample)
    assert report['max_abs_error_random'] < 1e-3 and report['max_abs_error_real'] < 1e-3
    import onnx
    ops = {node.op_type for node in onnx.load(str(tmp_path / 'candidate.onnx')).graph.node}
    assert 'Conv' in ops and not any(op.startswith('com.') for op in ops)


def test_unet_config_defaults_are_the_presets():
    assert PRESETS['unet'] == UNetConfig() and PRESETS['spn'] == SPNConfig()
    assert PRESETS['spn_coarse'] == CoarseSPNConfig() and PRESETS['geodesic'] == GeodesicConfig()


def test_geodesic_propagation_stops_at_an_edge_that_no_sample_crosses():
    # one measurement left of a bright line and one right of it: each side takes its own sample's
    # depth, also 20 px from it, and the measured pixels keep their values
    from ros2_depth_interp.learning.geodesic import GeodesicPropagation, edge_steps
    h, w = 8, 64
    intensity = torch.full((1, 1, h, w), 0.2)
    intensity[..., 32] = 0.9
    depth, mask = torch.zeros(1, 1, h, w), torch.zeros(1, 1, h, w)
    depth[..., 4, 10], mask[..., 4, 10] = 1.0, 1.0
    depth[..., 4, 50], mask[..., 4, 50] = 3.0, 1.0
    out = GeodesicPropagation((16, 8, 4, 2, 1, 2, 1))(depth, mask, torch.full_like(depth, 2.0),
                                                        30.0 * edge_steps(intensity))[0, 0]
    assert float(out[4, 10]) == 1.0 and float(out[4, 50]) == 3.0
    assert torch.allclose(out[:, :30], torch.tensor(1.0), atol=1e-3)
    assert torch.allclose(out[:, 35:], torch.tensor(3.0), atol=1e-3)


def test_harmonic_smoothing_fills_a_slope_measured_at_its_outline_as_a_slope():
    # a textureless square whose depth rises from left to right, measured only on its outline: the
    # normalized convolution gives its middle about the mean of the outline; the smoothing bends it
    # towards the samples nearest each pixel, so the interior error falls; measurements stay, and
    # the measured pixels of a constant surface leave it constant
    from ros2_depth_interp.learning.geodesic import GeodesicPropagation, edge_steps
    n = 48
    ramp = torch.linspace(1.0, 2.0, n).expand(1, 1, n, n).contiguous()
    mask = torch.zeros(1, 1, n, n)
    mask[..., 0, :], mask[..., -1, :], mask[..., :, 0], mask[..., :, -1] = 1.0, 1.0, 1.0, 1.0
    costs = 30.0 * edge_steps(torch.full((1, 1, n, n), 0.5)) + 0.0025
    distances = (32, 16, 8, 4, 2, 1, 2, 1)
    errors = {}
    for rounds in (0, 4, 16):
        out = GeodesicPropagation(distances, (8, 4, 2, 1), rounds)(ramp * mask, mask, torch.ones_like(ramp), costs)
        assert torch.equal(out[mask > 0], ramp[mask > 0])
        errors[rounds] = float(torch.abs(out - ramp)[..., 8:-8, 8:-8].mean())
        flat = GeodesicPropagation(distances, (8, 4, 2, 1), rounds)(1.5 * mask, mask, torch.ones_like(ramp), costs)
        assert torch.allclose(flat, torch.tensor(1.5), atol=1e-4)
    assert errors[16] < errors[4] < 0.6 * errors[0]


def test_the_node_runs_a_model_with_the_graph_optimization_its_metadata_names(tmp_path):
    # the geodesic candidate asks for 'extended' (no NCHWc layout transformation): the node's
    # backend loads it so and computes what torch computes; an unknown level is a load error
    import onnx
    from ros2_depth_interp.core.inference import DepthInterpolator, ModelLoadError
    torch.manual_seed(0)
    model = build_model(SMALL_GEODESIC).eval()
    path = str(tmp_path / 'geodesic.onnx')
    export_onnx(model, path)
    proto = onnx.load(path)
    assert {p.key: p.value for p in proto.metadata_props}['ort_graph_optimization'] == 'extended'
    x, depth, mask = _input(64, 96)
    interp = DepthInterpolator(model_path=path, providers=['CPUExecutionProvider'])
    dense = interp.interpolate(np.where(mask, depth, 0.0).astype(np.float32), mask,
                               (x[0, 2].numpy() * 255).astype(np.uint8))
    assert np.abs(dense - depth)[mask].max() < 1e-3 and np.isfinite(dense).all()
    for p in proto.metadata_props:
        if p.key == 'ort_graph_optimization':
            p.value = 'fastest'
    onnx.save(proto, str(tmp_path / 'bad.onnx'))
    with pytest.raises(ModelLoadError, match="graph optimization 'fastest'"):
        DepthInterpolator(model_path=str(tmp_path / 'bad.onnx'), providers=['CPUExecutionProvider'])


@pytest.mark.parametrize('name', ['spn_coarse', 'geodesic', 'geodesic_light', 'geodesic_harmonic', 'geodesic_half',
                                  'geodesic_swept', 'geodesic_mixed', 'geodesic_corrected'])
def test_committed_candidate_weights_load_and_fill(name):
    # experiments/weights/<name>.pt (docs/model_designs.md, "The candidates"): the preset's architecture, loadable for
    # export and `train --init`, and its fill keeps the measurements
    import os
    from ros2_depth_interp.learning.export import load_torch_weights
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments', 'weights',
                        name + '.pt')
    model, training = load_torch_weights(path)
    assert model.config == PRESETS[name] and training['steps'] > 0
    x, depth, mask = _input(64, 96)
    with torch.no_grad():
        dense = model(x)[0][0, 0].numpy()
    assert np.isfinite(dense).all() and np.median(np.abs(dense - depth)[mask]) < 0.05
