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


def _make_folder_for(path):
    """Create the folder a file is about to be written to, if it has one and it is missing."""
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)


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
    _make_folder_for(path)
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


LEGEND_LINE = 0.17   # inches per legend entry of a legend below the axes


def save_grouped_bars(path, groups, series, ylabel, title=None, legend_title=None, symlog=None,
                      width=None, label_rotation=30, label_size=None, title_size=None, legend_size=8,
                      legend_below=False):
    """Grouped vertical bars written to ``path`` (PNG): one group per name in ``groups`` (scenes),
    one bar per entry of ``series`` (mapping label -> one value per group), a line at zero.

    ``symlog``: the linear range of a symmetric-log y axis (None: linear). ``width``: figure width
    in inches (default grows with the number of groups). ``legend_below``: the legend under the
    axes instead of inside them (for long labels). Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x = np.arange(len(groups))
    strip = LEGEND_LINE * len(series) + 0.1 if legend_below else 0.0   # inches below the axes
    height = 4.6 + strip
    fig = Figure(figsize=(width or 2.0 + 0.55 * len(groups), height))
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
    if legend_below:   # in the strip, one line per series
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, title=legend_title, fontsize=legend_size, loc='lower center')
        fig.tight_layout(rect=(0.0, strip / height, 1.0, 1.0))
    else:
        ax.legend(title=legend_title, fontsize=legend_size, loc='best')
        fig.tight_layout()
    _make_folder_for(path)
    fig.savefig(path, dpi=100)
    return path


def render_cloud(cloud, width=960, height=420, yaw_deg=-35.0, pitch_deg=-25.0, point_size=3):
    """A point cloud (N, 4: x, y, z, intensity in the camera frame: x right, y down, z forward) seen
    from a virtual camera turned by ``yaw_deg`` about the vertical and ``pitch_deg`` about the
    horizontal axis through the cloud's median point -> RGB uint8 (height, width, 3).

    Colour: depth (turbo, the colour of the depth panels) shaded by the point's intensity. Points are
    painted far to near, so nearer ones hide farther ones. NaN points are skipped."""
    points = np.asarray(cloud, dtype=np.float64).reshape(-1, 4)
    points = points[np.isfinite(points[:, :3]).all(axis=1)]
    image = np.full((height, width, 3), 255, np.uint8)
    if len(points) == 0:
        return image
    xyz = points[:, :3] - np.median(points[:, :3], axis=0)
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    turn = np.array([[np.cos(yaw), 0.0, np.sin(yaw)], [0.0, 1.0, 0.0], [-np.sin(yaw), 0.0, np.cos(yaw)]])
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(pitch), -np.sin(pitch)], [0.0, np.sin(pitch), np.cos(pitch)]])
    view = xyz @ (tilt @ turn).T
    view[:, 2] += 2.5 * np.percentile(np.linalg.norm(xyz, axis=1), 95) + 1e-6
    keep = view[:, 2] > 1e-6
    view, points = view[keep], points[keep]
    u, v = view[:, 0] / view[:, 2], view[:, 1] / view[:, 2]
    lo_u, hi_u = u.min(), u.max()
    lo_v, hi_v = v.min(), v.max()
    scale = 0.94 * min(width / max(hi_u - lo_u, 1e-9), height / max(hi_v - lo_v, 1e-9))
    col = np.round((u - (lo_u + hi_u) / 2) * scale + width / 2).astype(np.int64)
    row = np.round((v - (lo_v + hi_v) / 2) * scale + height / 2).astype(np.int64)
    vmin, vmax = colour_range(points[:, 2])
    colour = colorize(points[:, 2].reshape(1, -1), vmin, vmax)[0].astype(np.float32)
    shade = 0.45 + 0.55 * np.clip(points[:, 3] / 255.0, 0.0, 1.0)
    colour = (colour * shade[:, None]).astype(np.uint8)
    order = np.argsort(-view[:, 2])            # far first, near last (painted on top)
    for dr in range(point_size):
        for dc in range(point_size):
            r, c = row[order] + dr - point_size // 2, col[order] + dc - point_size // 2
            inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
            image[r[inside], c[inside]] = colour[order][inside]
    return image


def overview_array(figure1_rgb, cloud, caption='organized point cloud (points), seen from the side'):
    """One picture of the product: a Figure-1 image (input, output, truth) above a rendering of the
    frame's point cloud at the same width, with a caption. Returns RGB uint8."""
    width = figure1_rgb.shape[1]
    cloud_rgb = render_cloud(cloud, width=width, height=int(round(width * 0.36)))
    cv2.putText(cloud_rgb, caption, (12, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([np.asarray(figure1_rgb, np.uint8)[..., :3], cloud_rgb])


def save_overview(path, figure1_png, ply_path):
    """:func:`overview_array` from a saved Figure-1 PNG and a PLY cloud (what ``depth_interp demo``
    writes), written to ``path``; returns the path."""
    from ..core.geometry import read_ply
    figure = cv2.cvtColor(cv2.imread(os.fspath(figure1_png), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    _make_folder_for(path)
    cv2.imwrite(os.fspath(path), cv2.cvtColor(overview_array(figure, read_ply(ply_path)), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path
