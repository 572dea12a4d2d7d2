"""Every parameter of the depth_interp node, declared once.

The table below is the single source of truth: ``node.py`` declares each entry as a ROS parameter
(with a ParameterDescriptor carrying the description and the numeric range), the bag tool and the
benchmark read the same defaults, the launch-file tests check that every key a launch file or a
YAML config sets exists here, and ``docs/node.md`` renders its parameter table from it.

This module is ROS-free: ``validate`` works on a plain ``{name: value}`` dict so the same checks run
at node start-up, in the on-set-parameters callback and in tests without rclpy.
"""
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

# Value kinds, named after the ROS parameter types they map to.
BOOL = 'bool'
INTEGER = 'integer'
DOUBLE = 'double'
STRING = 'string'
STRING_ARRAY = 'string_array'
_KIND_TEXT = {BOOL: 'a bool', INTEGER: 'an integer', DOUBLE: 'a double', STRING: 'a string',
              STRING_ARRAY: 'a string array'}

DEFAULT_PROVIDERS = ('TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider')
BACKENDS = ('onnx', 'torch')


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter.

    ``value_range`` is an inclusive (low, high) pair for numbers, ``choices`` a tuple of allowed
    strings. ``runtime`` says whether the node accepts a change while running (only settings that
    are read per frame: filters, stride, throttling); everything else needs a restart.
    """
    name: str
    default: Any
    kind: str
    description: str
    value_range: Optional[Tuple[float, float]] = None
    choices: Optional[Tuple[str, ...]] = None
    runtime: bool = False

    def constraint_text(self):
        """Human-readable constraint, used in error messages and the docs table."""
        if self.choices:
            return 'one of ' + ', '.join(self.choices)
        if self.value_range:
            low, high = self.value_range
            return '[%s, %s]' % (_fmt_number(low), _fmt_number(high))
        if self.kind == STRING_ARRAY:
            return 'non-empty list of names'
        return ''


def _fmt_number(value):
    """1000000 rather than 1e+06 for whole numbers, %g otherwise."""
    if float(value).is_integer() and abs(value) < 1e15:
        return '%d' % value
    return '%g' % value


PARAMS: Tuple[ParamSpec, ...] = (
    # --- model and inference -------------------------------------------------------------------
    ParamSpec('model_path', '', STRING,
              "Model file (.onnx; .pt for the torch backend). '' = the shipped model "
              "share/ros2_depth_interp/models/depth_interp.onnx."),
    ParamSpec('providers', list(DEFAULT_PROVIDERS), STRING_ARRAY,
              'ONNX Runtime execution providers in order of preference. Those not available on '
              'this machine are skipped; one info line names the active one.'),
    ParamSpec('backend', 'onnx', STRING,
              "Inference backend: 'onnx' (ONNX Runtime, default) or 'torch' (needs PyTorch).",
              choices=BACKENDS),
    ParamSpec('intra_op_threads', 0, INTEGER,
              'ONNX Runtime intra-op threads for the CPU provider (0 = its default).',
              value_range=(0, 256)),
    ParamSpec('warmup', True, BOOL,
              'Run one inference at start-up so the first real frame does not pay for '
              'session initialisation (TensorRT engine build, CUDA context).'),
    # --- inputs ----------------------------------------------------------------------------------
    ParamSpec('use_mask', True, BOOL,
              'Subscribe to `mask` (mono8, non-zero = known). false: no mask subscription, every '
              'finite positive depth is known.'),
    ParamSpec('input_inverse_depth', False, BOOL,
              'semi_dense_depth holds inverse depth (LSD-SLAM, DSO). Known pixels become depth = '
              '1/value; outputs are depth in the reciprocal of the input units (the SLAM map scale).'),
    ParamSpec('depth_scale', 0.001, DOUBLE,
              'Multiplier that turns 16UC1 depth values into metres (0.001 = millimetres). '
              '32FC1 input is taken as metres.',
              value_range=(1e-9, 1e6), runtime=True),
    ParamSpec('sync_slop', 0.05, DOUBLE,
              'Approximate-time synchronizer: largest stamp difference (s) within one input set.',
              value_range=(0.0, 10.0)),
    ParamSpec('sync_queue_size', 10, INTEGER,
              'Approximate-time synchronizer: messages kept per input while waiting for a match.',
              value_range=(1, 1000)),
    ParamSpec('sync_min_period', 0.0, DOUBLE,
              'Approximate-time synchronizer: the shortest time (s) between two messages on one input '
              '(e.g. 0.03 for a 30 Hz camera). With it, a set whose stamps differ slightly goes out as soon '
              'as no later message can match better; with 0 (unknown) the synchronizer waits for the next '
              'message to prove that, up to one frame of latency. Inputs at exactly equal stamps never wait.',
              value_range=(0.0, 10.0)),
    ParamSpec('fx', 0.0, DOUBLE,
              'Fallback focal length x (pixels) used until camera_info arrives. 0 = unset.',
              value_range=(0.0, 1e6)),
    ParamSpec('fy', 0.0, DOUBLE,
              'Fallback focal length y (pixels). 0 = unset. Set fx and fy together.',
              value_range=(0.0, 1e6)),
    ParamSpec('cx', 0.0, DOUBLE,
              'Fallback principal point x (pixels). 0 with fx, fy set = image centre.',
              value_range=(0.0, 1e6)),
    ParamSpec('cy', 0.0, DOUBLE,
              'Fallback principal point y (pixels). 0 with fx, fy set = image centre.',
              value_range=(0.0, 1e6)),
    # --- outputs ---------------------------------------------------------------------------------
    ParamSpec('publish_cloud', True, BOOL,
              'Publish the organized point cloud on `points`.', runtime=True),
    ParamSpec('cloud_stride', 1, INTEGER,
              'Cloud decimation: keep every n-th row and column (organized cloud of '
              'ceil(H/n) x ceil(W/n) points).',
              value_range=(1, 64), runtime=True),
    ParamSpec('min_depth', 0.0, DOUBLE,
              'Cloud points closer than this (output units) are NaN. 0 = no limit.',
              value_range=(0.0, 1e6), runtime=True),
    ParamSpec('max_depth', 0.0, DOUBLE,
              'Cloud points farther than this (output units) are NaN. 0 = no limit.',
              value_range=(0.0, 1e6), runtime=True),
    ParamSpec('min_confidence', 0.0, DOUBLE,
              'Cloud points with a confidence below this are NaN.',
              value_range=(0.0, 1.0), runtime=True),
    ParamSpec('reliable_outputs', False, BOOL,
              'Publish outputs with RELIABLE QoS (RViz2 subscribes reliable and shows nothing '
              'from a best-effort publisher). false = sensor-data (best effort) QoS.'),
    # --- LSD-SLAM keyframes (docs/lsd_slam.md) ---------------------------------------------------
    ParamSpec('keyframe_topic', '', STRING,
              "LSD-SLAM keyframes (lsd_slam_msgs/Keyframe, reliable), e.g. /lsd_slam/keyframes. Each one "
              "is densified and published at world scale on /lsd_slam/dense_depth, dense_confidence, "
              "points, with its pose on /tf and /lsd_slam/keyframe_pose. '' = off."),
    ParamSpec('liveframe_topic', '', STRING,
              "LSD-SLAM live frames (lsd_slam_msgs/Keyframe, pose only), e.g. /lsd_slam/liveframes: "
              "their pose goes out on /tf (world_frame -> liveframe_frame_id) and /lsd_slam/live_pose. "
              "'' = off."),
    ParamSpec('graph_topic', '', STRING,
              "LSD-SLAM pose graph (lsd_slam_msgs/KeyframeGraph), e.g. /lsd_slam/graph: optimized "
              "keyframe poses re-pose the dense map. '' = off."),
    ParamSpec('keyframe_frame_id', 'lsd_slam_camera', STRING,
              'frame_id of the keyframe outputs (the keyframe camera; /tf child frame).'),
    ParamSpec('liveframe_frame_id', 'lsd_slam_live_camera', STRING,
              'frame_id of the live camera pose (/tf child frame).'),
    ParamSpec('world_frame', 'world', STRING,
              'The SLAM world frame: /tf parent frame and frame_id of /lsd_slam/points_map.'),
    ParamSpec('publish_map', True, BOOL,
              'Publish /lsd_slam/points_map (transient local, reliable): the dense keyframe clouds '
              'so far in world_frame, voxel-filtered, re-posed by graph updates.'),
    ParamSpec('map_voxel_size', 0.05, DOUBLE,
              'Voxel edge of the map filter (world units; one averaged point per voxel). 0 = no filter.',
              value_range=(0.0, 100.0)),
    ParamSpec('map_publish_period', 2.0, DOUBLE,
              'At most one /lsd_slam/points_map per this many seconds, only when it changed.',
              value_range=(0.1, 3600.0)),
    ParamSpec('map_max_keyframes', 0, INTEGER,
              'Keyframes kept in the map (the oldest go first). 0 = all.',
              value_range=(0, 1000000)),
    ParamSpec('max_scaled_depth_variance', 1e-3, DOUBLE,
              "Keyframe pixel filter (LSD-SLAM viewer scaledDepthVarTH): largest depth variance "
              "var_q / q^4 in the keyframe's scale.",
              value_range=(1e-12, 1e12), runtime=True),
    ParamSpec('max_abs_depth_variance', 1e-1, DOUBLE,
              'Keyframe pixel filter (viewer absDepthVarTH): largest depth variance in world scale '
              '(the above times the Sim(3) scale squared).',
              value_range=(1e-12, 1e12), runtime=True),
    ParamSpec('min_near_support', 7, INTEGER,
              'Keyframe pixel filter (viewer minNearSupport): similar neighbours needed in the 3x3 '
              'neighbourhood (itself included). 0 or 1 = off.',
              value_range=(0, 9), runtime=True),
    ParamSpec('max_inverse_depth_variance', 0.0, DOUBLE,
              'Keyframe pixel filter: largest inverse-depth variance var_q. 0 = no limit.',
              value_range=(0.0, 1e12), runtime=True),
    # --- diagnostics and logging -----------------------------------------------------------------
    ParamSpec('diagnostics_period', 1.0, DOUBLE,
              'Seconds between /diagnostics messages.',
              value_range=(0.05, 60.0)),
    ParamSpec('log_throttle_sec', 5.0, DOUBLE,
              'At most one log line per problem kind in this many seconds (bad input, missing '
              'intrinsics). 0 = log every occurrence.',
              value_range=(0.0, 3600.0), runtime=True),
)

SPECS: Dict[str, ParamSpec] = {spec.name: spec for spec in PARAMS}
RUNTIME_PARAMS = frozenset(spec.name for spec in PARAMS if spec.runtime)


def defaults() -> Dict[str, Any]:
    """A fresh {name: default} dict (lists copied, so callers may mutate it)."""
    return {spec.name: (list(spec.default) if isinstance(spec.default, list) else spec.default)
            for spec in PARAMS}


def _check_kind(spec, value):
    """Error text when ``value`` is not of the spec's kind, else None. ints pass as doubles."""
    kind = spec.kind
    if kind == BOOL:
        ok = isinstance(value, bool)
    elif kind == INTEGER:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == DOUBLE:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == STRING:
        ok = isinstance(value, str)
    elif kind == STRING_ARRAY:
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    else:  # pragma: no cover - the table only uses the kinds above
        ok = False
    if ok:
        return None
    return '%s must be %s, got %r' % (spec.name, kind_text(kind), value)


