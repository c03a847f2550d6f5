"""Seeded rendering of scenes into frames.

Objects are drawn with analytic signed distances and one pixel of anti-aliasing. Linear motions wrap
around the canvas (an object leaving on the left re-enters on the right), growing and shrinking are
sawtooth cycles and bouncing reflects off the walls, so every rule holds for any clip length: an
extension of three minutes is as much "in the world" as the first two seconds.
"""

from __future__ import annotations

import math

import numpy as np

from kinema.world.scene import BACKGROUNDS, CANVASES, COLOURS, MOTIONS, SHAPES, Scene

STAR_POINTS = 5
STAR_INNER = 0.45  # inner radius / outer radius

# Circumradius / radius of the circle of equal area, per shape.
EXTENT: dict[str, float] = {
    "circle": 1.0,
    "square": math.sqrt(math.pi / 2.0),
    "triangle": math.sqrt(math.pi / (0.75 * math.sqrt(3.0))),
    "star": math.sqrt(math.pi / (STAR_POINTS * STAR_INNER * math.sin(math.pi / STAR_POINTS))),
}

RADIUS_RANGE = (3.0, 6.5)  # equal-area radius of objects, pixels (canvas short side is 27 or 36)
GROW_RANGE = (2.5, 7.5)  # growing/shrinking cycle between these radii
LINEAR_SPEED = (0.6, 1.2)  # px/frame at 8 fps
BOUNCE_SPEED = (1.2, 2.0)
GROW_SPEED = (0.12, 0.25)  # radius px/frame
SPIN_SPEED = (0.08, 0.2)  # rad/frame


def sample_scene(
    rng: np.random.Generator,
    *,
    aspect: str = "16:9",
    shape: str | None = None,
    colour: str | None = None,
    background: str | None = None,
    motion: str | None = None,
) -> Scene:
    """A random scene; any attribute given is kept as is."""
    height, width = CANVASES[aspect]
    shape = shape or SHAPES[rng.integers(len(SHAPES))]
    colour = colour or list(COLOURS)[rng.integers(len(COLOURS))]
    background = background or list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    motion = motion or MOTIONS[rng.integers(len(MOTIONS))]
    radius = float(rng.uniform(*RADIUS_RANGE))
    if motion in ("growing", "shrinking"):
        radius = float(rng.uniform(*GROW_RANGE))
    margin = EXTENT[shape] * (GROW_RANGE[1] if motion in ("growing", "shrinking") else radius) + 1.0
    margin = min(margin, 0.5 * min(height, width) - 1.0)
    x = float(rng.uniform(margin, width - margin))
    y = float(rng.uniform(margin, height - margin))
    # Movers wrap around along their axis, so they may start anywhere on it.
    if motion in ("left", "right"):
        x = float(rng.uniform(0, width))
    elif motion in ("up", "down"):
        y = float(rng.uniform(0, height))
    speed = {
        "left": LINEAR_SPEED,
        "right": LINEAR_SPEED,
        "up": LINEAR_SPEED,
        "down": LINEAR_SPEED,
        "growing": GROW_SPEED,
        "shrinking": GROW_SPEED,
        "rotating": SPIN_SPEED,
    }.get(motion, (0.0, 0.0))
    vx = vy = 0.0
    if motion == "bouncing":
        direction = rng.uniform(0.35, 1.22) + 0.5 * math.pi * rng.integers(4)
        magnitude = rng.uniform(*BOUNCE_SPEED)
        vx, vy = magnitude * math.cos(direction), magnitude * math.sin(direction)
    spin = float(rng.uniform(*speed)) * (1.0 if motion != "rotating" or rng.random() < 0.5 else -1.0)
    return Scene(
        shape=shape,
        colour=colour,
        background=background,
        motion=motion,
        height=height,
        width=width,
        x=x,
        y=y,
        radius=radius,
        speed=spin,
        angle=float(rng.uniform(0, 2 * math.pi)),
        vx=vx,
        vy=vy,
    )


