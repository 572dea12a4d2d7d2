"""Export parity (torch vs ONNX Runtime), metadata, and the DepthInterpolator API on real sessions."""
import json
import os

import numpy as np
import onnx
import pytest
import torch

from ros2_depth_interp.learning.export import FORMAT_TAG, check_parity, export_onnx, main as export_main, save_torch_weights
from ros2_depth_interp.core.inference import DepthInterpolator, InputError, ModelLoadError
from ros2_depth_interp.learning.model import build_model
from ros2_depth_interp.learning.torch_backend import TorchBackend


def _frame(h=70, w=90, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    depth = (2.0 + 0.01 * xx + 0.02 * yy).astype(np.float32) * scale
    mask = rng.random((h, w)) < 0.12
    intensity = (xx * 2 % 256).astype(np.uint8)
    return depth, mask, intensity


def test_export_writes_metadata_and_matches_torch(tmp_path):
    torch.manual_seed(0)
    model = build_model('tiny')
    torch.nn.init.normal_(model.head.weight, std=0.05)   # a non-trivial head
    path = str(tmp_path / 'm.onnx')
    report = export_onnx(model, path, training={'steps': 3}, sample=_frame())
    assert report['max_abs_error_random'] < 1e-4 and report['max_abs_error_real'] < 1e-4
    proto = onnx.load(path)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta['format'] == FORMAT_TAG
    assert int(meta['stride']) == model.stride
    assert json.loads(meta['training'])['steps'] == 3
    assert proto.opset_import[0].version >= 17
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[2].dim_param and dims[3].dim_param    # dynamic height and width


def test_export_writes_elu_without_the_elu_operator(tmp_path):
    # ONNX Runtime's CPU Elu kernel is slow: the graph computes max(x, exp(min(x, 0)) - 1) instead,
    # which must be the same function on both branches (large weights drive many units negative)
    torch.manual_seed(1)
    model = build_model('tiny')
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    path = str(tmp_path / 'elu.onnx')
    report = export_onnx(model, path, sample=_frame())
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert 'Elu' not in ops and {'Exp', 'Max'} <= ops
    with torch.no_grad():
        x = torch.randn(1, 3, 3 * model.stride, 4 * model.stride)
        x[:, 1] = (x[:, 1] > 1.0).float()
        features = model.stem(torch.cat([x, model.prefill(x[:, 0:1], x[:, 1:2], x[:, 2:3])], dim=1))
    assert (features < 0).float().mean() > 0.2     # the negative branch is exercised
    assert report['max_abs_error_random'] < 1e-4 and report['max_abs_error_real'] < 1e-4


def test_export_matches_torch_with_a_deeper_prefill_pyramid(tmp_path):
    torch.manual_seed(0)
    config = dict(build_model('tiny').config.to_dict(), prefill_levels=3, prefill_iterations=[5, 5, 5, 5])
    model = build_model(config)
    torch.nn.init.normal_(model.head.weight, std=0.05)
    report = export_onnx(model, str(tmp_path / 'cg.onnx'), sample=_frame(61, 83))
    assert report['max_abs_error_random'] < 1e-4 and report['max_abs_error_real'] < 1e-4


def test_export_command_from_checkpoint(tmp_path):
    model = build_model('tiny')
    ckpt = tmp_path / 'last.pt'
    torch.save({'config': model.config.to_dict(), 'model': model.state_dict(), 'training': {'steps': 1}}, ckpt)
    out = tmp_path / 'exported.onnx'
    assert export_main([str(ckpt), '--out', str(out)]) == 0
    assert out.exists() and (tmp_path / 'exported.pt').exists()
    assert DepthInterpolator(str(out)).interpolate(*_frame()).shape == (70, 90)
    # the pre-fill can be changed at export; the change is recorded in the metadata
    assert export_main([str(ckpt), '--out', str(out), '--prefill-dt-passes', '3', '--prefill-iterations', '3,3']) == 0
    training = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}['training'])
    assert training['prefill_dt_passes_at_export'] == 3 and training['prefill_iterations_at_export'] == [3, 3]
    assert torch.load(tmp_path / 'exported.pt', weights_only=False)['config']['prefill_dt_passes'] == 3
    # a checkpoint of a pre-fill this version does not have: one clear error, exit 2
    legacy = tmp_path / 'legacy.pt'
    torch.save({'config': dict(model.config.to_dict(), prefill_solver='heavy_ball'), 'model': model.state_dict()}, legacy)
    assert export_main([str(legacy), '--out', str(tmp_path / 'legacy.onnx')]) == 2


def test_interpolator_keeps_units_and_measured_pixels(tiny_model_path):
    interp = DepthInterpolator(tiny_model_path, providers=['CUDAExecutionProvider', 'CPUExecutionProvider'])
    assert interp.active_provider == 'CPUExecutionProvider'
    for scale in (1.0, 1000.0, 0.01):        # metres, millimetres, arbitrary monocular scale
        depth, mask, intensity = _frame(scale=scale)
        result = interp.run(depth, mask, intensity)
        assert result.depth.dtype == np.float32 and result.depth.shape == depth.shape
        assert np.isfinite(result.depth).all()
        rel = np.abs(result.depth[mask] - depth[mask]) / depth[mask]
        assert np.median(rel) < 0.02
        assert 0.5 * depth.min() < result.depth.min() and result.depth.max() < 2 * depth.max()
        assert ((result.confidence >= 0) & (result.confidence <= 1)).all()
        assert set(result.timings) >= {'normalize', 'infer'}


