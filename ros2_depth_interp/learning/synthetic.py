"""Procedural indoor scenes: dense metric depth + intensity + intrinsics, with no files at all.

This plays the role SceneNet-RGBD plays in the paper (lots of synthetic indoor frames with perfect
depth), at a fraction of the cost: a scene is a room (floor, ceiling, four walls) plus random boxes,
spheres and free-standing slanted planes, each with a procedural texture, lit by a point light.
Because every surface has its own texture and shading, intensity edges usually sit on depth edges,
but not always (same-looking surfaces, texture edges on flat walls), which is exactly the ambiguity
the network must learn to handle.

Two parts, kept apart on purpose:

* **description**: :class:`Scene` (room, primitives, textures, light) and :class:`CameraPose`, drawn
  by :func:`random_scene` / :func:`random_pose` from a ``numpy.random.Generator``;
* **rendering**: :func:`render` ray-casts a description through a pinhole camera, vectorized over
  all pixels (one origin per frame, so each primitive costs a few array operations, and each object
  is only intersected inside the image rectangle its bounding sphere projects to).

:func:`render_scene` (one random frame) and :class:`SyntheticSequence` (one scene, smoothly moving
camera, reproducible from a seed) share that renderer. World frame: metres, z up, floor at z = 0.
Camera frame: OpenCV (x right, y down, z forward); the depth returned is the z coordinate in it.
"""
from dataclasses import dataclass, field

import cv2
import numpy as np

TEXTURE_KINDS = ('stripes', 'checker', 'blobs', 'gradient', 'flat')
_NOISE_GRID = 32  # lattice size of the value-noise texture


# ---------------------------------------------------------------------------------------------
# Scene description
# ---------------------------------------------------------------------------------------------

