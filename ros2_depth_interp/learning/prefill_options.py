"""Command-line options that change the parameter-free pre-fill, shared by ``train`` and ``export``.

The pre-fill has no weights, so ``export`` may run the trained network on a different pre-fill
than it was trained with (e.g. more iterations for a slower, more accurate graph).
"""


def _ints(text):
    return [int(v) for v in text.split(',') if v.strip()]


# flag -> (type, help, choices); the config key is the flag's name: --prefill-x -> prefill_x
OPTIONS = {
    '--prefill-levels': (int, 'pyramid levels below full resolution (the input is padded to 2^levels)', None),
    '--prefill-iterations': (_ints, 'iterations per pyramid level, finest first, e.g. 8,15,15,20,20,20', None),
    '--prefill-solver': (str, "'heavy_ball' sweeps or 'cg' (conjugate gradients)", ('heavy_ball', 'cg')),
    '--prefill-momentum': (float, 'heavy-ball momentum of the sweeps (0: plain sweeps)', None),
    '--prefill-weights': (str, "'global' (one sigma) or 'variance' (from the local variance)", ('global', 'variance')),
    '--prefill-variance-scale': (float, "'variance' weights: sigma^2 = scale x variance", None),
    '--prefill-sigma-floor': (float, "'variance' weights: sigma never below this", None),
    '--prefill-tau': (float, '> 0: plain normalized-convolution pre-fill (phase 1 used 0.01)', None),
    '--prefill-top': (str, "coarsest level's fill: 'pull_push' or 'domain_transform'", ('pull_push', 'domain_transform')),
    '--prefill-dt-sigma-s': (float, "'domain_transform': spatial range in pixels of the coarsest level", None),
    '--prefill-dt-sigma-r': (float, "'domain_transform': intensity range (intensity in [0, 1])", None),
    '--prefill-dt-passes': (int, "'domain_transform': horizontal + vertical passes", None),
    '--prefill-dt-steps': (int, "'domain_transform': doubling steps per scan (reach 2^steps pixels)", None),
    '--prefill-dt-order': (int, "'domain_transform': 0 weighted mean, 1 weighted local plane", (0, 1)),
    '--prefill-dt-ridge': (float, "'domain_transform' order 1: ridge on the slopes, in pixels of that level", None),
    '--prefill-dt-clamp': (float, "'domain_transform' order 1: departure from the mean at most clamp x std", None),
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
