"""``depth_interp bag``: the node's processing, offline, from a recorded bag to a new rosbag2.

Users record first and process later (to tune parameters, evaluate, build data sets). This tool
reads a rosbag2 (sqlite3 or mcap) or a ROS 1 bag with ``rosbags``, runs exactly what the node
runs on every frame and writes a rosbag2 holding ``dense_depth``, ``dense_confidence`` and
``points`` (plus, unless ``--no-copy-inputs``, every input topic):

- same parameters: the node's parameter table (``params.py``), read from the same ROS 2 params
  file the node is launched with (``--params-file``, entry chosen by ``--node-name``);
- same pairing: ``sync.ApproximateTimeSynchronizer`` on the header stamps, with the node's
  ``sync_slop`` / ``sync_queue_size``;
- same per-frame work: ``pipeline.FrameProcessor`` (units, mask, inverse depth, cloud filters)
  and the same ``FrameError`` reason keys.

Differences from the live node, all because there is no real-time constraint: every synchronized
set is processed (the node keeps only the newest one while it is busy); the last sets are
flushed at the end of the bag (the live synchronizer would wait for a newer message); the first
valid ``camera_info`` in the bag is used from the first frame on, even if it was recorded later.

LSD-SLAM's own ``keyframeMsg`` (``--lsd-keyframes``) needs no pairing: each keyframe goes through
``keyframes.KeyframeProcessor``, the code the live node runs: decoded (``lsd_slam.py``), filtered
like the LSD-SLAM viewer does, interpolated as inverse depth and written at world scale (depth
times the keyframe's Sim(3) scale) in the keyframe camera frame, with the keyframe's intrinsics.

Streaming: messages are read one at a time and written as they come, so memory stays constant
whatever the length of the bag (the synchronizer holds at most ``sync_queue_size`` messages per
input). The output is closed properly on every exit path: when the input turns out to be corrupt
or truncated half-way, the error names the position and what was written up to there is a valid,
readable bag.

Output topics live in the namespace of the input they come from (see ``output_topic``), e.g.
``/camera/semi_dense_depth`` -> ``/camera/dense_depth``, ``/lsd_slam/keyframes`` ->
``/lsd_slam/dense_depth``. Usage and details: docs/bag.md.
"""
import argparse
import contextlib
import io
import logging
import math
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..core import encodings, lsd_slam, params
from ..core.geometry import POINT_FIELDS, POINT_STEP
from ..core.keyframes import KeyframeProcessor
from ..core.pipeline import FrameError, FrameProcessor, PipelineConfig, fallback_intrinsics, intrinsics_for_size

__all__ = ['BagJob', 'BagSummary', 'StreamStats', 'BagConfigError', 'BagReadError',
           'output_topic', 'load_params', 'process_bag', 'main',
           'EXIT_OK', 'EXIT_READ_ERROR', 'EXIT_CONFIG_ERROR']

LOG = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_READ_ERROR = 1      # the input bag is unreadable, corrupt or truncated
EXIT_CONFIG_ERROR = 2    # bad arguments, parameters, model, topics or output path

IMAGE_TYPE = 'sensor_msgs/msg/Image'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
CLOUD_TYPE = 'sensor_msgs/msg/PointCloud2'
OUTPUT_NAMES = ('dense_depth', 'dense_confidence', 'points')
ROSBAG2_VERSION = 9
STORAGES = ('mcap', 'sqlite3')
DEPTH, IMAGE, MASK = 0, 1, 2          # synchronizer input order, as in the node
DEFAULT_KEYFRAME_TOPIC = '/lsd_slam/keyframes'
DEFAULT_KEYFRAME_FRAME_ID = 'lsd_slam_camera'
UNMATCHED_AT_END = 'unmatched_at_end_of_bag'
TIME_JUMP_NS = 1_000_000_000   # stamps going back further than this: flush and reset (node: reset)
CORRUPT_MESSAGE = 'corrupt_message'
_END_SENTINEL = object()
_SENTINEL_GAP_NS = 10 ** 6 * 10 ** 9   # 11.6 days after the last stamp: beyond any slop


class BagConfigError(Exception):
    """Bad arguments, parameters, model, topics or output path (exit code 2); nothing written."""


class BagReadError(Exception):
    """The input bag cannot be read (exit code 1). ``summary`` holds what was done before, and
    the output written up to that point (if any) is a valid bag."""

    def __init__(self, message, summary=None):
        super().__init__(message)
        self.summary = summary


# --- job description and results ---------------------------------------------------------------------
@dataclass
class BagJob:
    """What to process and how. ``values`` are node parameter values (``params.defaults()``
    updated from a params file, see ``load_params``)."""
    input_path: str
    output_path: str
    depth_topic: Optional[str] = None
    image_topic: Optional[str] = None
    mask_topic: Optional[str] = None
    camera_info_topic: Optional[str] = None
    keyframe_topic: Optional[str] = None
    values: Dict = field(default_factory=params.defaults)
    copy_inputs: bool = True
    storage: str = 'mcap'
    output_namespace: Optional[str] = None
    keyframe_output_namespace: Optional[str] = None
    keyframe_filter: lsd_slam.KeyframeFilter = field(default_factory=lsd_slam.KeyframeFilter)
    keyframe_frame_id: str = DEFAULT_KEYFRAME_FRAME_ID
    skip_corrupt: bool = False


