import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the diffusers extra: pip install 'kinema[diffusers]'")

from diffusers_support import (
    Recorder,
    engine_for,
    gradient,
    never,
    no_progress,
    tiny_options,
    write_clip,
    write_image,
)

from kinema.backends.base import Backend, Segment
from kinema.backends.wan import WanBackend, tiny_pipeline
from kinema.engine import video
from kinema.errors import Cancelled, InvalidRequest, ModelLoadError
from kinema.spec import ExtendVideo, ImageToVideo, TextToImage, TextToVideo


@pytest.fixture(scope="module")
def pipelines() -> dict[str, Any]:
    return {variant: tiny_pipeline(variant) for variant in ("t2v", "i2v", "flf2v", "ti2v")}


def backend(pipelines: dict[str, Any], variant: str) -> WanBackend:
    side = 32 if variant == "ti2v" else 16
    return WanBackend("wan", pipeline=pipelines[variant], **tiny_options(side, max_frames=17))


def segment(n: int = 1, frames: int = 9, **given: np.ndarray) -> Segment:
    return Segment(
        prompt="a red ball moving left",
        negative_prompt=None,
        num_frames=frames,
        height=16,
        width=32,
        num_inference_steps=2,
        guidance_scale=5.0,
        seeds=tuple(range(7, 7 + n)),
        given={int(k.removeprefix("at")): v for k, v in given.items()},
    )


def test_checkpoint_configs_decide_what_it_can_do(pipelines: dict[str, Any]) -> None:
    kinds = {v: backend(pipelines, v).capabilities().kinds for v in pipelines}
    assert kinds["t2v"] == {"text2video", "text2image"}
    assert kinds["i2v"] == {"image2video", "extend"}
    assert kinds["flf2v"] == {"image2video"} and backend(pipelines, "flf2v").capabilities().first_last_frame
    assert kinds["ti2v"] == {"text2video", "text2image", "image2video", "extend"}
    caps = backend(pipelines, "t2v").capabilities()
    assert (caps.frame_multiple, caps.frame_offset, caps.fps, caps.size_multiple) == (4, 1, 16, 16)
    assert isinstance(backend(pipelines, "t2v"), Backend)


def test_text_to_video_through_the_engine(pipelines: dict[str, Any], tmp_path: Path) -> None:
    engine = engine_for(backend(pipelines, "t2v"))
    result = engine.run(TextToVideo(model="wan", prompt="a cat", duration=1, seed=5), tmp_path)
    info = video.probe(Path(result.candidates[0].video or ""))
    assert (info.num_frames, info.fps) == (17, 16)  # 16 frames asked, 4k+1 legal
    assert (result.plan.height, result.plan.width, result.plan.num_inference_steps) == (16, 32, 2)


def test_text_to_image_through_the_engine(pipelines: dict[str, Any], tmp_path: Path) -> None:
    result = engine_for(backend(pipelines, "t2v")).run(TextToImage(model="wan", prompt="a cat"), tmp_path)
    assert Path(result.candidates[0].image or "").is_file()


def test_candidates_equal_single_draws_of_their_seeds(pipelines: dict[str, Any]) -> None:
    wan = backend(pipelines, "t2v")
    steps: list[tuple[int, int]] = []
    both = wan.generate(segment(n=2), on_step=lambda s, t, p: steps.append((s, t)), should_stop=never)
    second = wan.generate(_seeded(8), on_step=no_progress, should_stop=never)
    assert both.shape == (2, 9, 16, 32, 3) and both.dtype == np.uint8
    np.testing.assert_array_equal(both[1], second[0])
    assert not np.array_equal(both[0], both[1])
    assert steps[-1] == (2, 2) and all(t == 2 for _, t in steps)


def _seeded(seed: int) -> Segment:
    base = segment()
    return Segment(**{**base.__dict__, "seeds": (seed,)})


def test_image_to_video_keeps_the_first_frame_exactly(pipelines: dict[str, Any], tmp_path: Path) -> None:
    recorder = Recorder(backend(pipelines, "i2v"))
    image = write_image(tmp_path / "first.png", gradient(32, 64))
    result = engine_for(recorder).run(
        ImageToVideo(model="wan", prompt="p", image=str(image), duration=0.5, seed=1), tmp_path / "out"
    )
    ((seg, frames),) = recorder.calls
    assert set(seg.given) == {0}
    np.testing.assert_array_equal(frames[:, 0], seg.given[0])
    assert result.candidates[0].num_frames == 9


