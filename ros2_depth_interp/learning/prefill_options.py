"""Command-line options that change the parameter-free pre-fill, shared by ``train`` and ``export``.

The pre-fill has no weights, so ``export`` may run the trained network on a different pre-fill
than it was trained with (e.g. more iterations for a slower, more accurate graph).
"""


def int_list(text):
    return [int(v) for v in text.split(',') if v.strip()]


# flag -> (type, help, choices); the config key is the flag's name: --prefill-x -> prefill_x
OPTIONS = {
    '--prefill-levels': (int, 'pyramid halvings below full resolution (the input is padded to 2^levels)', None),
    '--prefill-iterations': (int_list, 'conjugate-gradient iterations per pyramid level, finest first, e.g. 20,40', None),
    '--prefill-variance-scale': (float, 'neighbour weights: sigma^2 = scale x the local intensity variance', None),
    '--prefill-sigma-floor': (float, 'neighbour weights: sigma never below this', None),
    '--prefill-dt-sigma-s': (float, 'domain transform: spatial range in pixels of the coarsest level', None),
    '--prefill-dt-sigma-r': (float, 'domain transform: intensity range (intensity in [0, 1])', None),
    '--prefill-dt-passes': (int, 'domain transform: horizontal + vertical passes', None),
    '--prefill-dt-steps': (int, 'domain transform: doubling steps per scan (reach 2^steps pixels)', None),
    '--prefill-dt-ridge': (float, 'first-order fill: ridge on the slopes, in pixels of the coarsest level', None),
    '--prefill-dt-clamp': (float, 'first-order fill: departure from the mean at most clamp x std (0: the mean)', None),
}


def _key(flag):
    return flag[2:].replace('-', '_')


def add_prefill_arguments(parser):
    for flag, (kind, text, choices) in OPTIONS.items():
        parser.add_argument(flag, type=kind, choices=choices, help=text)


def apply_prefill_arguments(config, args):
    """Set the given options in ``config`` (a dict); return the keys that were set."""
    changed = []
    for flag in OPTIONS:
        value = getattr(args, _key(flag))
        if value is not None:
            config[_key(flag)] = value
            changed.append(_key(flag))
    return changed