@dataclass
class StreamStats:
    """Counters of one processed stream (synchronized frames, or LSD-SLAM keyframes).

    ``inputs`` counts input messages, ``sets`` what reached the processor (synchronized sets or
    decoded keyframes), ``written`` the frames whose outputs were written. ``dropped`` counts
    frames by ``FrameError``/``KeyframeError`` reason; ``sync_dropped`` counts *messages* the
    synchronizer could not pair, by its reason (``sync.DROP_REASONS``, plus
    ``unmatched_at_end_of_bag``).
    """
    inputs: int = 0
    sets: int = 0
    written: int = 0
    clouds: int = 0
    dropped: Counter = field(default_factory=Counter)
    sync_dropped: Counter = field(default_factory=Counter)
    cloud_skipped: Counter = field(default_factory=Counter)
    time_jumps: int = 0           # stamps went back by more than 1 s (synchronizer reset)
    timings: Counter = field(default_factory=Counter)   # seconds summed per pipeline stage

    def mean_ms(self, stage):
        return 1000.0 * self.timings[stage] / self.written if self.written else 0.0


@dataclass
class BagSummary:
    """What ``process_bag`` did; ``lines()`` is the text ``depth_interp bag`` prints."""
    input_path: str
    output_path: str
    storage: str
    messages_read: int = 0
    messages_total: int = 0
    messages_copied: int = 0
    frames: StreamStats = field(default_factory=StreamStats)
    keyframes: StreamStats = field(default_factory=StreamStats)
    ignored: Counter = field(default_factory=Counter)       # e.g. bad_camera_info, corrupt_message
    output_topics: Dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0
    complete: bool = False

    def lines(self) -> List[str]:
        rate = self.messages_read / self.elapsed_s if self.elapsed_s > 0 else 0.0
        out = ['%s -> %s (%s)%s' % (self.input_path, self.output_path, self.storage,
                                    '' if self.complete else ' [incomplete]'),
               '  read %d of %d messages in %.1f s (%.0f msg/s), copied %d'
               % (self.messages_read, self.messages_total, self.elapsed_s, rate, self.messages_copied)]
        for name, stats, unit in (('frames', self.frames, 'synchronized sets'),
                                  ('keyframes', self.keyframes, 'decoded')):
            if not stats.inputs and not stats.sets:
                continue
            out.append('  %s: %d input messages, %d %s, %d written (%d with a cloud), %d dropped'
                       % (name, stats.inputs, stats.sets, unit, stats.written, stats.clouds,
                          sum(stats.dropped.values())))
            if stats.dropped:
                out.append('    dropped frames: ' + _counter_text(stats.dropped))
            if stats.sync_dropped:
                out.append('    unpaired messages (synchronizer): ' + _counter_text(stats.sync_dropped))
            if stats.cloud_skipped:
                out.append('    no cloud: ' + _counter_text(stats.cloud_skipped))
            if stats.time_jumps:
                out.append('    stamps jumped back %d time(s): synchronizer flushed and reset'
                           % stats.time_jumps)
            if stats.written:
                out.append('    mean per frame: %.1f ms (infer %.1f ms)'
                           % (stats.mean_ms('total'), stats.mean_ms('infer')))
        if self.ignored:
            out.append('  ignored messages: ' + _counter_text(self.ignored))
        if self.output_topics:
            out.append('  outputs: ' + ', '.join(self.output_topics.values()))
        return out

    def text(self) -> str:
        return '\n'.join(self.lines())


def _counter_text(counter):
    return ', '.join('%s %d' % item for item in sorted(counter.items()))


# --- names ---------------------------------------------------------------------------------------------
def _absolute(topic: str) -> str:
    return '/' + topic.strip('/')


def output_topic(input_topic: str, name: str, namespace: Optional[str] = None) -> str:
    """Output topic ``name`` next to ``input_topic`` (in its namespace), or in ``namespace``.

    ``/camera/semi_dense_depth`` -> ``/camera/dense_depth``; ``/depth`` -> ``/dense_depth``;
    the node's relative output names resolve the same way when it runs in the input's namespace.
    """
    if namespace is None:
        namespace = _absolute(input_topic).rsplit('/', 1)[0]
    namespace = namespace.strip('/')
    return '/' + (namespace + '/' if namespace else '') + name


# --- parameters ------------------------------------------------------------------------------------------
def _node_pattern(key: str):
    """Regex for a params-file node key: ``/**`` any namespaces, ``*`` one name token."""
    parts = []
    for token in _absolute(key).split('/')[1:]:
        if token == '**':
            parts.append('(?:/[^/]+)*')
        else:
            parts.append('/' + '[^/]*'.join(re.escape(piece) for piece in token.split('*')))
    return re.compile('^' + ''.join(parts) + '$')


