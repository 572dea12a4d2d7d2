"""Per-frame processing speed without ROS: inference and cloud building on a CPU or a GPU.

The pieces of the node's hot path that need no DDS, timed on whatever device is here:

- ``infer``: the network alone, input already on the device (batch 1; fp32 and, on CUDA, fp16);
- ``frame``: what the node does per frame with that backend: normalize + pad (numpy), upload,
  infer, download, crop, and build the organized cloud (numpy ``CloudBuilder``);
- ``frame_gpu_cloud`` (CUDA only): the same with the cloud built on the GPU (rays cached there) and
  depth, confidence and cloud downloaded once.

Writes a JSON file (``--out``) and prints a table. Used on the lent GPU machine (PyTorch with CUDA,
no onnxruntime-gpu there) and by ``depth_interp bench --no-ros``.
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
            'p90_ms': float(np.percentile(a, 90)), 'min_ms': float(a.min()), 'n': int(a.size)}


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


def bench_torch(model_path, sizes, repeats, warmup, fp16_modes, device=None):
    import torch
    from ..learning.export import load_torch_weights
    dev = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    results = []
    for fp16 in fp16_modes:
        if fp16 and dev.type != 'cuda':
            continue
        model, _ = load_torch_weights(os.path.splitext(model_path)[0] + '.pt')
        model = model.to(dev).eval()
        dtype = torch.float16 if fp16 else torch.float32
        model = model.to(dtype)
        for (h, w) in sizes:
            depth, mask, intensity, intr = _scene(h, w)
            prepared = prepare(depth, mask, intensity, model.stride)
            x = torch.from_numpy(prepared.tensor).to(dev, dtype)
            builder = CloudBuilder()

            def infer():
                with torch.inference_mode():
                    model(x)

            def frame():
                p = prepare(depth, mask, intensity, model.stride)
                with torch.inference_mode():
                    d, c = model(torch.from_numpy(p.tensor).to(dev, dtype))
                    d, c = d.float().cpu().numpy(), c.float().cpu().numpy()
                dense, conf = finish(p, d, c)
                builder.build(dense, intensity, intr, confidence=conf)

            row = {'backend': 'torch', 'device': str(dev), 'precision': 'fp16' if fp16 else 'fp32',
                   'height': h, 'width': w,
                   'infer': _time(infer, repeats, warmup, sync),
                   'frame': _time(frame, repeats, warmup, sync)}
            if dev.type == 'cuda':
                row['frame_gpu_cloud'] = _time(_gpu_frame(model, depth, mask, intensity, intr, dev, dtype),
                                               repeats, warmup, sync)
            results.append(row)
            print(_line(row), flush=True)
    return results


def _gpu_frame(model, depth, mask, intensity, intr, dev, dtype):
    """Per-frame processing with crop, scale and back-projection on the GPU; one download."""
    import torch
    h, w = depth.shape
    v, u = torch.meshgrid(torch.arange(h, device=dev, dtype=torch.float32),
                          torch.arange(w, device=dev, dtype=torch.float32), indexing='ij')
    rays_x = (u - intr.cx) / intr.fx
    rays_y = (v - intr.cy) / intr.fy
    host_out = torch.empty((h, w, 6), dtype=torch.float32, pin_memory=True)

    def frame():
        p = prepare(depth, mask, intensity, model.stride)
        with torch.inference_mode():
            x = torch.from_numpy(p.tensor).pin_memory().to(dev, dtype, non_blocking=True)
            d, c = model(x)
            z = d[0, 0, :h, :w].float() * p.scale
            inten = x[0, 2, :h, :w].float() * 255.0
            out = torch.stack([rays_x * z, rays_y * z, z, inten, z, c[0, 0, :h, :w].float()], dim=-1)
            host_out.copy_(out)
        return host_out

    return frame


def bench_onnx(model_path, sizes, repeats, warmup, providers=None):
    from ..core.inference import DepthInterpolator
    interp = DepthInterpolator(model_path, providers=providers)
    results = []
    for (h, w) in sizes:
        depth, mask, intensity, intr = _scene(h, w)
        prepared = prepare(depth, mask, intensity, interp.stride)
        builder = CloudBuilder()

        def infer():
            interp._backend(prepared.tensor)

        def frame():
            r = interp.run(depth, mask, intensity)
            builder.build(r.depth, intensity, intr, confidence=r.confidence)

        row = {'backend': 'onnx', 'device': interp.active_provider, 'precision': 'fp32', 'height': h, 'width': w,
               'infer': _time(infer, repeats, warmup, lambda: None),
               'frame': _time(frame, repeats, warmup, lambda: None)}
        results.append(row)
        print(_line(row), flush=True)
    return results


def _line(row):
    text = '%-5s %-22s %-4s %5dx%-5d infer p50 %7.2f ms  frame p50 %7.2f ms' % (
        row['backend'], row['device'], row['precision'], row['width'], row['height'],
        row['infer']['p50_ms'], row['frame']['p50_ms'])
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


def main(argv=None):
    from ..core.resources import default_model_path
    p = argparse.ArgumentParser(prog='python -m ros2_depth_interp.tools.bench_device', description=__doc__.splitlines()[0])
    p.add_argument('--model', default=None, help='ONNX model (its .pt sibling is used by the torch backend)')
    p.add_argument('--backends', default='torch,onnx')
    p.add_argument('--sizes', default='480x640,960x1280', help='HxW list')
    p.add_argument('--repeats', type=int, default=50)
    p.add_argument('--warmup', type=int, default=10)
    p.add_argument('--device', default=None, help='torch device (default cuda if present)')
    p.add_argument('--out', default='out/bench_device.json')
    args = p.parse_args(argv)
    model = args.model or default_model_path()
    sizes = [tuple(int(v) for v in s.split('x')) for s in args.sizes.split(',')]
    results = []
    backends = [b.strip() for b in args.backends.split(',')]
    if 'torch' in backends:
        results += bench_torch(model, sizes, args.repeats, args.warmup, (False, True), args.device)
    if 'onnx' in backends:
        results += bench_onnx(model, sizes, args.repeats, args.warmup)
    report = {'machine': machine_info(), 'model': model, 'results': results}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=2)
    print('wrote %s' % args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