def test_first_and_last_frame_are_both_kept(pipelines: dict[str, Any], tmp_path: Path) -> None:
    recorder = Recorder(backend(pipelines, "flf2v"))
    first = write_image(tmp_path / "a.png", gradient(32, 64, seed=1))
    last = write_image(tmp_path / "b.png", gradient(32, 64, seed=2))
    request = ImageToVideo(model="wan", prompt="p", image=str(first), image_tail=str(last), duration=0.5)
    engine_for(recorder).run(request, tmp_path / "out")
    ((seg, frames),) = recorder.calls
    assert set(seg.given) == {0, seg.num_frames - 1}
    np.testing.assert_array_equal(frames[:, -1], seg.given[seg.num_frames - 1])


def test_flf2v_refuses_a_single_frame_and_t2v_refuses_images(pipelines: dict[str, Any]) -> None:
    image = gradient(16, 32)[None]
    with pytest.raises(InvalidRequest, match="both a first and a last frame"):
        backend(pipelines, "flf2v").generate(segment(at0=image), on_step=no_progress, should_stop=never)
    with pytest.raises(InvalidRequest, match="text-to-video checkpoint"):
        backend(pipelines, "t2v").generate(segment(at0=image), on_step=no_progress, should_stop=never)
    with pytest.raises(InvalidRequest, match="frames in between"):
        backend(pipelines, "i2v").generate(
            segment(at0=image, at3=image), on_step=no_progress, should_stop=never
        )


def test_long_video_chains_segments_on_the_previous_last_frame(
    pipelines: dict[str, Any], tmp_path: Path
) -> None:
    recorder = Recorder(backend(pipelines, "ti2v"))
    result = engine_for(recorder).run(TextToVideo(model="wan", prompt="p", duration=2, seed=3), tmp_path)
    assert [seg.num_frames for seg, _ in recorder.calls] == [17, 17, 17]  # 17 + 16 + 16 = 49 frames
    assert recorder.calls[0][0].given == {}
    for (_, before), (seg, _) in itertools.pairwise(recorder.calls):
        assert set(seg.given) == {0}  # last-frame image-to-video, colour-anchored to the first segment
        assert np.abs(seg.given[0].astype(int) - before[:, -1].astype(int)).max() <= 13
    assert result.candidates[0].num_frames == 49


def test_extend_continues_a_video_from_its_last_frame(pipelines: dict[str, Any], tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "base.mp4", frames=16, height=16, width=32, fps=16)
    recorder = Recorder(backend(pipelines, "i2v"))
    result = engine_for(recorder).run(
        ExtendVideo(model="wan", prompt="p", video=str(clip), seconds=1, seed=2), tmp_path / "out"
    )
    assert all(set(seg.given) == {0} for seg, _ in recorder.calls)
    assert result.candidates[0].num_frames == 16 + 17


def test_tiny_folder_round_trips_through_save_and_load(pipelines: dict[str, Any], tmp_path: Path) -> None:
    options = WanBackend.make_tiny(tmp_path / "wan")
    loaded = WanBackend("wan", weights=str(tmp_path / "wan"), **options)
    assert loaded.capabilities().kinds == backend(pipelines, "ti2v").capabilities().kinds
    seg = Segment(**{**segment().__dict__, "height": 32, "width": 64})
    image = gradient(32, 64)[None]
    for given in ({}, {0: image}):
        seg = Segment(**{**seg.__dict__, "given": given})
        fresh = backend(pipelines, "ti2v").generate(seg, on_step=no_progress, should_stop=never)
        again = loaded.generate(seg, on_step=no_progress, should_stop=never)
        assert np.abs(fresh.astype(int) - again.astype(int)).max() <= 1


def test_cancel_stops_between_steps(pipelines: dict[str, Any]) -> None:
    calls: list[int] = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Cancelled):
        backend(pipelines, "t2v").generate(segment(), on_step=no_progress, should_stop=stop)
    assert len(calls) == 2  # once before the loop, once after the first step


def test_refuses_frame_counts_and_sizes_it_cannot_make(pipelines: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest, match=r"k\*4\+1"):
        backend(pipelines, "t2v").generate(segment(frames=8), on_step=no_progress, should_stop=never)


def test_load_errors_are_one_sentence_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = WanBackend("w", weights=str(tmp_path / "nowhere"), device="cpu")
    with pytest.raises(ModelLoadError, match="does not exist"):
        missing.capabilities()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model_index.json").write_text('{"_class_name": "LTXPipeline"}')
    with pytest.raises(ModelLoadError, match="LTXPipeline pipeline, not Wan"):
        WanBackend("w", weights=str(tmp_path / "other"), device="cpu").capabilities()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"has no model_index\.json"):
        WanBackend("w", weights=str(tmp_path / "empty"), device="cpu").capabilities()
    with pytest.raises(ModelLoadError, match="no `weights`"):
        WanBackend("w")
    monkeypatch.setitem(__import__("sys").modules, "diffusers", None)
    with pytest.raises(ModelLoadError, match=r"pip install 'kinema\[diffusers\]'"):
        WanBackend("w", weights=str(tmp_path))
