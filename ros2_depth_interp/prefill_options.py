"""Command-line options that change the parameter-free pre-fill, shared by ``train`` and ``export``.

The pre-fill has no weights, so ``export`` may run the trained network on a different pre-fill
than it was trained with (e.g. more iterations for a slower, more accurate graph).
"""


def _ints(text):
    return [int(v) for v in text.split(',') if v.strip()]


# flag -> (config key, type, help)
OPTIONS = {
    '--prefill-iterations': ('prefill_iterations', _ints,
                             'iterations per pyramid level, finest first, e.g. 8,15,15,20,20,20'),
    '--prefill-solver': ('prefill_solver', str, "'heavy_ball' sweeps or 'cg' (conjugate gradients)"),
    '--prefill-momentum': ('prefill_momentum', float, 'heavy-ball momentum of the sweeps (0: plain sweeps)'),
    '--prefill-weights': ('prefill_weights', str, "'global' (one sigma) or 'variance' (from the local variance)"),
    '--prefill-variance-scale': ('prefill_variance_scale', float, "'variance' weights: sigma^2 = scale x variance"),
    '--prefill-sigma-floor': ('prefill_sigma_floor', float, "'variance' weights: sigma never below this"),
}
CHOICES = {'--prefill-solver': ('heavy_ball', 'cg'), '--prefill-weights': ('global', 'variance')}


def add_prefill_arguments(parser):
    for flag, (_, kind, text) in OPTIONS.items():
        parser.add_argument(flag, type=kind, choices=CHOICES.get(flag), help=text)


def apply_prefill_arguments(config, args):
    """Set the given options in ``config`` (a dict); return the keys that were set."""
    changed = []
    for flag, (key, _, _) in OPTIONS.items():
        value = getattr(args, flag[2:].replace('-', '_'))
        if value is not None:
            config[key] = value
            changed.append(key)
    return changed