def load_params(params_file: Optional[str] = None, node_name: str = 'depth_interp',
                overrides: Sequence[str] = ()) -> Dict:
    """Node parameter values: defaults, then every params-file entry matching ``node_name``
    (file order, as ROS 2 merges them), then ``NAME=VALUE`` overrides (YAML values). Validated
    with ``params.validate``; raises ``BagConfigError`` with every problem at once."""
    import yaml
    values = params.defaults()
    fqn = _absolute(node_name)
    if params_file:
        try:
            with open(params_file, encoding='utf-8') as f:
                data = yaml.safe_load(f)
        except OSError as exc:
            raise BagConfigError('cannot read params file %s: %s' % (params_file, exc.strerror)) from None
        except yaml.YAMLError as exc:
            raise BagConfigError('params file %s is not valid YAML: %s'
                                 % (params_file, ' '.join(str(exc).split()))) from None
        entries = params.config_from_yaml_dict(data if isinstance(data, dict) else {})
        matching = [body for key, body in entries.items() if _node_pattern(key).match(fqn)]
        if not matching:
            raise BagConfigError('params file %s has no entry for node %s (entries: %s); pass '
                                 '--node-name' % (params_file, fqn, ', '.join(entries) or 'none'))
        for body in matching:
            values.update(body)
    for item in overrides:
        name, sep, text = item.partition('=')
        if not sep or not name.strip():
            raise BagConfigError('--param expects NAME=VALUE, got %r' % item)
        try:
            values[name.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            values[name.strip()] = text
    if isinstance(values.get('providers'), tuple):
        values['providers'] = list(values['providers'])
    errors = params.validate(values)
    if errors:
        raise BagConfigError('; '.join(errors))
    for spec in params.PARAMS:   # ints given for doubles (YAML "60") become floats
        if spec.kind == params.DOUBLE:
            values[spec.name] = float(values[spec.name])
    return values


# --- writing -------------------------------------------------------------------------------------------------
class _OutputStream:
    """The three output connections of one stream and the message building (numpy buffers only)."""

    def __init__(self, writer, store, topics):
        self.store = store
        self.topics = topics
        self.conns = {name: writer.add_connection(topic, CLOUD_TYPE if name == 'points' else IMAGE_TYPE,
                                                  typestore=store)
                      for name, topic in topics.items()}
        self.writer = writer
        types = store.types
        self._header, self._time = types['std_msgs/msg/Header'], types['builtin_interfaces/msg/Time']
        self._image, self._cloud = types[IMAGE_TYPE], types[CLOUD_TYPE]
        point_field = types['sensor_msgs/msg/PointField']
        self._fields = [point_field(name=name, offset=offset, datatype=point_field.FLOAT32, count=1)
                        for name, offset in POINT_FIELDS]

    def header(self, sec, nanosec, frame_id):
        return self._header(stamp=self._time(sec=int(sec), nanosec=int(nanosec)), frame_id=str(frame_id))

    def _image_msg(self, array, header):
        fields = encodings.array_to_image_fields(array, '32FC1')
        fields['data'] = np.frombuffer(fields['data'], dtype=np.uint8)
        return self._image(header=header, **fields)

    def write(self, result, header, log_ns):
        """Serialize and write dense depth, confidence and (if any) the cloud; True if a cloud."""
        write = self.writer.write
        write(self.conns['dense_depth'], log_ns,
              self.store.serialize_cdr(self._image_msg(result.dense_depth, header), IMAGE_TYPE))
        write(self.conns['dense_confidence'], log_ns,
              self.store.serialize_cdr(self._image_msg(result.confidence, header), IMAGE_TYPE))
        if result.cloud is None:
            return False
        cloud = np.ascontiguousarray(result.cloud, dtype=np.float32)
        rows, cols = cloud.shape[:2]
        msg = self._cloud(header=header, height=rows, width=cols, fields=self._fields,
                          is_bigendian=sys.byteorder == 'big', point_step=POINT_STEP,
                          row_step=POINT_STEP * cols, data=cloud.reshape(-1).view(np.uint8),
                          is_dense=False)
        write(self.conns['points'], log_ns, self.store.serialize_cdr(msg, CLOUD_TYPE))
        return True


# --- reporting ------------------------------------------------------------------------------------------------
class _Reporter:
    """Warnings while a progress bar may be on screen: the first one of each kind in full,
    later ones only counted (the summary has the totals)."""

    def __init__(self, bar=None, quiet=False):
        self.bar = bar
        self.quiet = quiet
        self._seen = Counter()

    def warn(self, key, text):
        self._seen[key] += 1
        if self.quiet or self._seen[key] > 1:
            return
        line = 'depth_interp bag: %s (later ones of this kind are only counted)' % text
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)


def _camera_info(msg):
    """(K as 9 floats, width, height) of a CameraInfo (ROS 2 ``k`` or ROS 1 ``K``), or None when
    K is unusable (non-finite, focal length <= 0), the node's rule."""
    k = getattr(msg, 'k', None)
    if k is None:
        k = getattr(msg, 'K', ())
    try:
        k = [float(v) for v in np.asarray(k, dtype=np.float64).reshape(-1)]
    except (TypeError, ValueError):
        return None
    if len(k) != 9 or not all(math.isfinite(v) for v in k) or k[0] <= 0 or k[4] <= 0:
        return None
    return tuple(k), int(msg.width), int(msg.height)


