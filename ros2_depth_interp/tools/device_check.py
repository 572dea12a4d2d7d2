"""The GPU device check (``scripts/device_check.sh``, ``make device-check``): one bounded call.

Stages, in order; each one's result goes into ``device_check.json`` as soon as it ends, so a call
cut short still returns what it measured:

1. ``environment``: nvidia-smi, Python, torch and its CUDA, ONNX Runtime and its providers (and
   what the shell script's attempt to install onnxruntime-gpu gave).
2. ``bench``: the model (default: the shipped one) with ``bench_device``: torch eager fp32/fp16
   and ONNX Runtime (its CUDA provider where onnxruntime-gpu works, else the CPU); network alone,
   per frame with the cloud on the CPU, and (CUDA) per frame with the cloud built on the GPU.
3. ``graphs`` and ``compile`` (CUDA only): the same with the network captured as a CUDA graph, and
   with ``torch.compile``; each in a process of its own (a failed capture can leave the CUDA
   context unusable; compilation can take minutes).
4. ``train``: ``depth_interp train`` with its own defaults (preset, loss, data, schedule) for the
   time budget (``--time-limit``) on ``--device``; ``--train-args`` adds or overrides options,
   ``--init`` fine-tunes from a checkpoint, ``--resume`` continues a run.
5. ``export``: ``depth_interp export --fp16`` of the run's ``last.pt`` (ONNX and fp16 ONNX), the
   exported graphs' node counts and op histograms, and the training curves.

Every stage runs in a child process of its own (started in a new process session and stopped by
its id when it outlives its timeout). The whole call stays inside ``--max-seconds`` counted from
``--started-at``: the training budget shrinks when the stages before it ran long.

The output folder is flat and holds at most eight files, what the device tool returns:
``device_check.json``, ``device_check.log`` (the shell script's copy of this output),
``metrics.jsonl``, ``training_curves.png``, ``last.pt`` and the export's ``depth_interp.onnx``,
``depth_interp.pt`` and ``depth_interp_fp16.onnx``. Intermediate files go to ``--work`` (by default a temporary folder,
removed at the end).
"""
import argparse
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

# seconds a stage may take at most (each also bounded by the time left)
BENCH_TIMEOUT_S = 150.0
GRAPHS_TIMEOUT_S = 90.0
COMPILE_TIMEOUT_S = 120.0
EXPORT_TIMEOUT_S = 150.0
TRAIN_GRACE_S = 60.0          # start-up, the last validation and checkpoint after --time-limit
EXPORT_RESERVE_S = 45.0       # kept back for the export while the training budget is set
MIN_TRAIN_S = 2.0
PROGRESS_EVERY_S = 15.0       # one training progress-bar line per this many seconds in the log
# targets on the lent GPU at 640x480 (network alone, fp16 allowed; per frame with the cloud)
GPU_NETWORK_TARGET_MS = 3.0
GPU_FRAME_TARGET_MS = 8.0
GPU_TARGET_SIZE = (480, 640)
BENCH_STAGES = ('bench', 'graphs', 'compile')
OUTPUT_FILES = ('device_check.json', 'device_check.log', 'metrics.jsonl', 'training_curves.png', 'last.pt',
                'depth_interp.onnx', 'depth_interp.pt', 'depth_interp_fp16.onnx')
PROGRESS_LINE = re.compile(r'(it/s|s/it)\]?\s*$|\d+%\|')


def log(text):
    print('device_check: %s' % text, flush=True)


class Report:
    """``device_check.json``, rewritten (atomically) after every change."""

    def __init__(self, path, **fields):
        self.path = path
        self.data = dict(fields, stages={})
        self.save()

    def stage(self, name, status, seconds, **details):
        self.data['stages'][name] = dict(status=status, seconds=round(seconds, 2), **details)
        self.save()

    def __setitem__(self, key, value):
        self.data[key] = value
        self.save()

    def save(self):
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.data, f, indent=1, default=str)
        os.replace(tmp, self.path)


class Clock:
    """Seconds left before the call's deadline."""

    def __init__(self, started_at, max_seconds):
        self.started_at = started_at
        self.deadline = started_at + max_seconds

    def left(self):
        return self.deadline - time.time()


