from pathlib import Path

import numpy as np
import pytest

from kinema.backends.fake import FakeBackend
from kinema.engine import video
from kinema.engine.generation import Engine
from kinema.errors import Cancelled, InvalidRequest, UnknownModel
from kinema.spec import ExtendVideo, ImageToVideo, TextToImage, TextToVideo


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def engine(fake: FakeBackend) -> Engine:
    def backend_for(model: str) -> FakeBackend:
        if model != "fake":
            raise UnknownModel(f"unknown model {model!r}")
        return fake

    return Engine(backend_for)


def decoded(path: str | None, size: tuple[int, int] = (18, 32)) -> np.ndarray:
    assert path is not None
    return video.read_video(Path(path), max_frames=10_000, max_pixels=10**7, size=size).frames


def test_text_to_video_makes_a_playable_clip_of_the_requested_duration(
    engine: Engine, tmp_path: Path
) -> None:
    result = engine.run(TextToVideo(model="fake", prompt="a red circle", duration=5, seed=1), tmp_path)
    cand = result.candidates[0]
    info = video.probe(Path(cand.video or ""))
    assert (info.num_frames, info.fps) == (40, 8)
    assert cand.num_frames == 40 and cand.duration_s == 5.0
    assert Path(cand.poster or "").is_file()
    assert (result.display_height, result.display_width) == (info.height, info.width)
    assert min(info.height, info.width) >= 256


def test_long_clip_is_chained_from_segments_conditioned_on_the_previous_tail(
    engine: Engine, fake: FakeBackend, tmp_path: Path
) -> None:
    engine.run(TextToVideo(model="fake", prompt="p", duration=10, seed=3), tmp_path)
    assert [c.num_frames for c in fake.calls] == [16] * 6 + [8]  # 16 + 5 * 12 + 4 new frames = 80
    assert all(len(c.given) == 4 for c in fake.calls[1:])
    assert fake.calls[0].seeds != fake.calls[1].seeds  # fresh noise per segment


def test_seeds_reproduce_and_candidates_equal_single_draws(engine: Engine, tmp_path: Path) -> None:
    many = engine.run(TextToVideo(model="fake", prompt="p", n=3, seed=10, duration=2), tmp_path / "many")
    assert [c.seed for c in many.candidates] == [10, 11, 12]
    single = engine.run(TextToVideo(model="fake", prompt="p", seed=12, duration=2), tmp_path / "one")
    again = engine.run(TextToVideo(model="fake", prompt="p", seed=12, duration=2), tmp_path / "again")
    np.testing.assert_array_equal(decoded(single.candidates[0].video), decoded(again.candidates[0].video))
    np.testing.assert_array_equal(decoded(many.candidates[2].video), decoded(single.candidates[0].video))
    assert not np.array_equal(decoded(many.candidates[0].video), decoded(many.candidates[1].video))


def test_progress_counts_every_step_of_every_segment(engine: Engine, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    engine.run(
        TextToVideo(model="fake", prompt="p", duration=5),
        tmp_path,
        on_step=lambda step, total, preview: seen.append((step, total)),
    )
    assert seen[-1] == (12, 12)  # 3 segments x 4 steps
    assert [s for s, _ in seen] == list(range(1, 13))


def test_cancel_stops_between_steps_and_leaves_no_video(engine: Engine, tmp_path: Path) -> None:
    calls = iter(range(100))
    with pytest.raises(Cancelled):
        engine.run(
            TextToVideo(model="fake", prompt="p", duration=10), tmp_path, should_stop=lambda: next(calls) >= 6
        )
    assert not list(tmp_path.glob("*.mp4"))


def write_image(path: Path, height: int, width: int, colour: tuple[int, int, int]) -> Path:
    video.write_poster(np.full((height, width, 3), colour, np.uint8), path)
    return path


def test_image_to_video_keeps_the_first_frame_and_takes_the_image_aspect(
    engine: Engine, fake: FakeBackend, tmp_path: Path
) -> None:
    image = write_image(tmp_path / "first.png", 320, 180, (200, 30, 30))  # portrait
    result = engine.run(ImageToVideo(model="fake", image=str(image), duration=2, seed=0), tmp_path / "out")
    assert result.plan.height > result.plan.width  # 9:16, whatever aspect_ratio said
    first = decoded(result.candidates[0].video, size=(result.plan.height, result.plan.width))[0]
    assert np.abs(first.astype(int) - (200, 30, 30)).mean() < 4
    assert list(fake.calls[0].given) == [0]


def test_first_and_last_frame_condition_both_ends(engine: Engine, fake: FakeBackend, tmp_path: Path) -> None:
    first = write_image(tmp_path / "a.png", 180, 320, (0, 0, 255))
    last = write_image(tmp_path / "b.png", 180, 320, (0, 255, 0))
    result = engine.run(
        ImageToVideo(model="fake", image=str(first), image_tail=str(last), duration=5), tmp_path / "out"
    )
    frames = decoded(result.candidates[0].video)
    assert np.abs(frames[-1].astype(int) - (0, 255, 0)).mean() < 4
    assert list(fake.calls[-1].given)[-1] == fake.calls[-1].num_frames - 1


def test_extend_appends_to_the_original_and_conditions_on_its_tail(
    engine: Engine, fake: FakeBackend, tmp_path: Path
) -> None:
    base = engine.run(TextToVideo(model="fake", prompt="p", duration=2, seed=5), tmp_path / "base")
    fake.calls.clear()
    longer = engine.run(
        ExtendVideo(model="fake", prompt="p", video=base.candidates[0].video or "", seconds=3),
        tmp_path / "ext",
    )
    assert longer.candidates[0].num_frames == 16 + 24
    original, extended = decoded(base.candidates[0].video), decoded(longer.candidates[0].video)
    assert np.abs(extended[:16].astype(int) - original).mean() < 3
    given = fake.calls[0].given
    assert sorted(given) == [0, 1, 2, 3]
    assert np.abs(given[3][0].astype(int) - original[-1]).mean() < 3


def test_text_to_image_writes_one_png_per_candidate(engine: Engine, tmp_path: Path) -> None:
    result = engine.run(TextToImage(model="fake", prompt="a star", n=2, aspect_ratio="1:1"), tmp_path)
    assert len(result.candidates) == 2
    image = video.read_image(Path(result.candidates[0].image or ""), max_pixels=10**7)
    assert image.shape[0] == image.shape[1] >= 256


def test_unknown_model_and_impossible_settings_are_clear_errors(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(UnknownModel, match="unknown model"):
        engine.run(TextToVideo(model="nope", prompt="p"), tmp_path)
    with pytest.raises(InvalidRequest, match="fps"):
        engine.run(TextToVideo(model="fake", prompt="p", fps=24), tmp_path)
    with pytest.raises(InvalidRequest, match="guidance_scale"):
        engine.run(TextToVideo(model="fake", prompt="p", guidance_scale=25.0), tmp_path)
