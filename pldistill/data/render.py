"""Ray-cast renderer for the embedded paired RGB-D shapes data set.

Why a renderer and not a download: the product must run with no network, and
the privileged structure has to be *real*: depth carries the object's geometry
plainly, while RGB hides it under camouflaging stripe textures, random light
and noise. Everything is vectorised NumPy; one call renders a batch of scenes.

Scene: a pinhole camera at the origin looks down +z at a back wall (random
depth) above a ground plane; one primitive (the class) floats in front of it
with a random pose, size, texture and colour. Depth is the z-distance of the
first hit; RGB is Lambert shading of a stripe texture drawn from the same
palette as the wall's, so colour and texture alone say nothing about the class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES: tuple[str, ...] = ("sphere", "box", "cylinder", "cone")
FAR = 12.0  # metres; depth is stored in [0, FAR]


@dataclass(frozen=True)
class SceneParams:
    """Per-scene random draws, one row per sample (all arrays have length n)."""

    shape: np.ndarray  # int class index into SHAPES
    centre: np.ndarray  # (n, 3)
    rotation: np.ndarray  # (n, 3, 3) object -> world
    size: np.ndarray  # (n,) bounding radius scale
    aspect: np.ndarray  # (n, 3) per-axis half-extent factors (box) / height factor
    wall_z: np.ndarray  # (n,)
    floor_y: np.ndarray  # (n,)
    light: np.ndarray  # (n, 3) unit direction towards the light
    palette: np.ndarray  # (n, 4, 3) colours: object a/b, background a/b
    stripe_freq: np.ndarray  # (n, 2) object, background
    stripe_dir: np.ndarray  # (n, 2, 3) unit vectors along which stripes vary


def _axis_rotation(angle: np.ndarray, axis: int) -> np.ndarray:
    """(n, 3, 3) rotations by ``angle`` about coordinate axis 0 (x), 1 (y) or 2 (z)."""
    c, s = np.cos(angle), np.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    r = np.zeros((len(angle), 3, 3))
    r[:, axis, axis] = 1
    r[:, i, i], r[:, i, j], r[:, j, i], r[:, j, j] = c, -s, s, c
    return r


def _standing_rotations(rng: np.random.Generator, n: int, max_tilt_deg: float) -> np.ndarray:
    """Objects stand on the ground: any turn about the vertical axis, a bounded tilt."""
    tilt = np.deg2rad(max_tilt_deg)
    yaw = _axis_rotation(rng.uniform(0, 2 * np.pi, n), 1)
    pitch = _axis_rotation(rng.uniform(-tilt, tilt, n), 0)
    roll = _axis_rotation(rng.uniform(-tilt, tilt, n), 2)
    return pitch @ roll @ yaw


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def draw_scenes(
    rng: np.random.Generator, labels: np.ndarray, camouflage: float = 0.5, contrast: float = 0.3
) -> SceneParams:
    """Draw every random quantity of n scenes whose classes are ``labels``.

    ``camouflage`` is the probability that the object wears the wall's colours;
    ``contrast`` in [0, 1] scales how far a texture's second stripe colour
    departs from its first (0: plain surfaces, 1: two independent colours).
    """
    n = len(labels)
    palette = rng.uniform(0.05, 1.0, size=(n, 4, 3))
    palette[:, 1] = palette[:, 0] + contrast * (palette[:, 1] - palette[:, 0])
    palette[:, 3] = palette[:, 2] + contrast * (palette[:, 3] - palette[:, 2])
    swap = rng.random(n) < camouflage
    palette[swap, 0:2] = palette[swap, 2:4][:, rng.permutation(2)]
    return SceneParams(
        shape=labels.astype(np.int64),
        centre=np.stack(
            [rng.uniform(-0.6, 0.6, n), rng.uniform(-0.5, 0.5, n), rng.uniform(4.0, 5.5, n)], -1
        ),
        rotation=_standing_rotations(rng, n, max_tilt_deg=30.0),
        size=rng.uniform(0.75, 1.1, n),
        aspect=rng.uniform(0.6, 1.0, size=(n, 3)),
        wall_z=rng.uniform(6.0, 9.0, n),
        floor_y=rng.uniform(-1.8, -1.2, n),
        light=_unit(np.stack([rng.uniform(-1, 1, n), rng.uniform(0.2, 1, n), -rng.uniform(0.3, 1, n)], -1)),
        palette=palette,
        stripe_freq=rng.uniform(1.0, 3.5, size=(n, 2)),
        stripe_dir=_unit(rng.normal(size=(n, 2, 3))),
    )


def _camera_rays(size: int, fov_deg: float = 50.0) -> np.ndarray:
    """Unit ray directions (size*size, 3) of a pinhole camera looking down +z."""
    half = np.tan(np.deg2rad(fov_deg) / 2)
    coords = (np.arange(size) + 0.5) / size * 2 - 1
    u, v = np.meshgrid(coords * half, -coords * half)  # image y grows downwards
    return _unit(np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3))


def _point_at(o: np.ndarray, d: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Hit points o + t d; misses (t = inf) map to the ray origin to stay finite."""
    return o + np.where(np.isfinite(t), t, 0.0)[..., None] * d


