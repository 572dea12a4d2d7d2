"""``DepthInterpolator``: semi-dense depth + mask + intensity -> dense depth and confidence.

One class for every caller (the node, the bag tool, evaluation, benchmarks, users' scripts). Two
backends run the same network with the same pre- and post-processing (``preprocess``):

- ``onnx`` (default): ONNX Runtime with an ordered execution-provider list; providers that this
  build of ONNX Runtime lacks are skipped and the active one is reported. On CUDA, inputs and outputs
  go through I/O binding (one upload, one download per frame); TensorRT keeps its engine cache in
  ``~/.cache/ros2_depth_interp/trt`` and may build fp16 engines.
- any other backend object with the same call (``ros2_depth_interp.learning.torch_backend.TorchBackend``
  runs the same weights, ``<model>.pt`` beside the ONNX file, with PyTorch; it lives with the training
  code so that this module never needs torch).

Usage::

    from ros2_depth_interp import DepthInterpolator
    dense = DepthInterpolator().interpolate(depth, mask, intensity)
"""
import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np

from .preprocess import InputError, finish, prepare
from .resources import default_model_path

__all__ = ['DepthInterpolator', 'InterpolationResult', 'InputError', 'ModelLoadError', 'DEFAULT_PROVIDERS']

LOG = logging.getLogger(__name__)
DEFAULT_PROVIDERS = ('TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider')
FORMAT_TAG = 'ros2_depth_interp/1'


class ModelLoadError(RuntimeError):
    """The model file is missing, unreadable, or not a ros2_depth_interp model."""


@dataclass
class InterpolationResult:
    depth: np.ndarray          # float32 (H, W), the input's units
    confidence: np.ndarray     # float32 (H, W) in [0, 1]
    timings: dict = field(default_factory=dict)   # seconds: normalize, infer, finish


# After a run an ONNX Runtime session keeps its intra-op threads spinning for a while; a timing that
# follows another session's run waits this long first, or those threads share the cores with it
# (about 25 ms more per call at 463x370 on a 2-core VM). The node runs one session and needs no pause.
SETTLE_S = 0.05


def onnx_session(path, providers, threads=0, profile_prefix=None):
    """An ONNX Runtime session of ``path`` with the node's settings: the graph optimization level
    that the model's metadata ``ort_graph_optimization`` names ('all' when it names none; a model
    whose operators run faster without the CPU layout transformation says 'extended'), ``threads``
    intra-op threads (0: ONNX Runtime's default) and, given ``profile_prefix``, its profiler on."""
    import onnxruntime as ort
    levels = {'all': ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
              'extended': ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              'basic': ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}

    def create(optimization, chosen_providers, profile=False):
        options = ort.SessionOptions()
        options.graph_optimization_level = optimization
        if threads:
            options.intra_op_num_threads = int(threads)
        if profile:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        try:
            return ort.InferenceSession(path, options, providers=chosen_providers)
        except Exception as exc:
            raise ModelLoadError('cannot load ONNX model %s: %s' % (path, str(exc).splitlines()[0])) from exc

    # the metadata from an unoptimized CPU session (cheap to build), then the one session that runs
    unoptimized = create(ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ['CPUExecutionProvider'])
    level = unoptimized.get_modelmeta().custom_metadata_map.get('ort_graph_optimization', 'all')
    if level not in levels:
        raise ModelLoadError('model %s asks for ONNX Runtime graph optimization %r; expected one of %s'
                             % (path, level, ', '.join(levels)))
    return create(levels[level], providers, profile_prefix is not None)


