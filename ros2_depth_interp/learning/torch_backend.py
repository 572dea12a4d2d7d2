"""The torch inference backend: ``DepthInterpolator(path, backend=TorchBackend(path))``.

The same weights as the ONNX graph (``<model>.pt``, written beside it by export), run by PyTorch, on
CUDA when present (fp16 optional); for machines with PyTorch but no onnxruntime-gpu. It lives here,
with the network's code, so that ``core`` never needs torch.
"""
import json
import os

from ..core.inference import FORMAT_TAG, ModelLoadError
from ..core.preprocess import finish, prepare


class TorchBackend:
    """The network of ``<model>.pt`` (beside the ONNX file) run by PyTorch, on CUDA when present."""

    def __init__(self, path, device=None, fp16=False):
        try:
            import torch
        except ImportError as exc:
            raise ModelLoadError('the torch backend needs PyTorch (pip install torch)') from exc
        from .export import load_torch_weights
        weights = os.path.splitext(path)[0] + '.pt'
        if not os.path.isfile(weights):
            raise ModelLoadError('torch backend: weights %s not found (export writes them beside the ONNX file)'
                                 % weights)
        try:
            model, training = load_torch_weights(weights)
        except Exception as exc:
            raise ModelLoadError('cannot load torch weights %s: %s' % (weights, exc)) from exc
        self.torch = torch
        self.device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        self.fp16 = bool(fp16) and self.device.type == 'cuda'
        self.model = model.to(self.device)
        if self.fp16:
            self.model = self.model.half()
        self.stride = model.stride
        self.metadata = {'format': FORMAT_TAG, 'stride': str(model.stride), 'config': json.dumps(model.config.to_dict()),
                         'training': json.dumps(training)}
        self.provider = 'torch:%s%s' % (self.device, ':fp16' if self.fp16 else '')
        self.skipped = []

    def __call__(self, tensor):
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(tensor).to(self.device, non_blocking=True)
            if self.fp16:
                x = x.half()
            depth, confidence = self.model(x)
            return depth.float().cpu().numpy(), confidence.float().cpu().numpy()


def backend_named(name, model_path):
    """The ``backend`` parameter's value as DepthInterpolator takes it: 'onnx', or a TorchBackend."""
    return TorchBackend(model_path) if name == 'torch' else name


def prefill_only(prefill):
    """The parameter-free pre-fill alone (a ``PyramidPrefill``, no network) with the call of
    ``DepthInterpolator.interpolate``: the same normalization, padding and cropping as the model."""
    import numpy as np
    import torch

    def interpolate(depth, mask, intensity):
        prepared = prepare(depth, mask, intensity, 2 ** prefill.levels)
        x = torch.from_numpy(prepared.tensor)
        with torch.no_grad():
            fill = prefill(x[:, 0:1], x[:, 1:2], x[:, 2:3]).numpy()
        return finish(prepared, fill, np.ones_like(fill))[0]
    return interpolate