def _stamp_ns(header):
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _time_text(ns):
    return '%d.%09d s' % divmod(int(ns), 1_000_000_000)


def _position_text(index, log_ns, topic, at=False):
    """'after message #12 (topic /x, log time 3.000000000 s)', or 'at ...' for the message itself."""
    if not index:
        return 'before the first message'
    return '%s message #%d (topic %s, log time %s)' % ('at' if at else 'after', index, topic,
                                                       _time_text(log_ns))


# --- the job ---------------------------------------------------------------------------------------------------
class _BagRun:
    """One run of ``process_bag``: opened reader and writer, processors, counters."""

    def __init__(self, job: BagJob, interpolator, progress, quiet):
        self.job = job
        self.values = job.values
        self.progress = progress
        self.quiet = quiet
        self.interpolator = interpolator
        self.summary = BagSummary(job.input_path, job.output_path, job.storage)
        self.use_mask = bool(self.values['use_mask'])
        self.camera_info = None        # (k tuple, width, height) of the last valid CameraInfo
        self.writer = None
        self.reporter = _Reporter(quiet=quiet)

    # --- checks before anything is written ---------------------------------------------------------
    def check_job(self):
        job = self.job
        errors = params.validate(self.values)
        if errors:
            raise BagConfigError('; '.join(errors))
        if job.storage not in STORAGES:
            raise BagConfigError('storage must be one of %s, got %r' % (', '.join(STORAGES), job.storage))
        try:
            job.keyframe_filter.validate()
        except ValueError as exc:
            raise BagConfigError(str(exc)) from None
        has_frames = bool(job.depth_topic or job.image_topic or job.mask_topic)
        if has_frames and not (job.depth_topic and job.image_topic):
            raise BagConfigError('frames need both --depth-topic and --image-topic')
        if has_frames and self.use_mask and not job.mask_topic:
            raise BagConfigError('use_mask is true (the node subscribes to a mask): give --mask-topic, '
                                 'or set use_mask: false in the params file (-p use_mask=false)')
        frame_topics = [t for t in (job.depth_topic, job.image_topic,
                                    job.mask_topic if self.use_mask else None) if t]
        if len({_absolute(t) for t in frame_topics}) != len(frame_topics):
            raise BagConfigError('depth, image and mask topics must be different topics, got %s'
                                 % ', '.join(frame_topics))
        if has_frames and job.mask_topic and not self.use_mask:
            self.reporter.warn('mask_ignored', '--mask-topic %s is ignored: use_mask is false in '
                               'the parameters (as in the node)' % job.mask_topic)
        if not has_frames and not job.keyframe_topic:
            raise BagConfigError('nothing to process: give --depth-topic and --image-topic '
                                 '(and --mask-topic), and/or --lsd-keyframes')
        if Path(job.output_path).exists():
            raise BagConfigError('output %s exists already; choose a new path' % job.output_path)
        if Path(job.output_path).resolve() == Path(job.input_path).resolve():
            raise BagConfigError('output must differ from the input')

    def check_topics(self, reader):
        job = self.job
        topics = reader.topics
        self.frame_topics = {}
        if job.depth_topic:
            wanted = [(DEPTH, job.depth_topic), (IMAGE, job.image_topic)]
            if self.use_mask:
                wanted.append((MASK, job.mask_topic))
            for index, topic in wanted:
                self.frame_topics[_absolute(topic)] = index
        roles = {topic: IMAGE_TYPE for topic in self.frame_topics}
        if job.camera_info_topic:
            roles[_absolute(job.camera_info_topic)] = CAMERA_INFO_TYPE
        if job.keyframe_topic:
            roles[_absolute(job.keyframe_topic)] = lsd_slam.KEYFRAME_MSGTYPE
        problems = []
        for topic, msgtype in roles.items():
            info = topics.get(topic)
            if info is None:
                problems.append('topic %s is not in the bag' % topic)
            elif msgtype == lsd_slam.KEYFRAME_MSGTYPE:
                if not lsd_slam.is_keyframe_msgtype(info.msgtype or ''):
                    problems.append('topic %s has type %s, expected %s' % (topic, info.msgtype, msgtype))
            elif info.msgtype != msgtype:
                problems.append('topic %s has type %s, expected %s' % (topic, info.msgtype, msgtype))
        if problems:
            listing = ', '.join('%s (%s)' % (name, info.msgtype) for name, info in sorted(topics.items()))
            raise BagConfigError('%s; the bag has: %s' % ('; '.join(problems), listing or 'no topics'))

        self.outputs = {}
        if self.frame_topics:
            self.outputs['frames'] = {name: output_topic(job.depth_topic, name, job.output_namespace)
                                      for name in OUTPUT_NAMES}
        if job.keyframe_topic:
            self.outputs['keyframes'] = {
                name: output_topic(job.keyframe_topic, name, job.keyframe_output_namespace)
                for name in OUTPUT_NAMES}
        if len(self.outputs) == 2 and set(self.outputs['frames'].values()) & set(self.outputs['keyframes'].values()):
            raise BagConfigError('frame and keyframe outputs would share topics (%s); set '
                                 '--keyframe-output-namespace' % ', '.join(self.outputs['frames'].values()))
        all_outputs = [t for group in self.outputs.values() for t in group.values()]
        if job.copy_inputs:
            clash = sorted(set(all_outputs) & set(topics))
            if clash:
                raise BagConfigError('output topics %s already exist in the input bag; choose '
                                     '--output-namespace / --keyframe-output-namespace, or '
                                     '--no-copy-inputs' % ', '.join(clash))
        for group, names in self.outputs.items():
            for name, topic in names.items():
                self.summary.output_topics['%s/%s' % (group, name)] = topic

    # --- setup ---------------------------------------------------------------------------------------
    def load_model(self):
        if self.interpolator is not None:
            return
        from ..core import inference
        from ..learning.torch_backend import backend_named
        from ..core.resources import default_model_path
        path = self.values['model_path'] or default_model_path()
        if not Path(path).is_file():
            raise BagConfigError('model file not found: %s (give --model, or export a trained model '
                                 'with `depth_interp export`)' % path)
        try:
            self.interpolator = inference.DepthInterpolator(
                model_path=path, providers=list(self.values['providers']),
                backend=backend_named(self.values['backend'], path), warmup=self.values['warmup'],
                threads=self.values['intra_op_threads'])
        except inference.ModelLoadError as exc:
            raise BagConfigError('cannot load model %s: %s' % (path, exc)) from None
        except ImportError as exc:
            raise BagConfigError('backend %r is not available: %s' % (self.values['backend'], exc)) from None

    def make_processors(self):
        config = PipelineConfig.from_params(self.values)
        self.frame_processor = FrameProcessor(self.interpolator, config)
        # The live node's keyframe code: inverse depth, the viewer's filter, world scale.
        self.keyframe_processor = KeyframeProcessor(self.interpolator, config, self.job.keyframe_filter)
        if self.frame_topics:
            from ..core.sync import ApproximateTimeSynchronizer
            self.sync = ApproximateTimeSynchronizer(
                len(self.frame_topics), queue_size=self.values['sync_queue_size'],
                slop=self.values['sync_slop'])
        else:
            self.sync = None
        self.segment_offered = 0      # real messages given to the synchronizer since its last reset
        self.segment_sets = 0         # sets it emitted from them
        self.drops_baseline = Counter()
        self.last_stamps = [None] * len(self.frame_topics)
        self.last_stamp = 0

    def open_writer(self, reader):
        from rosbags.rosbag2 import StoragePlugin, Writer
        self.store = lsd_slam.keyframe_typestore()
        writer = Writer(Path(self.job.output_path), version=ROSBAG2_VERSION,
                        storage_plugin=StoragePlugin[self.job.storage.upper()])
        writer.set_custom_data('ros2_depth_interp.source', str(self.job.input_path))
        try:
            writer.open()
        except Exception as exc:
            raise BagConfigError('cannot create output bag %s: %s' % (self.job.output_path, exc)) from None
        self.writer = writer
        self.copy_map, self.converters = {}, {}
        if self.job.copy_inputs:
            from rosbags.convert.converter import create_connections_converters
            # ROS 1 input: standard types become their ROS 2 definitions (Header without seq,
            # CameraInfo k/d/r/p); rosbag2 input: messages are copied byte for byte.
            dst = None if reader.is2 else lsd_slam.keyframe_typestore()
            chatter = io.StringIO()
            with contextlib.redirect_stdout(chatter):   # it prints which types it migrates
                self.copy_map, self.converters = create_connections_converters(
                    reader.connections, dst, reader, writer)
            for line in chatter.getvalue().splitlines():
                LOG.info('copying inputs: %s', line)
        self.streams = {group: _OutputStream(writer, self.store, topics)
                        for group, topics in self.outputs.items()}

    # --- per message -----------------------------------------------------------------------------
    def deserialize(self, reader, raw, conn, position):
        try:
            return reader.deserialize(raw, conn.msgtype)
        except Exception as exc:  # SerdeError (wrapped) or anything a broken buffer can raise
            self.corrupt(position, 'cannot decode a %s message: %s' % (conn.msgtype, exc))
            return None

    def corrupt(self, position, text):
        if not self.job.skip_corrupt:
            raise BagReadError('input bag %s is corrupt %s: %s (--skip-corrupt skips such messages)'
                               % (self.job.input_path, _position_text(*position, at=True), text))
        self.summary.ignored[CORRUPT_MESSAGE] += 1
        self.reporter.warn(CORRUPT_MESSAGE, 'skipping a corrupt message %s: %s'
                           % (_position_text(*position, at=True), text))

    def on_camera_info(self, msg):
        """Keep a usable CameraInfo (as the node does); count and report an unusable one."""
        info = _camera_info(msg)
        if info is None:
            self.summary.ignored['bad_camera_info'] += 1
            self.reporter.warn('bad_camera_info', 'camera_info (stamp %s) with an unusable K ignored'
                               % _time_text(_stamp_ns(msg.header)))
            return
        self.camera_info = info

    def intrinsics(self, width, height):
        if self.camera_info is not None:
            k, info_w, info_h = self.camera_info
            try:
                return intrinsics_for_size(k, info_w, info_h, width, height)
            except ValueError:
                pass
        v = self.values
        return fallback_intrinsics(v['fx'], v['fy'], v['cx'], v['cy'], width, height)

    def on_frame_message(self, index, msg, log_ns, msg_topic=''):
        stats = self.summary.frames
        stats.inputs += 1
        stamp = _stamp_ns(msg.header)
        last = self.last_stamps[index]
        if last is not None and stamp < last - TIME_JUMP_NS:
            # A bag made of several recordings, or a restarted clock: the node resets its
            # synchronizer here; offline, the sets still held are flushed first.
            stats.time_jumps += 1
            self.reporter.warn('time_jump', 'stamps on %s jumped back by %.3f s: synchronizer '
                               'flushed and reset' % (msg_topic, (last - stamp) / 1e9))
            self.flush_sync()
        self.last_stamps[index] = stamp
        self.segment_offered += 1
        self.last_stamp = max(self.last_stamp, stamp)
        for message_set in self.sync.add(index, stamp, (msg, log_ns)):
            self.process_set(message_set)

    def process_set(self, message_set):
        if any(item is _END_SENTINEL for item in message_set):
            return
        stats = self.summary.frames
        stats.sets += 1
        self.segment_sets += 1
        t_start = time.perf_counter()
        depth_msg, log_ns = message_set[DEPTH]
        image_msg = message_set[IMAGE][0]
        mask_msg = message_set[MASK][0] if self.use_mask else None
        try:
            result = self.frame_processor.process_messages(depth_msg, image_msg, mask_msg, self.intrinsics)
        except FrameError as exc:
            stats.dropped[exc.reason_key] += 1
            self.reporter.warn('frame_' + exc.reason_key, 'dropped frame (stamp %s) [%s]: %s'
                               % (_time_text(_stamp_ns(depth_msg.header)), exc.reason_key, exc.message))
            return
        header = depth_msg.header
        out_header = self.streams['frames'].header(header.stamp.sec, header.stamp.nanosec,
                                                   header.frame_id)
        self.finish(stats, self.streams['frames'], result, out_header, log_ns, t_start)

    def on_keyframe(self, msg, log_ns):
        stats = self.summary.keyframes
        stats.inputs += 1
        t_start = time.perf_counter()
        try:
            keyframe = lsd_slam.decode_keyframe(msg)
        except lsd_slam.KeyframeError as exc:
            stats.dropped[exc.reason_key] += 1
            self.reporter.warn('keyframe_' + exc.reason_key, 'dropped keyframe [%s]: %s'
                               % (exc.reason_key, exc.message))
            return
        stats.sets += 1
        try:
            result = self.keyframe_processor.process(keyframe).result
        except (FrameError, lsd_slam.KeyframeError) as exc:
            stats.dropped[exc.reason_key] += 1
            self.reporter.warn('keyframe_' + exc.reason_key, 'dropped keyframe %d (time %.6f) [%s]: %s'
                               % (keyframe.id, keyframe.time, exc.reason_key, exc.message))
            return
        stream = self.streams['keyframes']
        sec, nanosec = keyframe.stamp
        self.finish(stats, stream, result, stream.header(sec, nanosec, self.job.keyframe_frame_id),
                    log_ns, t_start)

    def finish(self, stats, stream, result, header, log_ns, t_start):
        if stream.write(result, header, log_ns):
            stats.clouds += 1
        elif result.cloud_skipped:
            stats.cloud_skipped[result.cloud_skipped] += 1
        stats.written += 1
        stats.timings.update(result.timings)
        stats.timings['total'] += time.perf_counter() - t_start

    def flush_sync(self):
        """End of a stretch of stamps (end of bag, or a jump back in time): offer one far-future
        sentinel per input so that the synchronizer emits the sets it still holds, count the
        real messages left over as unmatched, and start afresh with a reset synchronizer."""
        if self.sync is None or not self.segment_offered:
            return
        stats = self.summary.frames
        real_drops = self.sync.dropped - self.drops_baseline
        stats.sync_dropped.update(real_drops)
        sentinel_stamp = self.last_stamp + _SENTINEL_GAP_NS
        for index in range(self.sync.num_inputs):
            for message_set in self.sync.add(index, sentinel_stamp, _END_SENTINEL):
                self.process_set(message_set)
        used = self.segment_sets * self.sync.num_inputs
        unmatched = self.segment_offered - used - sum(real_drops.values())
        if unmatched > 0:
            stats.sync_dropped[UNMATCHED_AT_END] += unmatched
        self.sync.reset()                         # sentinels and leftovers: not real drops
        self.drops_baseline = Counter(self.sync.dropped)
        self.segment_offered = self.segment_sets = 0
        self.last_stamps = [None] * self.sync.num_inputs
        self.last_stamp = 0

    # --- the loop --------------------------------------------------------------------------------------------
    def run(self, reader):
        job = self.job
        keyframe_topic = _absolute(job.keyframe_topic) if job.keyframe_topic else None
        info_topic = _absolute(job.camera_info_topic) if job.camera_info_topic else None
        needed = set(self.frame_topics) | {keyframe_topic, info_topic}
        connections = [c for c in reader.connections if job.copy_inputs or c.topic in needed]
        self.summary.messages_total = sum(c.msgcount for c in connections)
        if info_topic:
            self.prefetch_camera_info(reader, [c for c in connections if c.topic == info_topic])

        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=self.summary.messages_total, unit='msg', desc='depth_interp bag',
                       file=sys.stderr, dynamic_ncols=True, smoothing=0.05)
            self.reporter.bar = bar
        frames, keyframes = self.summary.frames, self.summary.keyframes
        roles = {topic: 'frame' for topic in self.frame_topics}
        roles.update({keyframe_topic: 'keyframe', info_topic: 'camera_info'})
        roles.pop(None, None)
        index, log_ns, topic = 0, 0, ''
        messages = iter(reader.messages(connections=connections))
        try:
            while True:
                try:
                    conn, t, raw = next(messages)
                except StopIteration:
                    break
                except Exception as exc:  # storage-level failure: the rest of the bag is unreadable
                    raise BagReadError('input bag %s is corrupt or truncated: reading failed %s: %s: %s'
                                       % (job.input_path, _position_text(index, log_ns, topic),
                                          type(exc).__name__, exc)) from None
                index, log_ns, topic = index + 1, t, conn.topic
                self.summary.messages_read = index
                position = (index, log_ns, topic)
                role = roles.get(topic)
                msg = None
                if role is not None:
                    msg = self.deserialize(reader, raw, conn, position)
                    if msg is None:   # corrupt and skipped: neither processed nor copied
                        role = 'skipped'
                if job.copy_inputs and role != 'skipped':
                    try:
                        data = self.converters[conn.msgtype](raw)
                    except Exception as exc:
                        self.corrupt(position, 'cannot convert a %s message: %s' % (conn.msgtype, exc))
                    else:
                        self.writer.write(self.copy_map[(conn.id, conn.owner)], t, data)
                        self.summary.messages_copied += 1
                if role == 'frame':
                    self.on_frame_message(self.frame_topics[topic], msg, t, topic)
                elif role == 'keyframe':
                    self.on_keyframe(msg, t)
                elif role == 'camera_info':
                    self.on_camera_info(msg)
                if bar is not None:
                    bar.update(1)
                    if index % 25 == 0:
                        bar.set_postfix_str('frames %d, keyframes %d, dropped %d' % (
                            frames.written, keyframes.written,
                            sum(frames.dropped.values()) + sum(keyframes.dropped.values())),
                            refresh=False)
            self.flush_sync()
            self.summary.complete = True
        finally:
            if bar is not None:
                bar.close()

    def prefetch_camera_info(self, reader, connections):
        """Intrinsics from the first valid camera_info anywhere in the bag, so that frames
        recorded before it still get a cloud. Problems here are left to the main pass."""
        if not connections:
            return
        try:
            for count, (conn, _, raw) in enumerate(reader.messages(connections=connections)):
                self.camera_info = _camera_info(reader.deserialize(raw, conn.msgtype))
                if self.camera_info is not None or count >= 100:
                    break
        except Exception:  # noqa: BLE001 - the main pass reports read errors with their position
            self.camera_info = None