class _OnnxBackend:

    def __init__(self, path, providers, threads, trt_fp16):
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise ModelLoadError('onnxruntime is not installed: pip install onnxruntime (or onnxruntime-gpu)') from exc
        available = ort.get_available_providers()
        wanted = list(providers or DEFAULT_PROVIDERS)
        chosen = [p for p in wanted if p in available]
        self.skipped = [p for p in wanted if p not in available]
        if not chosen:
            chosen = ['CPUExecutionProvider']
        provider_args = []
        for p in chosen:
            if p == 'TensorrtExecutionProvider':
                cache = os.path.expanduser('~/.cache/ros2_depth_interp/trt')
                os.makedirs(cache, exist_ok=True)
                provider_args.append((p, {'trt_engine_cache_enable': True, 'trt_engine_cache_path': cache,
                                          'trt_fp16_enable': bool(trt_fp16)}))
            else:
                provider_args.append(p)
        self.session = onnx_session(path, provider_args, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get('format') != FORMAT_TAG:
            raise ModelLoadError('%s is an ONNX model but not a ros2_depth_interp model (metadata format=%r, '
                                 'expected %r)' % (path, meta.get('format'), FORMAT_TAG))
        self.metadata = meta
        self.stride = int(meta.get('stride', 32))
        self.provider = self.session.get_providers()[0]
        self.input_name = self.session.get_inputs()[0].name
        self.input_dtype = np.float16 if 'float16' in self.session.get_inputs()[0].type else np.float32
        self._ort = ort
        self._use_binding = self.provider in ('CUDAExecutionProvider', 'TensorrtExecutionProvider')

    def __call__(self, tensor):
        tensor = tensor.astype(self.input_dtype, copy=False)
        if not self._use_binding:
            return self.session.run(None, {self.input_name: tensor})
        binding = self.session.io_binding()
        x = self._ort.OrtValue.ortvalue_from_numpy(tensor, 'cuda', 0)
        binding.bind_ortvalue_input(self.input_name, x)
        for out in self.session.get_outputs():
            binding.bind_output(out.name, 'cuda', 0)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()


class DepthInterpolator:
    """Dense depth from semi-dense depth. See the module docstring.

    model_path: ONNX file (default: the shipped model). providers: ONNX Runtime execution providers in
    order of preference. backend: 'onnx', or a backend object (callable on the network's input
    tensor, with ``stride``, ``metadata``, ``provider`` and ``skipped``) such as ``TorchBackend``.
    """

    def __init__(self, model_path=None, providers=None, backend='onnx', warmup=True, threads=0, fp16=False):
        path = model_path or default_model_path()
        if not os.path.isfile(path):
            raise ModelLoadError('model file not found: %s' % path)
        self.model_path = path
        if backend == 'onnx':
            self._backend = _OnnxBackend(path, providers, threads, fp16)
        elif callable(backend):
            self._backend = backend
        else:
            raise ValueError("backend must be 'onnx' or a backend object, got %r" % (backend,))
        self.backend = backend if backend == 'onnx' else type(backend).__name__
        if self._backend.skipped:
            LOG.info('execution providers not available here, skipped: %s', ', '.join(self._backend.skipped))
        LOG.info('depth interpolation model %s running on %s', path, self.active_provider)
        if warmup:
            self.warmup()

    @property
    def active_provider(self):
        return self._backend.provider

    @property
    def skipped_providers(self):
        return list(self._backend.skipped)

    @property
    def stride(self):
        return self._backend.stride

    @property
    def metadata(self):
        return dict(self._backend.metadata)

    def warmup(self, height=240, width=320):
        """Run once so that the first real frame does not pay for allocation and kernel selection."""
        rng = np.random.default_rng(0)
        depth = rng.uniform(1.0, 2.0, (height, width)).astype(np.float32)
        self.run(depth, rng.random((height, width)) < 0.1, np.zeros((height, width), np.uint8))

    def run(self, depth, mask, intensity):
        t0 = time.perf_counter()
        prepared = prepare(depth, mask, intensity, self.stride)
        t1 = time.perf_counter()
        dense, confidence = self._backend(prepared.tensor)
        t2 = time.perf_counter()
        dense, confidence = finish(prepared, dense, confidence)
        t3 = time.perf_counter()
        return InterpolationResult(dense, confidence, {'normalize': (t1 - t0) + (t3 - t2), 'infer': t2 - t1})

    def interpolate(self, depth, mask, intensity):
        """float32 depth (H, W) in any units, bool mask, uint8 intensity -> float32 dense depth, same units."""
        return self.run(depth, mask, intensity).depth
