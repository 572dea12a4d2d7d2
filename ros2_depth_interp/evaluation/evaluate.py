"""``depth_interp eval``: the model and the classical baselines on real data, on the same masks.

For every protocol (mask mode @ density, e.g. ``gradient@0.10``) and every frame, one semi-dense
input is drawn (seeded from ``--seed``, the frame's name and the protocol, so every method and every
run sees the same pixels) and each method densifies it. Metrics (``metrics.compute_metrics``) are
computed on all pixels with valid ground truth and, separately, on the valid pixels that were not
given (``unknown``). Wall time per call is measured on this machine.

Data kinds:

- ``middlebury`` (default): ``--data``/``--size``/<Scene>; ground truth is the disparity in pixels
  of the size read (file value / k). PSNR peak: 255 in the file's units = 255 / k in these pixels
  (the paper's / Liu et al.'s "disparity / 255, 10 log10(1 / MSE)").
- ``tum``: TUM RGB-D frames (16-bit depth / 5000 = metres); ground truth is the sensor depth
  itself, which has holes and noise: the numbers describe agreement with the sensor, for a
  qualitative look at real Kinect data, not a benchmark. PSNR peak: 65535 / 5000 = 13.107 m (the
  16-bit file's full scale).

Outputs in ``--out``: ``results.json`` (every number, per frame and mean, plus the settings),
``results.md`` (a table per protocol: PSNR / RMSE per frame and method, mean, time per frame) and
``fig_<frame>_<protocol>.png`` pictures like the paper's Figure 1.
"""
import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
import zlib

import numpy as np

from . import metrics as _metrics
from .baselines import BASELINES
from ..core.inference import SETTLE_S
from ..core.resources import default_model_path, shared_data_dir
from ..learning.datasets import HELD_OUT_SCENES

MODEL = 'model'
METHODS = (MODEL,) + tuple(BASELINES)
EVAL_SCENES = HELD_OUT_SCENES  # whole families never trained on
DEFAULT_PROTOCOLS = ('uniform@0.10', 'gradient@0.10', 'lsd@0.10',
                     'uniform@0.05', 'gradient@0.05', 'uniform@0.20', 'gradient@0.20')
TUM_PROTOCOLS = ('uniform@0.10', 'gradient@0.10', 'lsd@0.10')
FIGURE_PROTOCOLS = ('uniform@0.10', 'gradient@0.10', 'lsd@0.10')
TUM_PSNR_PEAK = 65535.0 / 5000.0


class ConfigError(ValueError):
    """Bad command-line settings: reported once, exit status 2."""


# ---------------------------------------------------------------------------------------------
# Protocols and seeds
# ---------------------------------------------------------------------------------------------

def parse_protocol(text):
    """'gradient@0.10' -> ('gradient', 0.1). Density in (0, 1] (a percent like '10%' also works)."""
    from ..learning.masks import MASK_MODES
    mode, sep, dens = str(text).partition('@')
    if not sep or mode not in MASK_MODES:
        raise ConfigError('protocol %r: expected <mode>@<density> with mode in %s' % (text, ', '.join(MASK_MODES)))
    try:
        density = float(dens[:-1]) / 100.0 if dens.endswith('%') else float(dens)
    except ValueError:
        raise ConfigError('protocol %r: density %r is not a number' % (text, dens)) from None
    if not 0.0 < density <= 1.0:
        raise ConfigError('protocol %r: density must be in (0, 1]' % text)
    return mode, density


def protocol_label(mode, density):
    """Canonical name: 'gradient@0.10' (two decimals unless more are needed)."""
    two = '%.2f' % density
    return '%s@%s' % (mode, two if abs(float(two) - density) < 1e-12 else repr(float(density)))


def protocol_rng(seed, frame_name, label):
    """The generator for one (frame, protocol): independent of method order and of other frames."""
    return np.random.default_rng([int(seed), zlib.crc32(frame_name.encode()), zlib.crc32(label.encode())])


