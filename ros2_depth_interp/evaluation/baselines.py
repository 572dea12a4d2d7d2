"""Classical ways to densify semi-dense depth, the yardsticks the network must beat.

Every method has the interface of ``DepthInterpolator.interpolate``::

    method(depth, mask, intensity) -> float32 (H, W) dense depth in the input's units

``depth`` is float (H, W), read only where ``mask`` (bool, H x W) is True; ``intensity`` is uint8
(H, W) (only colorization looks at it). Known pixels come back with their input value.

- ``nearest``: each pixel takes the value of the closest known pixel (Euclidean distance transform).
- ``linear``: piecewise-linear interpolation on the Delaunay triangulation of the known pixels
  (``scipy.spatial.Delaunay``; the same values as ``scipy.interpolate.LinearNDInterpolator``,
  evaluated by a vectorized rasterizer, see ``_rasterize_triangles``), nearest outside their convex
  hull.
- ``inpaint``: OpenCV ``cv2.inpaint`` with the Navier-Stokes method (``cv2.INPAINT_NS``) on the
  float32 depth itself (OpenCV >= 4 accepts 32-bit float single-channel images, so no uint16
  quantization is needed; the Telea option runs on a uint16 rescaling, see ``inpaint``), radius
  ``INPAINT_RADIUS`` = 2 pixels. Of Telea/NS x radius 1, 2, 3, 5 on the Middlebury 2005 scenes
  (uniform, gradient and LSD-like 10 % masks) radius 2 was best, or within 0.15 dB of it, for
  both; NS and Telea were within 0.4 dB of each other (Telea ahead on uniform masks, NS on gradient
  ones), and NS is kept because it needs no quantization. Numbers in docs/evaluation.md.
- ``colorization``: Levin, Lischinski & Weiss (2004) "Colorization using optimization" applied to
  depth, as in the NYU Depth v2 toolbox's ``fill_depth_colorization``: each pixel is asked to equal
  an intensity-weighted average of its 3x3 neighbours, known pixels are tied to their value, and
  the sparse linear system is solved directly (SuperLU). Edges in the intensity image become
  places where depth may jump. The strongest classical method with random masks (2-4 dB above
  linear); with gradient masks, which leave wide holes, it only ties linear on average. The slowest
  (about a second per third-size Middlebury frame, more with fewer known pixels).
"""
import math

import cv2
import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from scipy import ndimage
from scipy.spatial import Delaunay, QhullError

INPAINT_RADIUS = 2
# Levin et al. / NYU toolbox constants: the window variance is scaled by 0.6, every pixel keeps at
# least weight 0.01 towards its most similar neighbour, and the variance never drops below 2e-6
# (intensity in [0, 1]).
COLOR_VAR_SCALE = 0.6
COLOR_MIN_WEIGHT = 0.01
COLOR_MIN_VAR = 2e-6
# 3x3 window without its centre: (row offset, column offset).
NEIGHBOURS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))


def _prepare(depth, mask):
    """float64 depth and a bool mask of usable known pixels (finite values only); raise if none."""
    depth = np.asarray(depth)
    mask = np.asarray(mask, dtype=bool)
    if depth.ndim != 2 or depth.shape != mask.shape:
        raise ValueError('depth %s and mask %s must be the same (H, W)' % (depth.shape, mask.shape))
    depth = depth.astype(np.float64)
    known = mask & np.isfinite(depth)
    if not known.any():
        raise ValueError('no known pixel to interpolate from')
    return depth, known


def _finish(out, depth, known):
    out = np.asarray(out, dtype=np.float32)
    out[known] = depth[known]
    return out


def nearest(depth, mask, intensity=None):
    """Value of the nearest known pixel (ties broken by scipy's distance transform)."""
    depth, known = _prepare(depth, mask)
    _, (rows, cols) = ndimage.distance_transform_edt(~known, return_indices=True)
    return _finish(depth[rows, cols], depth, known)


