"""The interpolation network (torch; used for training, export and the torch inference backend).

After Makarov et al., "Depth Map Interpolation using Perceptual Loss" (ISMAR 2017): residual blocks
of two 3x3 convolutions with ELU, projection blocks (1x1 convolution on the identity path) where the
width changes, dilations that grow with depth, ONE x2 downsampling stage, dropout before the last
convolution, and a final pixel shuffle (depth-to-space) back to full size. ELU everywhere but the
last convolution.

One addition, measured in models/README.md: a parameter-free, intensity-guided pre-fill
(``PyramidPrefill``; in the default preset an edge-aware normalized convolution of first order, a
weighted local plane per pixel, at half resolution, then conjugate-gradient iterations on the
colorization energy) fills every hole and lets depth follow intensity edges, and the network
predicts a correction to that fill. Holes of semi-dense SLAM depth are often wider than any
affordable receptive field; with the pre-fill the network only has to fix edges and shapes.

Input: (N, 3, H, W) as described in ``preprocess`` (H, W multiples of ``stride``).
Output: (depth, confidence), each (N, 1, H, W): normalized depth and a confidence in [0, 1].
"""
import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .unet import DepthSPN, DepthUNet, SPNConfig, UNetConfig


@dataclass
class NetConfig:
    stem_width: int = 8                  # full-resolution features
    width: int = 16                      # features after the single x2 downsampling
    dilations: tuple = (1, 2, 4, 8, 1)   # one residual block per entry, growing receptive field
    prefill_levels: int = 5              # pyramid depth of the pre-fill (stride = 2 ** levels)
    prefill_tau: float = 0.0             # 0: pull-push; > 0: plain normalized convolution (first variant)
    prefill_spread: int = 4              # 3x3 growing rounds at the coarsest level
    prefill_iterations: tuple = ()       # intensity-guided sweeps per pyramid level, finest first
    prefill_sigma: float = 0.02          # std of the intensity-similarity weight (intensity in [0, 1])
    prefill_momentum: float = 0.0        # heavy-ball momentum of the sweeps (0: plain Jacobi sweeps)
    prefill_momentum_ramp: float = 3.0   # sweep k of a level uses momentum * k / (k + ramp)
    prefill_weights: str = 'global'      # 'global': one sigma; 'variance': sigma from the local variance
    prefill_variance_scale: float = 0.6  # 'variance': sigma_rs^2 = scale * mean of the two window variances
    prefill_sigma_floor: float = 0.005   # 'variance': sigma never below this
    prefill_solver: str = 'heavy_ball'   # 'heavy_ball' sweeps or 'cg' (preconditioned conjugate gradients)
    prefill_neighbours: int = 8          # 'cg': 4 or 8 neighbours per pixel
    prefill_top: str = 'pull_push'       # coarsest level's fill: 'pull_push' (spread, then the mean) or
                                         # 'domain_transform' (edge-aware normalized convolution)
    prefill_dt_sigma_s: float = 60.0     # 'domain_transform': spatial range, in pixels of that level
    prefill_dt_sigma_r: float = 0.02     # 'domain_transform': intensity range (intensity in [0, 1])
    prefill_dt_passes: int = 3           # 'domain_transform': horizontal + vertical passes
    prefill_dt_steps: int = 8            # 'domain_transform': doubling steps per scan (reach 2^steps pixels)
    prefill_dt_order: int = 0            # 'domain_transform': 0 weighted mean; 1 weighted local plane
    prefill_dt_ridge: float = 1.0        # order 1: ridge on the plane's slopes, in pixels of that level
    prefill_dt_clamp: float = 1.0        # order 1: the plane departs from the mean by at most clamp x std
    dropout: float = 0.5                 # before the last convolution, training only
    extra: dict = field(default_factory=dict)

    @property
    def stride(self):
        return max(2, 2 ** self.prefill_levels)

    def to_dict(self):
        d = asdict(self)
        d['dilations'] = list(self.dilations)
        d['prefill_iterations'] = list(self.prefill_iterations)
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d['dilations'] = tuple(d.get('dilations', cls.dilations))
        d['prefill_iterations'] = tuple(d.get('prefill_iterations', ()))
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