def run_stage(command, timeout, log_path, env=None):
    """Run ``command`` with its output (stdout and stderr) copied to ``log_path`` and printed here,
    progress-bar redraws at most every ``PROGRESS_EVERY_S``. Stops it (its process group, by its
    id) after ``timeout`` seconds. Returns (return code or None when stopped, seconds, last lines)."""
    started = time.time()
    tail, pending, last_progress = [], b'', 0.0
    with open(log_path, 'ab') as stage_log:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        timed_out = False
        while True:
            if time.time() - started > timeout:
                timed_out = True
                break
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            stage_log.write(chunk)
            pending += chunk
            *lines, pending = re.split(rb'[\r\n]', pending)
            for raw in lines:
                line = raw.decode('utf-8', 'replace').rstrip()
                if not line:
                    continue
                if PROGRESS_LINE.search(line):
                    if time.time() - last_progress < PROGRESS_EVERY_S:
                        continue
                    last_progress = time.time()
                print('  ' + line, flush=True)
                tail = (tail + [line])[-20:]
        rest = pending.decode('utf-8', 'replace').strip()
        if rest:
            print('  ' + rest, flush=True)
            tail = (tail + [rest])[-20:]
        if timed_out:
            log('stopping pid %d after %.0f s' % (proc.pid, timeout))
            _stop(proc)
        rc = proc.wait()
    return (None if timed_out else rc), time.time() - started, tail