def _rasterize_triangles(points, simplices, values, shape, chunk=1 << 21):
    """Piecewise-linear interpolation of ``values`` at every pixel inside the triangles (NaN elsewhere).

    ``points`` are integer pixel coordinates (row, col) of the vertices, so each triangle's pixels lie
    in its integer bounding box: every box pixel is enumerated (vectorized, ``chunk`` candidates at a
    time to bound memory), kept when its barycentric coordinates are all >= 0, and given the
    barycentric mix of the vertex values. Pixels on a shared edge get the same value from both
    triangles (continuity), so write order does not matter. Zero-area triangles cover nothing and
    are skipped. This is what ``scipy.interpolate.LinearNDInterpolator`` computes; it is done here
    because scipy's per-simplex barycentric transforms (``Delaunay.transform``) go through multi-
    threaded OpenBLAS one 2x2 matrix at a time, which took 0.5-13 s of CPU instead of 0.03 s on this
    2-core machine when other processes were busy (the test suite compares both).
    """
    h, w = shape
    out = np.full(h * w, np.nan)
    p = points[simplices].astype(np.int64)  # (m, 3, 2)
    ar, ac = p[:, 0, 0], p[:, 0, 1]
    e1r, e1c = p[:, 1, 0] - ar, p[:, 1, 1] - ac
    e2r, e2c = p[:, 2, 0] - ar, p[:, 2, 1] - ac
    det = e1r * e2c - e2r * e1c
    keep = det != 0
    lo = p.min(1)[keep]
    hi = p.max(1)[keep]
    tri = np.nonzero(keep)[0]
    box_w = hi[:, 1] - lo[:, 1] + 1
    sizes = (hi[:, 0] - lo[:, 0] + 1) * box_w
    ends = np.cumsum(sizes)
    first = 0
    while first < tri.size:
        # As many whole triangles as fit in one chunk (at least one).
        last = max(first + 1, int(np.searchsorted(ends, ends[first] - sizes[first] + chunk, 'right')))
        sel = slice(first, last)
        k = np.repeat(np.arange(first, last), sizes[sel])
        offset = np.arange(k.size) - np.repeat(ends[sel] - sizes[sel] - (ends[first] - sizes[first]), sizes[sel])
        rr = lo[k, 0] + offset // box_w[k]
        cc = lo[k, 1] + offset % box_w[k]
        t = tri[k]
        dr, dc = rr - ar[t], cc - ac[t]
        d = det[t].astype(np.float64)
        l1 = (dr * e2c[t] - dc * e2r[t]) / d
        l2 = (e1r[t] * dc - e1c[t] * dr) / d
        l0 = 1.0 - l1 - l2
        inside = (l0 >= -1e-9) & (l1 >= -1e-9) & (l2 >= -1e-9)
        v = values[simplices[t[inside]]]
        out[rr[inside] * w + cc[inside]] = l0[inside] * v[:, 0] + l1[inside] * v[:, 1] + l2[inside] * v[:, 2]
        first = last
    return out.reshape(h, w)


def linear(depth, mask, intensity=None):
    """Barycentric interpolation on the Delaunay triangulation of the known pixels.

    Pixels outside the convex hull (and every pixel when fewer than three non-collinear samples
    exist, where no triangulation can be built) take the nearest known value.
    """
    depth, known = _prepare(depth, mask)
    fallback = nearest(depth, known)
    rows, cols = np.nonzero(known)
    if rows.size < 3:
        return fallback
    points = np.column_stack([rows, cols])
    try:
        simplices = Delaunay(points.astype(np.float64)).simplices
    except QhullError:  # all samples collinear
        return fallback
    out = _rasterize_triangles(points, simplices, depth[rows, cols], depth.shape)
    outside = ~np.isfinite(out)
    out[outside] = fallback[outside]
    return _finish(out, depth, known)


def inpaint(depth, mask, intensity=None, radius=INPAINT_RADIUS, method=cv2.INPAINT_NS):
    """OpenCV inpainting (Navier-Stokes by default, ``cv2.INPAINT_TELEA`` for Telea) on float32 depth.

    Unknown pixels are set to 0 before the call; OpenCV only reads the pixels outside the
    inpainting mask, so that value never leaks into the result.
    """
    depth, known = _prepare(depth, mask)
    holes = (~known).astype(np.uint8)
    if method == cv2.INPAINT_TELEA:
        # OpenCV 5.0's Telea on float32 input returned errors of the order of the whole depth range
        # on a plane (test_baselines); on 16-bit input it is correct. So Telea runs on the known range
        # mapped to 0..65535 (steps of range / 65535: 0.0013 px for Middlebury third-size disparity).
        lo = float(depth[known].min())
        step = max(float(depth[known].max()) - lo, 1e-12) / 65535.0
        src = np.where(known, np.rint((depth - lo) / step), 0).astype(np.uint16)
        out = cv2.inpaint(src, holes, float(radius), method).astype(np.float64) * step + lo
    else:
        out = cv2.inpaint(np.where(known, depth, 0.0).astype(np.float32), holes, float(radius), method)
    return _finish(out, depth, known)