@dataclass
class Texture:
    """A procedural albedo pattern on a surface's 2D (u, v) coordinates in metres."""

    kind: str
    base: float          # mean albedo, 0..1
    contrast: float      # peak-to-peak variation around base
    frequency: float     # cycles per metre (stripes, checker, blobs)
    angle: float         # pattern orientation in the surface, radians
    phase: float = 0.0
    noise: np.ndarray = None   # (_NOISE_GRID, _NOISE_GRID) lattice for 'blobs'

    def albedo(self, u, v):
        """Albedo at surface coordinates (u, v) (1-D float arrays)."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        a = u * c + v * s
        b = -u * s + v * c
        f = self.frequency
        if self.kind == 'stripes':
            # A sharpened sine: crisp edges, but band-limited enough not to alias badly.
            p = 0.5 + 0.5 * np.tanh(4.0 * np.sin(2 * np.pi * f * a + self.phase))
        elif self.kind == 'checker':
            p = ((np.floor(f * a + self.phase) + np.floor(f * b)) % 2).astype(np.float32)
        elif self.kind == 'blobs':
            p = _value_noise(self.noise, f * a + self.phase, f * b)
        elif self.kind == 'gradient':
            p = 0.5 + 0.5 * np.tanh(0.5 * f * a + self.phase)
        else:  # flat
            p = np.full(u.shape, 0.5, dtype=np.float32)
        return np.clip(self.base + self.contrast * (p - 0.5), 0.03, 1.0).astype(np.float32)


@dataclass
class Primitive:
    """One object: 'box' (oriented), 'sphere' or 'quad' (a thin rectangle, visible from both sides).

    ``rotation`` maps object-frame vectors to world; ``half`` is the half size along the object's
    x, y, z axes (a quad lies in its x-y plane, ``half[2]`` unused; a sphere uses ``half[0]``).
    """

    kind: str
    center: np.ndarray
    rotation: np.ndarray
    half: np.ndarray
    texture: Texture

    @property
    def radius(self):
        """Bounding-sphere radius."""
        if self.kind == 'sphere':
            return float(self.half[0])
        if self.kind == 'quad':
            return float(np.hypot(self.half[0], self.half[1]))
        return float(np.linalg.norm(self.half))


@dataclass
class Scene:
    """Everything :func:`render` needs besides the camera."""

    room_min: np.ndarray
    room_max: np.ndarray
    room_textures: list          # 6 textures: faces -x, +x, -y, +y, floor (-z), ceiling (+z)
    objects: list = field(default_factory=list)
    light: np.ndarray = None     # point light position (world)
    ambient: float = 0.3
    light_range: float = 6.0     # distance at which the light has fallen to half
    gamma: float = 1.0 / 2.2


@dataclass
class CameraPose:
    """Camera-to-world rotation (columns: camera x, y, z axes in world) and position."""

    rotation: np.ndarray
    position: np.ndarray


# ---------------------------------------------------------------------------------------------
# Random descriptions
# ---------------------------------------------------------------------------------------------

def intrinsics(height, width, fov_deg):
    """Pinhole K with square pixels and the given horizontal field of view."""
    f = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]], dtype=np.float64)


def look_rotation(yaw, pitch, roll=0.0):
    """Camera-to-world rotation looking along (yaw, pitch) in the z-up world, rolled about the view axis."""
    forward = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    cr, sr = np.cos(roll), np.sin(roll)
    right, down = cr * right + sr * down, -sr * right + cr * down
    return np.stack([right, down, forward], axis=1)


def _rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _random_rotation(rng):
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def random_texture(rng):
    kind = TEXTURE_KINDS[rng.choice(len(TEXTURE_KINDS), p=[0.25, 0.2, 0.25, 0.15, 0.15])]
    return Texture(
        kind=kind,
        base=float(rng.uniform(0.2, 0.8)),
        contrast=float(rng.uniform(0.15, 0.7)),
        frequency=float(np.exp(rng.uniform(np.log(0.8), np.log(8.0)))),
        angle=float(rng.uniform(0, np.pi)),
        phase=float(rng.uniform(0, 2 * np.pi)),
        noise=rng.random((_NOISE_GRID, _NOISE_GRID)).astype(np.float32) if kind == 'blobs' else None)


def random_room(rng):
    """An empty room: 3-8 m by 3-8 m, 2.4-3.2 m high, with its light near the ceiling."""
    size = np.array([rng.uniform(3.0, 8.0), rng.uniform(3.0, 8.0), rng.uniform(2.4, 3.2)])
    lo, hi = np.zeros(3), size
    light = np.array([rng.uniform(0.2, 0.8) * size[0], rng.uniform(0.2, 0.8) * size[1], size[2] - 0.2])
    return Scene(room_min=lo, room_max=hi, room_textures=[random_texture(rng) for _ in range(6)],
                 light=light, ambient=float(rng.uniform(0.15, 0.4)),
                 light_range=float(rng.uniform(3.0, 8.0)))


def random_pose(rng, scene, margin=0.6):
    """A camera at standing/handheld height somewhere in the room, looking roughly level."""
    lo, hi = scene.room_min + margin, scene.room_max - margin
    pos = np.array([rng.uniform(lo[0], hi[0]), rng.uniform(lo[1], hi[1]),
                    rng.uniform(0.8, min(1.8, scene.room_max[2] - 0.4))])
    # Prefer looking into the room (as a person exploring it would) over staring at a near wall.
    yaws = rng.uniform(0, 2 * np.pi, size=8)
    free = np.array([_distance_to_wall(scene, pos, np.array([np.cos(y), np.sin(y), 0.0])) for y in yaws])
    yaw = yaws[int(np.argmax(free * rng.uniform(0.6, 1.0, size=8)))]
    rot = look_rotation(yaw, np.radians(rng.uniform(-25, 10)), np.radians(rng.uniform(-5, 5)))
    return CameraPose(rot, pos)


def _distance_to_wall(scene, position, direction):
    """Distance from ``position`` (inside the room) to the room boundary along ``direction``."""
    with np.errstate(divide='ignore'):
        gaps = np.where(direction > 0, scene.room_max - position, position - scene.room_min)
        return float(np.min(gaps / np.abs(direction)))


def add_random_objects(rng, scene, keep_clear, views, K, image_size, n_objects=None, clearance=0.35):
    """Fill the room with boxes, spheres and slanted quads.

    ``keep_clear`` (M, 3): camera positions no object may come within ``clearance`` of (so that no
    camera ever starts inside an object). Most objects are placed inside the field of view of one of
    ``views`` (CameraPose list) at 1-5 m, the rest anywhere in the room. Rejected draws are dropped,
    so a crowded path gets fewer objects; the result is still deterministic for the rng state.
    """
    if n_objects is None:
        n_objects = int(rng.integers(4, 13))
    keep_clear = np.asarray(keep_clear, dtype=np.float64).reshape(-1, 3)
    h, w = image_size
    k_inv = np.linalg.inv(K)
    lo, hi = scene.room_min, scene.room_max
    for _ in range(n_objects):
        kind = ('box', 'sphere', 'quad')[rng.choice(3, p=[0.5, 0.2, 0.3])]
        texture = random_texture(rng)
        if rng.random() < 0.15:   # same look as a room surface: a depth edge with a weak intensity edge
            texture = scene.room_textures[int(rng.integers(0, 6))]
        if kind == 'box':
            half = rng.uniform(0.12, 0.8, size=3)
            half[2] = rng.uniform(0.1, 0.9)
            rotation = _rot_z(rng.uniform(0, np.pi))
        elif kind == 'sphere':
            half = np.full(3, rng.uniform(0.12, 0.6))
            rotation = _random_rotation(rng)
        else:
            half = np.array([rng.uniform(0.3, 1.5), rng.uniform(0.25, 1.2), 0.0])
            rotation = _random_rotation(rng)
        if views and rng.random() < 0.75:
            view = views[int(rng.integers(0, len(views)))]
            pix = np.array([rng.uniform(0, w), rng.uniform(0, h), 1.0])
            ray = view.rotation @ (k_inv @ pix)
            center = view.position + rng.uniform(1.2, 6.0) * ray
        else:
            center = rng.uniform(lo, hi)
        center = np.clip(center, lo + 0.1, hi - 0.1)
        if kind == 'box' and rng.random() < 0.6:
            center[2] = half[2]          # standing on the floor
        elif kind == 'sphere' and rng.random() < 0.4:
            center[2] = half[0]
        obj = Primitive(kind, center, rotation, half, texture)
        if keep_clear.size and np.min(np.linalg.norm(keep_clear - center, axis=1)) < obj.radius + clearance:
            continue
        scene.objects.append(obj)
    return scene


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------

_AXES_CACHE = {}


def _ray_axes(K, height, width):
    """The x (per column) and y (per row) of the camera rays K^-1 [u, v, 1], cached.

    With zero skew a ray's x depends only on its column and y only on its row, so any linear map of
    the rays is an outer sum of a row vector and a column vector: one add per pixel instead of a
    3x3 product. The rays have z = 1, so the ray parameter t of a hit is its camera-frame depth.
    """
    K = np.asarray(K, dtype=np.float64)
    if abs(K[0, 1]) > 1e-12 or abs(K[1, 0]) > 1e-12 or abs(K[2, 0]) + abs(K[2, 1]) > 1e-12:
        raise ValueError('the renderer needs a pinhole K without skew')
    key = (height, width, float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]))
    axes = _AXES_CACHE.get(key)
    if axes is None:
        xs = ((np.arange(width) - K[0, 2]) / K[0, 0]).astype(np.float32)
        ys = ((np.arange(height) - K[1, 2]) / K[1, 1]).astype(np.float32)
        if len(_AXES_CACHE) > 32:
            _AXES_CACHE.clear()
        axes = _AXES_CACHE[key] = (xs, ys)
    return axes


def _directions(M, xs, ys):
    """The rays mapped by the 3x3 ``M`` (camera -> some frame): three (len(ys), len(xs)) float32 arrays."""
    return [(float(M[a, 0]) * xs)[None, :] + (float(M[a, 1]) * ys + float(M[a, 2]))[:, None]
            for a in range(3)]


def _value_noise(grid, x, y):
    """Smooth value noise: bilinear interpolation (smoothstep-weighted) of a periodic lattice."""
    n = grid.shape[0]
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    i0 = x0.astype(np.int64) % n
    j0 = y0.astype(np.int64) % n
    i1, j1 = (i0 + 1) % n, (j0 + 1) % n
    top = grid[j0, i0] * (1 - fx) + grid[j0, i1] * fx
    bottom = grid[j1, i0] * (1 - fx) + grid[j1, i1] * fx
    return top * (1 - fy) + bottom * fy


def _screen_window(obj, pose, K, height, width):
    """Pixel rectangle (r0, r1, c0, c1) that can see ``obj``'s bounding sphere, or None if none can."""
    center_cam = pose.rotation.T @ (obj.center - pose.position)
    r = obj.radius * 1.05 + 1e-3
    if center_cam[2] + r <= 1e-3:
        return None                      # entirely behind the camera
    if center_cam[2] - r <= 0.05:
        return 0, height, 0, width       # camera close to or inside the sphere: no safe bound
    corners = center_cam + r * np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    uv = corners @ K.T
    u, v = uv[:, 0] / uv[:, 2], uv[:, 1] / uv[:, 2]
    c0, c1 = int(max(np.floor(u.min()), 0)), int(min(np.ceil(u.max()) + 1, width))
    r0, r1 = int(max(np.floor(v.min()), 0)), int(min(np.ceil(v.max()) + 1, height))
    if c0 >= c1 or r0 >= r1:
        return None
    return r0, r1, c0, c1