def trajectory(scene: Scene, frames: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-frame (x, y, radius, angle) for frame indices `frames`."""
    f = frames.astype(np.float64)
    x = np.full_like(f, scene.x)
    y = np.full_like(f, scene.y)
    radius = np.full_like(f, scene.radius)
    angle = np.full_like(f, scene.angle)
    step = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}.get(scene.motion)
    if step is not None:
        x = np.mod(scene.x + step[0] * scene.speed * f, scene.width)
        y = np.mod(scene.y + step[1] * scene.speed * f, scene.height)
    elif scene.motion == "bouncing":
        reach = EXTENT[scene.shape] * scene.radius + 0.5
        x = _reflect(scene.x + scene.vx * f, reach, scene.width - reach)
        y = _reflect(scene.y + scene.vy * f, reach, scene.height - reach)
    elif scene.motion in ("growing", "shrinking"):
        lo, hi = GROW_RANGE
        sign = 1.0 if scene.motion == "growing" else -1.0
        radius = lo + np.mod(scene.radius - lo + sign * scene.speed * f, hi - lo)
    elif scene.motion == "rotating":
        angle = scene.angle + scene.speed * f
    return x, y, radius, angle


def _reflect(pos: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Position of a point bouncing between lo and hi (a triangle wave)."""
    span = max(hi - lo, 1e-6)
    phase = np.mod(pos - lo, 2 * span)
    return lo + np.where(phase > span, 2 * span - phase, phase)


def coverage(scene: Scene, frames: np.ndarray) -> np.ndarray:
    """Object coverage in [0, 1] per pixel, (T, H, W), anti-aliased and toroidally wrapped."""
    x, y, radius, angle = (a[:, None, None] for a in trajectory(scene, frames))
    py, px = np.mgrid[0 : scene.height, 0 : scene.width].astype(np.float64) + 0.5
    dx = np.mod(px[None] - x + scene.width / 2, scene.width) - scene.width / 2  # (T, H, W)
    dy = np.mod(py[None] - y + scene.height / 2, scene.height) - scene.height / 2
    extent = EXTENT[scene.shape] * radius
    if scene.shape == "circle":
        sdf = np.hypot(dx, dy) - radius
    elif scene.shape == "square":
        sdf = _polygon_sdf(dx, dy, _regular(4, extent, angle))
    elif scene.shape == "triangle":
        sdf = _polygon_sdf(dx, dy, _regular(3, extent, angle))
    else:
        sdf = _star_sdf(dx, dy, extent, angle)
    return np.asarray(np.clip(0.5 - sdf, 0.0, 1.0))


def _regular(n: int, extent: np.ndarray, angle: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """Vertices (T, n, 2) of a regular n-gon with circumradius `extent`."""
    theta = angle + offset + 2 * np.pi * np.arange(n) / n  # (T, 1, n) via broadcasting
    theta = theta.reshape(extent.shape[0], n)
    ext = extent.reshape(-1, 1)
    return np.stack([ext * np.cos(theta), ext * np.sin(theta)], axis=-1)


def _polygon_sdf(dx: np.ndarray, dy: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Signed distance (exact inside, a lower bound outside) to convex polygons (T, K, 2)."""
    centre = verts.mean(axis=1, keepdims=True)
    edges = np.roll(verts, -1, axis=1) - verts
    normals = np.stack([edges[..., 1], -edges[..., 0]], axis=-1)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    outward = np.sum(normals * (verts - centre), axis=-1, keepdims=True) > 0
    normals = np.where(outward, normals, -normals)
    offsets = np.sum(normals * verts, axis=-1)  # (T, K)
    sdf = np.full(dx.shape, -np.inf)
    for k in range(verts.shape[1]):
        nx, ny = normals[:, k, 0, None, None], normals[:, k, 1, None, None]
        sdf = np.maximum(sdf, nx * dx + ny * dy - offsets[:, k, None, None])
    return sdf


def _star_sdf(dx: np.ndarray, dy: np.ndarray, extent: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Exact signed distance to a five-pointed star: distance to its ten edges, signed by crossings."""
    n = STAR_POINTS
    tips = _regular(n, extent, angle)
    inner = _regular(n, extent * STAR_INNER, angle, offset=np.pi / n)
    verts = np.stack([tips, inner], axis=2).reshape(tips.shape[0], 2 * n, 2)  # (T, 10, 2) in order
    dist = np.full(dx.shape, np.inf)
    inside = np.zeros(dx.shape, dtype=bool)
    for k in range(2 * n):
        ax, ay = verts[:, k, 0, None, None], verts[:, k, 1, None, None]
        bx, by = verts[:, (k + 1) % (2 * n), 0, None, None], verts[:, (k + 1) % (2 * n), 1, None, None]
        ex, ey = bx - ax, by - ay
        h = np.clip(((dx - ax) * ex + (dy - ay) * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        dist = np.minimum(dist, np.hypot(dx - ax - h * ex, dy - ay - h * ey))
        crosses = (ay > dy) != (by > dy)
        x_cross = ax + (dy - ay) * ex / np.where(ey == 0, 1e-12, ey)
        inside ^= crosses & (dx < x_cross)
    return np.where(inside, -dist, dist)


def render(scene: Scene, num_frames: int, *, start: int = 0) -> np.ndarray:
    """Frames `start .. start+num_frames-1` of a scene as uint8 (T, H, W, 3)."""
    return np.asarray(np.rint(render_float(scene, num_frames, start=start)), dtype=np.uint8)


def render_float(scene: Scene, num_frames: int, *, start: int = 0) -> np.ndarray:
    """Like `render`, in float32 0..255 without rounding (training uses this)."""
    alpha = coverage(scene, np.arange(start, start + num_frames))[..., None]  # (T, H, W, 1)
    colour = np.asarray(COLOURS[scene.colour], dtype=np.float64)
    background = np.asarray(BACKGROUNDS[scene.background], dtype=np.float64)
    return np.asarray(background * (1.0 - alpha) + colour * alpha, dtype=np.float32)