PRESETS = {
    # real time on a 2-core CPU (see models/README.md for the timing that chose it)
    'default': NetConfig(dilations=(1, 2, 4), prefill_levels=1, prefill_top='domain_transform',
                         prefill_dt_order=1, prefill_dt_sigma_s=120.0, prefill_dt_steps=6, prefill_dt_passes=2,
                         prefill_solver='cg', prefill_weights='variance', prefill_variance_scale=0.3,
                         prefill_iterations=(20, 40)),
    # the paper-sized variant
    'paper': NetConfig(stem_width=32, width=64, dilations=(1, 2, 4, 8, 16, 1),
                       prefill_iterations=(2, 4, 12, 12, 12, 12)),
    # the dataclass defaults, which never change (checkpoints written before an option existed load
    # with its default): scripts/train_shipped_model.sh builds every phase on it
    'base': NetConfig(),
    # for tests: exported in a second
    'tiny': NetConfig(stem_width=4, width=8, dilations=(1, 2), prefill_levels=3, prefill_iterations=(1, 1, 2, 2)),
    'unet': UNetConfig(),
    'unet_tiny': UNetConfig(widths=(4, 6, 8, 8, 8), blocks=(0, 0, 1, 1, 1)),
    'spn': SPNConfig(),
}


def elu(x):
    """ELU. In an ONNX export it is written as max(x, exp(min(x, 0)) - 1), the same function
    (e^x - 1 >= x for every x, with equality at 0): ONNX Runtime's CPU Elu kernel is several times
    slower than its Exp, Min and Max (measured in models/README.md)."""
    if torch.onnx.is_in_onnx_export():
        return torch.maximum(x, torch.exp(torch.clamp(x, max=0.0)) - 1.0)
    return F.elu(x)


class ELU(nn.Module):
    """``elu`` as a module, for ``nn.Sequential``."""

    def forward(self, x):
        return elu(x)


