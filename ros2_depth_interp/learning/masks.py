"""Semi-dense masks: which pixels of a dense depth map a monocular SLAM system would have given us.

The network is trained on (dense ground truth, semi-dense input) pairs. Real semi-dense SLAM
(LSD-SLAM, DSO, ...) only estimates depth where the image has enough gradient to triangulate, so
the known pixels cluster on edges and texture and leave wide holes in flat regions. Following the
paper (Makarov et al. 2017), the main generator selects pixels by *adaptive thresholding of the
intensity-gradient magnitude*. A uniform random mask is kept for comparison/ablation, and an
"LSD-SLAM-like" mode adds the noise such a system produces: errors in inverse depth (so relative
depth error grows with depth) and a few gross outliers.

Density is always a fraction of *all* pixels of the image (how SLAM densities are usually quoted).
Pixels with invalid depth (<= 0 or non-finite) are never selected; if fewer valid pixels than asked
exist, all of them are selected.

Every function that draws random numbers takes a ``numpy.random.Generator`` so that training
workers and tests are reproducible.
"""
import cv2
import numpy as np

MASK_MODES = ('gradient', 'uniform', 'lsd')


def _as_generator(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _target_count(n_pixels, density):
    if not 0.0 <= float(density) <= 1.0:
        raise ValueError(f'density must be in [0, 1], got {density}')
    return int(round(float(density) * n_pixels))


def valid_depth(depth):
    """Pixels whose depth can be used: finite and strictly positive."""
    depth = np.asarray(depth)
    return np.isfinite(depth) & (depth > 0)


def _top_k_mask(score, k, shape):
    """Boolean mask of the k highest scores (ties already broken by the caller)."""
    flat = np.zeros(score.size, dtype=bool)
    if k >= score.size:
        flat[:] = True
    elif k > 0:
        flat[np.argpartition(score, score.size - k)[score.size - k:]] = True
    return flat.reshape(shape)


def gradient_magnitude(intensity_u8):
    """Sobel gradient magnitude of a lightly smoothed image (float32, grey levels per pixel).

    The 3x3 Gaussian keeps sensor noise from producing isolated "edge" pixels on flat surfaces.
    """
    img = np.asarray(intensity_u8)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY if img.shape[2] == 3 else cv2.COLOR_RGBA2GRAY)
    img = cv2.GaussianBlur(img.astype(np.float32), (3, 3), 0.8)
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


def gradient_adaptive_mask(intensity_u8, density, rng=None, valid=None, window=None, floor_quantile=0.5):
    """The paper's semi-dense mask: adaptive threshold on the intensity-gradient magnitude.

    A pixel is kept when its gradient magnitude ``g`` beats both its neighbourhood and a global floor
    by the same offset ``t``::

        g > local_mean(g) + t   and   g > floor + t

    The local mean (box filter over ``window`` pixels, default about 1/16 of the short image side)
    makes the selection follow edges in dark and bright, low- and high-contrast regions alike; the
    floor (the ``floor_quantile`` of ``g``) stops it picking noise in flat regions. Both tests pass
    exactly when ``min(g - local_mean, g - floor) > t``, so tuning ``t`` until the kept fraction equals
    ``density`` (what a bisection on ``t`` would converge to) is a quantile of that score: it is
    taken directly, which hits the density to the pixel. When fewer pixels pass than the density asks
    for (little texture), the remainder is filled by raw gradient magnitude, and remaining ties (e.g. a
    perfectly flat region) are broken at random with ``rng``, so the density is always met.

    ``valid`` (optional bool array) excludes pixels, e.g. where the depth is unknown.
    Returns a bool (H, W) array.
    """
    rng = _as_generator(rng if rng is not None else 0)
    g = gradient_magnitude(intensity_u8)
    h, w = g.shape
    if window is None:
        window = max(7, (min(h, w) // 16) | 1)
    local_mean = cv2.blur(g, (int(window), int(window)), borderType=cv2.BORDER_REFLECT)
    floor = float(np.quantile(g, floor_quantile))
    margin = np.minimum(g - local_mean, g - floor).ravel().astype(np.float64)
    g = g.ravel().astype(np.float64)
    # Pixels passing the adaptive test rank above all others (by margin); if the density asks for
    # more pixels than pass, the rest are taken by raw gradient, so the mask grows around edges.
    score = np.where(margin > 0, margin + g.max() + 1.0, g)
    # Tie-break far below one grey level: never reorders distinct gradients.
    score += rng.random(score.size) * 1e-3
    k = _target_count(g.size, density)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool).ravel()
        score[~valid] = -np.inf
        k = min(k, int(valid.sum()))
    return _top_k_mask(score, k, (h, w))


def uniform_mask(shape, density, rng, valid=None):
    """Exactly round(density * H * W) pixels drawn uniformly without replacement (among ``valid``)."""
    rng = _as_generator(rng)
    n = int(np.prod(shape))
    score = rng.random(n)
    k = _target_count(n, density)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool).ravel()
        score[~valid] = -np.inf
        k = min(k, int(valid.sum()))
    return _top_k_mask(score, k, tuple(shape))