def kind_text(kind):
    """'an integer', 'a double', ... for messages."""
    return _KIND_TEXT[kind]


def _check_single(spec, value):
    """Kind, range and choice checks of one value; returns a list of error strings."""
    kind_error = _check_kind(spec, value)
    if kind_error:
        return [kind_error]
    if spec.kind in (INTEGER, DOUBLE):
        if not math.isfinite(value):
            return ['%s must be finite, got %r' % (spec.name, value)]
        if spec.value_range and not spec.value_range[0] <= value <= spec.value_range[1]:
            return ['%s must be in %s, got %r' % (spec.name, spec.constraint_text(), value)]
    if spec.choices and value not in spec.choices:
        return ['%s must be %s, got %r' % (spec.name, spec.constraint_text(), value)]
    if spec.kind == STRING_ARRAY and (not value or any(not v.strip() for v in value)):
        return ['%s must be a non-empty list of non-empty names, got %r' % (spec.name, list(value))]
    return []


def validate(values: Dict[str, Any]) -> List[str]:
    """All problems with a full or partial set of parameter values, as readable sentences.

    Unknown names are errors too (a misspelt key in a YAML file should not be silently ignored).
    Cross-parameter rules: fx and fy are set together; cx/cy need fx/fy; max_depth (when set)
    is above min_depth.
    """
    errors = []
    for name in values:
        if name not in SPECS:
            errors.append('unknown parameter %r (known: %s)' % (name, ', '.join(sorted(SPECS))))
    for name, value in values.items():
        if name in SPECS:
            errors.extend(_check_single(SPECS[name], value))
    if errors:
        return errors

    merged = defaults()
    merged.update(values)
    fx, fy = merged['fx'], merged['fy']
    if (fx > 0) != (fy > 0):
        errors.append('fx and fy must be set together (both > 0) or both left 0, got fx=%r fy=%r'
                      % (fx, fy))
    if (merged['cx'] > 0 or merged['cy'] > 0) and not (fx > 0 and fy > 0):
        errors.append('cx/cy are set but fx/fy are not: set the focal lengths too')
    if merged['max_depth'] > 0 and merged['max_depth'] <= merged['min_depth']:
        errors.append('max_depth (%r) must be greater than min_depth (%r), or 0 for no limit'
                      % (merged['max_depth'], merged['min_depth']))
    return errors


