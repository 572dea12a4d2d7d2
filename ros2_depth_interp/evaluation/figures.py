"""Pictures of depth results in the style of the paper's Figure 1: intensity | input | output(s) | truth.

Why shared colour scales matter: depth maps rendered each with its own min/max cannot be compared by
eye (a method that over-shoots looks *better*), so every depth panel of a figure uses one scale,
taken from the ground truth (or the known input when there is no truth) and drawn as one colour bar.

Two renderers:

- :func:`colorize` turns a depth map into an RGB uint8 image with OpenCV only (fast, no matplotlib;
  for the demo and for live views). Invalid pixels are black.
- :func:`figure1` / :func:`save_figure1` build a matplotlib figure (object-oriented API with the Agg
  canvas, no pyplot global state, safe in threads and without a display) with titles, captions
  (e.g. PSNR) and one colour bar.
"""
import os

import cv2
import numpy as np

CMAP = 'turbo'               # matplotlib colormap for depth panels
CV2_CMAP = cv2.COLORMAP_TURBO  # the same map in OpenCV
INPUT_BACKGROUND = (0.85, 0.85, 0.85)  # unknown pixels of the semi-dense input panel
INVALID_COLOUR = (0.0, 0.0, 0.0)       # invalid ground truth


def colour_range(values, valid=None, percentiles=(0.5, 99.5)):
    """(vmin, vmax) for a shared colour scale: robust percentiles of the valid, positive values.

    Returns (0, 1) when there is nothing valid, so callers never divide by zero.
    """
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values) & (values > 0)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    if not ok.any():
        return 0.0, 1.0
    lo, hi = np.percentile(values[ok], percentiles)
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def colorize(values, vmin, vmax, valid=None, cmap=CV2_CMAP):
    """Depth (H, W) -> RGB uint8 (H, W, 3) with OpenCV's colormap; invalid (or masked-out) pixels black."""
    values = np.asarray(values, dtype=np.float32)
    ok = np.isfinite(values)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    scaled = np.clip((np.where(ok, values, vmin) - vmin) / max(vmax - vmin, 1e-12), 0.0, 1.0)
    rgb = cv2.cvtColor(cv2.applyColorMap((scaled * 255.0 + 0.5).astype(np.uint8), cmap), cv2.COLOR_BGR2RGB)
    rgb[~ok] = 0
    return rgb


def _depth_panel(ax, values, show, vmin, vmax, background):
    import matplotlib
    cmap = matplotlib.colormaps[CMAP].with_extremes(bad=background)
    data = np.ma.masked_array(np.asarray(values, dtype=np.float32), mask=~show)
    return ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, interpolation='nearest')


def figure1(intensity, sparse, mask, outputs, gt=None, valid=None, title=None, captions=None,
            vmin=None, vmax=None, columns=None, units=''):
    """A matplotlib Figure: intensity | semi-dense input | each output | ground truth.

    ``outputs``: mapping name -> dense (H, W) array, drawn in order. ``gt``/``valid``: ground truth
    and where it is known (drawn black elsewhere); ``captions``: mapping name -> extra text under the
    panel title (e.g. '36.2 dB'). The colour scale (``vmin``, ``vmax``) defaults to robust percentiles
    of the valid ground truth (of the known input without one) and is shared by every depth panel.
    ``columns``: panels per row (default: all in one row up to 4, then rows of 4).
    """
    from matplotlib.figure import Figure

    mask = np.asarray(mask, dtype=bool)
    if gt is not None and valid is None:
        valid = np.isfinite(gt) & (np.asarray(gt) > 0)
    if vmin is None or vmax is None:
        lo, hi = colour_range(gt, valid) if gt is not None else colour_range(sparse, mask)
        vmin = lo if vmin is None else vmin
        vmax = hi if vmax is None else vmax
    captions = dict(captions or {})
    panels = [('intensity', None), ('input (%.1f %% known)' % (100.0 * mask.mean()), 'input')]
    panels += [(name, name) for name in outputs]
    if gt is not None:
        panels.append(('ground truth', 'gt'))
    n = len(panels)
    cols = columns or min(n, 4)
    rows = -(-n // cols)
    h, w = mask.shape
    panel_w = 3.2
    fig = Figure(figsize=(panel_w * cols + 0.9, panel_w * h / w * rows + 0.75 * rows + (0.4 if title else 0)))
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for ax, (label, key) in zip(axes.ravel(), panels):
        if key is None:
            ax.imshow(np.asarray(intensity), cmap='gray', vmin=0, vmax=255, interpolation='nearest')
        elif key == 'input':
            image = _depth_panel(ax, sparse, mask, vmin, vmax, INPUT_BACKGROUND)
        elif key == 'gt':
            image = _depth_panel(ax, gt, valid, vmin, vmax, INVALID_COLOUR)
        else:
            out = np.asarray(outputs[key], dtype=np.float32)
            image = _depth_panel(ax, out, np.isfinite(out), vmin, vmax, INVALID_COLOUR)
        text = label if key not in captions else '%s\n%s' % (label, captions[key])
        ax.set_title(text, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[n:]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.01, right=0.9, bottom=0.02, top=0.86 if title else 0.92, wspace=0.04, hspace=0.25)
    if image is not None:
        cax = fig.add_axes([0.915, 0.1, 0.015, 0.75])
        bar = fig.colorbar(image, cax=cax)
        if units:
            bar.set_label(units, fontsize=9)
    return fig


def save_figure1(path, *args, dpi=110, **kwargs):
    """:func:`figure1` written to ``path`` (PNG); returns the path. Creates the folder if needed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = figure1(*args, **kwargs)
    FigureCanvasAgg(fig)
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def figure1_array(*args, dpi=90, **kwargs):
    """:func:`figure1` rendered to an RGB uint8 array (for the demo or for logging)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = figure1(*args, **kwargs)
    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_grouped_bars(path, groups, series, ylabel, title=None, legend_title=None, symlog=None,
                      width=None, label_rotation=30, label_size=None, title_size=None, legend_size=8):
    """Grouped vertical bars written to ``path`` (PNG): one group per name in ``groups`` (scenes),
    one bar per entry of ``series`` (mapping label -> one value per group), a line at zero.

    ``symlog``: the linear range of a symmetric-log y axis (None: linear). ``width``: figure width
    in inches (default grows with the number of groups). Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x = np.arange(len(groups))
    fig = Figure(figsize=(width or 2.0 + 0.55 * len(groups), 4.6))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    bar = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * bar, values, bar, label=label)
    ax.axhline(0.0, color='black', linewidth=0.8)
    if symlog:
        ax.set_yscale('symlog', linthresh=symlog)
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=label_rotation, ha='right', fontsize=label_size)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=title_size)
    ax.legend(title=legend_title, fontsize=legend_size, loc='best')
    fig.tight_layout()
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
