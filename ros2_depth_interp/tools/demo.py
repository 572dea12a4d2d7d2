"""``depth_interp demo``: the bundled synthetic sequence through the real node over real DDS.

Three processes, as on a robot: the replay publisher (``replay.py``: semi-dense depth made with the
paper's gradient masks, intensity, mask and camera_info, stamp = now), the node
(``depth_interp_node``) and the recorder (``recorder.py``: outputs, latency, /diagnostics), all in a
DDS domain of their own on loopback (``ros_env.isolated_dds_env``). Afterwards it prints the node's
per-stage latency and rates and the end-to-end latency, and writes to ``--out`` (default out/demo):

- ``figure1.png``: intensity | semi-dense input | dense output | nearest-neighbour fill | ground
  truth for one frame, like Figure 1 of the paper (``figures.py``), and ``confidence.png`` for it;
- ``cloud.ply``: the point cloud of that frame as the node published it;
- ``overview.png``: ``figure1.png`` above a rendering of ``cloud.ply`` (``figures.save_overview``;
  the README's picture, ``make overview`` copies it to docs/images/);
- ``metrics.json``: RMSE / MAE / REL / delta1 of the dense output against the ground truth on the
  pixels the input did not know, and the same for a nearest-neighbour fill of the same input, over
  every frame the node processed.

The bundled sequence is generated (``synthetic.SyntheticSequence``, seed 0), so nothing needs
downloading. ``--data DIR`` replays a folder of real TUM-style frames instead (ground truth = the
sensor depth where it has a value). The demo runs the shipped, trained model; ``--model`` runs another
one (e.g. in tests), and a model whose metadata shows no training is reported as such: its numbers
are not results.
"""
import argparse
import json
import os
import signal
import sys
import time

import numpy as np

from . import replay
from .bench import (NODE_START_TIMEOUT_S, STAGES, _finite, _Process, diagnostics_name, node_command,
                    run_namespace, wait_until_recording)
from ..core.resources import default_model_path
from ..ros.ros_env import isolated_dds_env

EXIT_NO_MODEL = 2
EXIT_RUN_FAILED = 1