def conv3x3(cin, cout, dilation=1, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with ELU and an identity skip; a projection block (1x1 convolution on
    the identity path) where the width or the resolution changes."""

    def __init__(self, cin, cout, dilation=1, stride=1):
        super().__init__()
        self.conv1 = conv3x3(cin, cout, dilation, stride)
        self.conv2 = conv3x3(cout, cout, dilation)
        projects = cin != cout or stride != 1
        self.project = nn.Conv2d(cin, cout, 1, stride=stride) if projects else nn.Identity()

    def forward(self, x):
        y = elu(self.conv1(x))
        y = self.conv2(y)
        return elu(y + self.project(x))


# neighbour offsets (dy, dx) of the conjugate-gradient solver
OFFSETS = {4: ((-1, 0), (1, 0), (0, -1), (0, 1)),
           8: tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))}
# added to every neighbour weight: keeps a pixel unlike all its neighbours coupled to them
WEIGHT_FLOOR = 1e-4
# 'domain_transform': a pixel whose support is not above this takes the mean of all measurements.
# Tiny on purpose: a region that only weak links reach still takes its depth from across them, far
# better than the mean (a floor of 1e-4 cost 2 dB on the gradient masks of one test frame).
SUPPORT_FLOOR = 1e-30


# order-1 domain transform: positions in units of this many pixels of the level, centred on the
# image (keeps the float32 moments well conditioned)
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
    columns, so it runs (and exports) as ordinary tensor operations. Sums reach 2^steps pixels;
    beyond that the spatial decay has made every weight negligible.
    """
    ahead, behind = products
    forward, backward = x, x
    for j, (a, b) in enumerate(zip(ahead, behind)):
        k = 2 ** j
        factor = decay ** k
        forward = forward + (a * factor) * _shift(forward, dim, k)
        backward = backward + (b * factor) * _shift(backward, dim, -k)
    return forward + backward - x


class PyramidPrefill(nn.Module):
    """Fill unknown pixels by an intensity-guided pull-push over a 2x pyramid, coarse to fine.

    Pull (Gortler et al. 1996): level k holds, per 2^k block, the mean of its known values and the
    count of known pixels; at the coarsest level, blocks without support take the mean of their
    neighbours (``spread`` rounds of 3x3), then the mean of all known values.
    Push: going from coarse to fine, a block keeps its own mean in proportion to its support
    (weight = min(count, 1)) and takes the upsampled coarser fill for the rest. A hole is thus filled
    from the finest scale that has any measurement.
    Guidance: at each level, ``iterations[k]`` iterations on the colorization energy (Levin et al.
    2004), sum over neighbours r, s of w_rs (x_r - x_s)^2, with measurements held in proportion to
    their support: depth propagates between neighbours of similar intensity. Starting every level
    from the coarser solution makes few iterations per level enough (a cascadic multigrid), so
    depth follows intensity edges at a fraction of colorization's cost.
    Weights (symmetric, w_rs = w_sr): ``weights='global'``: exp(-dI^2 / 2 sigma^2), one sigma for
    the image; ``weights='variance'``: exp(-dI^2 / s_rs^2) with s_rs^2 = ``variance_scale`` x the
    mean of the two pixels' 3x3 intensity variances (at least ``sigma_floor``^2), Levin et al.'s
    local scaling made symmetric: textured surfaces stay connected, edges in flat regions cut.
    Solvers: ``solver='cg'``: conjugate gradients on the level's symmetric positive definite
    system, 8 (or 4) neighbours by slicing, Jacobi-preconditioned (see ``_conjugate_gradients``);
    ``solver='heavy_ball'``: Jacobi sweeps over the 3x3 window, centre included,
    x <- J(x) + m_k (x - x_previous) on unknown pixels with m_k = momentum * k / (k + momentum_ramp)
    at the k-th sweep of a level (momentum 0: plain sweeps). Symmetric weights give the Jacobi
    operator a real spectrum in (-1, 1), so the heavy-ball iteration converges for any momentum
    below 1 (Levin et al.'s own variance-scaled weights are not symmetric, and with momentum they
    diverged on some of our scenes).
    What was measured (models/README.md): on the 2006 design scenes the 'variance' weights'
    solution beats the 'global' one and colorization on random and gradient masks, and conjugate
    gradients reach it in far fewer iterations than heavy-ball sweeps with those weights.
    ``tau`` > 0 instead selects plain normalized convolution without guidance (the first variant we
    measured; kept so older models load). No trainable parameters; exports to ONNX as pooling,
    slices, fixed convolutions, reductions and Resize.
    Coarsest level (``top``): ``'pull_push'`` grows the blocks with support into their neighbours
    (``spread`` rounds) and gives the rest the mean of all measurements; ``'domain_transform'``
    fills it by edge-aware normalized convolution (see ``_domain_transform_fill``), which carries
    depth across holes of any width in a few passes and stops at intensity edges. With it, one
    level (``levels=1``: half resolution, then full) and a few dozen iterations beat the five-level
    cascade with a converged solver on gradient masks (models/README.md).
    """

    def __init__(self, levels, tau=0.0, spread=4, iterations=(), sigma=0.02, momentum=0.0, momentum_ramp=3.0,
                 weights='global', variance_scale=0.6, sigma_floor=0.005, solver='heavy_ball', neighbours=8,
                 top='pull_push', dt_sigma_s=60.0, dt_sigma_r=0.02, dt_passes=3, dt_steps=8, dt_order=0,
                 dt_ridge=1.0, dt_clamp=1.0):
        super().__init__()
        if top not in ('pull_push', 'domain_transform'):
            raise ValueError("top must be 'pull_push' or 'domain_transform', got %r" % (top,))
        if top == 'domain_transform' and not (dt_sigma_s > 0 and dt_sigma_r > 0 and dt_passes >= 1 and dt_steps >= 1):
            raise ValueError('domain_transform needs sigma_s > 0, sigma_r > 0, passes >= 1 and steps >= 1, got '
                             '%r, %r, %r, %r' % (dt_sigma_s, dt_sigma_r, dt_passes, dt_steps))
        if dt_order not in (0, 1) or not (dt_ridge > 0 and dt_clamp >= 0):
            raise ValueError('domain_transform needs order 0 or 1, ridge > 0 and clamp >= 0, got %r, %r, %r'
                             % (dt_order, dt_ridge, dt_clamp))
        if not 0.0 <= momentum < 1.0:
            raise ValueError('momentum must be in [0, 1), got %r' % (momentum,))
        if weights not in ('global', 'variance'):
            raise ValueError("weights must be 'global' or 'variance', got %r" % (weights,))
        if solver not in ('heavy_ball', 'cg'):
            raise ValueError("solver must be 'heavy_ball' or 'cg', got %r" % (solver,))
        if neighbours not in OFFSETS:
            raise ValueError('neighbours must be 4 or 8, got %r' % (neighbours,))
        self.weights = weights
        self.variance_scale = float(variance_scale)
        self.sigma_floor = float(sigma_floor)
        self.solver = solver
        self.offsets = OFFSETS[neighbours]
        self.levels = levels
        self.tau = tau
        self.spread = spread
        self.iterations = tuple(iterations)
        self.sigma = sigma
        self.momentum = float(momentum)
        self.momentum_ramp = float(momentum_ramp)
        self.top = top
        self.dt_sigma_s = float(dt_sigma_s)
        self.dt_sigma_r = float(dt_sigma_r)
        self.dt_passes = int(dt_passes)
        self.dt_steps = int(dt_steps)
        self.dt_order = int(dt_order)
        self.dt_ridge = float(dt_ridge)
        self.dt_clamp = float(dt_clamp)
        # one-hot 3x3 kernels: neighbour j of every pixel as channel j
        self.register_buffer('shifts', torch.eye(9).view(9, 1, 3, 3), persistent=False)

    def _neighbours(self, x):
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode='replicate'), self.shifts.to(x.dtype))

    def _similarity(self, diff, variance, neighbour_variance):
        """Symmetric neighbour weights w_rs = w_sr from the intensity difference of r and s."""
        if self.weights == 'global':
            return torch.exp(diff * diff * (-0.5 / (self.sigma * self.sigma)))
        pair = (variance + neighbour_variance) * (0.5 * self.variance_scale)
        return torch.exp(-diff * diff / pair.clamp_min(self.sigma_floor * self.sigma_floor))

    @staticmethod
    def _local_variance(intensity):
        padded = F.pad(intensity, (1, 1, 1, 1), mode='replicate')
        mean = F.avg_pool2d(padded, 3, 1)
        return (F.avg_pool2d(padded * padded, 3, 1) - mean * mean).clamp_min(0.0)

    def _affinity(self, intensity):
        """The sweeps' weights of the 3x3 window (centre included), normalized: (N, 9, H, W)."""
        variance = neighbour_variance = None
        if self.weights == 'variance':
            variance = self._local_variance(intensity)
            neighbour_variance = self._neighbours(variance)
        weights = self._similarity(self._neighbours(intensity) - intensity, variance, neighbour_variance)
        return weights / weights.sum(dim=1, keepdim=True)

    @staticmethod
    def _shifted(padded, dy, dx):
        """``x[y + dy, x + dx]`` from ``x`` zero-padded by one pixel (static slices, cheap in ONNX)."""
        rows = slice(2, None) if dy > 0 else slice(None, -2) if dy < 0 else slice(1, -1)
        cols = slice(2, None) if dx > 0 else slice(None, -2) if dx < 0 else slice(1, -1)
        return padded[:, :, rows, cols]

    def _edge_weights(self, intensity):
        """One (N, 1, H, W) weight per neighbour offset, zero where the neighbour is outside."""
        inside = F.pad(torch.ones_like(intensity), (1, 1, 1, 1))
        image = F.pad(intensity, (1, 1, 1, 1))
        variance = padded_variance = None
        if self.weights == 'variance':
            variance = self._local_variance(intensity)
            padded_variance = F.pad(variance, (1, 1, 1, 1))
        weights = []
        for dy, dx in self.offsets:
            neighbour_variance = self._shifted(padded_variance, dy, dx) if variance is not None else None
            w = self._similarity(self._shifted(image, dy, dx) - intensity, variance, neighbour_variance)
            weights.append((w + WEIGHT_FLOOR) * self._shifted(inside, dy, dx))
        return weights

    def _weighted_neighbours(self, x, weights):
        padded = F.pad(x, (1, 1, 1, 1))
        out = None
        for (dy, dx), w in zip(self.offsets, weights):
            term = w * self._shifted(padded, dy, dx)
            out = term if out is None else out + term
        return out

    def _conjugate_gradients(self, fill, held, free, weights, iterations):
        """``iterations`` steps of conjugate gradients on the level's equations, from ``fill``.

        With neighbour weights w_rs (symmetric) and D_r their sum over s, the fill wanted is the
        fixed point x = held + free * (W x) / D of the sweeps: the solution of the symmetric
        positive definite system (D / free - W) x = D held / free on pixels with free > 0; pixels
        with free = 0 (measured) keep their value. Preconditioned by the diagonal D / free, so the
        first step is a Jacobi sweep. Shifts are slices of a zero-padded copy, not convolutions: a
        product with W costs about 1 ms at 480x384 in ONNX Runtime on 2 cores (0.5 ms with 4
        neighbours), a third of the 3x3 one-hot convolution the sweeps use (3.2 ms).
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
        """Edge-aware normalized convolution of ``values`` with confidence ``support`` in [0, 1].

        The recursive filter of Gastal and Oliveira's domain transform (2011), applied to
        ``support x values`` and to ``support`` alike, horizontally then vertically, ``dt_passes``
        times with the spatial range shrinking as in their paper. Neighbours are linked by
        exp(-sqrt(2) (1 / s + |dI| / dt_sigma_r)): depth travels far along a surface of even
        intensity and hardly across an edge. Where no support arrives (not above
        ``SUPPORT_FLOOR``), the fill is ``fallback``.
        ``dt_order=0``: the fill is the weighted mean (the ratio of the two filtered images).
        ``dt_order=1``: normalized convolution of first order (Knutsson and Westin 1993): the same
        filter also runs over the moments of the measurements' positions and depths, and each pixel
        takes the weighted least-squares plane through the measurements that reach it, evaluated at
        the pixel, so slanted and curved surfaces are filled as slopes, not as steps (see
        ``_plane_fill``).
        """
        if self.dt_order == 1:
            xs, ys = _centred_coordinates(values)
            channels = [support, support * xs, support * ys, support * xs * xs, support * xs * ys,
                        support * ys * ys, support * values, support * xs * values, support * ys * values,
                        support * values * values]
        else:
            channels = [support, support * values]
        stacked = torch.cat(channels, dim=1)
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
        reached = total > SUPPORT_FLOOR
        moments = stacked[:, 1:] / total.clamp_min(SUPPORT_FLOOR)
        fill = self._plane_fill(moments, xs, ys) if self.dt_order == 1 else moments
        return torch.where(reached, fill, fallback)

    def _plane_fill(self, moments, xs, ys):
        """The weighted least-squares plane d = mean + g . (p - centroid), evaluated at each pixel.

        ``moments``: the weighted means of x, y, xx, xy, yy, d, xd, yd, dd over the measurements
        that reach the pixel. The slopes g solve (C + ridge I) g = c, with C the positions'
        covariance and c their covariance with depth; the ridge keeps g small where the
        measurements lie on a line (an edge) and say nothing of the slope across it. The departure
        from the mean is clamped to ``dt_clamp`` times the depths' standard deviation: a plane
        fitted near one side of a wide surface must not run away across it (measured in
        models/README.md).
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

    def forward(self, depth, mask, intensity=None):
        if depth.dtype == torch.float32:
            return self._fill(depth, mask, intensity)
        # Always computed in float32, also inside a half-precision network: the iterations sum over
        # the whole image and the scans multiply hundreds of links, both beyond float16's range.
        intensity = None if intensity is None else intensity.float()
        return self._fill(depth.float(), mask.float(), intensity).to(depth.dtype)

    def _fill(self, depth, mask, intensity):
        sums, counts, images = [depth * mask], [mask], [intensity]
        for level in range(1, self.levels + 1):
            # sums and counts per block (avg pooling times the block area)
            sums.append(F.avg_pool2d(sums[-1], 2) * 4.0)
            counts.append(F.avg_pool2d(counts[-1], 2) * 4.0)
            images.append(F.avg_pool2d(images[-1], 2) if intensity is not None else None)
        total = sums[-1].sum(dim=(2, 3), keepdim=True)
        count = counts[-1].sum(dim=(2, 3), keepdim=True)
        global_mean = total / count.clamp_min(1e-6)
        top_sum, top_count = sums[-1], counts[-1]
        # (levels = 0: the top level is the image itself, whose measurements must stay as they are)
        pull_push = self.top == 'pull_push' or intensity is None
        for _ in range(self.spread if self.tau <= 0 and self.levels > 0 and pull_push else 0):
            has = (top_count > 0).to(top_sum.dtype)
            near_sum = F.avg_pool2d(top_sum / top_count.clamp_min(1e-6) * has, 3, 1, 1, count_include_pad=False)
            near_cnt = F.avg_pool2d(has, 3, 1, 1, count_include_pad=False)
            grown = near_sum / near_cnt.clamp_min(1e-6)
            top_sum = torch.where(top_count > 0, top_sum, grown * (near_cnt > 0).to(top_sum.dtype))
            top_count = torch.where(top_count > 0, top_count, (near_cnt > 0).to(top_sum.dtype))
        fill = global_mean.expand_as(top_sum)
        sums[-1], counts[-1] = top_sum, top_count
        if self.solver == 'cg' and intensity is not None:
            level_weights = [self._edge_weights(image) for image in images]
        for level in range(self.levels, -1, -1):
            if level < self.levels:
                fill = F.interpolate(fill, scale_factor=2.0, mode='bilinear', align_corners=False)
            if self.tau > 0:
                area = float(4 ** level)
                fill = (sums[level] / area + self.tau * fill) / (counts[level] / area + self.tau)
                continue
            weight = counts[level].clamp(max=1.0)
            mean = sums[level] / counts[level].clamp_min(1e-6)
            if level == self.levels and not pull_push:
                fill = self._domain_transform_fill(mean, weight, images[level], fill)
            held = weight * mean
            free = 1.0 - weight
            fill = held + free * fill
            sweeps = self.iterations[level] if level < len(self.iterations) else 0
            if sweeps and images[level] is not None and self.solver == 'cg':
                fill = self._conjugate_gradients(fill, held, free, level_weights[level], sweeps)
            elif sweeps and images[level] is not None:
                affinity = self._affinity(images[level])
                previous = fill
                for k in range(sweeps):
                    swept = held + free * (self._neighbours(fill) * affinity).sum(dim=1, keepdim=True)
                    momentum = self.momentum * k / (k + self.momentum_ramp) if self.momentum_ramp > 0 else self.momentum
                    if momentum > 0:
                        swept = swept + (momentum * free) * (fill - previous)
                    fill, previous = swept, fill
        return fill


