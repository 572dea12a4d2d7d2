"""What an ONNX model is made of and where ONNX Runtime spends its time in it.

- :func:`graph_stats`: node count, op-type histogram, opset, parameter count and file size, read
  from the file (``onnx``); nodes inside subgraphs (If/Loop bodies) are counted too.
- :func:`operator_profile`: ONNX Runtime's own per-operator profile
  (``SessionOptions.enable_profiling``): the model runs a few times on one input, the profile JSON
  is parsed (:func:`parse_profile`) into time per op type, each op type's share of the node time
  and the share of the dense compute operators (:data:`COMPUTE_OP`: Conv, ConvTranspose, MatMul,
  Gemm and the fused forms ONNX Runtime rewrites them into, such as FusedConv). The first run is
  left out (allocation, kernel selection). Profiled times carry the profiler's own per-node cost,
  which weighs most on graphs of many small nodes.
"""
import collections
import glob
import json
import os
import re
import tempfile

import numpy as np

# op types (as ONNX Runtime names them after its graph rewrites) counted as dense compute
COMPUTE_OP = re.compile(r'Conv|MatMul|Gemm')


def _all_nodes(graph):
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.g is not None and attribute.g.node:
                yield from _all_nodes(attribute.g)
            for sub in attribute.graphs:
                yield from _all_nodes(sub)


def graph_stats(path):
    """Node count (top level and with subgraphs), op-type histogram (most frequent first), default
    opset, parameter count (initializer elements) and file size of the ONNX model at ``path``."""
    import onnx
    model = onnx.load(path)
    histogram = collections.Counter(node.op_type for node in _all_nodes(model.graph))
    opset = next((entry.version for entry in model.opset_import if entry.domain in ('', 'ai.onnx')), None)
    parameters = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    return {'nodes': len(model.graph.node), 'nodes_with_subgraphs': sum(histogram.values()),
            'op_types': dict(histogram.most_common()), 'opset': opset, 'parameters': parameters,
            'bytes': os.path.getsize(path)}


def parse_profile(events, skip_runs=1):
    """ONNX Runtime profile events (the parsed JSON list) -> time per op type.

    Returns ``runs`` (runs counted), ``node_ms_per_run`` (sum of kernel times per run), ``ops``
    (op type -> ``ms_per_run``, ``calls_per_run``, ``share`` of the node time; slowest first) and
    ``compute_share`` (the share of the :data:`COMPUTE_OP` op types, listed in ``compute_ops``).
    """
    runs = sorted((e['ts'], e['ts'] + e['dur']) for e in events
                  if e.get('cat') == 'Session' and e.get('name') == 'model_run')
    skip_runs = min(skip_runs, max(len(runs) - 1, 0))
    counted_from = runs[skip_runs - 1][1] if skip_runs else float('-inf')
    n_runs = max(len(runs) - skip_runs, 1)
    time_us, calls = collections.Counter(), collections.Counter()
    for e in events:
        if e.get('cat') != 'Node' or not e.get('name', '').endswith('_kernel_time') or e['ts'] < counted_from:
            continue
        op = e.get('args', {}).get('op_name', '?')
        time_us[op] += e['dur']
        calls[op] += 1
    total_us = sum(time_us.values())
    ops = {op: {'ms_per_run': us / 1000.0 / n_runs, 'calls_per_run': calls[op] / n_runs,
                'share': us / total_us if total_us else 0.0}
           for op, us in time_us.most_common()}
    compute = sorted(op for op in ops if COMPUTE_OP.search(op))
    return {'runs': n_runs, 'node_ms_per_run': total_us / 1000.0 / n_runs, 'ops': ops,
            'compute_ops': compute, 'compute_share': sum(ops[op]['share'] for op in compute)}


def operator_profile(path, tensor, runs=10, threads=0, providers=('CPUExecutionProvider',)):
    """Run the model ``runs`` + 1 times on ``tensor`` (its first input, NCHW) with ONNX Runtime's
    profiler on, with the node's session settings (``core.inference.onnx_session``: the model's graph
    optimization level, ``threads`` intra-op threads, 0 = ONNX Runtime's default); returns
    :func:`parse_profile` of the profile."""
    from ..core.inference import onnx_session
    with tempfile.TemporaryDirectory(prefix='ort_profile_') as folder:
        session = onnx_session(path, list(providers), threads, profile_prefix=os.path.join(folder, 'profile'))
        first = session.get_inputs()[0]
        x = np.ascontiguousarray(tensor, dtype=np.float16 if 'float16' in first.type else np.float32)
        for _ in range(runs + 1):
            session.run(None, {first.name: x})
        profile_path = session.end_profiling()
        if not os.path.isabs(profile_path):
            profile_path = (glob.glob(os.path.join(folder, '*.json')) or [profile_path])[0]
        with open(profile_path) as f:
            events = json.load(f)
    report = parse_profile(events, skip_runs=1)
    report['providers'] = session.get_providers()
    return report