def model_training(path):
    """The training record in a model's metadata ({} when there is none)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    meta = session.get_modelmeta().custom_metadata_map
    try:
        return json.loads(meta.get('training', '{}')) or {}
    except ValueError:
        return {}


def is_trained(training):
    """True when the metadata records optimisation steps (written by ``depth_interp train``)."""
    try:
        return int(training.get('steps', 0)) > 0
    except (TypeError, ValueError):
        return False


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog='depth_interp demo', description=__doc__.splitlines()[0])
    p.add_argument('--model', default=None, help='ONNX model (default: the shipped, trained model)')
    p.add_argument('--data', default=None, help='replay a folder of TUM-style RGB-D frames instead')
    p.add_argument('--intrinsics', default=None,
                   help='fx,fy,cx,cy of the --data frames at their file size (default: PrimeSense 525,525,319.5,239.5)')
    p.add_argument('--size', type=replay._size, default=(640, 480), help='WIDTHxHEIGHT (default 640x480)')
    p.add_argument('--frames', type=int, default=30, help='frames to publish (default 30)')
    p.add_argument('--rate', type=float, default=5.0, help='replay rate in Hz (default 5)')
    p.add_argument('--density', type=float, default=replay.DEFAULT_DENSITY, help='semi-dense fraction')
    p.add_argument('--seed', type=int, default=0, help='synthetic sequence seed (0 = the bundled one)')
    p.add_argument('--out', default='out/demo', help='output folder')
    args = p.parse_args(argv)
    if args.frames < 1 or args.rate <= 0 or not 0 < args.density <= 1:
        p.error('--frames >= 1, --rate > 0 and --density in (0, 1] please')
    return args


def prepare(args):
    """Frames (with ground truth) rendered or read once, and written for the replay process."""
    width, height = args.size
    t0 = time.perf_counter()
    if args.data:
        intrinsics = tuple(float(v) for v in args.intrinsics.split(',')) if args.intrinsics else None
        frames = replay.folder_frames(args.data, None, height, width, args.density, intrinsics=intrinsics)
        source = 'folder %s' % args.data
    else:
        # every second frame of the sequence: a little more motion between published frames
        frames = replay.synthetic_frames(args.frames, height, width, args.seed, args.density, step=2)
        source = 'synthetic sequence, seed %d' % args.seed
    path = os.path.join(args.out, 'frames.npz')
    replay.save_frames(path, frames, {'source': source})
    print('demo: %d frames %dx%d from the %s, semi-dense density %.0f %% (gradient masks), prepared in %.1f s'
          % (len(frames), width, height, source, 100 * args.density, time.perf_counter() - t0), flush=True)
    return frames, path, source


def run_pipeline(args, model, frames_path, n_frames):
    """Node + recorder + replay; returns (replay summary, recorder summary)."""
    run_dir = os.path.join(args.out, 'run')
    os.makedirs(run_dir, exist_ok=True)
    env = isolated_dds_env(log_dir=os.path.join(run_dir, 'roslog'))
    ready = os.path.join(run_dir, 'recorder.ready')
    stop_file = os.path.join(run_dir, 'replay.done')
    for stale in (ready, stop_file, os.path.join(run_dir, 'replay.json'), os.path.join(run_dir, 'recorder.json')):
        if os.path.exists(stale):
            os.remove(stale)
    namespace = run_namespace('demo')
    node = _Process(node_command() + ['--ros-args', '-r', '__ns:=' + namespace, '-p', 'model_path:=' + model,
                                      '-p', 'providers:=[CPUExecutionProvider]',
                                      '-p', 'diagnostics_period:=0.5'],
                    env, os.path.join(run_dir, 'node.log'))
    recorder = player = None
    try:
        recorder = _Process([sys.executable, '-m', 'ros2_depth_interp.tools.recorder', '--ready-file', ready,
                             '--stop-file', stop_file, '--timeout', str(NODE_START_TIMEOUT_S + 300),
                             '--namespace', namespace, '--node-name', diagnostics_name(namespace),
                             '--save-dir', args.out, '--save-max', str(n_frames + 5),
                             '--ply', os.path.join(args.out, 'cloud.ply'),
                             '--summary', os.path.join(run_dir, 'recorder.json')],
                            env, os.path.join(run_dir, 'recorder.log'))
        print('demo: starting the node (%s, namespace %s) and the recorder in ROS_DOMAIN_ID %s ...'
              % (os.path.basename(node_command()[-1]), namespace, env['ROS_DOMAIN_ID']), flush=True)
        wait_until_recording(ready, node, recorder)
        player = _Process([sys.executable, '-m', 'ros2_depth_interp.tools.replay', '--frames-file', frames_path,
                           '--namespace', namespace, '--rate', '%g' % args.rate, '--frames', str(n_frames),
                           '--summary', os.path.join(run_dir, 'replay.json')],
                          env, os.path.join(run_dir, 'replay.log'))
        print('demo: replaying %d frames at %g Hz ...' % (n_frames, args.rate), flush=True)
        if player.wait(NODE_START_TIMEOUT_S + n_frames / args.rate) != 0:
            raise RuntimeError('the replay failed (rc %s):\n%s' % (player.poll(), player.tail()))
        open(stop_file, 'w').close()   # the recorder now waits for the node to drain
        if recorder.wait(75.0) is None:
            recorder.stop(signal.SIGTERM, timeout=30.0)
    finally:
        for proc in (player, recorder, node):
            if proc is not None:
                proc.stop()
    with open(os.path.join(run_dir, 'replay.json')) as f:
        replay_summary = json.load(f)
    with open(os.path.join(run_dir, 'recorder.json')) as f:
        recorded = json.load(f)
    return replay_summary, recorded


def evaluate(frames, replay_summary, outputs_path):
    """Per-frame metrics of the node's output and of nearest-neighbour fill on unknown pixels."""
    from ..evaluation.baselines import nearest
    from ..evaluation.metrics import compute_metrics, mean_metrics
    by_index = {f['index']: f for f in frames}
    frame_of_stamp = {int(s): int(i) for s, i in replay_summary['frames']}
    with np.load(outputs_path) as data:
        stamps, dense, confidence = data['stamps'], data['dense_depth'], data['confidence']
    rows_model, rows_nearest, evaluated = [], [], []
    for k, stamp in enumerate(stamps):
        index = frame_of_stamp.get(int(stamp))
        if index is None or any(index == e[1] for e in evaluated):
            continue   # a looped frame counts once
        frame = by_index[index]
        unknown = ~frame['mask'] & (frame['gt'] > 0) & np.isfinite(frame['gt'])
        if not unknown.any():
            continue
        rows_model.append(compute_metrics(dense[k], frame['gt'], unknown))
        rows_nearest.append(compute_metrics(nearest(frame['sparse'], frame['mask']), frame['gt'], unknown))
        evaluated.append((int(stamp), index, k))
    return mean_metrics(rows_model), mean_metrics(rows_nearest), evaluated, (stamps, dense, confidence)