def _shift(a, dy, dx, fill):
    """``out[y, x] = a[y + dy, x + dx]`` with ``fill`` where that falls outside the image."""
    h, w = a.shape
    out = np.full_like(a, fill)
    ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
    out[yd, xd] = a[ys, xs]
    return out


def colorization_affinity(intensity):
    """The Levin et al. matrix ``A = I - W`` (sparse CSR, N x N with N = H * W).

    ``W[r, s]`` is the weight of neighbour ``s`` in pixel ``r``'s 3x3 window:
    ``exp(-(Y_s - Y_r)^2 / sigma_r)``, normalized to sum to 1 over the window, where ``sigma_r`` is
    0.6 x the intensity variance of the window, raised so that the most similar neighbour keeps at
    least weight 0.01 (before normalization) and floored at 2e-6. Built for all pixels at once from
    eight shifted copies of the image, no per-pixel loop.
    """
    y = np.asarray(intensity, dtype=np.float64)
    if y.max(initial=0) > 1.0:
        y = y / 255.0
    h, w = y.shape
    index = np.arange(h * w).reshape(h, w)
    shifted = [_shift(y, dy, dx, np.nan) for dy, dx in NEIGHBOURS]  # NaN = outside the image
    nbr = np.stack(shifted)  # (8, H, W)
    inside = np.isfinite(nbr)
    # Window statistics over the in-image neighbours plus the centre.
    count = inside.sum(0) + 1.0
    mean = (np.where(inside, nbr, 0.0).sum(0) + y) / count
    var = (np.where(inside, (nbr - mean) ** 2, 0.0).sum(0) + (y - mean) ** 2) / count
    diff2 = np.where(inside, (nbr - y) ** 2, np.inf)
    sigma = COLOR_VAR_SCALE * var
    sigma = np.maximum(sigma, diff2.min(0) / -math.log(COLOR_MIN_WEIGHT))
    sigma = np.maximum(sigma, COLOR_MIN_VAR)
    weight = np.where(inside, np.exp(-np.where(inside, diff2, 0.0) / sigma), 0.0)
    weight /= weight.sum(0)
    rows = [index.ravel()]
    cols = [index.ravel()]
    vals = [np.ones(h * w)]
    for k, (dy, dx) in enumerate(NEIGHBOURS):
        ok = inside[k]
        rows.append(index[ok])
        cols.append(_shift(index, dy, dx, -1)[ok])
        vals.append(-weight[k][ok])
    return scipy.sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(h * w, h * w))


def colorization(depth, mask, intensity=None, alpha=None):
    """Levin et al. colorization fill (NYU toolbox style) of the unknown depth.

    ``alpha=None`` (default): known pixels are hard constraints; only the unknown pixels are
    solved for (``A_uu x_u = -A_uk d_k``), as in Levin et al.'s original, so known depth is kept
    exactly. A number gives the NYU toolbox's soft version, ``(A + alpha G) x = alpha G d`` with
    ``G`` the diagonal of known pixels (the toolbox's default is alpha = 1), which also smooths
    noisy samples. Without an intensity image every neighbour weighs the same (harmonic fill).
    Measured on the Middlebury 2005 scenes (10 % masks): hard constraints were 0.0-0.4 dB better
    than alpha = 1 with exact samples (uniform, gradient), within +-0.25 dB with LSD-like noisy ones,
    and faster on gradient masks (fewer unknowns); hence the default.
    """
    depth, known = _prepare(depth, mask)
    h, w = depth.shape
    if intensity is None:
        intensity = np.zeros((h, w), np.uint8)
    intensity = np.asarray(intensity)
    if intensity.shape != (h, w):
        raise ValueError('intensity %s must match depth %s' % (intensity.shape, depth.shape))
    a = colorization_affinity(intensity)
    d = np.where(known, depth, 0.0).ravel()
    k = known.ravel()
    if alpha is None:
        unknown = np.nonzero(~k)[0]
        if unknown.size == 0:
            return _finish(depth, depth, known)
        a_u = a[unknown]
        rhs = -(a_u[:, np.nonzero(k)[0]] @ d[k])
        x = scipy.sparse.linalg.spsolve(a_u[:, unknown].tocsc(), rhs)
        out = d.copy()
        out[unknown] = x
    else:
        g = scipy.sparse.diags(alpha * k.astype(np.float64))
        out = scipy.sparse.linalg.spsolve((a + g).tocsc(), alpha * k * d)
    return _finish(out.reshape(h, w), depth, known) if alpha is None else np.asarray(
        out.reshape(h, w), dtype=np.float32)


BASELINES = {
    'nearest': nearest,
    'linear': linear,
    'inpaint': inpaint,
    'colorization': colorization,
}