class DepthInterpNet(nn.Module):

    def __init__(self, config=None):
        super().__init__()
        self.config = config = config or NetConfig()
        self.prefill = PyramidPrefill(config.prefill_levels, config.prefill_tau, config.prefill_spread,
                                      config.prefill_iterations, config.prefill_sigma, config.prefill_momentum,
                                      config.prefill_momentum_ramp, config.prefill_weights,
                                      config.prefill_variance_scale, config.prefill_sigma_floor,
                                      config.prefill_solver, config.prefill_neighbours, config.prefill_top,
                                      config.prefill_dt_sigma_s, config.prefill_dt_sigma_r,
                                      config.prefill_dt_passes, config.prefill_dt_steps,
                                      config.prefill_dt_order, config.prefill_dt_ridge, config.prefill_dt_clamp)
        # full resolution: known depth, mask, intensity and the pre-fill
        self.stem = nn.Sequential(conv3x3(4, config.stem_width), ELU())
        # the single x2 downsampling stage: a projection block
        self.down = ResidualBlock(config.stem_width, config.width, stride=2)
        self.blocks = nn.Sequential(*[ResidualBlock(config.width, config.width, d) for d in config.dilations])
        self.dropout = nn.Dropout(config.dropout)
        # depth correction and confidence logit for each of the 2x2 sub-pixels
        self.head = conv3x3(config.width, 2 * 4)
        self.shuffle = nn.PixelShuffle(2)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def stride(self):
        return self.config.stride

    def forward(self, x):
        depth, mask, intensity = x[:, 0:1], x[:, 1:2], x[:, 2:3]
        fill = self.prefill(depth, mask, intensity)   # in float32 also in a float16 network
        features = self.stem(torch.cat([depth, mask, intensity, fill], dim=1))
        features = self.down(features)
        features = self.blocks(features)
        out = self.shuffle(self.head(self.dropout(features)))
        dense = fill + out[:, 0:1]
        confidence = torch.sigmoid(out[:, 1:2] + 2.0)
        return dense, confidence


def config_from_dict(d):
    return {'unet': UNetConfig, 'spn': SPNConfig}.get(d.get('arch'), NetConfig).from_dict(d)


def build_model(config=None):
    if isinstance(config, str):
        config = PRESETS[config]
    elif isinstance(config, dict):
        config = config_from_dict(config)
    if isinstance(config, SPNConfig):
        return DepthSPN(config)
    return DepthUNet(config) if isinstance(config, UNetConfig) else DepthInterpNet(config)


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())