def runtime_change_errors(changes: Dict[str, Any], current: Dict[str, Any]) -> List[str]:
    """Why a runtime change must be rejected: start-up-only names, or values that fail ``validate``
    once merged with the current values."""
    errors = ['%s can only be set at start-up (restart the node to change it)' % name
              for name in changes if name in SPECS and name not in RUNTIME_PARAMS]
    merged = dict(current)
    merged.update(changes)
    errors.extend(validate(merged))
    return errors


def markdown_table() -> str:
    """The parameter table of docs/node.md, rendered from PARAMS."""
    lines = ['| name | type | default | range / choices | runtime | description |',
             '|---|---|---|---|---|---|']
    for spec in PARAMS:
        default = spec.default
        if isinstance(default, list):
            default = '[' + ', '.join(default) + ']'
        elif isinstance(default, bool):
            default = str(default).lower()
        elif default == '':
            default = "''"
        lines.append('| `%s` | %s | `%s` | %s | %s | %s |' % (
            spec.name, spec.kind.replace('_', ' '), default, spec.constraint_text(),
            'yes' if spec.runtime else 'no', spec.description.replace('|', '\\|')))
    return '\n'.join(lines) + '\n'


def config_from_yaml_dict(data: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """{node path: ros__parameters dict} from a loaded ROS 2 params YAML.

    ROS params files key parameters by node name, namespaced either as one key
    (``/front/depth_interp``), as nested mappings (``front: depth_interp: ...``) or with the
    ``/**`` wildcard; each node entry holds a ``ros__parameters`` mapping. Used by tests and the bag
    tool to read the shipped configs without rclpy.
    """
    out = {}

    def walk(prefix, body):
        if not isinstance(body, dict):
            return
        if 'ros__parameters' in body:
            out[prefix] = dict(body['ros__parameters'] or {})
        for key, value in body.items():
            if key != 'ros__parameters':
                walk((prefix.rstrip('/') + '/' + str(key).strip('/')) if prefix else str(key), value)

    walk('', data or {})
    return out


def names() -> Sequence[str]:
    return tuple(spec.name for spec in PARAMS)


if __name__ == '__main__':  # python -m ros2_depth_interp.core.params > table.md (docs/node.md embeds it)
    print(markdown_table(), end='')
