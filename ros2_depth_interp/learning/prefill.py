"""The parameter-free, intensity-guided pre-fill of the shipped network (torch; exports to ONNX).

``PyramidPrefill`` fills every unknown pixel so that the network only has to correct edges and
shapes. In two steps, over a pyramid of ``levels`` halvings (the shipped model: one, i.e. half
resolution, then full resolution):

1. At the coarsest level, an edge-aware normalized convolution of first order (Knutsson and Westin
   1993) with the recursive filter of Gastal and Oliveira's domain transform (2011): each pixel
   takes the weighted least-squares plane through the measurements that reach it, and the weights
   fall off with distance and with intensity differences, so depth travels far along a surface of
   even intensity and hardly across an edge.
2. Coarse to fine, at every level, conjugate-gradient iterations on the colorization energy
   (Levin et al. 2004), sum over neighbours r, s of w_rs (x_r - x_s)^2, measurements held in
   proportion to their support, with symmetric variance-scaled weights
   w_rs = exp(-dI^2 / s_rs^2), s_rs^2 = ``variance_scale`` x the mean of the two pixels' 3x3
   intensity variances (at least ``sigma_floor``^2): textured surfaces stay connected, edges in
   flat regions cut.

Everything is whole-image tensor operations (pooling, slices, reductions, Resize), so it runs in
the ONNX graph without custom operators. It has no weights: ``export`` may run a trained network
on other pre-fill settings than it was trained with.
"""
import math

import torch
from torch.nn import functional as F

# neighbour offsets (dy, dx) of the conjugate-gradient solver: the 8-neighbourhood
OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))
# added to every neighbour weight: keeps a pixel unlike all its neighbours coupled to them
WEIGHT_FLOOR = 1e-4
# a pixel whose domain-transform support is not above this takes the mean of all measurements.
# Tiny on purpose: a region that only weak links reach still takes its depth from across them, far
# better than the mean.
SUPPORT_FLOOR = 1e-30
# positions in units of this many pixels of the level, centred on the image (keeps the float32
# moments of the first-order fill well conditioned)
COORDINATE_UNIT = 128.0


def _centred_coordinates(like):
    """Column and row positions (N, 1, H, W) of every pixel, centred on the image, in
    ``COORDINATE_UNIT`` pixels. From cumulative sums, so height and width stay dynamic in ONNX."""
    ones = torch.ones_like(like)
    xs = ones.cumsum(dim=3)
    ys = ones.cumsum(dim=2)
    xs = (xs - xs.mean(dim=3, keepdim=True)) / COORDINATE_UNIT
    ys = (ys - ys.mean(dim=2, keepdim=True)) / COORDINATE_UNIT
    return xs, ys


def _shift(x, dim, k):
    """``x[n - k]`` along ``dim`` (2 or 3; k < 0: ``x[n + |k|]``), zero where that is outside.

    Padding then slicing keeps height and width dynamic in the exported graph."""
    pad = [0, 0, 0, 0]
    side = 0 if k > 0 else 1
    pad[(3 - dim) * 2 + side] = abs(k)
    padded = F.pad(x, pad)
    if dim == 3:
        return padded[:, :, :, :-k] if k > 0 else padded[:, :, :, -k:]
    return padded[:, :, :-k, :] if k > 0 else padded[:, :, -k:, :]


def _link_products(link, dim, steps):
    """The window products a recursive filter along ``dim`` needs, computed once per image.

    ``link[n]`` couples pixel n - 1 and pixel n (``link[0]`` = 0). Returns ``(ahead, behind)``:
    ``ahead[j][n]`` is the product of the links between n - 2^j and n, ``behind[j][n]`` the product
    between n and n + 2^j, for j = 0 .. steps - 1 (zero where the window leaves the image).
    """
    ahead = [link]
    for j in range(1, steps):
        ahead.append(ahead[-1] * _shift(ahead[-1], dim, 2 ** (j - 1)))
    behind = [_shift(a, dim, -(2 ** j)) for j, a in enumerate(ahead)]
    return ahead, behind


