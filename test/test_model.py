"""The network: shapes, stride handling, the paper's building blocks, and the shipped model's
checkpoint under this code (the pre-fill has its own tests in test_prefill.py)."""
import os

import numpy as np
import pytest
import torch

from ros2_depth_interp.learning.layers import ResidualBlock
from ros2_depth_interp.learning.model import EARLIER_PREFILL_OPTIONS, PRESETS, DepthInterpNet, NetConfig, build_model
from ros2_depth_interp.core.preprocess import InputError, finish, padded_size, prepare


@pytest.mark.parametrize('preset', ['tiny', 'prefill_cnn', 'default'])
def test_output_shapes_match_padded_input(preset):
    model = build_model(preset).eval()
    x = torch.rand(2, 3, 2 * model.stride, 3 * model.stride)
    with torch.no_grad():
        depth, conf = model(x)
    assert depth.shape == (2, 1, 2 * model.stride, 3 * model.stride)
    assert conf.shape == depth.shape
    assert float(conf.min()) >= 0 and float(conf.max()) <= 1


@pytest.mark.parametrize('h,w', [(37, 51), (64, 64), (101, 3 * 32 + 1), (480, 640)])
def test_prepare_pads_to_stride_and_finish_crops_back(h, w):
    rng = np.random.default_rng(1)
    depth = rng.uniform(2, 4, (h, w)).astype(np.float32)
    mask = rng.random((h, w)) < 0.1
    intensity = rng.integers(0, 255, (h, w), dtype=np.uint8)
    prepared = prepare(depth, mask, intensity, 32)
    hp, wp = padded_size(h, w, 32)
    assert prepared.tensor.shape == (1, 3, hp, wp) and hp % 32 == 0 and wp % 32 == 0
    assert prepared.scale == pytest.approx(np.median(depth[mask]))
    assert not prepared.tensor[0, 1, h:, :].any() and not prepared.tensor[0, 1, :, w:].any()
    out, conf = finish(prepared, prepared.tensor[:, :1], np.ones((1, 1, hp, wp), np.float32))
    assert out.shape == (h, w) and conf.shape == (h, w)
    np.testing.assert_allclose(out[mask], depth[mask], rtol=1e-5)


def test_prepare_rejects_bad_inputs():
    d = np.ones((10, 10), np.float32)
    with pytest.raises(InputError, match='no known pixel'):
        prepare(d, np.zeros((10, 10), bool), np.zeros((10, 10), np.uint8), 8)
    with pytest.raises(InputError, match='same height and width'):
        prepare(d, np.ones((10, 11), bool), np.zeros((10, 10), np.uint8), 8)
    with pytest.raises(InputError, match='uint8'):
        prepare(d, np.ones((10, 10), bool), np.zeros((10, 10), np.float32), 8)
    nan = np.full((10, 10), np.nan, np.float32)
    with pytest.raises(InputError):
        prepare(nan, np.ones((10, 10), bool), np.zeros((10, 10), np.uint8), 8)


def test_network_is_built_from_the_papers_blocks():
    model = DepthInterpNet(NetConfig(stem_width=8, width=16, dilations=(1, 2, 4)))
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    # one projection block (the single x2 downsampling) + one block per dilation
    assert len(blocks) == 4
    assert isinstance(model.down.project, torch.nn.Conv2d) and model.down.project.kernel_size == (1, 1)
    assert [b.conv1.dilation[0] for b in model.blocks] == [1, 2, 4]
    strided = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.stride != (1, 1)]
    assert all(m.stride == (2, 2) for m in strided) and len(strided) == 2   # conv + its projection
    assert isinstance(model.shuffle, torch.nn.PixelShuffle)
    assert PRESETS['paper'].width > PRESETS['prefill_cnn'].width


def test_untrained_network_returns_the_prefill():
    # the head starts at zero: an untrained network is exactly the classical pre-fill
    model = build_model('prefill_cnn').eval()
    x = torch.zeros(1, 3, 64, 64)
    x[0, 0, ::4, ::4] = 1.5
    x[0, 1, ::4, ::4] = 1.0
    depth, _ = model(x)
    assert torch.allclose(depth, model.prefill(x[:, :1], x[:, 1:2], x[:, 2:3]))




MODELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'models')


def test_shipped_checkpoint_loads_and_matches_the_shipped_onnx_graph():
    # models/depth_interp.onnx was exported from models/depth_interp.pt by the code that trained it;
    # this code must rebuild the same model from the checkpoint: same weights, same pre-fill, same output
    from ros2_depth_interp.core.inference import DepthInterpolator
    from ros2_depth_interp.learning.synthetic import render_scene
    from ros2_depth_interp.learning.torch_backend import TorchBackend
    path = os.path.join(MODELS, 'depth_interp.onnx')
    backend = TorchBackend(path, 'cpu')
    assert backend.model.config == PRESETS['default']
    scene = render_scene(np.random.default_rng(4), 120, 160)
    mask = np.random.default_rng(5).random(scene['depth'].shape) < 0.1
    depth = np.where(mask, scene['depth'], 0).astype(np.float32)
    onnx = DepthInterpolator(path).run(depth, mask, scene['intensity'])
    rebuilt = DepthInterpolator(path, backend=backend).run(depth, mask, scene['intensity'])
    np.testing.assert_allclose(rebuilt.depth, onnx.depth, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(rebuilt.confidence, onnx.confidence, atol=1e-4)


def test_checkpoints_of_earlier_prefills_give_one_clear_error():
    # a model 0.6.0 checkpoint's config: the prefill_cnn preset and the options of earlier pre-fills at
    # the values model 0.6.0 supports; any other value of one of them is an earlier pre-fill
    shipped = dict(PRESETS['prefill_cnn'].to_dict(), **{k: v for k, (_, v) in EARLIER_PREFILL_OPTIONS.items()})
    assert NetConfig.from_dict(shipped) == PRESETS['prefill_cnn']
    for key, value in (('prefill_solver', 'heavy_ball'), ('prefill_tau', 0.01), ('prefill_top', 'pull_push'),
                       ('prefill_dt_order', 0), ('prefill_weights', 'global')):
        with pytest.raises(ValueError, match=key):
            build_model(dict(shipped, **{key: value}))
    # a model 0.4.0 checkpoint predates the first-order option: its order-0 fill is gone too
    with pytest.raises(ValueError, match='prefill_dt_order'):
        NetConfig.from_dict({k: v for k, v in shipped.items() if k != 'prefill_dt_order'})
    # configs of this version name none of those options
    assert NetConfig.from_dict(PRESETS['tiny'].to_dict()) == PRESETS['tiny']