_EPS_T = 1e-4


def _intersect(obj, o, dl):
    """Ray parameter of the first hit in front of the camera, inf on a miss.

    ``o``: camera centre in the object frame (3 Python floats); ``dl``: ray directions in the object
    frame (three float32 arrays). Python-float scalars keep every array operation in float32.
    """
    with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
        if obj.kind == 'sphere':
            a = dl[0] * dl[0] + dl[1] * dl[1] + dl[2] * dl[2]
            b = o[0] * dl[0] + o[1] * dl[1] + o[2] * dl[2]
            c = o[0] ** 2 + o[1] ** 2 + o[2] ** 2 - float(obj.half[0]) ** 2
            disc = b * b - a * c
            sq = np.sqrt(np.maximum(disc, 0))
            t = (-b + sq) / a if c < 0 else (-b - sq) / a   # camera inside: the far side
            return np.where((disc >= 0) & (t > _EPS_T), t, np.float32(np.inf))
        if obj.kind == 'quad':
            t = -o[2] / dl[2]
            inside = ((np.abs(o[0] + t * dl[0]) <= float(obj.half[0]))
                      & (np.abs(o[1] + t * dl[1]) <= float(obj.half[1])) & (t > _EPS_T))
            return np.where(inside, t, np.float32(np.inf))
        # box: slab method
        half = [float(h) for h in obj.half]
        t_near = t_far = None
        for a in range(3):
            t1 = (-half[a] - o[a]) / dl[a]
            t2 = (half[a] - o[a]) / dl[a]
            lo_t, hi_t = np.minimum(t1, t2), np.maximum(t1, t2)
            t_near = lo_t if t_near is None else np.maximum(t_near, lo_t)
            t_far = hi_t if t_far is None else np.minimum(t_far, hi_t)
        inside_box = all(abs(o[a]) < half[a] for a in range(3))
        t = t_far if inside_box else t_near
        return np.where((t_near <= t_far) & (t > _EPS_T), t, np.float32(np.inf))