def _recursive_filter(x, products, dim, decay=1.0):
    """Both one-sided sums of the first-order recursive filter along ``dim``, minus ``x`` once.

    With links ``decay x link`` (``products`` = ``_link_products(link, dim, steps)``), the causal
    pass is y[n] = x[n] + decay link[n] y[n - 1]: y[n] = sum over m <= n of x[m] times the product of
    the links between m and n; the anticausal pass mirrors it. Computed by doubling steps (Hillis and
    Steele's scan for linear recurrences: y[n] += A[n] y[n - k] with A the product of the k links
    before n, k = 1, 2, 4, ...): a few dozen whole-image operations instead of a loop over the
    columns. Sums reach 2^steps pixels; beyond that the spatial decay has made every weight
    negligible.
    """
    ahead, behind = products
    forward, backward = x, x
    for j, (a, b) in enumerate(zip(ahead, behind)):
        k = 2 ** j
        factor = decay ** k
        forward = forward + (a * factor) * _shift(forward, dim, k)
        backward = backward + (b * factor) * _shift(backward, dim, -k)
    return forward + backward - x


def _shifted(padded, dy, dx):
    """``x[y + dy, x + dx]`` from ``x`` zero-padded by one pixel (static slices, cheap in ONNX)."""
    rows = slice(2, None) if dy > 0 else slice(None, -2) if dy < 0 else slice(1, -1)
    cols = slice(2, None) if dx > 0 else slice(None, -2) if dx < 0 else slice(1, -1)
    return padded[:, :, rows, cols]


def local_variance(intensity):
    """The 3x3 intensity variance of each pixel (edges replicated)."""
    padded = F.pad(intensity, (1, 1, 1, 1), mode='replicate')
    mean = F.avg_pool2d(padded, 3, 1)
    return (F.avg_pool2d(padded * padded, 3, 1) - mean * mean).clamp_min(0.0)


def similarity(diff, variance, neighbour_variance, variance_scale, sigma_floor):
    """Symmetric neighbour weights w_rs = w_sr = exp(-(I_r - I_s)^2 / s_rs^2) from the intensity
    difference of r and s, s_rs^2 = ``variance_scale`` x the mean of their 3x3 variances, at least
    ``sigma_floor``^2."""
    pair = (variance + neighbour_variance) * (0.5 * variance_scale)
    return torch.exp(-diff * diff / pair.clamp_min(sigma_floor * sigma_floor))


