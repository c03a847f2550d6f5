import numpy as np
import pytest

from kinema.world.render import render, sample_scene, trajectory
from kinema.world.scene import BACKGROUNDS, CANVASES, COLOURS, MOTIONS, SHAPES, held_out_triples


def test_same_seed_same_clip_and_exact_palette_colours() -> None:
    a = render(sample_scene(np.random.default_rng(5), aspect="1:1"), 8)
    b = render(sample_scene(np.random.default_rng(5), aspect="1:1"), 8)
    np.testing.assert_array_equal(a, b)
    scene = sample_scene(np.random.default_rng(1), shape="square", colour="purple", background="navy")
    frame = render(scene, 1)[0]
    colours = {tuple(int(c) for c in p) for p in frame.reshape(-1, 3)}
    assert COLOURS["purple"] in colours and BACKGROUNDS["navy"] in colours


@pytest.mark.parametrize("aspect", list(CANVASES))
def test_every_canvas_has_its_native_size(aspect: str) -> None:
    scene = sample_scene(np.random.default_rng(0), aspect=aspect)
    assert render(scene, 4).shape == (4, *CANVASES[aspect], 3)


@pytest.mark.parametrize("shape", SHAPES)
def test_shapes_have_the_area_of_their_circle(shape: str) -> None:
    scene = sample_scene(
        np.random.default_rng(2),
        aspect="1:1",
        shape=shape,
        motion="still",
        colour="white",
        background="black",
    )
    frame = render(scene, 1)[0].astype(float)
    area = (frame[..., 0] - 10).sum() / (240 - 10)
    assert area == pytest.approx(np.pi * scene.radius**2, rel=0.06)


def test_movers_wrap_around_and_keep_their_speed() -> None:
    scene = sample_scene(np.random.default_rng(3), motion="left")
    x, y, _, _ = trajectory(scene, np.arange(400))
    assert x.min() >= 0 and x.max() < scene.width and np.all(y == scene.y)
    steps = np.diff(x)
    assert np.allclose(steps[steps < 0], -scene.speed)  # except where it re-enters on the right


def test_bouncing_stays_inside_and_growth_cycles() -> None:
    bounce = sample_scene(np.random.default_rng(4), motion="bouncing", shape="triangle")
    x, y, _, _ = trajectory(bounce, np.arange(500))
    assert x.min() > 0 and x.max() < bounce.width and y.min() > 0 and y.max() < bounce.height
    grow = sample_scene(np.random.default_rng(4), motion="growing")
    _, _, radius, _ = trajectory(grow, np.arange(200))
    assert radius.min() >= 2.5 and radius.max() <= 7.5 and (np.diff(radius) > 0).mean() > 0.9


def test_held_out_triples_leave_every_word_seen_in_training() -> None:
    held = held_out_triples()
    assert len(held) == 16
    for shape in SHAPES:
        assert sum(1 for c in COLOURS for m in MOTIONS if (shape, c, m) not in held) > 0
    assert {m for _, _, m in held} <= set(MOTIONS)
