"""`kinema eval builtin`'s harness graded on an oracle: a backend that renders the world the prompt names.

The oracle goes through the same engine, H.264 file and decode as the model, so the harness must read
back every attribute, a smooth extension chain and steps that do not jump where a new stretch of frames
begins; a stalling oracle shows the boundary measure can fail.
"""

from typing import Any

import numpy as np
import pytest

from kinema.backends.base import Segment, StepCallback, StopCheck, check_given
from kinema.backends.builtin import BuiltinBackend
from kinema.engine.generation import Engine
from kinema.spec import Capabilities
from kinema.training.evaluate import EvalConfig, evaluate
from kinema.world.captions import parse
from kinema.world.render import render, sample_scene
from kinema.world.scene import CANVASES


class Oracle:
    """Renders the prompt's scene; a continuation picks up where the prompt's last window began plus
    the engine's stride. `stall` skips 8 frames' worth of motion between 8-frame stretches: a jump at
    each boundary, as the built-in model's (which stalls inside a stretch and catches up between)."""

    def __init__(self, *, stall: bool = False) -> None:
        self.caps = BuiltinBackend().capabilities()  # the built-in model's canvases, fps and windows
        self.stall = stall
        self.starts: dict[str, int] = {}

    def capabilities(self) -> Capabilities:
        return self.caps

    def generate(self, segment: Segment, *, on_step: StepCallback, should_stop: StopCheck) -> np.ndarray:
        check_given(segment)
        on_step(1, 1, None)
        aspect = next(a for a, size in CANVASES.items() if size == (segment.height, segment.width))
        p = parse(segment.prompt)
        scene = sample_scene(
            np.random.default_rng(0),
            aspect=aspect,
            shape=p.shape,
            colour=p.colour,
            background=p.background,
            motion=p.motion,
        )
        stride = self.caps.max_frames - self.caps.context_frames
        start = self.starts[segment.prompt] + stride if segment.given else 0
        self.starts[segment.prompt] = start
        index = np.arange(start, start + segment.num_frames)
        if self.stall:
            index = 2 * stride * (index // stride) + index % stride
        frames = render(scene, int(index.max()) + 1)[index]
        out = np.repeat(frames[None], segment.n, axis=0)
        for i, given in segment.given.items():
            out[:, i] = given
        return out


def run(oracle: Oracle, **config: Any) -> dict[str, Any]:
    engine = Engine(lambda model: oracle)
    return evaluate(engine, EvalConfig(i2v_clips=0, **config), log=lambda line: None).as_dict()


def test_the_harness_reads_every_rule_back_from_the_rendered_world() -> None:
    report = run(Oracle(), clips=12, long_seconds=6.0)
    t2v = report["t2v"]
    assert t2v["clips"] == 12
    for attribute in ("background", "colour", "shape", "motion"):
        assert t2v["all"][attribute] == 1.0, t2v
    assert len(t2v["by_motion"]) >= 6 and set(t2v["by_motion"].values()) == {1.0}
    assert set(t2v["by_shape"]) <= {"circle", "square", "triangle", "star"} and len(t2v["by_shape"]) >= 3
    boundary = t2v["boundary_steps"]
    assert boundary["every"] == 8 and boundary["clips"] >= 2
    assert boundary["median_ratio"] == pytest.approx(1.0, abs=0.25)
    seams = report["long"]["seams"]
    assert report["long"]["seconds"] >= 11.0 and seams["seams"] >= 6
    assert seams["smooth"] is True and seams["seams_jumping"] == 0, seams


def test_motion_that_jumps_between_stretches_shows_in_the_boundary_steps() -> None:
    report = run(Oracle(stall=True), clips=12)
    assert report["t2v"]["boundary_steps"]["median_ratio"] > 2.0