def _surface(obj, p):
    """World normals (3, n) and surface (u, v) coordinates of object-frame hit points p (3, n)."""
    if obj.kind == 'sphere':
        r = float(obj.half[0])
        n_local = p / r
        u = r * np.arctan2(p[1], p[0])
        v = r * np.arcsin(np.clip(n_local[2], -1, 1))
    elif obj.kind == 'quad':
        n_local = np.zeros_like(p)
        n_local[2] = 1.0
        u, v = p[0], p[1]
    else:
        rel = np.abs(p) / obj.half[:, None].astype(np.float32)
        axis = np.argmax(rel, axis=0)
        cols = np.arange(p.shape[1])
        n_local = np.zeros_like(p)
        n_local[axis, cols] = np.sign(p[axis, cols])
        # Face coordinates: the two local axes other than the face normal; offset per face so
        # neighbouring faces do not continue the same pattern seamlessly.
        u = np.where(axis == 0, p[1], p[0]) + axis.astype(np.float32) * 0.37
        v = np.where(axis == 2, p[1], p[2])
    return obj.rotation.astype(np.float32) @ n_local, u, v


def render(scene, pose, K, height, width, noise_rng=None, noise_std=1.5, blur_sigma=0.6):
    """Ray-cast ``scene`` from ``pose``: ``(depth float32 (H, W) metres, intensity uint8 (H, W))``.

    Depth is the camera-frame z of the first surface hit, finite and positive everywhere (the camera
    is inside a closed room). Intensity is albedo x (ambient + diffuse point light with distance
    fall-off), gamma-encoded, slightly blurred (the optics' anti-aliasing) plus Gaussian sensor noise
    drawn from ``noise_rng`` (no noise if None).
    """
    K = np.asarray(K, dtype=np.float64)
    xs, ys = _ray_axes(K, height, width)
    R = np.asarray(pose.rotation, dtype=np.float64)
    origin = np.asarray(pose.position, dtype=np.float64)
    dw = _directions(R, xs, ys)                         # world ray directions
    lo, hi = scene.room_min, scene.room_max

    # Room: from inside an axis-aligned box, the distance to the wall ahead along axis a is
    # (hi - o) / d where d > 0 and (o - lo) / |d| where d < 0 (inf where d == 0).
    depth = ids = None
    with np.errstate(divide='ignore'):
        for a in range(3):
            ahead = dw[a] > 0
            gap = np.where(ahead, np.float32(hi[a] - origin[a]), np.float32(origin[a] - lo[a]))
            t = gap / np.abs(dw[a])
            face = (2 * a + ahead).astype(np.int16)    # faces: 2a = low wall, 2a + 1 = high wall
            if depth is None:
                depth, ids = t, face
            else:
                closer = t < depth
                depth = np.where(closer, t, depth)
                ids = np.where(closer, face, ids)

    for k, obj in enumerate(scene.objects):
        win = _screen_window(obj, pose, K, height, width)
        if win is None:
            continue
        r0, r1, c0, c1 = win
        rot_t = obj.rotation.T
        o = [float(x) for x in rot_t @ (origin - obj.center)]
        t = _intersect(obj, o, _directions(rot_t @ R, xs[c0:c1], ys[r0:r1]))
        sub_depth = depth[r0:r1, c0:c1]
        closer = t < sub_depth
        sub_depth[closer] = t[closer]
        ids[r0:r1, c0:c1][closer] = 6 + k

    # Shading: sort pixels by surface once, shade each surface on its contiguous slice, scatter back.
    n_surf = 6 + len(scene.objects)
    flat_ids = ids.ravel()
    order = np.argsort(flat_ids, kind='stable')
    bounds = np.searchsorted(flat_ids[order], np.arange(n_surf + 1))
    t_sorted = depth.ravel()[order]
    pts = np.stack([float(origin[a]) + t_sorted * dw[a].ravel()[order] for a in range(3)])   # (3, N)
    light = scene.light.astype(np.float32)
    radiance_sorted = np.empty(t_sorted.size, dtype=np.float32)
    for sid in range(n_surf):
        b0, b1 = bounds[sid], bounds[sid + 1]
        if b0 == b1:
            continue
        p = pts[:, b0:b1]
        if sid < 6:
            a = sid // 2
            n = np.zeros((3, b1 - b0), dtype=np.float32)
            n[a] = -1.0 if sid % 2 else 1.0            # room normals point inwards
            others = [i for i in range(3) if i != a]
            u, v = p[others[0]], p[others[1]]
            texture = scene.room_textures[sid]
        else:
            obj = scene.objects[sid - 6]
            p_local = obj.rotation.T.astype(np.float32) @ (p - obj.center.astype(np.float32)[:, None])
            n, u, v = _surface(obj, p_local)
            texture = obj.texture
        to_light = light[:, None] - p
        dist = np.sqrt((to_light * to_light).sum(0))
        lambert = np.abs((n * to_light).sum(0)) / np.maximum(dist, 1e-6)   # two-sided (quads)
        falloff = 1.0 / (1.0 + (dist / float(scene.light_range)) ** 2)
        shade = float(scene.ambient) + (1.0 - float(scene.ambient)) * 1.6 * lambert * falloff
        radiance_sorted[b0:b1] = texture.albedo(u, v) * shade

    radiance = np.empty_like(radiance_sorted)
    radiance[order] = radiance_sorted
    img = 255.0 * np.clip(radiance.reshape(height, width), 0, 1) ** float(scene.gamma)
    if blur_sigma:
        img = cv2.GaussianBlur(img, (3, 3), blur_sigma)
    if noise_rng is not None and noise_std > 0:
        img = img + noise_rng.normal(0.0, noise_std, size=img.shape).astype(np.float32)
    intensity = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return depth.astype(np.float32, copy=False), intensity


