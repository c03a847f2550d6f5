"""`kinema eval builtin`: generate clips through the engine and grade them with the analytic checker.

Prompts cover every motion evenly with random shapes, colours, backgrounds and canvases; a share of
them use (shape, colour, motion) triples held out of training, reported separately. Clips go through
the full product path (engine, H.264 encode, decode back to the model canvas), so codec damage counts.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kinema.engine import video
from kinema.engine.generation import Engine
from kinema.spec import ASPECT_RATIOS, AspectRatio, ExtendVideo, ImageToVideo, TextToVideo
from kinema.world import checker
from kinema.world.captions import Parsed, caption, parse
from kinema.world.render import render, sample_scene
from kinema.world.scene import BACKGROUNDS, CANVASES, COLOURS, MOTIONS, SHAPES, held_out_triples

ATTRIBUTES = ("colour", "shape", "motion", "background")


@dataclass(frozen=True)
class EvalConfig:
    clips: int = 200
    i2v_clips: int = 40
    long_seconds: float = 0.0  # > 0: also grade one extension chain of this many seconds
    held_out_share: float = 0.25
    seed: int = 0
    duration: float = 5.0
    steps: int | None = None
    guidance: float | None = None


@dataclass
class Report:
    t2v: dict[str, Any] = field(default_factory=dict)
    i2v: dict[str, Any] = field(default_factory=dict)
    long: dict[str, Any] = field(default_factory=dict)
    seconds_per_clip: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "t2v": self.t2v,
            "i2v": self.i2v,
            "long": self.long,
            "seconds_per_clip": self.seconds_per_clip,
        }


def eval_prompts(config: EvalConfig) -> list[tuple[str, AspectRatio, bool]]:
    """(prompt, aspect, held_out) triples: motions cycled evenly, the rest drawn at random."""
    rng = np.random.default_rng(config.seed)
    held = sorted(held_out_triples())
    items = []
    for i in range(config.clips):
        is_held = rng.random() < config.held_out_share
        if is_held:
            shape, colour, motion = held[int(rng.integers(len(held)))]
        else:
            motion = MOTIONS[i % len(MOTIONS)]
            shape, colour = (
                SHAPES[int(rng.integers(len(SHAPES)))],
                list(COLOURS)[int(rng.integers(len(COLOURS)))],
            )
            while (shape, colour, motion) in held_out_triples():
                colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
        background = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
        text = caption(rng, shape=shape, colour=colour, motion=motion, background=background)
        items.append((text, ASPECT_RATIOS[i % len(ASPECT_RATIOS)], is_held))
    return items


def evaluate(engine: Engine, config: EvalConfig, *, log: Callable[[str], None] = print) -> Report:
    report = Report()
    with tempfile.TemporaryDirectory() as work:
        started = time.monotonic()
        report.t2v = _text_to_video(engine, config, Path(work), log)
        report.seconds_per_clip = round((time.monotonic() - started) / max(config.clips, 1), 3)
        if config.i2v_clips:
            report.i2v = _image_to_video(engine, config, Path(work), log)
        if config.long_seconds > 0:
            report.long = _long_video(engine, config, Path(work), log)
    return report


def _read_back(path: str, aspect: str) -> np.ndarray:
    return video.read_video(
        Path(path), max_frames=100_000, max_pixels=4096 * 4096, size=CANVASES[aspect]
    ).frames


def _text_to_video(
    engine: Engine, config: EvalConfig, work: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    rows: list[dict[str, bool]] = []
    held_rows: list[dict[str, bool]] = []
    stride = _stride(engine)
    ratios: list[float] = []
    by: dict[str, dict[str, list[bool]]] = {"motion": {}, "shape": {}}  # what each word scored
    for i, (prompt, aspect, held) in enumerate(eval_prompts(config)):
        request = TextToVideo(
            prompt=prompt,
            aspect_ratio=aspect,
            seed=config.seed + i,
            duration=config.duration,
            num_inference_steps=config.steps,
            guidance_scale=config.guidance,
        )
        result = engine.run(request, work / f"t2v-{i}")
        frames = _read_back(result.candidates[0].video or "", aspect)
        reading = checker.read_clip(frames)
        expected = parse(prompt)
        grades = checker.grade(expected, reading)
        for attribute, hits in by.items():
            word = getattr(expected, attribute)
            if word is not None and attribute in grades:
                hits.setdefault(word, []).append(grades[attribute])
        if expected.motion in ("left", "right", "up", "down") and len(frames) > stride:
            ratios.append(_boundary_ratio(frames, stride))
        (held_rows if held else rows).append(grades)
        if (i + 1) % 20 == 0:
            log(f"t2v {i + 1}/{config.clips}: {checker.summarise(rows + held_rows)}")
    return {
        "seen": checker.summarise(rows),
        "held_out": checker.summarise(held_rows),
        "all": checker.summarise(rows + held_rows),
        "clips": len(rows) + len(held_rows),
        **{
            f"by_{attribute}": {word: round(float(np.mean(h)), 3) for word, h in sorted(hits.items())}
            for attribute, hits in by.items()
        },
        "boundary_steps": {
            "clips": int(np.isfinite(ratios).sum()),
            "every": stride,
            "median_ratio": round(float(np.nanmedian(ratios)), 2) if np.isfinite(ratios).any() else None,
        },
    }


def _stride(engine: Engine) -> int:
    """Frames each chained segment adds: a new stretch of frames begins every `stride` frames."""
    caps = engine.backend_for("builtin").capabilities()
    return caps.max_frames - caps.context_frames


def _boundary_ratio(frames: np.ndarray, stride: int) -> float:
    """How far the object moves where a new stretch of `stride` frames begins (a window's second half,
    each extension segment), over its median ordinary step: 1.0 on a rendered clip; above 1 the motion
    stalls inside each stretch and catches up in a jump between them. NaN when it barely moves."""
    report = checker.seam_report(frames, list(range(stride, len(frames), stride)))
    jumps = np.asarray(report.centroid_jumps)
    if not report.step_median > 0.2 or not np.isfinite(jumps).any():
        return math.nan
    return float(np.nanmean(jumps)) / report.step_median


def _image_to_video(
    engine: Engine, config: EvalConfig, work: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    rng = np.random.default_rng(config.seed + 1)
    rows, errors = [], []
    for i in range(config.i2v_clips):
        aspect = list(CANVASES)[i % len(CANVASES)]
        scene = sample_scene(rng, aspect=aspect, motion=MOTIONS[i % len(MOTIONS)])
        first = render(scene, 1)[0]
        path = work / f"first-{i}.png"
        video.write_poster(first, path)
        prompt = caption(
            rng, shape=scene.shape, colour=scene.colour, motion=scene.motion, background=scene.background
        )
        result = engine.run(
            ImageToVideo(prompt=prompt, image=str(path), seed=config.seed + i, duration=config.duration),
            work / f"i2v-{i}",
        )
        frames = _read_back(result.candidates[0].video or "", aspect)
        errors.append(float(np.abs(frames[0].astype(np.float32) - first).mean()))
        rows.append(
            checker.grade(
                Parsed(scene.shape, scene.colour, scene.motion, scene.background), checker.read_clip(frames)
            )
        )
    log(f"i2v: {checker.summarise(rows)}, first-frame MAE {np.mean(errors):.2f}")
    return {
        "accuracy": checker.summarise(rows),
        "first_frame_mae": round(float(np.mean(errors)), 3),
        "clips": len(rows),
    }


def _long_video(engine: Engine, config: EvalConfig, work: Path, log: Callable[[str], None]) -> dict[str, Any]:
    prompt = "a yellow square moving right on a navy background"
    first = engine.run(
        TextToVideo(prompt=prompt, seed=config.seed, duration=config.duration), work / "long-0"
    )
    start_frames = first.candidates[0].num_frames
    result = engine.run(
        ExtendVideo(
            prompt=prompt,
            video=first.candidates[0].video or "",
            seconds=config.long_seconds,
            seed=config.seed,
        ),
        work / "long-1",
    )
    frames = _read_back(result.candidates[0].video or "", "16:9")
    fps = engine.backend_for("builtin").capabilities().fps
    seams = list(range(start_frames, frames.shape[0], _stride(engine)))  # each extension segment starts one
    seam = checker.seam_report(frames, seams)
    summary = seam.as_dict()
    log(f"long video: {frames.shape[0]} frames, " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    return {
        "frames": int(frames.shape[0]),
        "seconds": round(frames.shape[0] / fps, 2),
        "seams": summary,
    }
