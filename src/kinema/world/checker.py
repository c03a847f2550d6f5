"""Reads the world's rules back out of pixels: background, colour, shape and motion of one clip.

Analytic and pure NumPy, so it can grade any video model trained on the world: exact on rendered
ground truth, tolerant of blurred edges, noise and stray fragments. It also measures seam jumps and
colour drift in long, chained videos. It knows nothing of models, prompts' wording or files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kinema.world.captions import Parsed
from kinema.world.scene import BACKGROUNDS, COLOURS

Floats = NDArray[np.float64]

# Thresholds. The ground-truth values quoted are measured over all shapes, canvases, equal-area radii
# 2.5-7.5 px and orientations (see tests/world/test_checker.py).
FAR_RGB = 40.0  # a pixel this far from the background may be object; the closest colour is 110 away
OBJECT_ALPHA = 0.5  # coverage above which a pixel belongs to the object mask
CORE_ALPHA = 0.85  # coverage above which a pixel shows the object's own colour
DILUTION = 0.6  # blur may blend the object's core down to this share of its colour
FAINT = 0.15  # coverage below which centroid and shape moments ignore a pixel (area keeps it)
MIN_AREA, MAX_AREA = 6.0, 450.0  # px; ground truth spans 19.6-177
MAIN_SHARE = 0.6  # the largest blob must hold this share of a frame's object mass
SPECK = 3.0  # px; blobs lighter than this are noise or fragments and do not compete with the object
COHERENT_SHARE = 0.75  # share of frames with one clear object for the clip to be coherent
FLAT_STD = 40.0  # RGB std of the background above which it is not a flat world background
# Shape from rotational symmetry: c_k = |sum w z^k| / sum w |z|^k about the centroid is ~0 for a
# circle and large for k = 3 (triangle), 4 (square), 5 (star). A shape's score is c_k over its
# typical value: on ground truth the true shape scores 0.93-1.11, every other shape <= 0.30 and
# circles <= 0.15 for all three.
SYMMETRY: dict[str, tuple[int, float]] = {"triangle": (3, 0.65), "square": (4, 0.43), "star": (5, 0.81)}
CIRCLE_SCORE = 0.25  # best score below this reads as a circle
MOVE_STEP = 0.3  # median centroid step, px/frame; still 0, linear 0.6-1.2, bouncing 1.2-2.0
CROSS_RATIO = 0.18  # minor/major axis path; linear 0, bouncing >= tan(0.35 rad) = 0.36
CROSS_STRIDE = 3  # frames per displacement when measuring the axis paths
AXIS_CONSISTENCY = 0.75  # share of steps along the net direction; linear 1
GROW_STEP = 0.06  # median equal-area radius step, px/frame; growing/shrinking 0.12-0.25
SPIN_STEP = 0.05  # median orientation step, rad/frame; rotating 0.08-0.2


@dataclass(frozen=True)
class Movement:
    """Track features the motion is read from; NaN where the clip gives too few frames."""

    step_px: float  # median centroid step, px/frame
    velocity: tuple[float, float]  # mean step along x and y, px/frame (y grows downwards)
    cross_ratio: float  # path along the minor axis / path along the major axis
    axis_consistency: float  # share of steps going the net way along the major axis
    growth_px: float  # median step of the equal-area radius, px/frame
    spin_rad: float  # median orientation step, rad/frame; NaN for circles


@dataclass(frozen=True)
class ClipReading:
    """What the checker read from a clip, and the measurements behind each word.

    Per-frame tracks hold NaN where no single object was found. Coordinates are pixels with the
    renderer's convention (pixel centres at +0.5); `angles` is the orientation modulo the shape's
    symmetry, NaN for circles.
    """

    background: str | None
    colour: str | None
    shape: str | None
    motion: str | None
    coherent: bool
    coherent_share: float
    background_rgb: tuple[float, float, float]
    background_std: float
    object_rgb: tuple[float, float, float] | None
    centroids: tuple[tuple[float, float], ...]
    areas: tuple[float, ...]
    angles: tuple[float, ...]
    shape_scores: Mapping[str, float]
    mean_abs_change: float
    movement: Movement


@dataclass(frozen=True)
class SeamReport:
    """Continuity of a chained video at its seams, against ordinary frame-to-frame change.

    Jumps are measured from the last frame of a segment to the first of the next (centroid in px,
    object colour in RGB units); drift compares the first and last second of the video.
    """

    seams: tuple[int, ...]
    centroid_jumps: tuple[float, ...]
    colour_jumps: tuple[float, ...]
    step_median: float
    step_p95: float
    colour_step_p95: float
    object_drift: float
    background_drift: float

    @property
    def max_jump(self) -> float:
        """The largest centroid jump at a seam, px; NaN if the object is lost at a seam."""
        return float(np.max(self.centroid_jumps)) if self.seams else 0.0

    def as_dict(self, *, slack_px: float = 1.0, drift_rgb: float = 20.0) -> dict[str, Any]:
        """The report in numbers a person can read (and JSON can hold): the worst seam against the
        ordinary frame-to-frame steps, how many seams jump or lose the object, drift, the verdict."""
        jumps = np.asarray(self.centroid_jumps, dtype=float)
        colours = np.asarray(self.colour_jumps, dtype=float)

        def num(value: float) -> float | None:
            return None if math.isnan(value) else round(float(value), 2)

        return {
            "seams": len(self.seams),
            "max_centroid_jump_px": num(float(np.nanmax(jumps))) if np.isfinite(jumps).any() else None,
            "step_median_px": num(self.step_median),
            "step_p95_px": num(self.step_p95),
            "seams_jumping": int((jumps > self.step_p95 + slack_px).sum()),
            "seams_losing_the_object": int(np.isnan(jumps).sum()),
            "max_colour_jump_rgb": num(float(np.nanmax(colours))) if np.isfinite(colours).any() else None,
            "colour_step_p95_rgb": num(self.colour_step_p95),
            "object_drift_rgb": num(self.object_drift),
            "background_drift_rgb": num(self.background_drift),
            "smooth": self.smooth(slack_px=slack_px, drift_rgb=drift_rgb),
        }

    def smooth(self, *, slack_px: float = 1.0, drift_rgb: float = 20.0) -> bool:
        """No seam jump beyond the p95 ordinary step plus slack and no colour drift; NaN fails."""
        jumps_ok = all(j <= self.step_p95 + slack_px for j in self.centroid_jumps)
        colours_ok = all(c <= self.colour_step_p95 + drift_rgb for c in self.colour_jumps)
        return (
            jumps_ok and colours_ok and self.object_drift <= drift_rgb and self.background_drift <= drift_rgb
        )


@dataclass(frozen=True)
class _Segmentation:
    """Per-frame object weights and their summary; internal to the checker."""

    background: Floats  # (T, 3) per-frame median colour
    colour: Floats | None  # (3,) the object's colour over the clip
    weights: Floats  # (T, H, W) object coverage in [0, 1], zero outside the main blob
    found: NDArray[np.bool_]  # (T,) one clear object in this frame
    centroids: Floats  # (T, 2) x, y; NaN where not found
    areas: Floats  # (T,) px; NaN where not found
    background_std: float


def read_clip(frames: np.ndarray) -> ClipReading:
    """Read background, colour, shape and motion from uint8 frames (T, H, W, 3).

    Colour, shape and motion are read only from a coherent clip (one object in most frames on a
    flat background); otherwise they are None.
    """
    _check_frames(frames)
    seg = _segment(frames)
    flat = seg.background_std <= FLAT_STD
    coherent = flat and bool(seg.found.mean() >= COHERENT_SHARE)
    scores, angles, period = _symmetry(seg)
    shape = _read_shape(scores) if coherent else None
    movement = _movement(seg, None if shape == "circle" else angles, period)
    background_rgb = np.median(seg.background, axis=0)
    change = np.abs(np.diff(frames.astype(np.float64), axis=0)) if len(frames) > 1 else np.zeros(1)
    return ClipReading(
        background=_nearest(background_rgb, BACKGROUNDS) if flat else None,
        colour=_colour_name(seg.colour, background_rgb) if coherent and seg.colour is not None else None,
        shape=shape,
        motion=_read_motion(movement) if coherent else None,
        coherent=coherent,
        coherent_share=float(seg.found.mean()),
        background_rgb=_triple(background_rgb),
        background_std=seg.background_std,
        object_rgb=None if seg.colour is None else _triple(seg.colour),
        centroids=tuple((float(x), float(y)) for x, y in seg.centroids),
        areas=tuple(float(a) for a in seg.areas),
        angles=tuple(float(a) for a in angles) if shape != "circle" else (math.nan,) * len(frames),
        shape_scores=scores,
        mean_abs_change=float(change.mean()),
        movement=movement,
    )


def motion_matches(expected: str, reading: ClipReading) -> bool:
    """Whether the clip shows the expected motion; a rotating circle looks exactly like a still one."""
    if reading.shape == "circle" and expected in ("rotating", "still"):
        return reading.motion in ("rotating", "still")
    return reading.motion == expected


def grade(expected: Parsed, reading: ClipReading) -> dict[str, bool]:
    """Right or wrong per attribute the prompt names."""
    result: dict[str, bool] = {}
    if expected.background is not None:
        result["background"] = reading.background == expected.background
    if expected.colour is not None:
        result["colour"] = reading.colour == expected.colour
    if expected.shape is not None:
        result["shape"] = reading.shape == expected.shape
    if expected.motion is not None:
        result["motion"] = motion_matches(expected.motion, reading)
    return result


def summarise(rows: Iterable[Mapping[str, bool]]) -> dict[str, float]:
    """Accuracy per attribute over graded clips, plus `all` (every named attribute right) and `clips`."""
    rows = list(rows)
    hits: dict[str, list[bool]] = {}
    for row in rows:
        for name, ok in row.items():
            hits.setdefault(name, []).append(ok)
    summary = {name: float(np.mean(oks)) for name, oks in sorted(hits.items())}
    summary["all"] = float(np.mean([all(row.values()) for row in rows])) if rows else math.nan
    summary["clips"] = float(len(rows))
    return summary


def seam_report(frames: np.ndarray, seams: list[int]) -> SeamReport:
    """Centroid and colour jumps at each seam (index of a segment's first frame) and overall drift."""
    _check_frames(frames)
    if any(not 0 < s < len(frames) for s in seams):
        raise ValueError(f"seams must be frame indices in 1..{len(frames) - 1}, got {seams}")
    seg = _segment(frames)
    h, w = frames.shape[1:3]
    steps = np.hypot(_wrap(np.diff(seg.centroids[:, 0]), w), _wrap(np.diff(seg.centroids[:, 1]), h))
    colours = _core_colours(frames, seg)  # (T, 3)
    colour_steps = np.linalg.norm(np.diff(colours, axis=0), axis=1)
    ordinary = np.ones(len(steps), dtype=bool)
    ordinary[[s - 1 for s in seams]] = False
    second = max(1, min(8, len(frames) // 4))  # one second at 8 fps
    return SeamReport(
        seams=tuple(seams),
        centroid_jumps=tuple(float(steps[s - 1]) for s in seams),
        colour_jumps=tuple(float(colour_steps[s - 1]) for s in seams),
        step_median=_nanstat(steps[ordinary], 50),
        step_p95=_nanstat(steps[ordinary], 95),
        colour_step_p95=_nanstat(colour_steps[ordinary], 95),
        object_drift=_drift(colours, second),
        background_drift=_drift(seg.background, second),
    )


def _check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        kind = frames.dtype if isinstance(frames, np.ndarray) else type(frames).__name__
        raise ValueError(
            f"frames must be a uint8 array (T, H, W, 3), got {kind}; "
            "convert 0..255 values with np.clip(x, 0, 255).round().astype(np.uint8)"
        )
    if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape[:3]) < 1:
        raise ValueError(f"frames must have shape (T, H, W, 3) with T, H, W >= 1, got {frames.shape}")


def _segment(frames: np.ndarray) -> _Segmentation:
    """Find the one object per frame: coverage relative to background and colour, main blob only."""
    pixels = frames.astype(np.float64)
    background = np.median(pixels, axis=(1, 2))  # (T, 3)
    offset = pixels - background[:, None, None]  # (T, H, W, 3)
    colour = _object_colour(pixels, offset)
    if colour is None:
        alpha = np.zeros(frames.shape[:3])
    else:
        direction = colour[None, None, None] - background[:, None, None]  # (T, 1, 1, 3)
        scale = np.maximum(np.sum(direction**2, axis=-1), 1.0)
        alpha = np.clip(np.sum(offset * direction, axis=-1) / scale, 0.0, 1.0)  # (T, H, W)
    weights, found = _main_blob(alpha)
    centroids, areas = _centroids(weights)
    centroids[~found], areas[~found] = np.nan, np.nan
    outside = ~_dilate(_dilate(alpha > OBJECT_ALPHA))  # every blob, not only the main one
    spread = offset[outside] if outside.any() else offset.reshape(-1, 3)
    return _Segmentation(
        background=background,
        colour=colour,
        weights=weights,
        found=found,
        centroids=centroids,
        areas=areas,
        background_std=float(np.sqrt(np.mean(spread**2))),
    )


def _object_colour(pixels: Floats, offset: Floats) -> Floats | None:
    """Median colour of the pixels farthest from the background: the object's fully covered core."""
    distance = np.linalg.norm(offset, axis=-1)  # (T, H, W)
    candidates = distance > FAR_RGB
    if candidates.sum() < MIN_AREA:
        return None
    core = distance >= CORE_ALPHA * np.quantile(distance[candidates], 0.9)
    return np.asarray(np.median(pixels[core & candidates], axis=0), dtype=np.float64)


def _main_blob(alpha: Floats) -> tuple[Floats, NDArray[np.bool_]]:
    """Keep each frame's largest connected blob (8-connected, on the torus) and its fringe."""
    t = alpha.shape[0]
    mask = alpha > OBJECT_ALPHA
    labels = _components(mask)
    mass = np.bincount(labels[mask], weights=alpha[mask], minlength=mask.size).reshape(t, -1)
    root = mass.argmax(axis=1)  # (T,) label of the heaviest blob per frame
    main = mask & (labels == (root + np.arange(t) * mass.shape[1])[:, None, None])
    weights = np.where(_dilate(_dilate(main)), alpha, 0.0)
    area = weights.sum(axis=(1, 2))
    blobs = np.where(mass >= SPECK, mass, 0.0).sum(axis=1)  # specks of noise do not count
    share = mass.max(axis=1) / np.maximum(blobs, 1e-9)
    found = (share >= MAIN_SHARE) & (area >= MIN_AREA) & (area <= MAX_AREA)
    return np.where(found[:, None, None], weights, 0.0), found


def _components(mask: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Connected-component labels per frame: each pixel gets the smallest flat index in its blob.

    Min-propagation over 3x3 neighbourhoods with pointer jumping; np.roll makes blobs that wrap
    around the canvas edges one blob, as the renderer draws them.
    """
    outside = mask.size
    labels = np.where(mask, np.arange(mask.size).reshape(mask.shape), outside)
    while True:
        spread = np.minimum(labels, np.minimum(np.roll(labels, 1, 1), np.roll(labels, -1, 1)))
        spread = np.minimum(spread, np.minimum(np.roll(spread, 1, 2), np.roll(spread, -1, 2)))
        spread = np.append(np.where(mask, spread, outside).ravel(), outside)
        jumped = spread[spread[:-1]].reshape(mask.shape)
        if np.array_equal(jumped, labels):
            return labels.astype(np.int64)
        labels = jumped


def _dilate(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """3x3 dilation per frame, wrapping around the edges."""
    rows = mask | np.roll(mask, 1, 1) | np.roll(mask, -1, 1)
    return rows | np.roll(rows, 1, 2) | np.roll(rows, -1, 2)


def _centroids(weights: Floats) -> tuple[Floats, Floats]:
    """Wrap-aware centroids (T, 2) as x, y and areas (T,) of per-frame weights (T, H, W)."""
    sharp = _sharpen(weights)
    xs = _axis_mean(sharp.sum(axis=1))
    ys = _axis_mean(sharp.sum(axis=2))
    return np.stack([xs, ys], axis=1), weights.sum(axis=(1, 2))


def _sharpen(weights: Floats) -> Floats:
    """Coverage with its faint tail cut: noise and blur there, far from the centre, skew moments."""
    return np.clip((weights - FAINT) / (1.0 - FAINT), 0.0, 1.0)


def _axis_mean(profile: Floats) -> Floats:
    """Mean position along a periodic axis from a mass profile (T, P).

    The circular mean finds the blob; the ordinary mean of positions unwrapped around it is then
    exact for any blob narrower than the canvas, however close to the edge.
    """
    period = profile.shape[1]
    pos = np.arange(period) + 0.5
    mass = np.maximum(profile.sum(axis=1), 1e-12)
    centre = np.angle(profile @ np.exp(2j * np.pi * pos / period)) * period / (2 * np.pi)
    for _ in range(2):
        offset = _wrap(pos[None] - centre[:, None], period)
        centre = centre + (profile * offset).sum(axis=1) / mass
    return np.asarray(np.mod(centre, period), dtype=np.float64)


def _wrap(delta: Floats, period: float) -> Floats:
    """Shortest signed displacement modulo `period`."""
    return np.asarray(np.mod(delta + period / 2, period) - period / 2, dtype=np.float64)


def _symmetry(seg: _Segmentation) -> tuple[dict[str, float], Floats, float]:
    """Per-shape symmetry scores over the larger half of found frames; per-frame orientation.

    The orientation is arg(sum w z^k) / k for the best-scoring k, so it is defined modulo the
    returned period 2 pi / k.
    """
    h, w = seg.weights.shape[1:]
    cx = np.nan_to_num(seg.centroids[:, 0])[:, None, None]
    cy = np.nan_to_num(seg.centroids[:, 1])[:, None, None]
    z = _wrap(np.arange(w) + 0.5 - cx, w) + 1j * _wrap((np.arange(h) + 0.5)[:, None] - cy, h)  # (T, H, W)
    big = seg.found.copy()
    if big.any():
        big &= np.nan_to_num(seg.areas) >= np.nanmedian(seg.areas)
    scores: dict[str, float] = {}
    moments: dict[str, NDArray[np.complex128]] = {}
    sharp = _sharpen(seg.weights)
    for name, (k, typical) in SYMMETRY.items():
        moments[name] = (sharp * z**k).sum(axis=(1, 2))
        norm = np.maximum((sharp * np.abs(z) ** k).sum(axis=(1, 2)), 1e-12)
        ratio = np.abs(moments[name]) / norm
        scores[name] = float(np.median(ratio[big]) / typical) if big.any() else 0.0
    best = max(scores, key=lambda name: scores[name])
    k = SYMMETRY[best][0]
    return scores, np.where(seg.found, np.angle(moments[best]) / k, np.nan), 2 * np.pi / k


def _read_shape(scores: Mapping[str, float]) -> str:
    best = max(scores, key=lambda name: scores[name])
    return best if scores[best] >= CIRCLE_SCORE else "circle"


def _movement(seg: _Segmentation, angles: Floats | None, period: float) -> Movement:
    """Track features over pairs of frames that both show the object."""
    dx, dy = _displacements(seg, 1)
    if len(dx) < 2:
        return Movement(math.nan, (math.nan, math.nan), math.nan, math.nan, math.nan, math.nan)
    # Axis paths over a few frames: centroid noise stays the same while the motion adds up.
    far_x, far_y = _displacements(seg, CROSS_STRIDE) if seg.found.size > CROSS_STRIDE + 1 else (dx, dy)
    path = (float(np.abs(far_x).sum()), float(np.abs(far_y).sum()))
    major = dx if path[0] >= path[1] else dy
    pair = seg.found[1:] & seg.found[:-1]
    spin = math.nan
    if angles is not None:
        spin = float(np.median(_wrap(np.diff(angles), period)[pair]))
    return Movement(
        step_px=float(np.median(np.hypot(dx, dy))),
        velocity=(float(dx.mean()), float(dy.mean())),
        cross_ratio=min(path) / max(max(path), 1e-12),
        axis_consistency=float(np.mean(np.sign(major) == np.sign(major.sum()))),
        growth_px=float(np.median(np.diff(np.sqrt(seg.areas / np.pi))[pair])),
        spin_rad=spin,
    )


def _displacements(seg: _Segmentation, stride: int) -> tuple[Floats, Floats]:
    """Wrap-aware centroid displacements from frame t to t + stride where both show the object."""
    h, w = seg.weights.shape[1:]
    pair = seg.found[stride:] & seg.found[:-stride]
    dx = _wrap(seg.centroids[stride:, 0] - seg.centroids[:-stride, 0], w)
    dy = _wrap(seg.centroids[stride:, 1] - seg.centroids[:-stride, 1], h)
    return dx[pair], dy[pair]


def _read_motion(move: Movement) -> str | None:
    """Moving beats growing beats rotating beats still; the thresholds sit between the classes."""
    if math.isnan(move.step_px):
        return None
    if move.step_px > MOVE_STEP:
        if move.cross_ratio > CROSS_RATIO or move.axis_consistency < AXIS_CONSISTENCY:
            return "bouncing"
        vx, vy = move.velocity
        if abs(vx) >= abs(vy):
            return "right" if vx > 0 else "left"
        return "down" if vy > 0 else "up"
    if abs(move.growth_px) > GROW_STEP:
        return "growing" if move.growth_px > 0 else "shrinking"
    if not math.isnan(move.spin_rad) and abs(move.spin_rad) > SPIN_STEP:
        return "rotating"
    return "still"


def _core_colours(frames: np.ndarray, seg: _Segmentation) -> Floats:
    """Per-frame median colour of the object's most covered pixels (T, 3); NaN where not found.

    "Most covered" is relative to the frame's best pixel, so a blurred object still has a core.
    """
    core = seg.weights >= CORE_ALPHA * seg.weights.max(axis=(1, 2), keepdims=True)
    colours = np.full((len(frames), 3), np.nan)
    for t in np.flatnonzero(seg.found & core.any(axis=(1, 2))):
        colours[t] = np.median(frames[t][core[t]], axis=0)
    return colours


def _drift(colours: Floats, window: int) -> float:
    """RGB distance between the mean colour of the first and of the last `window` frames."""
    start, end = colours[:window], colours[-window:]
    if np.isnan(start).all() or np.isnan(end).all():
        return math.nan
    return float(np.linalg.norm(np.nanmean(start, axis=0) - np.nanmean(end, axis=0)))


def _nanstat(values: Floats, percentile: float) -> float:
    values = values[~np.isnan(values)]
    return float(np.percentile(values, percentile)) if len(values) else math.nan


def _nearest(rgb: Floats, palette: Mapping[str, tuple[int, int, int]]) -> str:
    return min(palette, key=lambda name: float(np.linalg.norm(rgb - np.asarray(palette[name]))))


def _colour_name(rgb: Floats, background: Floats) -> str:
    """The palette colour whose blend with the background passes nearest to `rgb`.

    Blur leaves even the core of a small object partly background; matching against the blends
    bg + t (colour - bg), t in [DILUTION, 1], rather than the pure colour keeps yellow from reading
    as orange. Every palette colour stays >= 25 RGB from every other colour's blends.
    """

    def gap(name: str) -> float:
        direction = np.asarray(COLOURS[name], dtype=np.float64) - background
        t = np.clip((rgb - background) @ direction / max(float(direction @ direction), 1.0), DILUTION, 1.0)
        return float(np.linalg.norm(rgb - background - t * direction))

    return min(COLOURS, key=gap)


def _triple(rgb: Floats) -> tuple[float, float, float]:
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]))