# ---------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------

def random_scene(rng, height, width, fov_deg=None):
    """A random scene, a camera pose and K for one frame (the description behind render_scene)."""
    if fov_deg is None:
        fov_deg = float(rng.uniform(50.0, 75.0))
    K = intrinsics(height, width, fov_deg)
    scene = random_room(rng)
    pose = random_pose(rng, scene)
    add_random_objects(rng, scene, keep_clear=pose.position[None], views=[pose], K=K,
                       image_size=(height, width))
    return scene, pose, K


def render_scene(rng, height, width, fov_deg=None):
    """One random indoor frame: ``dict(depth=float32 (H, W) metres, intensity=uint8 (H, W), K=3x3)``.

    ``fov_deg`` is the horizontal field of view (random in 50-75 degrees if None). Deterministic for
    a given rng state.
    """
    scene, pose, K = random_scene(rng, height, width, fov_deg)
    depth, intensity = render(scene, pose, K, height, width, noise_rng=rng)
    return dict(depth=depth, intensity=intensity, K=K)


@dataclass
class CameraPath:
    """A smooth closed camera path: an ellipse in the horizontal plane with gentle bobbing,
    the view turning slowly and nodding. Any frame index gives a pose (long sequences just loop)."""

    center: np.ndarray
    radii: np.ndarray
    phase0: float
    omega: float          # ellipse angle per frame
    yaw0: float
    yaw_rate: float       # radians per frame
    pitch0: float
    pitch_amp: float
    bob_amp: float

    def pose(self, i):
        a = self.phase0 + self.omega * i
        pos = self.center + np.array([self.radii[0] * np.cos(a), self.radii[1] * np.sin(a),
                                      self.bob_amp * np.sin(0.07 * i)])
        pitch = self.pitch0 + self.pitch_amp * np.sin(0.05 * i)
        return CameraPose(look_rotation(self.yaw0 + self.yaw_rate * i, pitch, 0.0), pos)