def process_bag(job: BagJob, interpolator=None, progress: bool = False,
                quiet: bool = False) -> BagSummary:
    """Process ``job.input_path`` into a new rosbag2 at ``job.output_path``; see the module
    docstring. ``interpolator`` (a ``DepthInterpolator``) may be passed in; by default it is
    built from ``job.values`` like the node builds it.

    Raises ``BagConfigError`` (nothing written) or ``BagReadError`` (output so far is a valid
    bag; the error's ``summary`` says how far it got).
    """
    from rosbags.highlevel import AnyReader
    started = time.perf_counter()
    run = _BagRun(job, interpolator, progress, quiet)
    run.check_job()
    path = Path(job.input_path)
    if not path.exists():
        raise BagConfigError('input bag %s does not exist' % job.input_path)
    try:
        reader = AnyReader([path], default_typestore=lsd_slam.keyframe_typestore())
        reader.open()
    except Exception as exc:  # AnyReaderError, sqlite/mcap/ROS 1 index damage
        hint = ('a bag cut off while recording lacks its index: `ros2 bag reindex` (rosbag2) or '
                '`rosbag reindex` (ROS 1) can repair it')
        raise BagReadError('cannot open input bag %s: %s (%s)' % (job.input_path, exc, hint)) from None
    try:
        run.check_topics(reader)
        run.load_model()
        run.make_processors()
        try:
            run.open_writer(reader)
            run.run(reader)
        except BagReadError as exc:
            exc.summary = run.summary
            raise
        finally:
            if run.writer is not None:
                run.writer.close()  # also after an error: what was written stays a valid bag
            run.summary.elapsed_s = time.perf_counter() - started
    finally:
        reader.close()
    return run.summary