def _stop(proc):
    """SIGTERM to the stage's own process group (it was started in a new session), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# --- stages ----------------------------------------------------------------------------------------

def environment(device, ort_gpu_note):
    from .bench_device import machine_info
    info = machine_info(include_torch=True)
    info['device'] = device
    info['onnxruntime_gpu_install'] = ort_gpu_note or 'not tried'
    try:
        import onnxruntime
        info['onnxruntime_providers'] = onnxruntime.get_available_providers()
        info['onnxruntime_path'] = os.path.dirname(onnxruntime.__file__)
    except ImportError as exc:
        info['onnxruntime_providers'] = 'not importable: %s' % exc
    try:
        import torch
        info['torch_cuda'] = torch.version.cuda
        info['cuda_available'] = torch.cuda.is_available()
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info['gpu_memory_gib'] = round(props.total_memory / 2 ** 30, 1)
            info['gpu_capability'] = '%d.%d' % (props.major, props.minor)
            info['cudnn'] = torch.backends.cudnn.version()
    except ImportError as exc:
        info['torch'] = 'not importable: %s' % exc
    smi = shutil.which('nvidia-smi')
    if smi:
        try:
            info['nvidia_smi'] = subprocess.run(
                [smi, '--query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit', '--format=csv'],
                capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            info['nvidia_smi'] = 'failed: %s' % exc
    else:
        info['nvidia_smi'] = 'not found'
    return info


def resolve_device(device):
    if device != 'auto':
        return device
    import torch
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def bench_command(args, backends, precisions, out):
    return [sys.executable, '-m', 'ros2_depth_interp.tools.bench_device', '--model', args.model,
            '--backends', backends, '--precisions', precisions, '--sizes', args.sizes,
            '--repeats', str(args.repeats), '--warmup', str(args.warmup), '--device', args.device, '--out', out]


def run_bench(args, report, clock, name, backends, precisions, timeout):
    """A ``bench_device`` stage; its rows go to ``report[name]`` (those written before a timeout too)."""
    out = os.path.join(args.work, name + '.json')
    limit = min(timeout, clock.left() - EXPORT_RESERVE_S - MIN_TRAIN_S)
    if limit < 10:
        report.stage(name, 'skipped', 0.0, note='no time left')
        return
    log('%s: %s (at most %.0f s)' % (name, backends, limit))
    rc, seconds, tail = run_stage(bench_command(args, backends, precisions, out), limit,
                                  os.path.join(args.work, name + '.log'))
    rows = []
    if os.path.isfile(out):
        with open(out) as f:
            rows = json.load(f)['results']
    report[name] = rows
    status = 'ok' if rc == 0 else 'timed out' if rc is None else 'failed'
    report.stage(name, status, seconds, rc=rc, **({} if rc == 0 else {'tail': tail[-8:]}))


def train_command(args, run_dir, seconds):
    command = [sys.executable, '-m', 'ros2_depth_interp.learning.train', '--out', run_dir,
               '--device', args.device, '--time-limit', '%.4f' % (seconds / 60.0),
               '--workers', str(max(1, (os.cpu_count() or 2) - 2)), '--pictures', 'latest']
    if args.init:
        command += ['--init', args.init]
    if args.resume:
        command += ['--resume', args.resume]
    return command + shlex.split(args.train_args)   # last, so that they override the options above


def run_train(args, report, clock, run_dir):
    seconds = min(args.budget, clock.left() - EXPORT_RESERVE_S - TRAIN_GRACE_S)
    if seconds < MIN_TRAIN_S:
        report.stage('train', 'skipped', 0.0, note='%.0f s left, too little to train' % clock.left())
        return False
    command = train_command(args, run_dir, seconds)
    log('train: %.0f s of training (budget %.0f s): %s' % (seconds, args.budget, ' '.join(command[3:])))
    rc, elapsed, tail = run_stage(command, seconds + TRAIN_GRACE_S, os.path.join(args.work, 'train.log'))
    summary = {'command': command[1:], 'training_seconds': seconds}
    metrics = os.path.join(run_dir, 'metrics.jsonl')
    if os.path.isfile(metrics):
        from ..learning.curves import read_metrics
        train_rows, val_rows = read_metrics(metrics)
        summary['last_training_row'] = train_rows[-1] if train_rows else None
        summary['validation'] = val_rows
    checkpoint = os.path.join(run_dir, 'last.pt')
    if os.path.isfile(checkpoint):
        import torch
        blob = torch.load(checkpoint, map_location='cpu', weights_only=False)
        summary['steps'] = int(blob.get('step', 0))
        summary['config'] = blob.get('config')
        summary['training'] = blob.get('training')
    report['train'] = summary
    ok = rc == 0 and os.path.isfile(checkpoint)
    report.stage('train', 'ok' if ok else 'timed out' if rc is None else 'failed', elapsed, rc=rc,
                 **({} if ok else {'tail': tail[-8:]}))
    return os.path.isfile(checkpoint)


def json_documents(text):
    """The JSON objects printed one after another in ``text`` (what ``depth_interp export`` prints)."""
    decoder, docs, i = json.JSONDecoder(), [], 0
    while True:
        i = text.find('{', i)
        if i < 0:
            return docs
        try:
            doc, end = decoder.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        docs.append(doc)
        i = end


def run_export(args, report, clock, run_dir):
    from . import onnx_profile
    onnx_path = os.path.join(args.out, 'depth_interp.onnx')
    command = [sys.executable, '-m', 'ros2_depth_interp.learning.export', os.path.join(run_dir, 'last.pt'),
               '--out', onnx_path, '--fp16']
    limit = min(EXPORT_TIMEOUT_S, clock.left() - 5)
    log('export: %s (at most %.0f s)' % (' '.join(command[3:]), limit))
    export_log = os.path.join(args.work, 'export.log')
    rc, seconds, tail = run_stage(command, limit, export_log)
    with open(export_log, errors='replace') as f:
        summary = {'reports': json_documents(f.read()), 'graphs': {}}
    for path in (onnx_path, os.path.splitext(onnx_path)[0] + '_fp16.onnx'):
        if os.path.isfile(path):
            summary['graphs'][os.path.basename(path)] = onnx_profile.graph_stats(path)
    report['export'] = summary
    ok = rc == 0 and len(summary['graphs']) == 2
    report.stage('export', 'ok' if ok else 'timed out' if rc is None else 'failed', seconds, rc=rc,
                 **({} if ok else {'tail': tail[-8:]}))


def gpu_checks(rows):
    """Lines comparing the best network and per-frame times at 640x480 with the GPU targets."""
    rows = [r for r in rows if 'error' not in r and (r['height'], r['width']) == GPU_TARGET_SIZE
            and 'CPU' not in r['device'] and r['device'] != 'cpu']
    if not rows:
        return ['- GPU targets: no GPU rows at %dx%d' % GPU_TARGET_SIZE[::-1]]
    lines = []
    for key, what, target in (('infer', 'network alone', GPU_NETWORK_TARGET_MS),
                              ('frame_gpu_cloud', 'per frame with the cloud', GPU_FRAME_TARGET_MS)):
        timed = [r for r in rows if key in r]
        if not timed:
            continue
        best = min(timed, key=lambda r: r[key]['p50_ms'])
        lines.append('- %dx%d %s: best p50 %.2f ms (%s %s) (target <= %.0f ms): %s' % (
            GPU_TARGET_SIZE[1], GPU_TARGET_SIZE[0], what, best[key]['p50_ms'], best['backend'], best['precision'],
            target, 'met' if best[key]['p50_ms'] <= target else 'NOT met'))
    return lines


def summary_lines(report):
    lines = []
    for name in BENCH_STAGES:
        for r in report.data.get(name) or []:
            if 'error' in r:
                lines.append('%-13s %-4s %4dx%-4d failed: %s' % (r['backend'], r['precision'], r['width'],
                                                                 r['height'], r['error'][:100]))
                continue
            lines.append('%-13s %-4s %4dx%-4d %-22s infer p50 %7.2f ms, frame %7.2f ms%s' % (
                r['backend'], r['precision'], r['width'], r['height'], r['device'], r['infer']['p50_ms'],
                r['frame']['p50_ms'], ', frame (GPU cloud) %7.2f ms' % r['frame_gpu_cloud']['p50_ms']
                if 'frame_gpu_cloud' in r else ''))
    for name, stage in report.data['stages'].items():
        why = stage.get('note') or stage.get('error')
        lines.append('stage %-11s %-9s %6.1f s%s' % (name, stage['status'], stage['seconds'],
                                                     ' (%s)' % why if why else ''))
    return lines


def collect_outputs(args, run_dir):
    for name in ('metrics.jsonl', 'last.pt'):
        src = os.path.join(run_dir, name)
        if os.path.isfile(src):
            shutil.copy2(src, os.path.join(args.out, name))
    metrics = os.path.join(args.out, 'metrics.jsonl')
    if os.path.isfile(metrics):
        from ..learning.curves import save_training_curves
        try:
            save_training_curves(metrics, os.path.join(args.out, 'training_curves.png'), title='device check run')
        except ValueError as exc:
            log('no training curves: %s' % exc)


# --- command line ----------------------------------------------------------------------------------

def parse_args(argv=None):
    from ..core.resources import default_model_path
    p = argparse.ArgumentParser(prog='python -m ros2_depth_interp.tools.device_check',
                                description=__doc__.splitlines()[0])
    p.add_argument('--out', required=True, help='output folder (flat; what the device tool returns)')
    p.add_argument('--budget', type=float, default=180.0, help='seconds of training (default %(default)s)')
    p.add_argument('--max-seconds', type=float, default=470.0,
                   help='the whole call, from --started-at (default %(default)s, under 8 minutes)')
    p.add_argument('--started-at', type=float, default=None, help='epoch seconds the call started (default now)')
    p.add_argument('--device', default='auto', help='cuda, cpu or auto (cuda when torch sees one)')
    p.add_argument('--model', default=None, help='ONNX model to benchmark, .pt beside it (default: the shipped one)')
    p.add_argument('--sizes', default='370x463,480x640', help='HxW list for the benchmarks')
    p.add_argument('--repeats', type=int, default=100)
    p.add_argument('--warmup', type=int, default=20)
    p.add_argument('--train-args', default='', help='more depth_interp train options, one string')
    p.add_argument('--init', default=None, help='checkpoint to fine-tune from (depth_interp train --init)')
    p.add_argument('--resume', default=None, help='checkpoint to continue (depth_interp train --resume)')
    p.add_argument('--skip', default='',
                   help='comma list of stages to leave out: bench, graphs, compile, train, export')
    p.add_argument('--work', default=None, help='folder for intermediate files (default: a new temporary one)')
    p.add_argument('--ort-gpu-note', default=os.environ.get('DEVICE_CHECK_ORT_GPU', ''),
                   help="what the attempt to install onnxruntime-gpu gave (the shell script's note)")
    args = p.parse_args(argv)
    args.model = os.path.abspath(args.model or default_model_path())
    args.skip = {s.strip() for s in args.skip.split(',') if s.strip()}
    unknown = args.skip - set(BENCH_STAGES + ('train', 'export'))
    if unknown:
        p.error('--skip: unknown stages %s' % ', '.join(sorted(unknown)))
    if args.budget < 0 or args.max_seconds <= 0:
        p.error('--budget must be >= 0 and --max-seconds > 0')
    if not os.path.isfile(args.model):
        p.error('model %s not found' % args.model)
    return args


def run_stages(args, report, clock):
    """Every stage in order; one that raises here is recorded as failed and the next still runs."""
    cuda = args.device.startswith('cuda')
    run_dir = os.path.join(args.work, 'train')
    trained = False
    stages = [('bench', lambda: run_bench(args, report, clock, 'bench', 'torch,onnx', 'fp32,fp16', BENCH_TIMEOUT_S)),
              # fp16 first: the configuration the GPU target allows, kept if the stage runs out of time
              ('graphs', lambda: run_bench(args, report, clock, 'graphs', 'graphs', 'fp16,fp32', GRAPHS_TIMEOUT_S)),
              ('compile', lambda: run_bench(args, report, clock, 'compile', 'compile', 'fp16,fp32',
                                            COMPILE_TIMEOUT_S)),
              ('train', lambda: run_train(args, report, clock, run_dir)),
              ('export', lambda: run_export(args, report, clock, run_dir))]
    for name, stage in stages:
        if name in args.skip:
            report.stage(name, 'skipped', 0.0, note='left out')
        elif name in ('graphs', 'compile') and not cuda:
            report.stage(name, 'skipped', 0.0, note='CUDA only')
        elif name == 'export' and not trained:
            report.stage(name, 'skipped', 0.0, note='no checkpoint')
        else:
            started = time.time()
            try:
                result = stage()
            except Exception as exc:  # the stages after it still run
                report.stage(name, 'failed', time.time() - started, error='%s: %s' % (type(exc).__name__, exc))
                continue
            if name == 'train':
                trained = bool(result)
    collect_outputs(args, run_dir)


def main(argv=None):
    args = parse_args(argv)
    clock = Clock(args.started_at or time.time(), args.max_seconds)
    os.makedirs(args.out, exist_ok=True)
    own_work = not args.work
    args.work = args.work or tempfile.mkdtemp(prefix='device_check_')
    os.makedirs(args.work, exist_ok=True)
    t0 = time.time()
    args.device = resolve_device(args.device)
    report = Report(os.path.join(args.out, 'device_check.json'), started=clock.started_at,
                    max_seconds=args.max_seconds, budget_s=args.budget, device=args.device, model=args.model,
                    sizes=args.sizes, repeats=args.repeats, warmup=args.warmup, work=args.work,
                    command=[os.path.basename(sys.executable)] + (sys.argv if argv is None else list(argv)))
    log('environment (device %s, %.0f s left)' % (args.device, clock.left()))
    report['environment'] = environment(args.device, args.ort_gpu_note)
    report.stage('environment', 'ok', time.time() - t0)
    run_stages(args, report, clock)
    report['checks'] = gpu_checks([row for name in BENCH_STAGES for row in report.data.get(name) or []])
    report['files'] = sorted(f for f in os.listdir(args.out) if f in OUTPUT_FILES)
    report['seconds'] = round(time.time() - report.data['started'], 1)
    for line in summary_lines(report) + report.data['checks']:
        print(line)
    log('wrote %s in %.0f s (%.0f s of the %.0f s allowed left)' % (
        report.path, time.time() - t0, clock.left(), args.max_seconds))
    if own_work:
        shutil.rmtree(args.work, ignore_errors=True)
    failed = [n for n, s in report.data['stages'].items() if s['status'] in ('failed', 'timed out')]
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