class PyramidPrefill(torch.nn.Module):
    """Domain-transform fill at the coarsest of ``levels`` halvings, then conjugate gradients per
    level, coarse to fine (``iterations``: per level, finest first). See the module docstring."""

    def __init__(self, levels=1, iterations=(20, 40), variance_scale=0.3, sigma_floor=0.005, dt_sigma_s=120.0,
                 dt_sigma_r=0.02, dt_passes=2, dt_steps=6, dt_ridge=1.0, dt_clamp=1.0):
        super().__init__()
        if levels < 0 or any(n < 0 for n in iterations):
            raise ValueError('levels and iterations must not be negative, got %r, %r' % (levels, iterations))
        if not (dt_sigma_s > 0 and dt_sigma_r > 0 and dt_passes >= 1 and dt_steps >= 1):
            raise ValueError('the domain transform needs sigma_s > 0, sigma_r > 0, passes >= 1 and steps >= 1, '
                             'got %r, %r, %r, %r' % (dt_sigma_s, dt_sigma_r, dt_passes, dt_steps))
        if not (dt_ridge > 0 and dt_clamp >= 0):
            raise ValueError('the first-order fill needs ridge > 0 and clamp >= 0, got %r, %r' % (dt_ridge, dt_clamp))
        if not (variance_scale > 0 and sigma_floor > 0):
            raise ValueError('variance_scale and sigma_floor must be positive, got %r, %r'
                             % (variance_scale, sigma_floor))
        self.levels = int(levels)
        self.iterations = tuple(int(n) for n in iterations)
        self.variance_scale = float(variance_scale)
        self.sigma_floor = float(sigma_floor)
        self.dt_sigma_s = float(dt_sigma_s)
        self.dt_sigma_r = float(dt_sigma_r)
        self.dt_passes = int(dt_passes)
        self.dt_steps = int(dt_steps)
        self.dt_ridge = float(dt_ridge)
        self.dt_clamp = float(dt_clamp)

    def forward(self, depth, mask, intensity):
        if depth.dtype == torch.float32:
            return self._fill(depth, mask, intensity)
        # Always computed in float32, also inside a half-precision network: the iterations sum over
        # the whole image and the scans multiply hundreds of links, both beyond float16's range.
        return self._fill(depth.float(), mask.float(), intensity.float()).to(depth.dtype)

    def _fill(self, depth, mask, intensity):
        # pull: sums and counts of the measurements per block (avg pooling times the block area)
        sums, counts, images = [depth * mask], [mask], [intensity]
        for _ in range(self.levels):
            sums.append(F.avg_pool2d(sums[-1], 2) * 4.0)
            counts.append(F.avg_pool2d(counts[-1], 2) * 4.0)
            images.append(F.avg_pool2d(images[-1], 2))
        global_mean = sums[-1].sum(dim=(2, 3), keepdim=True) / counts[-1].sum(dim=(2, 3), keepdim=True).clamp_min(1e-6)
        fill = None
        for level in range(self.levels, -1, -1):
            support = counts[level].clamp(max=1.0)
            mean = sums[level] / counts[level].clamp_min(1e-6)
            if fill is None:
                fill = self._domain_transform_fill(mean, support, images[level], global_mean.expand_as(mean))
            else:
                fill = F.interpolate(fill, scale_factor=2.0, mode='bilinear', align_corners=False)
            # measurements are held in proportion to their support
            held = support * mean
            free = 1.0 - support
            fill = held + free * fill
            steps = self.iterations[level] if level < len(self.iterations) else 0
            if steps:
                fill = self._conjugate_gradients(fill, held, free, self._edge_weights(images[level]), steps)
        return fill

    def _edge_weights(self, intensity):
        """One (N, 1, H, W) weight per neighbour offset, zero where the neighbour is outside."""
        inside = F.pad(torch.ones_like(intensity), (1, 1, 1, 1))
        image = F.pad(intensity, (1, 1, 1, 1))
        variance = local_variance(intensity)
        padded_variance = F.pad(variance, (1, 1, 1, 1))
        weights = []
        for dy, dx in OFFSETS:
            w = similarity(_shifted(image, dy, dx) - intensity, variance, _shifted(padded_variance, dy, dx),
                           self.variance_scale, self.sigma_floor)
            weights.append((w + WEIGHT_FLOOR) * _shifted(inside, dy, dx))
        return weights

    @staticmethod
    def _weighted_neighbours(x, weights):
        padded = F.pad(x, (1, 1, 1, 1))
        out = None
        for (dy, dx), w in zip(OFFSETS, weights):
            term = w * _shifted(padded, dy, dx)
            out = term if out is None else out + term
        return out

    def _conjugate_gradients(self, fill, held, free, weights, iterations):
        """``iterations`` steps of conjugate gradients on the level's equations, from ``fill``.

        With neighbour weights w_rs (symmetric) and D_r their sum over s, the fill wanted is the
        fixed point x = held + free * (W x) / D: the solution of the symmetric positive definite
        system (D / free - W) x = D held / free on pixels with free > 0; pixels with free = 0
        (measured) keep their value. Preconditioned by the diagonal D / free, so the first step is
        a Jacobi sweep. Shifts are slices of a zero-padded copy, not convolutions (a third of the
        cost of a 3x3 one-hot convolution in ONNX Runtime on the CPU).
        """
        total = weights[0]
        for w in weights[1:]:
            total = total + w
        # a pixel without neighbours (a level one pixel wide and high) keeps its fill
        active = ((free > 0) & (total > 0)).to(fill.dtype)
        total = total.clamp_min(1e-12)            # >= WEIGHT_FLOOR wherever a neighbour exists
        scale = free.clamp_min(1e-6) / total      # the preconditioner: the inverse of D / free
        x = fill
        z = (held + free * self._weighted_neighbours(x, weights) / total - x) * active
        r = z / scale
        p = z
        rz = (r * z).sum(dim=(2, 3), keepdim=True)
        tiny = rz * 1e-12 + 1e-30
        for _ in range(iterations):
            q = (p / scale - self._weighted_neighbours(p, weights)) * active
            # converged (rz at rounding level): stop moving instead of dividing 0 by 0
            going = (rz > tiny).to(fill.dtype)
            alpha = going * rz / (p * q).sum(dim=(2, 3), keepdim=True).clamp_min(1e-30)
            x = x + alpha * p
            r = r - alpha * q
            z = scale * r
            rz_next = (r * z).sum(dim=(2, 3), keepdim=True)
            p = z + (going * rz_next / rz.clamp_min(1e-30)) * p
            rz = rz_next
        return x

    def _domain_transform_fill(self, values, support, intensity, fallback):
        """Edge-aware normalized convolution of first order of ``values`` with confidence ``support``.

        The domain transform's recursive filter runs horizontally then vertically, ``dt_passes``
        times with the spatial range shrinking as in Gastal and Oliveira's paper, over the
        support-weighted moments of the measurements' positions and depths; neighbours are linked
        by exp(-sqrt(2) (1 / s + |dI| / dt_sigma_r)). Each pixel then takes the weighted
        least-squares plane through the measurements that reach it (``_plane_fill``), so slanted
        surfaces are filled as slopes, not as steps. Where no support arrives (not above
        ``SUPPORT_FLOOR``), the fill is ``fallback``.
        """
        xs, ys = _centred_coordinates(values)
        stacked = torch.cat([support, support * xs, support * ys, support * xs * xs, support * xs * ys,
                             support * ys * ys, support * values, support * xs * values, support * ys * values,
                             support * values * values], dim=1)
        products = {}
        for dim in (3, 2):
            step = (intensity - _shift(intensity, dim, 1)).abs()
            inside = _shift(torch.ones_like(intensity), dim, 1)
            link = torch.exp(step * (-2.0 ** 0.5 / self.dt_sigma_r)) * inside
            products[dim] = _link_products(link, dim, self.dt_steps)
        n = self.dt_passes
        for i in range(n):
            spatial = self.dt_sigma_s * 3.0 ** 0.5 * 2.0 ** (n - i - 1) / (4.0 ** n - 1.0) ** 0.5
            decay = math.exp(-2.0 ** 0.5 / spatial)
            for dim in (3, 2):
                stacked = _recursive_filter(stacked, products[dim], dim, decay)
        total = stacked[:, 0:1]
        moments = stacked[:, 1:] / total.clamp_min(SUPPORT_FLOOR)
        return torch.where(total > SUPPORT_FLOOR, self._plane_fill(moments, xs, ys), fallback)

    def _plane_fill(self, moments, xs, ys):
        """The weighted least-squares plane d = mean + g . (p - centroid), evaluated at each pixel.

        ``moments``: the weighted means of x, y, xx, xy, yy, d, xd, yd, dd over the measurements
        that reach the pixel. The slopes g solve (C + ridge I) g = c, with C the positions'
        covariance and c their covariance with depth; the ridge keeps g small where the
        measurements lie on a line (an edge) and say nothing of the slope across it. The departure
        from the mean is clamped to ``dt_clamp`` times the depths' standard deviation, so a plane
        fitted near one side of a wide surface does not run away across it (``dt_clamp=0``: the
        weighted mean).
        """
        mx, my, mxx, mxy, myy, md, mxd, myd, mdd = moments.split(1, dim=1)
        ridge = (self.dt_ridge / COORDINATE_UNIT) ** 2
        a = (mxx - mx * mx).clamp_min(0.0) + ridge
        b = mxy - mx * my
        c = (myy - my * my).clamp_min(0.0) + ridge
        cxd = mxd - mx * md
        cyd = myd - my * md
        # >= ridge^2 since C is positive semi-definite; the clamp only keeps rounding from ever
        # dividing by zero or flipping the sign
        det = (a * c - b * b).clamp_min(ridge * ridge)
        gx = (c * cxd - b * cyd) / det
        gy = (a * cyd - b * cxd) / det
        limit = (mdd - md * md).clamp_min(0.0).sqrt() * self.dt_clamp
        departure = gx * (xs - mx) + gy * (ys - my)
        return md + torch.minimum(torch.maximum(departure, -limit), limit)
