"""``depth_interp export``: checkpoint -> ONNX (dynamic height and width), checked against torch.

The ONNX file carries what the node needs to check what it loads (``metadata_props``): the format
tag, input layout, normalization, stride, network config, training summary and package version.
Beside it we write ``<name>.pt`` (weights + config) for the torch inference backend.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

from .. import __version__
from .model import build_model
from .prefill_options import add_prefill_arguments, apply_prefill_arguments, int_list
from ..core.preprocess import INPUT_CHANNELS, MAX_NORMALIZED, prepare

FORMAT_TAG = 'ros2_depth_interp/1'
INPUT_NAME = 'input'
OUTPUT_NAMES = ('depth', 'confidence')


def _metadata(model, training):
    return {
        'format': FORMAT_TAG,
        'version': __version__,
        'input_layout': 'NCHW float32, channels: ' + ', '.join(INPUT_CHANNELS),
        'normalization': ('each frame divided by the median of its known values, clipped to [0, %g]; '
                          'outputs times that median' % MAX_NORMALIZED),
        'stride': str(model.stride),
        'config': json.dumps(model.config.to_dict()),
        'training': json.dumps(training or {}),
        'ort_graph_optimization': getattr(model, 'ort_graph_optimization', 'all'),
    }


def save_torch_weights(model, path, training=None):
    torch.save({'config': model.config.to_dict(), 'model': model.state_dict(), 'training': training or {}}, path)


def load_torch_weights(path, map_location='cpu'):
    blob = torch.load(path, map_location=map_location, weights_only=False)
    model = build_model(blob['config'])
    model.load_state_dict(blob['model'])
    return model.eval(), blob.get('training', {})


def compact_graph(graph):
    """Shrink an exported graph without changing what it computes: identical Constant nodes are
    shared, and intermediate values and nodes get short names. The pre-fill's unrolled iterations
    export tens of thousands of small nodes (each Slice with its own constant bounds), which
    otherwise makes the file several times larger than the network's weights."""
    keep, first, renamed = [], {}, {}
    for node in graph.node:
        if node.op_type == 'Constant' and len(node.attribute) == 1 and node.attribute[0].name == 'value':
            t = node.attribute[0].t
            key = (t.data_type, tuple(t.dims), t.raw_data, tuple(t.int64_data), tuple(t.int32_data),
                   tuple(t.float_data), tuple(t.double_data))
            if key in first:
                renamed[node.output[0]] = first[key]
                continue
            first[key] = node.output[0]
        keep.append(node)
    fixed = {v.name for v in graph.input} | {v.name for v in graph.output} | {t.name for t in graph.initializer}
    short = {}
    for node in keep:
        for i, name in enumerate(node.input):
            name = renamed.get(name, name)
            node.input[i] = short.get(name, name)
        for i, name in enumerate(node.output):
            if name and name not in fixed:
                short[name] = node.output[i] = 'v%x' % len(short)
        node.name = ''
        node.doc_string = ''
    del graph.node[:]
    graph.node.extend(keep)
    del graph.value_info[:]


def export_onnx(model, path, opset=17, fp16=False, training=None, sample=None):
    """Export ``model`` to ``path``; returns a report with the max |torch - onnxruntime| error."""
    import onnx
    model = model.eval().cpu()
    stride = model.stride
    dummy = torch.zeros(1, 3, 2 * stride, 3 * stride)
    export_model = model.half() if fp16 else model
    if fp16:
        dummy = dummy.half()
    tmp = path + '.tmp'
    torch.onnx.export(
        export_model, (dummy,), tmp, input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
        dynamic_axes={INPUT_NAME: {0: 'batch', 2: 'height', 3: 'width'},
                      'depth': {0: 'batch', 2: 'height', 3: 'width'},
                      'confidence': {0: 'batch', 2: 'height', 3: 'width'}},
        opset_version=opset, do_constant_folding=True, dynamo=False)
    proto = onnx.load(tmp)
    compact_graph(proto.graph)
    meta = _metadata(model, dict(training or {}, fp16=bool(fp16)))
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
    os.remove(tmp)
    if fp16:
        model.float()
    report = {'path': path, 'opset': opset, 'fp16': bool(fp16), 'bytes': os.path.getsize(path)}
    try:
        report.update(check_parity(model, path, sample))
    except Exception as exc:  # e.g. fp16 kernels missing in the CPU build of ONNX Runtime
        if not fp16:
            raise
        report['parity'] = 'not checked on this ONNX Runtime build: %s' % str(exc).splitlines()[0]
    return report


def _random_input(stride, rng, height=None, width=None):
    h = height or 3 * stride + 7
    w = width or 4 * stride + 3
    depth = rng.uniform(1.0, 5.0, (h, w)).astype(np.float32)
    mask = rng.random((h, w)) < 0.1
    intensity = rng.integers(0, 256, (h, w), dtype=np.uint8)
    return depth, mask, intensity