def test_values_outside_the_mask_are_ignored(tiny_model_path):
    interp = DepthInterpolator(tiny_model_path)
    depth, mask, intensity = _frame()
    garbage = depth.copy()
    garbage[~mask] = np.where(np.arange((~mask).sum()) % 2, np.nan, 1e6)
    np.testing.assert_array_equal(interp.interpolate(depth, mask, intensity),
                                  interp.interpolate(garbage, mask, intensity))


def test_torch_backend_matches_onnx(tiny_model_path):
    depth, mask, intensity = _frame(h=101, w=77)
    a = DepthInterpolator(tiny_model_path).run(depth, mask, intensity)
    b = DepthInterpolator(tiny_model_path, backend=TorchBackend(tiny_model_path, 'cpu')).run(depth, mask, intensity)
    np.testing.assert_allclose(a.depth, b.depth, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)


def test_bad_model_files_raise_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match='not found'):
        DepthInterpolator(str(tmp_path / 'missing.onnx'))
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(b'this is not a protobuf' * 10)
    with pytest.raises(ModelLoadError, match='cannot load'):
        DepthInterpolator(str(corrupt))
    # a valid ONNX file that is not ours
    foreign = tmp_path / 'foreign.onnx'
    torch.onnx.export(torch.nn.Conv2d(3, 2, 1), (torch.zeros(1, 3, 8, 8),), str(foreign), dynamo=False)
    with pytest.raises(ModelLoadError, match='not a ros2_depth_interp model'):
        DepthInterpolator(str(foreign))


def test_bad_inputs_raise_input_error(tiny_model_path):
    interp = DepthInterpolator(tiny_model_path, warmup=False)
    depth, mask, intensity = _frame()
    with pytest.raises(InputError):
        interp.interpolate(depth, np.zeros_like(mask), intensity)
    with pytest.raises(InputError):
        interp.interpolate(depth[:, :-1], mask, intensity)


def test_shipped_model_returns_finite_depth_in_the_input_units():
    from ros2_depth_interp.core.resources import default_model_path
    interp = DepthInterpolator()            # the trained model in models/
    assert interp.model_path == default_model_path() and os.path.isfile(interp.model_path)
    training = json.loads(interp.metadata['training'])
    assert training.get('steps', 0) > 1000, 'models/ must hold a trained model'
    for scale in (1.0, 1000.0):
        depth, mask, intensity = _frame(h=120, w=160, seed=3, scale=scale)
        result = interp.run(depth, mask, intensity)
        assert np.isfinite(result.depth).all()
        rel = np.abs(result.depth - depth) / depth
        assert np.median(rel[mask]) < 0.01          # measured pixels stay close to their input
        assert np.median(rel[~mask]) < 0.05         # a smooth ramp is filled close to the truth


@pytest.mark.parametrize('clamp', [0.0, 1.0])
def test_export_matches_torch_with_the_domain_transform_prefill(tmp_path, clamp):
    torch.manual_seed(0)
    config = dict(build_model('tiny').config.to_dict(), prefill_iterations=[3, 5], prefill_dt_steps=6,
                  prefill_dt_clamp=clamp)
    model = build_model(config)
    torch.nn.init.normal_(model.head.weight, std=0.05)
    assert model.stride == 2
    # an odd size, wider than the scans' reach (2^6 half-resolution pixels)
    report = export_onnx(model, str(tmp_path / 'dt.onnx'), sample=_frame(151, 173))
    assert report['max_abs_error_random'] < 1e-4 and report['max_abs_error_real'] < 1e-4


def test_fp16_export_keeps_the_prefill_in_float32(tmp_path):
    # a half-precision pre-fill overflows (CG sums over the image) and underflows (scan products):
    # the fp16 graph runs the network in float16 and the pre-fill in float32
    torch.manual_seed(0)
    config = dict(build_model('tiny').config.to_dict(), prefill_iterations=[10, 30], prefill_dt_steps=6)
    model = build_model(config)
    torch.nn.init.normal_(model.head.weight, std=0.05)
    report = export_onnx(model, str(tmp_path / 'half.onnx'), fp16=True, sample=_frame(120, 160))
    assert report['max_abs_error_random'] < 0.05 and report['max_abs_error_real'] < 0.05
    assert next(p.dtype for p in model.parameters()) == torch.float32    # the model is float32 again


def test_shipped_model_returns_finite_depth_for_the_smallest_frames():
    # 2x2 is the smallest frame accepted: its half-resolution level is a single pixel without
    # neighbours, which once made the conjugate gradients divide 0 by 0
    interp = DepthInterpolator()
    rng = np.random.default_rng(4)
    for h, w in [(2, 2), (2, 3), (3, 2), (2, 40), (40, 2), (5, 7)]:
        depth = rng.uniform(1.0, 3.0, (h, w)).astype(np.float32)
        mask = np.zeros((h, w), bool)
        mask[0, 0] = True
        out = interp.interpolate(depth, mask, rng.integers(0, 256, (h, w), dtype=np.uint8))
        assert out.shape == (h, w) and np.isfinite(out).all()
        assert out[0, 0] == pytest.approx(depth[0, 0], rel=0.05)