# --- command line ---------------------------------------------------------------------------------------------
def build_parser():
    p = argparse.ArgumentParser(
        prog='depth_interp bag',
        description='Run the depth_interp node\'s processing over a recorded bag (rosbag2 sqlite3/mcap '
                    'or ROS 1) and write a rosbag2 with dense_depth, dense_confidence and points.',
        epilog='Exit codes: 0 done, 1 input bag unreadable/corrupt (partial output stays valid), '
               '2 bad arguments/parameters/model/topics. See docs/bag.md.')
    p.add_argument('input', help='input bag: rosbag2 folder (sqlite3 or mcap) or ROS 1 .bag file')
    p.add_argument('output', help='output rosbag2 folder (must not exist)')
    g = p.add_argument_group('frames (synchronized like the node)')
    g.add_argument('--depth-topic', help='semi-dense depth Image topic (the node\'s semi_dense_depth)')
    g.add_argument('--image-topic', help='intensity Image topic (the node\'s image)')
    g.add_argument('--mask-topic', help='mask Image topic (needed while use_mask is true)')
    g.add_argument('--camera-info-topic', help='CameraInfo topic for the cloud (else fx/fy/cx/cy parameters)')
    g.add_argument('--output-namespace', help='namespace of the frame outputs (default: the depth topic\'s)')
    g = p.add_argument_group('parameters (the node\'s, see docs/node.md)')
    g.add_argument('--params-file', help='ROS 2 params YAML the node uses, e.g. config/robot.yaml')
    g.add_argument('--node-name', default='depth_interp',
                   help='node whose entry to read from the params file (default depth_interp; '
                        'e.g. /front/depth_interp)')
    g.add_argument('-p', '--param', action='append', default=[], metavar='NAME=VALUE',
                   help='override one parameter (YAML value), repeatable')
    g.add_argument('--model', help='model file (overrides model_path)')
    g = p.add_argument_group('LSD-SLAM keyframes')
    g.add_argument('--lsd-keyframes', metavar='TOPIC',
                   help='process lsd_slam_viewer/keyframeMsg from TOPIC (LSD-SLAM publishes on %s)'
                        % DEFAULT_KEYFRAME_TOPIC)
    defaults = lsd_slam.KeyframeFilter()
    g.add_argument('--max-scaled-depth-variance', type=float, default=defaults.max_scaled_depth_variance,
                   help='keep pixels with var(idepth)/idepth^4 at most this (viewer scaledDepthVarTH, '
                        'default %(default)g)')
    g.add_argument('--max-abs-depth-variance', type=float, default=defaults.max_abs_depth_variance,
                   help='... times the keyframe scale squared at most this (viewer absDepthVarTH, '
                        'default %(default)g)')
    g.add_argument('--min-near-support', type=int, default=defaults.min_near_support,
                   help='similar 3x3 neighbours needed (viewer minNearSupport, default %(default)d; 0 = off)')
    g.add_argument('--max-inverse-depth-variance', type=float, default=defaults.max_inverse_depth_variance,
                   help='plain cap on var(idepth) (default 0 = off)')
    g.add_argument('--keyframe-frame-id', default=DEFAULT_KEYFRAME_FRAME_ID,
                   help='frame_id of keyframe outputs (default %(default)s)')
    g.add_argument('--keyframe-output-namespace',
                   help='namespace of the keyframe outputs (default: the keyframe topic\'s)')
    g = p.add_argument_group('output')
    g.add_argument('--storage', choices=STORAGES, default='mcap', help='output storage (default mcap)')
    g.add_argument('--no-copy-inputs', action='store_true', help='write only the outputs')
    g.add_argument('--skip-corrupt', action='store_true',
                   help='skip (and count) messages that cannot be decoded instead of stopping')
    g.add_argument('--no-progress', action='store_true', help='no progress bar')
    g.add_argument('-q', '--quiet', action='store_true', help='no warnings, summary only')
    return p