def check_parity(model, path, sample=None, seed=0):
    """Max abs difference between torch and ONNX Runtime (CPU) on a random and, if given, a real input."""
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    in_type = session.get_inputs()[0].type
    rng = np.random.default_rng(seed)
    cases = {'random': _random_input(model.stride, rng)}
    if sample is not None:
        cases['real'] = sample
    report = {}
    for name, (depth, mask, intensity) in cases.items():
        prepared = prepare(depth, mask, intensity, model.stride)
        with torch.no_grad():
            ref = model(torch.from_numpy(prepared.tensor))
        x = prepared.tensor.astype(np.float16) if 'float16' in in_type else prepared.tensor
        out = session.run(None, {INPUT_NAME: x})
        report['max_abs_error_%s' % name] = max(float(np.abs(o.astype(np.float32) - r.numpy()).max())
                                                for o, r in zip(out, ref))
    return report


def export_tiny_model(path, seed=0):
    """A small untrained network exported with the project's export code (tests only; never shipped)."""
    torch.manual_seed(seed)
    model = build_model('tiny')
    # small random head so the correction is not exactly zero
    torch.nn.init.normal_(model.head.weight, std=1e-3)
    export_onnx(model, path, training={'note': 'untrained tiny test model'})
    save_torch_weights(model, os.path.splitext(path)[0] + '.pt', {'note': 'untrained tiny test model'})
    return path


def _real_sample():
    """One Middlebury frame with a 10 % gradient mask, when the shared data is present."""
    try:
        from .datasets import list_middlebury, read_middlebury
        from .masks import make_semi_dense
        from ..core.resources import shared_data_dir
        scenes = list_middlebury(os.path.join(shared_data_dir(), 'middlebury'))
        if not scenes:
            return None
        frame = read_middlebury(scenes[0])
        sparse, mask = make_semi_dense(frame['disparity'], frame['intensity'], 'gradient', 0.1,
                                       np.random.default_rng(0))
        return sparse, mask, frame['intensity']
    except Exception as exc:  # parity on the random input still runs
        print('export: no real sample for the parity check (%s)' % exc, file=sys.stderr)
        return None


GEODESIC_OVERRIDES = ('smoothing', 'smoothing_rounds', 'colorization_steps')


def main(argv=None):
    parser = argparse.ArgumentParser(prog='depth_interp export', description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='training checkpoint (.pt from depth_interp train)')
    parser.add_argument('--out', default='models/depth_interp.onnx', help='ONNX file to write')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--fp16', action='store_true', help='also write <name>_fp16.onnx (for GPUs)')
    add_prefill_arguments(parser)  # override the pre-fill the network was trained with
    # the same for the parameter-free steps of the geodesic models (they share every tensor)
    parser.add_argument('--smoothing', type=int_list, help='geodesic models: one round of harmonic smoothing, '
                        'distances in px, e.g. 16,8,4,2,1')
    parser.add_argument('--smoothing-rounds', type=int, help='geodesic models: rounds of --smoothing')
    parser.add_argument('--colorization-steps', type=int, help='geodesic models: colorization sweeps at the end')
    args = parser.parse_args(argv)
    if args.opset < 17:
        parser.error('--opset must be 17 or newer')
    blob = torch.load(args.checkpoint, map_location='cpu', weights_only=False)
    config = dict(blob['config'])
    overridden = apply_prefill_arguments(config, args)
    if overridden and config.get('arch') is not None:
        parser.error('--prefill-* options need a model with a pre-fill (preset prefill_cnn); %s is %r'
                     % (args.checkpoint, config['arch']))
    for key in GEODESIC_OVERRIDES:
        if getattr(args, key) is not None:
            if config.get('arch') != 'geodesic':
                parser.error('--%s needs a geodesic model; %s is %r' % (key.replace('_', '-'), args.checkpoint,
                                                                        config.get('arch', 'prefill_cnn')))
            config[key] = getattr(args, key)
            overridden.append(key)
    try:
        model = build_model(config)
    except ValueError as exc:
        print('export: %s' % exc, file=sys.stderr)
        return 2
    model.load_state_dict(blob['model'])
    model.eval()
    training = dict(blob.get('training', {}))
    for key in overridden:
        training[key + '_at_export'] = config[key]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    sample = _real_sample()
    report = export_onnx(model, args.out, args.opset, training=training, sample=sample)
    save_torch_weights(model, os.path.splitext(args.out)[0] + '.pt', training)
    print(json.dumps(report, indent=2))
    if args.fp16:
        fp16_path = os.path.splitext(args.out)[0] + '_fp16.onnx'
        print(json.dumps(export_onnx(model, fp16_path, args.opset, fp16=True, training=training,
                                     sample=sample), indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