def lsd_slam_like(depth, intensity_u8, density, rng, rel_noise=0.01, outlier_fraction=0.01):
    """Gradient-selected pixels with the errors of a monocular semi-dense SLAM system.

    Monocular SLAM triangulates along epipolar lines, so its error is roughly constant in *inverse*
    depth: ``rho_noisy = rho + N(0, sigma)`` with ``sigma = rel_noise / d_ref``, where ``d_ref`` is the
    median valid depth of the frame (keeps the generator scale-free: it works on metres or on
    Middlebury disparities alike). Relative inverse-depth error ``sigma / rho = rel_noise * d / d_ref``
    therefore grows with depth, and so does the relative depth error (to first order the same): 1 %
    at the median depth for the default, 2 % at twice that depth. A fraction ``outlier_fraction`` of
    the selected pixels are gross outliers: the depth scaled by a random factor between 1.25 and 2
    (or its inverse), as wrong epipolar matches give.

    Returns ``(mask bool (H, W), noisy_depth float32 (H, W) with 0 outside the mask)``.
    """
    rng = _as_generator(rng)
    depth = np.asarray(depth, dtype=np.float32)
    valid = valid_depth(depth)
    mask = gradient_adaptive_mask(intensity_u8, density, rng, valid=valid)
    noisy = np.zeros(depth.shape, dtype=np.float32)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return mask, noisy
    d = depth.ravel()[idx].astype(np.float64)
    d_ref = float(np.median(depth[valid]))
    rho = 1.0 / d
    sigma = float(rel_noise) / d_ref
    rho_noisy = rho + rng.normal(0.0, sigma, size=idx.size)
    # Keep the inverse depth positive: a negative one would be a point behind the camera.
    rho_noisy = np.maximum(rho_noisy, 0.2 * rho)
    d_noisy = 1.0 / rho_noisy
    n_out = int(round(float(outlier_fraction) * idx.size))
    if n_out > 0:
        which = rng.choice(idx.size, size=n_out, replace=False)
        factor = rng.uniform(1.25, 2.0, size=n_out)
        factor = np.where(rng.random(n_out) < 0.5, factor, 1.0 / factor)
        d_noisy[which] = d[which] * factor
    noisy.ravel()[idx] = d_noisy.astype(np.float32)
    return mask, noisy


def make_semi_dense(depth, intensity_u8, mode, density, rng):
    """One semi-dense input: ``(sparse float32 (H, W), 0 outside the mask; mask bool (H, W))``.

    ``mode``: 'gradient' (exact depth on gradient-selected pixels), 'uniform' (exact depth on random
    pixels) or 'lsd' (gradient-selected pixels with LSD-SLAM-like noise and outliers). Invalid depth
    (<= 0 or non-finite) is never selected.
    """
    rng = _as_generator(rng)
    depth = np.asarray(depth, dtype=np.float32)
    valid = valid_depth(depth)
    if mode == 'gradient':
        mask = gradient_adaptive_mask(intensity_u8, density, rng, valid=valid)
        sparse = np.where(mask, depth, 0).astype(np.float32)
    elif mode == 'uniform':
        mask = uniform_mask(depth.shape, density, rng, valid=valid)
        sparse = np.where(mask, depth, 0).astype(np.float32)
    elif mode == 'lsd':
        mask, sparse = lsd_slam_like(depth, intensity_u8, density, rng)
    else:
        raise ValueError(f'unknown mask mode {mode!r}; expected one of {MASK_MODES}')
    return sparse, mask