def job_from_args(args) -> BagJob:
    overrides = list(args.param)
    if args.model:
        overrides.append('model_path=%s' % args.model)
    values = load_params(args.params_file, args.node_name, overrides)
    rules = lsd_slam.KeyframeFilter(args.max_scaled_depth_variance, args.max_abs_depth_variance,
                                    args.min_near_support, args.max_inverse_depth_variance)
    return BagJob(input_path=args.input, output_path=args.output, depth_topic=args.depth_topic,
                  image_topic=args.image_topic, mask_topic=args.mask_topic,
                  camera_info_topic=args.camera_info_topic, keyframe_topic=args.lsd_keyframes,
                  values=values, copy_inputs=not args.no_copy_inputs, storage=args.storage,
                  output_namespace=args.output_namespace,
                  keyframe_output_namespace=args.keyframe_output_namespace, keyframe_filter=rules,
                  keyframe_frame_id=args.keyframe_frame_id, skip_corrupt=args.skip_corrupt)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='depth_interp bag: %(message)s')
    try:
        job = job_from_args(args)
        summary = process_bag(job, progress=not args.no_progress and sys.stderr.isatty(),
                              quiet=args.quiet)
    except BagConfigError as exc:
        print('depth_interp bag: error: %s' % exc, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except BagReadError as exc:
        if exc.summary is not None:
            print(exc.summary.text())
            print('  the output written so far is a valid bag: %s' % exc.summary.output_path)
        print('depth_interp bag: error: %s' % exc, file=sys.stderr)
        return EXIT_READ_ERROR
    print(summary.text())
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
