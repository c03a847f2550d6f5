import dataclasses
import json
import math

import numpy as np
import pytest

from kinema.world.captions import Parsed, parse
from kinema.world.checker import (
    CIRCLE_SCORE,
    ClipReading,
    grade,
    motion_matches,
    read_clip,
    seam_report,
    summarise,
)
from kinema.world.render import render, sample_scene, trajectory
from kinema.world.scene import BACKGROUNDS, CANVASES, COLOURS, MOTIONS, SHAPES, Scene


def _expected(scene: Scene) -> Parsed:
    return Parsed(shape=scene.shape, colour=scene.colour, motion=scene.motion, background=scene.background)


def _blur(frames: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of (T, H, W, 3) frames, wrapping at the edges, in float."""
    radius = math.ceil(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    out = frames.astype(np.float64)
    for axis in (1, 2):
        out = sum(k * np.roll(out, i - radius, axis=axis) for i, k in enumerate(kernel / kernel.sum()))
    return out


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("aspect", CANVASES)
def test_reads_every_attribute_of_ground_truth(aspect: str, shape: str) -> None:
    rng = np.random.default_rng([SHAPES.index(shape), list(CANVASES).index(aspect)])
    wrong = []
    for motion in MOTIONS:
        for _ in range(4):
            scene = sample_scene(rng, aspect=aspect, shape=shape, motion=motion)
            grades = grade(_expected(scene), read_clip(render(scene, 16)))
            if not all(grades.values()):
                wrong.append((scene, grades))
    assert wrong == []


def test_shape_scores_keep_their_margin_on_ground_truth() -> None:
    rng = np.random.default_rng(1)
    for aspect in CANVASES:
        for shape in SHAPES:
            for motion in ("still", "rotating", "growing", "shrinking", "left", "bouncing"):
                scene = sample_scene(rng, aspect=aspect, shape=shape, motion=motion)
                scores = read_clip(render(scene, 16)).shape_scores
                if shape == "circle":
                    assert max(scores.values()) < 0.8 * CIRCLE_SCORE, scene
                else:
                    others = max(v for name, v in scores.items() if name != shape)
                    assert scores[shape] > 0.8 and scores[shape] > 2.5 * others, scene


def test_tracks_centroid_and_size_to_a_tenth_of_a_pixel() -> None:
    rng = np.random.default_rng(2)
    for shape in SHAPES:
        for motion in ("bouncing", "growing", "right"):
            scene = sample_scene(rng, aspect="1:1", shape=shape, motion=motion)
            reading = read_clip(render(scene, 16))
            x, y, radius, _ = trajectory(scene, np.arange(16))
            centroids = np.array(reading.centroids)
            error_x = np.mod(centroids[:, 0] - x + scene.width / 2, scene.width) - scene.width / 2
            error_y = np.mod(centroids[:, 1] - y + scene.height / 2, scene.height) - scene.height / 2
            assert np.abs(error_x).max() < 0.15 and np.abs(error_y).max() < 0.15
            assert np.abs(np.sqrt(np.array(reading.areas) / np.pi) - radius).max() < 0.1


@pytest.mark.parametrize(
    ("motion", "aspect"), [("left", "16:9"), ("right", "1:1"), ("up", "9:16"), ("down", "16:9")]
)
def test_reads_movers_that_wrap_around_the_edge(motion: str, aspect: str) -> None:
    height, width = CANVASES[aspect]
    start = {"left": (2.0, height / 2), "right": (width - 2.0, height / 2), "up": (width / 2, 2.0)}
    x, y = start.get(motion, (width / 2, height - 2.0))
    scene = Scene("star", "cyan", "maroon", motion, height, width, x=x, y=y, radius=6.0, speed=1.0, angle=0.3)
    reading = read_clip(render(scene, 16))
    assert (reading.motion, reading.shape, reading.coherent_share) == (motion, "star", 1.0)
    assert reading.movement.cross_ratio < 0.05


@pytest.mark.parametrize(("motion", "radius"), [("growing", 7.2), ("shrinking", 2.8)])
def test_a_sawtooth_reset_inside_the_clip_keeps_the_direction(motion: str, radius: float) -> None:
    scene = dataclasses.replace(
        sample_scene(np.random.default_rng(3), motion=motion), radius=radius, speed=0.2
    )
    reading = read_clip(render(scene, 16))
    jumps = np.abs(np.diff(np.array(reading.areas)))
    assert jumps.max() > 100.0  # the reset is in the clip
    assert reading.motion == motion


def test_a_rotating_circle_may_read_as_still() -> None:
    scene = sample_scene(np.random.default_rng(4), shape="circle", motion="rotating")
    reading = read_clip(render(scene, 16))
    assert reading.motion == "still"
    assert motion_matches("rotating", reading) and motion_matches("still", reading)
    assert not motion_matches("left", reading)
    square = read_clip(render(dataclasses.replace(scene, shape="square"), 16))
    assert square.motion == "rotating" and not motion_matches("still", square)


def test_noise_is_not_a_coherent_object() -> None:
    noise = np.random.default_rng(5).integers(0, 256, size=(16, 36, 36, 3), dtype=np.uint8)
    reading = read_clip(noise)
    assert not reading.coherent
    assert (reading.background, reading.colour, reading.shape, reading.motion) == (None, None, None, None)
    assert not any(grade(parse("a red star rising on a gray background"), reading).values())


def test_two_objects_are_not_one_coherent_object() -> None:
    scene = sample_scene(
        np.random.default_rng(12), aspect="1:1", colour="white", background="black", motion="up"
    )
    other = dataclasses.replace(scene, x=np.mod(scene.x + 18.0, 36.0), motion="down")
    frames = np.maximum(render(scene, 16), render(other, 16))  # white on black: the brighter pixel wins
    reading = read_clip(frames)
    assert not reading.coherent and reading.shape is None and reading.background == "black"


def test_an_empty_background_has_no_object() -> None:
    empty = np.broadcast_to(np.array(BACKGROUNDS["navy"], dtype=np.uint8), (16, 27, 48, 3)).copy()
    reading = read_clip(empty)
    assert not reading.coherent and reading.coherent_share == 0.0
    assert (reading.background, reading.colour, reading.shape, reading.motion) == ("navy", None, None, None)
    assert math.isnan(reading.centroids[0][0])


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.zeros((16, 32, 32), dtype=np.float32), "uint8"),
        (np.zeros((16, 32, 32), dtype=np.uint8), "shape"),
        (np.zeros((0, 32, 32, 3), dtype=np.uint8), "shape"),
    ],
)
def test_refuses_frames_of_the_wrong_dtype_or_shape(frames: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_clip(frames)


def test_tolerates_blur_noise_and_a_stray_fragment() -> None:
    rng = np.random.default_rng(6)
    rows = []
    for aspect in CANVASES:
        for shape in SHAPES:
            for motion in MOTIONS:
                scene = sample_scene(rng, aspect=aspect, shape=shape, motion=motion)
                frames = _blur(render(scene, 16), sigma=1.0) + rng.normal(
                    0.0, 8.0, (16, *CANVASES[aspect], 3)
                )
                frames[3, 1:3, 1:3] = COLOURS[scene.colour]  # a stray fragment of the object colour
                rows.append(
                    grade(_expected(scene), read_clip(np.clip(np.rint(frames), 0, 255).astype(np.uint8)))
                )
    assert summarise(rows)["all"] == 1.0


def test_seam_report_finds_an_injected_jump() -> None:
    scene = sample_scene(np.random.default_rng(7), aspect="16:9", motion="right")
    shifted = np.roll(render(scene, 16, start=16), 5, axis=1)  # the second segment starts 5 px lower
    report = seam_report(np.concatenate([render(scene, 16), shifted]), [16])
    assert report.centroid_jumps[0] == pytest.approx(math.hypot(5.0, scene.speed), abs=0.2)
    assert report.max_jump > report.step_p95 + 1.0 and not report.smooth()
    summary = report.as_dict()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["seams"] == 1 and summary["seams_jumping"] == 1 and summary["smooth"] is False
    assert summary["max_centroid_jump_px"] == pytest.approx(report.max_jump, abs=0.01)


def test_seam_report_is_quiet_on_a_continuous_render() -> None:
    for motion in ("bouncing", "left", "growing", "still"):
        scene = sample_scene(np.random.default_rng(8), aspect="9:16", motion=motion)
        report = seam_report(render(scene, 200), [40, 80, 120, 160])
        assert all(jump <= report.step_p95 + 0.05 for jump in report.centroid_jumps)
        assert report.colour_jumps == (0.0,) * 4
        assert (report.object_drift, report.background_drift) == (0.0, 0.0)
        assert report.smooth()
        summary = report.as_dict()
        assert (summary["seams"], summary["seams_jumping"], summary["seams_losing_the_object"]) == (4, 0, 0)
        assert summary["smooth"] is True and summary["object_drift_rgb"] == 0.0


def test_seam_report_counts_a_seam_that_loses_the_object() -> None:
    scene = sample_scene(np.random.default_rng(12), aspect="16:9", background="navy", motion="left")
    frames = render(scene, 32)
    frames[16] = frames[16, 0, 0]  # the next segment opens on a frame without the object
    summary = seam_report(frames, [16]).as_dict()
    assert summary["seams_losing_the_object"] == 1 and summary["max_centroid_jump_px"] is None
    assert summary["smooth"] is False


def test_seam_report_reads_the_colour_of_a_blurred_object() -> None:
    scene = sample_scene(np.random.default_rng(11), aspect="1:1", motion="bouncing")
    frames = np.rint(_blur(render(scene, 64), sigma=1.5)).astype(np.uint8)
    report = seam_report(frames, [16, 32, 48])
    assert report.object_drift < 5.0 and report.smooth()


def test_seam_report_measures_colour_drift() -> None:
    scene = sample_scene(np.random.default_rng(9), colour="red", background="gray", motion="up")
    drifted = render(dataclasses.replace(scene, colour="orange"), 40, start=40)
    report = seam_report(np.concatenate([render(scene, 40), drifted]), [40])
    assert report.object_drift == pytest.approx(np.linalg.norm([20, 90, -10]), abs=1.0)
    assert report.colour_jumps[0] > 80.0 and not report.smooth()


def test_seam_report_refuses_seams_outside_the_video() -> None:
    with pytest.raises(ValueError, match="seams"):
        seam_report(np.zeros((8, 27, 48, 3), dtype=np.uint8), [8])


def test_grade_covers_only_the_named_attributes() -> None:
    scene = sample_scene(np.random.default_rng(10), shape="triangle", colour="yellow", motion="down")
    reading = read_clip(render(scene, 16))
    assert grade(Parsed(colour="yellow", motion="up"), reading) == {"colour": True, "motion": False}
    assert isinstance(reading, ClipReading) and reading.object_rgb == (235.0, 200.0, 40.0)


def test_summarise_gives_accuracy_per_attribute() -> None:
    rows = [{"shape": True, "motion": True}, {"shape": False, "motion": True}, {"colour": True}]
    summary = summarise(rows)
    assert summary == {"colour": 1.0, "motion": 1.0, "shape": 0.5, "all": 2 / 3, "clips": 3.0}