def figure1(path, frame, dense, confidence, title, nearest_fill=None, captions=None):
    """intensity | semi-dense input | dense output (| nearest fill) | ground truth, one colour scale
    (``figures.save_figure1``), and the confidence map beside it as ``confidence.png``."""
    import cv2
    from ..evaluation.figures import colorize, save_figure1
    outputs = {'dense output (node)': dense}
    if nearest_fill is not None:
        outputs['nearest-neighbour fill'] = nearest_fill
    gt = frame['gt']
    save_figure1(path, frame['intensity'], frame['sparse'], frame['mask'], outputs, gt=gt,
                 valid=(gt > 0) & np.isfinite(gt), title=title, captions=captions,
                 columns=len(outputs) + 3, units='depth [m]')
    confidence_png = os.path.join(os.path.dirname(path), 'confidence.png')
    cv2.imwrite(confidence_png, cv2.cvtColor(colorize(confidence, 0.0, 1.0, cmap=cv2.COLORMAP_VIRIDIS),
                                             cv2.COLOR_RGB2BGR))
    return path


def _fmt(value, digits=3):
    return ('%.' + str(digits) + 'f') % value if value == value else 'n/a'


def main(argv=None):
    from ..evaluation.baselines import nearest
    from ..evaluation.metrics import compute_metrics
    args = parse_args(argv)
    started = time.perf_counter()
    model = args.model or default_model_path()
    if not os.path.isfile(model):
        print('demo: no model at %s. The demo runs the shipped, trained model; train and export one '
              '(`make train`, `depth_interp export`) or pass --model.' % model, file=sys.stderr)
        return EXIT_NO_MODEL
    model = os.path.abspath(model)
    training = model_training(model)
    trained = is_trained(training)
    shipped = os.path.abspath(default_model_path()) == model
    shown_path = os.path.relpath(model) if not os.path.relpath(model).startswith('..') else model
    label = '%s (%s, %s)' % (shown_path, 'shipped' if shipped else 'given with --model',
                             'trained for %s steps' % training.get('total_steps', training['steps'])
                             if trained else 'UNTRAINED')
    print('demo: model %s' % label, flush=True)
    os.makedirs(args.out, exist_ok=True)
    frames, frames_path, source = prepare(args)
    n_publish = args.frames
    try:
        replay_summary, recorded = run_pipeline(args, model, frames_path, n_publish)
    except RuntimeError as exc:
        print('demo: %s' % exc, file=sys.stderr)
        return EXIT_RUN_FAILED

    diag = recorded.get('diagnostics_last') or {}
    outputs = recorded['outputs']
    print('\ndemo: %d frames published at %.2f Hz; node: %s input sets, %s outputs at %s Hz, dropped %s (%s)'
          % (replay_summary['published'], replay_summary['rate_actual_hz'], diag.get('count_input_set', '?'),
             diag.get('count_output', '?'), diag.get('rate_output_hz', '?'), diag.get('dropped_total', '?'),
             ', '.join('%s %s' % (k[8:], v) for k, v in sorted(diag.items())
                       if k.startswith('dropped_') and k != 'dropped_total' and v != '0') or 'none'))
    print('demo: per-stage latency in the node, p50 / p90 ms (provider %s):' % diag.get('execution_provider', '?'))
    for stage in STAGES:
        print('        %-9s %8s / %8s' % (stage, diag.get('latency_%s_ms_p50' % stage, '?'),
                                         diag.get('latency_%s_ms_p90' % stage, '?')))
    for topic in ('dense_depth', 'points'):
        lat = outputs[topic]['latency_ms_all']
        print('demo: end-to-end latency (stamp -> %s received): p50 %s ms, p90 %s ms, max %s ms over %d frames'
              % (topic, _fmt(lat['p50'], 1), _fmt(lat['p90'], 1), _fmt(lat['max'], 1), lat['n']))

    outputs_path = recorded.get('outputs_file')
    if not outputs_path:
        print('demo: no output arrived from the node; see %s' % os.path.join(args.out, 'run', 'node.log'),
              file=sys.stderr)
        return EXIT_RUN_FAILED
    model_metrics, nearest_metrics, evaluated, (stamps, dense, confidence) = evaluate(
        frames, replay_summary, outputs_path)

    # the figure shows the frame whose cloud went into the PLY (else the last output)
    ply = recorded.get('ply') or {}
    pick = next((e for e in evaluated if e[0] == ply.get('stamp_ns')), evaluated[-1] if evaluated else None)
    report = {'model': model, 'model_label': label, 'trained': trained, 'source': source,
              'size': list(args.size), 'density': args.density, 'frames_published': replay_summary['published'],
              'frames_evaluated': len(evaluated), 'unknown_pixels_only': True,
              'model_metrics': model_metrics, 'nearest_metrics': nearest_metrics,
              'latency_ms': {t: outputs[t]['latency_ms_all'] for t in outputs},
              'stages_ms_p50': {s: diag.get('latency_%s_ms_p50' % s) for s in STAGES},
              'diagnostics': diag, 'ply': ply}
    if pick is not None:
        stamp, index, k = pick
        report['figure_frame'] = {'stamp_ns': stamp, 'frame_index': index}
        frame = by_index(frames)[index]
        unknown = ~frame['mask'] & (frame['gt'] > 0)
        fill = nearest(frame['sparse'], frame['mask'])
        captions = {name: 'RMSE %.3f m on unknown pixels' % compute_metrics(image, frame['gt'], unknown)['rmse']
                    for name, image in (('dense output (node)', dense[k]), ('nearest-neighbour fill', fill))}
        title = '%s, frame %d; model %s' % (source, index, label)
        figure1(os.path.join(args.out, 'figure1.png'), frame, dense[k], confidence[k], title, fill, captions)
        if os.path.isfile(os.path.join(args.out, 'cloud.ply')):
            from ..evaluation.figures import save_overview
            save_overview(os.path.join(args.out, 'overview.png'), os.path.join(args.out, 'figure1.png'),
                          os.path.join(args.out, 'cloud.ply'))
    with open(os.path.join(args.out, 'metrics.json'), 'w') as f:
        json.dump(_finite(report), f, indent=1)

    claim = '' if trained else 'UNTRAINED MODEL, not a result: '
    print('\ndemo: %son %d distinct frames, unknown pixels only: model RMSE %s m, REL %s, delta1 %s | nearest-neighbour '
          'fill RMSE %s m, REL %s, delta1 %s' % (
              claim, len(evaluated), _fmt(model_metrics.get('rmse', float('nan'))),
              _fmt(model_metrics.get('rel', float('nan'))), _fmt(model_metrics.get('delta1', float('nan'))),
              _fmt(nearest_metrics.get('rmse', float('nan'))), _fmt(nearest_metrics.get('rel', float('nan'))),
              _fmt(nearest_metrics.get('delta1', float('nan')))))
    written = [os.path.join(args.out, name) for name in ('figure1.png', 'confidence.png', 'cloud.ply',
                                                         'overview.png', 'metrics.json')]
    print('demo: wrote %s (%s points in the cloud) in %.0f s'
          % (', '.join(p for p in written if os.path.exists(p)), ply.get('points', 0), time.perf_counter() - started))
    return 0


def by_index(frames):
    return {f['index']: f for f in frames}


if __name__ == '__main__':
    sys.exit(main())