def semi_dense_input(frame, mode, density, seed):
    """``(sparse, mask)``: the known depth (float32, 0 elsewhere) and mask every method gets for one
    (frame, protocol); samples only where the ground truth is valid."""
    from ..learning.masks import make_semi_dense
    gt, valid = frame['gt'], frame['valid']
    sparse, mask = make_semi_dense(np.where(valid, gt, 0), frame['intensity'], mode, density,
                                   protocol_rng(seed, frame['name'], protocol_label(mode, density)))
    mask &= valid
    return np.where(mask, sparse, 0).astype(np.float32), mask


# ---------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------

def load_middlebury_frames(data, scenes=EVAL_SCENES, size='ThirdSize', views=(1,)):
    """Frames ``dict(name, intensity, gt, valid, peak, units)`` for the named Middlebury scenes.

    ``views``: which of each scene's views with ground truth to read: 1 (the left view, named like
    the scene) and/or 5 (the right view, named ``<Scene>/view5``), frames of the same scene from
    another viewpoint."""
    from ..learning.datasets import MIDDLEBURY_SIZE_FACTORS, list_middlebury, read_middlebury
    if size not in MIDDLEBURY_SIZE_FACTORS:
        raise ConfigError('--size %r: expected one of %s' % (size, ', '.join(MIDDLEBURY_SIZE_FACTORS)))
    bad = [v for v in views if v not in (1, 5)]
    if bad or not views:
        raise ConfigError('--views %s: expected 1 and/or 5' % ','.join(str(v) for v in views))
    k = MIDDLEBURY_SIZE_FACTORS[size]
    found = {os.path.basename(d): d for d in list_middlebury(data, size)}
    missing = [s for s in scenes if s not in found]
    if missing:
        raise ConfigError('Middlebury scenes not found under %s: %s (available: %s)'
                          % (os.path.join(data, size), ', '.join(missing), ', '.join(sorted(found)) or 'none'))
    frames = []
    for view in views:
        for scene in scenes:
            if not os.path.isfile(os.path.join(found[scene], 'disp%d.png' % view)):
                raise ConfigError('%s has no view%d.png / disp%d.png' % (found[scene], view, view))
            f = read_middlebury(found[scene], size_factor=k, view=view)
            frames.append(dict(name=scene if view == 1 else '%s/view%d' % (scene, view),
                               intensity=f['intensity'], gt=f['disparity'], valid=f['valid'],
                               peak=_metrics.middlebury_peak(k), units='disparity px (%s)' % size))
    return frames


def tum_frame_name(root, color_path):
    rel = os.path.relpath(color_path, root)
    name = os.path.splitext(rel)[0].replace(os.sep, '/')
    return name[:-len('_color')] if name.endswith('_color') else name


def load_tum_frames(data, names=None):
    """TUM frames found under ``data`` (any layout ``datasets.list_tum_frames`` knows), optionally by name."""
    from ..learning.datasets import list_tum_frames, read_tum
    pairs = {tum_frame_name(data, c): (c, d) for c, d in list_tum_frames(data)}
    if not pairs:
        raise ConfigError('no TUM colour/depth pairs found under %s' % data)
    names = list(names) if names else sorted(pairs)
    missing = [n for n in names if n not in pairs]
    if missing:
        raise ConfigError('TUM frames not found: %s (available: %s)' % (', '.join(missing), ', '.join(sorted(pairs))))
    frames = []
    for name in names:
        f = read_tum(*pairs[name])
        frames.append(dict(name=name, intensity=f['intensity'], gt=f['depth'], valid=f['depth'] > 0,
                           peak=TUM_PSNR_PEAK, units='m'))
    return frames


# ---------------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------------

