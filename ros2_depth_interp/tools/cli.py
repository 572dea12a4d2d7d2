"""``depth_interp <command> [args]``: one entry point for the offline tools."""
import importlib
import sys

# command -> (module, one-line help). Each module has ``main(argv=None) -> int``.
COMMANDS = {
    'demo': ('ros2_depth_interp.tools.demo', 'replay the bundled synthetic sequence through the node over real DDS'),
    'train': ('ros2_depth_interp.learning.train', 'train the network (perceptual loss, Adam, checkpoints)'),
    'export': ('ros2_depth_interp.learning.export', 'export a checkpoint to ONNX and check it against torch'),
    'choose': ('ros2_depth_interp.evaluation.choose_checkpoint', 'score checkpoints on the validation scenes to pick one'),
    'eval': ('ros2_depth_interp.evaluation.evaluate', 'evaluate the model and classical baselines on real data'),
    'bag': ('ros2_depth_interp.tools.bag', 'process a recorded bag offline (rosbag2 or ROS 1, LSD-SLAM keyframes)'),
    'bench': ('ros2_depth_interp.tools.bench', 'measure latency and throughput of the node end to end'),
    'bench-keyframes': ('ros2_depth_interp.tools.bench_keyframes', 'latency of one LSD-SLAM keyframe through the node'),
}


def usage():
    lines = ['usage: depth_interp <command> [args]', '', 'commands:']
    lines += ['  %-8s %s' % (name, text) for name, (_, text) in COMMANDS.items()]
    return '\n'.join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print('depth_interp: unknown command %r\n\n%s' % (name, usage()), file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == '__main__':
    sys.exit(main())