def random_camera_path(rng, scene, speed=None, margin=0.6):
    """An ellipse that fits in the room with ``margin``; ``speed`` in metres per frame (2-4 cm)."""
    lo, hi = scene.room_min + margin, scene.room_max - margin
    max_r = np.maximum((hi[:2] - lo[:2]) / 2, 0.05)
    radii = rng.uniform(0.3, 1.0, size=2) * max_r
    center_xy = rng.uniform(lo[:2] + radii, hi[:2] - radii)
    height = rng.uniform(1.0, min(1.7, scene.room_max[2] - 0.5))
    speed = float(rng.uniform(0.02, 0.04)) if speed is None else float(speed)
    omega = speed / max(float(radii.max()), 1e-3) * (1 if rng.random() < 0.5 else -1)
    return CameraPath(center=np.array([center_xy[0], center_xy[1], height]), radii=radii,
                      phase0=float(rng.uniform(0, 2 * np.pi)), omega=omega,
                      yaw0=float(rng.uniform(0, 2 * np.pi)),
                      yaw_rate=float(np.radians(rng.uniform(0.2, 0.8)) * rng.choice([-1, 1])),
                      pitch0=float(np.radians(rng.uniform(-15, 5))), pitch_amp=float(np.radians(2.0)),
                      bob_amp=0.03)


class SyntheticSequence:
    """One random scene seen from a smoothly moving camera; frames are rendered on demand.

    Everything derives from ``seed`` (scene and path from ``default_rng(seed)``, frame i's sensor
    noise from ``default_rng([seed, i])``), so the demo can replay the same frames without files.
    Per frame the camera moves 2-4 cm and turns well under a degree. ``stamp_ns`` advances at ``fps``.
    """

    def __init__(self, seed=0, height=240, width=320, n_frames=30, fov_deg=60.0, fps=30.0):
        self.seed = int(seed)
        self.height, self.width, self.n_frames = int(height), int(width), int(n_frames)
        self.fps = float(fps)
        rng = np.random.default_rng(self.seed)
        self.K = intrinsics(self.height, self.width, fov_deg)
        self.scene = random_room(rng)
        self.path = random_camera_path(rng, self.scene)
        n_check = min(self.n_frames, 4000)
        stations = np.linspace(0, max(n_check - 1, 0), num=min(n_check, 200))
        keep_clear = np.array([self.path.pose(i).position for i in stations])
        views = [self.path.pose(int(i)) for i in np.linspace(0, max(n_check - 1, 0), num=min(n_check, 5))]
        add_random_objects(rng, self.scene, keep_clear, views, self.K, (self.height, self.width),
                           n_objects=int(rng.integers(5, 13)))

    def __len__(self):
        return self.n_frames

    def pose(self, i):
        return self.path.pose(i)

    def __getitem__(self, i):
        if not isinstance(i, (int, np.integer)):
            raise TypeError('frame index must be an integer')
        if i < 0:
            i += self.n_frames
        if not 0 <= i < self.n_frames:
            raise IndexError(f'frame {i} out of range for {self.n_frames} frames')
        depth, intensity = render(self.scene, self.path.pose(i), self.K, self.height, self.width,
                                  noise_rng=np.random.default_rng([self.seed, int(i)]))
        stamp_ns = 1_000_000_000 + int(round(int(i) * 1e9 / self.fps))
        return dict(depth=depth, intensity=intensity, K=self.K.copy(), stamp_ns=stamp_ns)