def load_model(path, required):
    """(interpolate function or None, info dict). ``required``: a missing file is a ConfigError."""
    from ..core.inference import DepthInterpolator, ModelLoadError
    info = dict(path=path, used=False)
    if not os.path.isfile(path):
        if required:
            raise ConfigError('model %s: file not found' % path)
        info['skipped'] = 'model file not found: %s' % path
        return None, info
    try:
        interp = DepthInterpolator(model_path=path)
    except ModelLoadError as exc:
        if required:
            raise ConfigError('model %s: %s' % (path, exc)) from None
        info['skipped'] = 'model could not be loaded: %s' % exc
        return None, info
    info.update(used=True, provider=interp.active_provider, metadata=interp.metadata)
    return interp, info


def _warm_up(fn, frames):
    """One untimed call per image size, so the model's first-call cost (allocation) is not timed."""
    seen = set()
    for frame in frames:
        shape = frame['gt'].shape
        if shape in seen:
            continue
        seen.add(shape)
        mask = frame['valid'] & (np.arange(frame['gt'].size).reshape(shape) % 10 == 0)
        fn(np.where(mask, frame['gt'], 0).astype(np.float32), mask, frame['intensity'])


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------

def evaluate(frames, protocols, methods, seed=0, figure_dir=None, figure_frames=(), figure_protocols=(),
             progress=True, repeat=1):
    """Run every method on every (protocol, frame); return ``(results, figures)``.

    ``methods``: ordered mapping name -> fn(depth, mask, intensity). ``results[label][frame][method]``
    is ``dict(all=metrics, unknown=metrics, time_s=seconds, time_min_s=seconds)`` or
    ``dict(error=message)``. Each method runs ``repeat`` times per input, each call after a pause of
    ``SETTLE_S`` (``core.inference``: the shipped model runs right after the model under test):
    ``time_s`` is the median wall time, ``time_min_s`` the fastest call (on a shared machine the
    minimum is the least disturbed), ``cpu_s`` the median CPU time of this process (all its threads:
    above the wall time for multi-threaded methods, and much less sensitive to other processes than
    wall time).
    Figures are written for the frames in ``figure_frames`` under the protocols in
    ``figure_protocols`` when ``figure_dir`` is given; their paths are returned.
    """
    from tqdm import tqdm

    from .figures import save_figure1

    parsed = [parse_protocol(p) for p in protocols]
    results, figures = {}, []
    bar = tqdm(total=len(parsed) * len(frames) * len(methods), disable=not progress, unit='run',
               dynamic_ncols=True, file=sys.stderr)
    try:
        for mode, density in parsed:
            label = protocol_label(mode, density)
            per_frame = results.setdefault(label, {})
            for frame in frames:
                gt, valid, intensity = frame['gt'], frame['valid'], frame['intensity']
                sparse, mask = semi_dense_input(frame, mode, density, seed)
                unknown = valid & ~mask
                row = per_frame.setdefault(frame['name'], {})
                outputs, captions = {}, {}
                for name, fn in methods.items():
                    bar.set_description('%s %s %s' % (label, frame['name'], name))
                    try:
                        times, cpu = [], []
                        for _ in range(max(1, int(repeat))):
                            time.sleep(SETTLE_S)
                            c0, t0 = time.process_time(), time.perf_counter()
                            out = fn(sparse, mask, intensity)
                            times.append(time.perf_counter() - t0)
                            cpu.append(time.process_time() - c0)
                        row[name] = dict(all=_metrics.compute_metrics(out, gt, valid, frame['peak']),
                                         unknown=_metrics.compute_metrics(out, gt, unknown, frame['peak']),
                                         time_s=float(np.median(times)), time_min_s=float(min(times)),
                                         cpu_s=float(np.median(cpu)),
                                         known_fraction=float(mask.mean()))
                        outputs[name] = out
                        captions[name] = '%.2f dB' % row[name]['all']['psnr']
                    except Exception as exc:  # one failing method must not lose the others' numbers
                        row[name] = dict(error='%s: %s' % (type(exc).__name__, exc))
                        bar.write('%s %s %s failed: %s' % (label, frame['name'], name, row[name]['error']))
                    bar.update(1)
                if figure_dir and frame['name'] in figure_frames and label in figure_protocols:
                    path = os.path.join(figure_dir, 'fig_%s_%s.png' % (_safe(frame['name']), _safe(label)))
                    # The model's panel goes last, beside the ground truth (as in the paper's Figure 1).
                    ordered = {k: outputs[k] for k in sorted(outputs, key=lambda k: k == MODEL)}
                    save_figure1(path, intensity, sparse, mask, ordered, gt, valid, captions=captions,
                                 title='%s, %s (%d %% known)' % (frame['name'], label, round(100 * mask.mean())),
                                 units=frame['units'])
                    figures.append(path)
    finally:
        bar.close()
    return results, figures