def _hit_sphere(o, d):
    """Unit sphere scaled by size: returns t (n, r) and local normals."""
    b = np.einsum("nrk,nrk->nr", o, d)
    c = np.einsum("nrk,nrk->nr", o, o) - 1.0
    a = np.einsum("nrk,nrk->nr", d, d)
    disc = b * b - a * c
    t = np.where(disc > 0, (-b - np.sqrt(np.maximum(disc, 0))) / a, np.inf)
    t = np.where(t > 0, t, np.inf)
    return t, _point_at(o, d, t)


def _hit_box(o, d, half):
    """Slab test against an axis-aligned box with half-extents ``half`` (n, 1, 3)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1 = (-half - o) * inv
        t2 = (half - o) * inv
    tmin = np.nanmax(np.minimum(t1, t2), axis=-1)
    tmax = np.nanmin(np.maximum(t1, t2), axis=-1)
    t = np.where((tmax >= tmin) & (tmin > 0), tmin, np.inf)
    return t, _point_at(o, d, t)


def _hit_cylinder_or_cone(o, d, height, cone: bool):
    """Cylinder (radius 1) or cone (base radius 1, apex up) with half height ``height``."""
    h = height  # (n, 1): broadcasts over rays
    ox, oy, oz = o[..., 0], o[..., 1], o[..., 2]
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    if cone:
        # radius(y) = (h - y) / (2h); surface x^2 + z^2 = k^2 (h - y)^2
        k = 1.0 / (2 * h)
        a = dx * dx + dz * dz - k * k * dy * dy
        b = 2 * (ox * dx + oz * dz + k * k * (h - oy) * dy)
        c = ox * ox + oz * oz - k * k * (h - oy) ** 2
    else:
        a = dx * dx + dz * dz
        b = 2 * (ox * dx + oz * dz)
        c = ox * ox + oz * oz - 1.0
    disc = b * b - 4 * a * c
    sq = np.sqrt(np.maximum(disc, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        roots = np.stack([(-b - sq) / (2 * a), (-b + sq) / (2 * a)], 0)
    y_at = oy[None] + roots * dy[None]
    ok = (disc[None] > 0) & (roots > 0) & (np.abs(y_at) <= h[None])
    t_side = np.where(ok, roots, np.inf).min(0)
    # Caps: bottom cap for both, top cap for the cylinder only.
    with np.errstate(divide="ignore", invalid="ignore"):
        caps = [(-h - oy) / dy] + ([] if cone else [(h - oy) / dy])
    t_cap = np.full_like(t_side, np.inf)
    for tc in caps:
        px, pz = ox + tc * dx, oz + tc * dz
        inside = (tc > 0) & (px * px + pz * pz <= 1.0)
        t_cap = np.minimum(t_cap, np.where(inside, tc, np.inf))
    t = np.minimum(t_side, t_cap)
    return t, _point_at(o, d, t)


def _local_normals(shape: int, p: np.ndarray, aspect: np.ndarray) -> np.ndarray:
    """Surface normals at local hit points ``p`` (n, r, 3) for one shape kind."""
    if shape == 0:  # sphere
        return _unit(p + 1e-9)
    if shape == 1:  # box: the axis whose coordinate is closest to its face
        half = aspect[:, None, :]
        rel = np.abs(p) / half
        axis = rel.argmax(-1)
        n = np.zeros_like(p)
        np.put_along_axis(n, axis[..., None], np.sign(np.take_along_axis(p, axis[..., None], -1)), -1)
        return n
    h = (aspect[:, 1] * 1.2)[:, None]
    side = np.stack([p[..., 0], np.zeros_like(p[..., 1]), p[..., 2]], -1)
    if shape == 3:  # cone: tilt the side normal upwards by the slope
        side[..., 1] = 1.0 / (2 * h) * np.sqrt(p[..., 0] ** 2 + p[..., 2] ** 2 + 1e-12)
    n = _unit(side + 1e-9)
    on_cap = np.abs(np.abs(p[..., 1]) - h) < 1e-4
    cap_n = np.stack([np.zeros_like(h + p[..., 0]), np.sign(p[..., 1]), np.zeros_like(h + p[..., 0])], -1)
    return np.where(on_cap[..., None], cap_n, n)


def render(
    params: SceneParams,
    size: int,
    noise: float = 0.04,
    ambient: float = 0.4,
    rng: np.random.Generator | None = None,
):
    """Render n scenes; returns rgb uint8 (n, size, size, 3) and depth float32 (n, size, size).

    Depth is metric z-distance in [0, FAR] (what a depth sensor reports).
    ``ambient`` in [0, 1] is the unshaded share of light: the higher, the weaker
    the shading cue that RGB has about the object's 3D form.
    """
    rng = rng or np.random.default_rng(0)
    n = len(params.shape)
    rays = _camera_rays(size)[None].repeat(n, 0)  # (n, r, 3)
    r = rays.shape[1]

    # Background: back wall (z = wall_z) and floor (y = floor_y).
    t_wall = params.wall_z[:, None] / rays[..., 2]
    with np.errstate(divide="ignore"):
        t_floor = np.where(rays[..., 1] < 0, params.floor_y[:, None] / rays[..., 1], np.inf)
    t_bg = np.minimum(t_wall, t_floor)
    bg_normal = np.where((t_floor < t_wall)[..., None], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0])
    bg_point = rays * t_bg[..., None]

    # Object: transform rays into its local frame, intersect the canonical shape.
    scale = params.size[:, None, None]
    rot_t = np.transpose(params.rotation, (0, 2, 1))
    o_local = np.einsum("nij,nj->ni", rot_t, -params.centre)[:, None, :].repeat(r, 1) / scale
    d_local = np.einsum("nij,nrj->nri", rot_t, rays) / scale
    t_obj = np.full((n, r), np.inf)
    p_obj = np.zeros((n, r, 3))
    n_obj = np.zeros((n, r, 3))
    for k in range(len(SHAPES)):
        idx = np.flatnonzero(params.shape == k)
        if idx.size == 0:
            continue
        o, d, asp = o_local[idx], d_local[idx], params.aspect[idx]
        if k == 0:
            t, p = _hit_sphere(o, d)
        elif k == 1:
            t, p = _hit_box(o, d, (asp * 0.85)[:, None, :])
            asp = asp * 0.85
        else:
            t, p = _hit_cylinder_or_cone(o, d, (asp[:, 1] * 1.2)[:, None], cone=(k == 3))
        t_obj[idx], p_obj[idx] = t, p
        n_obj[idx] = _local_normals(k, p, asp)
    hit = np.isfinite(t_obj) & (t_obj < t_bg)
    world_n = np.einsum("nij,nrj->nri", params.rotation, n_obj)

    depth = np.where(hit, t_obj, t_bg) * rays[..., 2]  # z-distance
    normal = np.where(hit[..., None], world_n, bg_normal)
    # Texture coordinates: object stripes live in its local frame, wall stripes in the world.
    local_pt = p_obj * scale
    world_pt = bg_point
    freq = np.where(hit, params.stripe_freq[:, 0:1], params.stripe_freq[:, 1:2])
    s_dir = np.where(hit[..., None], params.stripe_dir[:, None, 0], params.stripe_dir[:, None, 1])
    coord = np.einsum("nrk,nrk->nr", np.where(hit[..., None], local_pt, world_pt), s_dir)
    stripe = (np.sin(coord * freq * np.pi) > 0)[..., None]
    col_a = np.where(hit[..., None], params.palette[:, None, 0], params.palette[:, None, 2])
    col_b = np.where(hit[..., None], params.palette[:, None, 1], params.palette[:, None, 3])
    albedo = np.where(stripe, col_a, col_b)
    lambert = np.clip(np.einsum("nrk,nk->nr", normal, params.light), 0, 1)
    shade = ambient + (1 - ambient) * lambert
    rgb = albedo * shade[..., None] + rng.normal(0, noise, size=albedo.shape)
    rgb = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8).reshape(n, size, size, 3)
    depth = np.clip(depth, 0, FAR).astype(np.float32).reshape(n, size, size)
    return rgb, depth
