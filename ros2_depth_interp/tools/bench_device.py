"""Per-frame processing speed without ROS: inference and cloud building on a CPU or a GPU.

The pieces of the node's hot path that need no DDS, timed on whatever device is here:

- ``infer``: the network alone, input already on the device (batch 1; fp32 and, on CUDA, fp16);
- ``frame``: what the node does per frame with that backend: normalize + pad (numpy), upload,
  infer, download, crop, and build the organized cloud (numpy ``CloudBuilder``);
- ``frame_gpu_cloud`` (CUDA only): the same with the cloud built on the GPU (rays cached there) and
  depth, confidence and cloud downloaded once.

Backends (``--backends``): ``torch`` (PyTorch eager, the ``<model>.pt`` weights), ``graphs`` (the
same network captured as a CUDA graph per input size and replayed), ``compile`` (``torch.compile``;
its compile time is ``setup_s``) and ``onnx`` (``DepthInterpolator`` with ONNX Runtime's best
provider here: CUDA where onnxruntime-gpu is installed, else the CPU; on CUDA also the fp16 graph
``<model>_fp16.onnx`` when it exists). A configuration that fails gives a row with ``error``.

Writes a JSON file (``--out``, rewritten after each row) and prints a line per row. Used by
``scripts/device_check.sh`` on the lent GPU machine and by ``depth_interp bench --no-ros``.
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from ..core.geometry import CameraIntrinsics, CloudBuilder
from ..core.preprocess import finish, prepare


def _scene(height, width, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    depth = 2.0 + 0.002 * xx + 0.001 * yy
    mask = rng.random((height, width)) < 0.1
    intensity = rng.integers(0, 256, (height, width), dtype=np.uint8)
    intr = CameraIntrinsics(0.8 * width, 0.8 * width, width / 2.0, height / 2.0)
    return depth.astype(np.float32), mask, intensity, intr


def _percentiles(samples):
    a = np.asarray(samples) * 1000.0
    return {'mean_ms': float(a.mean()), 'p50_ms': float(np.percentile(a, 50)),
            'p90_ms': float(np.percentile(a, 90)), 'p99_ms': float(np.percentile(a, 99)),
            'min_ms': float(a.min()), 'n': int(a.size)}


def _time(fn, repeats, warmup, sync):
    for _ in range(warmup):
        fn()
    sync()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - t0)
    return _percentiles(samples)


def _model_stride(model):
    return int(getattr(model, 'stride', None) or model.config.stride)


def _inference_mode():
    import torch
    return torch.inference_mode()


def _eager_forward(model, example):
    def forward(x):
        with _inference_mode():
            return model(x)
    return forward


def _graph_forward(model, example):
    """The network captured once as a CUDA graph for ``example``'s shape; each call copies its
    input into the captured input tensor and replays the graph (no per-kernel launch cost)."""
    import torch
    with _inference_mode():
        static_in = example.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):       # warm-up off the capture stream, as the CUDA graph docs ask
            for _ in range(3):
                model(static_in)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = model(static_in)

    def forward(x):
        with _inference_mode():
            if x is not static_in:
                static_in.copy_(x)
            graph.replay()
            return static_out
    return forward


def _compiled_forward(model, example):
    """``torch.compile`` of the network for ``example``'s shape, compiled here (the first calls can
    compile again as guards settle; three calls absorb that)."""
    import torch
    compiled = torch.compile(model, dynamic=False)

    def forward(x):
        with _inference_mode():
            return compiled(x)
    for _ in range(3):
        forward(example)
    return forward


FORWARDS = {'eager': _eager_forward, 'graphs': _graph_forward, 'compile': _compiled_forward}


def bench_torch(model_path, sizes, repeats, warmup, fp16_modes, device=None, mode='eager', on_row=None):
    """The network with PyTorch (weights from ``<model>.pt``): ``mode`` 'eager', 'graphs' (CUDA
    graph capture and replay, CUDA only) or 'compile' (``torch.compile``). A configuration that
    fails (e.g. a network that cannot be captured) gives a row with ``error``. ``on_row(row)`` is
    called after each row."""
    import torch
    from ..learning.export import load_torch_weights
    dev = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    results = []
    for fp16 in fp16_modes:
        if fp16 and dev.type != 'cuda':
            continue
        model, _ = load_torch_weights(os.path.splitext(model_path)[0] + '.pt')
        dtype = torch.float16 if fp16 else torch.float32
        model = model.to(dev).to(dtype).eval()
        stride = _model_stride(model)
        for (h, w) in sizes:
            depth, mask, intensity, intr = _scene(h, w)
            row = {'backend': 'torch' if mode == 'eager' else 'torch_' + mode, 'device': str(dev),
                   'precision': 'fp16' if fp16 else 'fp32', 'height': h, 'width': w}
            try:
                if mode == 'graphs' and dev.type != 'cuda':
                    raise RuntimeError('CUDA graphs need a CUDA device')
                x = torch.from_numpy(prepare(depth, mask, intensity, stride).tensor).to(dev, dtype)
                t0 = time.perf_counter()
                forward = FORWARDS[mode](model, x)
                sync()
                row['setup_s'] = time.perf_counter() - t0
                row['infer'] = _time(lambda: forward(x), repeats, warmup, sync)
                row['frame'] = _time(_cpu_cloud_frame(forward, stride, depth, mask, intensity, intr, dev, dtype),
                                     repeats, warmup, sync)
                if dev.type == 'cuda':
                    row['frame_gpu_cloud'] = _time(_gpu_frame(forward, stride, depth, mask, intensity, intr, dev,
                                                              dtype), repeats, warmup, sync)
            except Exception as exc:  # recorded, the other configurations still run
                row['error'] = '%s: %s' % (type(exc).__name__, (str(exc).strip().splitlines() or [''])[0][:300])
            results.append(row)
            print(_line(row), flush=True)
            if on_row:
                on_row(row)
    return results


def _cpu_cloud_frame(forward, stride, depth, mask, intensity, intr, dev, dtype):
    """What the node does per frame with this backend: prepare, upload, infer, download, finish,
    and the organized cloud built on the CPU (numpy ``CloudBuilder``)."""
    import torch
    builder = CloudBuilder()

    def frame():
        p = prepare(depth, mask, intensity, stride)
        d, c = forward(torch.from_numpy(p.tensor).to(dev, dtype))
        d, c = d.float().cpu().numpy(), c.float().cpu().numpy()
        dense, conf = finish(p, d, c)
        builder.build(dense, intensity, intr, confidence=conf)

    return frame


def _gpu_frame(forward, stride, depth, mask, intensity, intr, dev, dtype):
    """Per-frame processing with crop, scale and back-projection on the GPU; one download."""
    import torch
    h, w = depth.shape
    v, u = torch.meshgrid(torch.arange(h, device=dev, dtype=torch.float32),
                          torch.arange(w, device=dev, dtype=torch.float32), indexing='ij')
    rays_x = (u - intr.cx) / intr.fx
    rays_y = (v - intr.cy) / intr.fy
    host_out = torch.empty((h, w, 6), dtype=torch.float32, pin_memory=True)

    def frame():
        p = prepare(depth, mask, intensity, stride)
        x = torch.from_numpy(p.tensor).pin_memory().to(dev, dtype, non_blocking=True)
        d, c = forward(x)
        with _inference_mode():
            z = d[0, 0, :h, :w].float() * p.scale
            inten = x[0, 2, :h, :w].float() * 255.0
            out = torch.stack([rays_x * z, rays_y * z, z, inten, z, c[0, 0, :h, :w].float()], dim=-1)
            host_out.copy_(out)
        return host_out

    return frame


def bench_onnx(model_path, sizes, repeats, warmup, providers=None, on_row=None):
    """The node's ``DepthInterpolator`` with ONNX Runtime (its default providers: TensorRT, CUDA, CPU,
    whichever this build has). On CUDA the fp16 variant ``<model>_fp16.onnx`` is timed too when it
    exists."""
    from ..core.inference import DepthInterpolator
    results = []
    paths = [model_path]
    for path in paths:
        interp = DepthInterpolator(path, providers=providers)
        on_gpu = interp.active_provider in ('CUDAExecutionProvider', 'TensorrtExecutionProvider')
        fp16_path = os.path.splitext(model_path)[0] + '_fp16.onnx'
        if path == model_path and on_gpu and os.path.isfile(fp16_path):
            paths.append(fp16_path)
        precision = 'fp16' if interp._backend.input_dtype == np.float16 else 'fp32'
        for (h, w) in sizes:
            depth, mask, intensity, intr = _scene(h, w)
            prepared = prepare(depth, mask, intensity, interp.stride)
            builder = CloudBuilder()

            def infer():
                interp._backend(prepared.tensor)

            def frame():
                r = interp.run(depth, mask, intensity)
                builder.build(r.depth, intensity, intr, confidence=r.confidence)

            row = {'backend': 'onnx', 'device': interp.active_provider, 'precision': precision,
                   'height': h, 'width': w, 'model': path,
                   'infer': _time(infer, repeats, warmup, lambda: None),
                   'frame': _time(frame, repeats, warmup, lambda: None)}
            results.append(row)
            print(_line(row), flush=True)
            if on_row:
                on_row(row)
    return results


def _line(row):
    head = '%-13s %-22s %-4s %5dx%-5d' % (row['backend'], row['device'], row['precision'], row['width'], row['height'])
    if 'error' in row:
        return head + ' failed: ' + row['error']
    text = head + ' infer p50 %7.2f ms  frame p50 %7.2f ms' % (row['infer']['p50_ms'], row['frame']['p50_ms'])
    if 'frame_gpu_cloud' in row:
        text += '  frame (GPU cloud) p50 %7.2f ms' % row['frame_gpu_cloud']['p50_ms']
    return text


def machine_info(include_torch=True):
    """What the numbers were measured on: platform, CPU model, load, library versions, GPU."""
    info = {'platform': platform.platform(), 'python': platform.python_version(), 'cpus': os.cpu_count()}
    try:
        with open('/proc/cpuinfo') as f:
            info['cpu'] = next((line.split(':', 1)[1].strip() for line in f if line.startswith('model name')),
                               platform.processor())
        info['load_average'] = os.getloadavg()
    except OSError:
        pass
    modules = ['onnxruntime'] + (['torch'] if include_torch else [])
    for name in modules:
        try:
            module = __import__(name)
        except ImportError:
            continue
        info[name] = module.__version__
        if name == 'torch' and module.cuda.is_available():
            info['gpu'] = module.cuda.get_device_name(0)
    return info


BACKENDS = ('torch', 'graphs', 'compile', 'onnx')


def main(argv=None):
    from ..core.resources import default_model_path
    p = argparse.ArgumentParser(prog='python -m ros2_depth_interp.tools.bench_device', description=__doc__.splitlines()[0])
    p.add_argument('--model', default=None, help='ONNX model (its .pt sibling is used by the torch backends)')
    p.add_argument('--backends', default='torch,onnx',
                   help='comma list of %s: torch eager, torch with CUDA graphs, torch.compile, ONNX Runtime'
                        % ', '.join(BACKENDS))
    p.add_argument('--precisions', default='fp32,fp16', help='torch backends: fp32, fp16 (CUDA only)')
    p.add_argument('--sizes', default='480x640,960x1280', help='HxW list')
    p.add_argument('--repeats', type=int, default=50)
    p.add_argument('--warmup', type=int, default=10)
    p.add_argument('--device', default=None, help='torch device (default cuda if present)')
    p.add_argument('--out', default='out/bench_device.json')
    args = p.parse_args(argv)
    model = args.model or default_model_path()
    sizes = [tuple(int(v) for v in s.split('x')) for s in args.sizes.split(',')]
    backends = [b.strip() for b in args.backends.split(',') if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        p.error('unknown backends %s (known: %s)' % (', '.join(unknown), ', '.join(BACKENDS)))
    fp16_modes = tuple(name.strip() == 'fp16' for name in args.precisions.split(',') if name.strip())
    report = {'machine': machine_info(), 'model': model, 'results': []}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)

    def save(row=None):   # the file is rewritten after each row: a run cut short keeps what it measured
        if row is not None:
            report['results'].append(row)
        with open(args.out + '.tmp', 'w') as f:
            json.dump(report, f, indent=2)
        os.replace(args.out + '.tmp', args.out)
    save()
    for backend in backends:
        if backend == 'onnx':
            bench_onnx(model, sizes, args.repeats, args.warmup, on_row=save)
        else:
            mode = 'eager' if backend == 'torch' else backend
            bench_torch(model, sizes, args.repeats, args.warmup, fp16_modes, args.device, mode, on_row=save)
    print('wrote %s' % args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