def _safe(text):
    return ''.join(c if c.isalnum() or c in '-.' else '_' for c in text)


def summarize(results, methods):
    """Mean metrics and time per protocol and method over the frames where the method succeeded."""
    summary = {}
    for label, per_frame in results.items():
        summary[label] = {}
        for name in methods:
            rows = [r[name] for r in per_frame.values() if name in r and 'error' not in r[name]]
            if not rows:
                continue
            summary[label][name] = dict(all=_metrics.mean_metrics(r['all'] for r in rows),
                                        unknown=_metrics.mean_metrics(r['unknown'] for r in rows),
                                        time_s=float(np.mean([r['time_s'] for r in rows])),
                                        time_min_s=float(np.mean([r.get('time_min_s', r['time_s']) for r in rows])),
                                        cpu_s=float(np.mean([r.get('cpu_s', math.nan) for r in rows])),
                                        frames=len(rows))
    return summary


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------

def _jsonable(value):
    """NaN/inf -> None (strict JSON), numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _cell(entry, unit_digits=3):
    if entry is None:
        return '—'
    if 'error' in entry:
        return 'failed'
    m = entry['all']
    return '%.2f / %.*f' % (m['psnr'], unit_digits, m['rmse'])


def markdown_report(report):
    """The human-readable tables (``results.md``)."""
    meta = report['meta']
    methods = meta['methods']
    units = meta['units']
    lines = ['# Depth interpolation evaluation', '']
    lines.append('- data: %s (%s), frames: %s' % (meta['data_kind'], meta['data'], ', '.join(meta['frames'])))
    lines.append('- metrics on all pixels with valid ground truth; PSNR peak %s (%s); RMSE in %s'
                 % ('%.4g' % meta['psnr_peak'] if meta['psnr_peak'] else '—', meta['psnr_peak_note'], units))
    lines.append('- masks: seed %d, the same pixels for every method' % meta['seed'])
    lines.append('- time: wall seconds per frame (median of %d) on %s, 1-min load average before/after %s'
                 % (meta['repeat'], meta['host'], '/'.join(str(v) for v in meta['load_average']) or '?'))
    model = meta['model']
    if MODEL in meta['requested_methods']:
        if model.get('used'):
            lines.append('- model: %s (%s)' % (model['path'], model.get('provider', '')))
        else:
            lines.append('- **model skipped**: %s' % model.get('skipped', 'not requested'))
    lines += ['', '## Mean PSNR (dB) per protocol', '']
    lines.append('| protocol | ' + ' | '.join(methods) + ' |')
    lines.append('|---|' + '---|' * len(methods))
    for label, per_method in report['summary'].items():
        cells = ['%.2f' % per_method[m]['all']['psnr'] if m in per_method else '—' for m in methods]
        lines.append('| %s | %s |' % (label, ' | '.join(cells)))
    for label, per_frame in report['results'].items():
        lines += ['', '## %s: PSNR (dB) / RMSE (%s)' % (label, units), '']
        lines.append('| frame | ' + ' | '.join(methods) + ' |')
        lines.append('|---|' + '---|' * len(methods))
        for frame, row in per_frame.items():
            lines.append('| %s | %s |' % (frame, ' | '.join(_cell(row.get(m)) for m in methods)))
        summary = report['summary'].get(label, {})
        lines.append('| **mean** | %s |' % ' | '.join(_cell(summary.get(m)) for m in methods))
        lines.append('| time (s/frame) | %s |' % ' | '.join(
            '%.3f' % summary[m]['time_s'] if m in summary else '—' for m in methods))
        lines.append('| CPU time (s/frame) | %s |' % ' | '.join(
            '%.3f' % summary[m]['cpu_s'] if m in summary else '—' for m in methods))
    if report.get('figures'):
        lines += ['', '## Figures', '']
        lines += ['- `%s`' % os.path.basename(p) for p in report['figures']]
    return '\n'.join(lines) + '\n'


def _load_average():
    """1-minute load average (other processes compete for the CPUs: recorded before and after)."""
    try:
        return [round(os.getloadavg()[0], 2)]
    except (AttributeError, OSError):
        return []


def _host():
    return '%s, %d CPUs (%s)' % (platform.node() or 'this machine', os.cpu_count() or 0, platform.processor()
                                 or platform.machine())


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def build_parser():
    p = argparse.ArgumentParser(
        prog='depth_interp eval', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--data-kind', choices=('middlebury', 'tum'), default='middlebury')
    p.add_argument('--data', default=None,
                   help='data folder (default: <shared data>/middlebury or <shared data>/tum)')
    p.add_argument('--scenes', nargs='+', default=None,
                   help='Middlebury scenes (default: %s) or TUM frame names (default: all found)'
                   % ' '.join(EVAL_SCENES))
    p.add_argument('--size', default='ThirdSize', help='Middlebury size folder')
    p.add_argument('--views', default='1', help="Middlebury views: '1' (left), '5' (right) or '1,5'")
    p.add_argument('--protocols', nargs='+', default=None,
                   help='mode@density list (default Middlebury: %s; TUM: %s)'
                   % (' '.join(DEFAULT_PROTOCOLS), ' '.join(TUM_PROTOCOLS)))
    p.add_argument('--methods', nargs='+', default=list(METHODS), help='any of: %s' % ' '.join(METHODS))
    p.add_argument('--model', default=None, help='ONNX model (default: the shipped model; skipped if missing)')
    p.add_argument('--compare', nargs='*', default=[], metavar='LABEL=PATH',
                   help='more ONNX models evaluated beside the model on the same masks, e.g. previous=old.onnx')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--repeat', type=int, default=1,
                   help='calls per method and input; time = median (json also has the minimum)')
    p.add_argument('--out', default=os.path.join('out', 'eval'))
    p.add_argument('--figure-scenes', nargs='*', default=None,
                   help='frames to draw (default: all evaluated; give none to draw nothing)')
    p.add_argument('--figure-protocols', nargs='*', default=list(FIGURE_PROTOCOLS))
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p


def _configure(args):
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise ConfigError('unknown method(s) %s; expected any of %s' % (', '.join(unknown), ', '.join(METHODS)))
    methods = list(dict.fromkeys(args.methods))
    if args.data_kind == 'middlebury':
        data = args.data or os.path.join(shared_data_dir(), 'middlebury')
        protocols = args.protocols or list(DEFAULT_PROTOCOLS)
    else:
        data = args.data or os.path.join(shared_data_dir(), 'tum')
        protocols = args.protocols or list(TUM_PROTOCOLS)
    if not os.path.isdir(data):
        raise ConfigError('data folder not found: %s' % data)
    labels = [protocol_label(*parse_protocol(p)) for p in protocols]
    if args.data_kind == 'middlebury':
        try:
            views = tuple(int(v) for v in args.views.split(',') if v.strip())
        except ValueError:
            raise ConfigError('--views %r: expected 1 and/or 5, comma separated' % args.views) from None
        frames = load_middlebury_frames(data, args.scenes or EVAL_SCENES, args.size, views)
    else:
        frames = load_tum_frames(data, args.scenes)
    return data, methods, list(dict.fromkeys(labels)), frames


def _compared_models(items):
    """['LABEL=PATH', ...] -> [(label, path)]; labels must differ from the methods' names."""
    pairs = []
    for item in items:
        label, sep, path = item.partition('=')
        if not sep or not label or not path:
            raise ConfigError('--compare %r: expected LABEL=PATH' % item)
        if label in METHODS or label in dict(pairs):
            raise ConfigError('--compare label %r is taken' % label)
        pairs.append((label, path))
    return pairs


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        data, requested, labels, frames = _configure(args)
        funcs = {}
        model_info = dict(path=args.model or default_model_path(), used=False, skipped='not requested')
        if MODEL in requested:
            interp, model_info = load_model(args.model or default_model_path(), required=args.model is not None)
            if interp is None:
                print('depth_interp eval: MODEL SKIPPED (%s); evaluating the baselines only.'
                      % model_info['skipped'], file=sys.stderr)
            else:
                _warm_up(interp.interpolate, frames)
                funcs[MODEL] = interp.interpolate
        for label, path in _compared_models(args.compare):
            interp, _ = load_model(path, required=True)
            _warm_up(interp.interpolate, frames)
            funcs[label] = interp.interpolate
        for name in requested:
            if name != MODEL:
                funcs[name] = BASELINES[name]
        if not funcs:
            raise ConfigError('nothing to evaluate: no method left')
    except ConfigError as exc:
        print('depth_interp eval: %s' % exc, file=sys.stderr)
        return 2

    names = [f['name'] for f in frames]
    figure_frames = names if args.figure_scenes is None else args.figure_scenes
    figure_protocols = [protocol_label(*parse_protocol(p)) for p in args.figure_protocols]
    os.makedirs(args.out, exist_ok=True)
    load_before = _load_average()
    results, figures = evaluate(frames, labels, funcs, seed=args.seed, figure_dir=args.out,
                                figure_frames=figure_frames, figure_protocols=figure_protocols,
                                progress=not args.no_progress, repeat=args.repeat)
    methods = list(funcs)
    if args.data_kind == 'middlebury':
        peak_note = ('255 in the 8-bit files\' units = 255 / k px at 1/k size; '
                     'PSNR = 10 log10(1 / MSE) of disparity / peak')
    else:
        peak_note = '65535 / 5000 m, the 16-bit file full scale'
    report = dict(
        meta=dict(
            data_kind=args.data_kind, data=os.path.abspath(data),
            size=args.size if args.data_kind == 'middlebury' else None,
            frames=names, protocols=labels, methods=methods, requested_methods=requested, seed=args.seed,
            units=frames[0]['units'], psnr_peak=frames[0]['peak'], psnr_peak_note=peak_note,
            model=model_info, host=_host(), repeat=args.repeat, load_average=load_before + _load_average(),
            date=datetime.datetime.now().isoformat(timespec='seconds'),
            metric_definitions='see ros2_depth_interp/metrics.py; "all" = every pixel with valid ground truth, '
                               '"unknown" = valid pixels not in the semi-dense input'),
        summary=summarize(results, methods), results=results, figures=[os.path.basename(p) for p in figures])
    with open(os.path.join(args.out, 'results.json'), 'w') as f:
        json.dump(_jsonable(report), f, indent=1, allow_nan=False)
    with open(os.path.join(args.out, 'results.md'), 'w') as f:
        f.write(markdown_report(report))
    print(markdown_report(report))
    print('wrote %s' % ', '.join(os.path.join(args.out, n) for n in ['results.json', 'results.md'] + report['figures']))
    if MODEL in requested and not model_info.get('used'):
        print('NOTE: the model was skipped (%s); the table holds the baselines only.' % model_info['skipped'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
