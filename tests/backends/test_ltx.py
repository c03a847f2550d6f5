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

from kinema.backends.base import Segment
from kinema.backends.ltx import LTXBackend, tiny_pipeline
from kinema.engine import video
from kinema.errors import InvalidRequest, ModelLoadError
from kinema.spec import ExtendVideo, ImageToVideo, TextToImage, TextToVideo


@pytest.fixture(scope="module")
def pipeline() -> Any:
    return tiny_pipeline()


@pytest.fixture
def ltx(pipeline: Any) -> LTXBackend:
    return LTXBackend("ltx", pipeline=pipeline, **tiny_options(32, max_frames=25))


def segment(frames: int = 17, **given: np.ndarray) -> Segment:
    return Segment(
        prompt="a red ball moving left",
        negative_prompt="blurry",
        num_frames=frames,
        height=32,
        width=64,
        num_inference_steps=2,
        guidance_scale=3.0,
        seeds=(4, 5),
        given={int(k.removeprefix("at")): v for k, v in given.items()},
    )


def test_capabilities_follow_the_vae_strides(ltx: LTXBackend) -> None:
    caps = ltx.capabilities()
    assert (caps.frame_multiple, caps.frame_offset, caps.size_multiple, caps.fps) == (8, 1, 32, 24)
    assert caps.context_frames == 9 and caps.first_last_frame
    assert caps.kinds == {"text2video", "image2video", "extend", "text2image"}


def test_text_to_video_and_image_through_the_engine(ltx: LTXBackend, tmp_path: Path) -> None:
    result = engine_for(ltx).run(TextToVideo(model="ltx", prompt="a cat", duration=0.5, seed=1), tmp_path)
    info = video.probe(Path(result.candidates[0].video or ""))
    assert (info.num_frames, info.fps) == (17, 24)  # 12 frames asked, 8k+1 legal
    still = engine_for(ltx).run(TextToImage(model="ltx", prompt="a cat"), tmp_path / "image")
    assert Path(still.candidates[0].image or "").is_file()


def test_given_frames_become_frame_conditions(ltx: LTXBackend) -> None:
    image = gradient(32, 64)[None].repeat(2, axis=0)
    first_last = ltx.conditions(segment(at0=image, at16=image), 0)
    assert [(c.image is not None, c.frame_index) for c in first_last] == [(True, 0), (True, 16)]
    tail = ltx.conditions(segment(**{f"at{k}": image for k in range(9)}), 1)
    assert [(len(c.video), c.frame_index) for c in tail] == [(9, 0)]  # one native video condition
    odd = ltx.conditions(segment(**{f"at{k}": image for k in range(4)}), 1)
    assert [(c.image is not None, c.frame_index) for c in odd] == [(True, 3)]  # 4 is not 8k+1: the last one


def test_first_and_last_frame_are_kept_exactly(ltx: LTXBackend, tmp_path: Path) -> None:
    recorder = Recorder(ltx)
    first = write_image(tmp_path / "a.png", gradient(32, 64, seed=1))
    last = write_image(tmp_path / "b.png", gradient(32, 64, seed=2))
    request = ImageToVideo(model="ltx", prompt="p", image=str(first), image_tail=str(last), duration=0.5, n=2)
    engine_for(recorder).run(request, tmp_path / "out")
    ((seg, frames),) = recorder.calls
    assert set(seg.given) == {0, 16}
    np.testing.assert_array_equal(frames[:, 0], seg.given[0])
    np.testing.assert_array_equal(frames[:, 16], seg.given[16])


def test_long_video_extends_natively_from_the_previous_tail(ltx: LTXBackend, tmp_path: Path) -> None:
    recorder = Recorder(ltx)
    result = engine_for(recorder).run(TextToVideo(model="ltx", prompt="p", duration=2, seed=3), tmp_path)
    lengths = [seg.num_frames for seg, _ in recorder.calls]
    assert lengths == [25, 25, 17]  # 25 + 16 + 8 new frames, each later segment after 9 of context
    for seg, _ in recorder.calls[1:]:
        assert sorted(seg.given) == list(range(9))
        assert [len(c.video) for c in ltx.conditions(seg, 0)] == [9]
    assert result.candidates[0].num_frames == 49


def test_extend_a_video(ltx: LTXBackend, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "base.mp4", frames=24, height=32, width=64, fps=24)
    result = engine_for(ltx).run(
        ExtendVideo(model="ltx", prompt="p", video=str(clip), seconds=0.5), tmp_path / "o"
    )
    assert result.candidates[0].num_frames == 24 + 17


def test_tiny_folder_round_trips_through_save_and_load(ltx: LTXBackend, tmp_path: Path) -> None:
    options = LTXBackend.make_tiny(tmp_path / "ltx")
    loaded = LTXBackend("ltx", weights=str(tmp_path / "ltx"), **options)
    image = gradient(32, 64)[None].repeat(2, axis=0)
    seg = segment(at0=image)
    fresh = ltx.generate(seg, on_step=no_progress, should_stop=never)
    again = loaded.generate(seg, on_step=no_progress, should_stop=never)
    assert np.abs(fresh.astype(int) - again.astype(int)).max() <= 1
    assert not np.array_equal(fresh[0], fresh[1])  # two seeds, two draws


def test_refuses_frame_counts_and_bad_context(pipeline: Any, ltx: LTXBackend) -> None:
    with pytest.raises(InvalidRequest, match=r"k\*8\+1"):
        ltx.generate(segment(frames=13), on_step=no_progress, should_stop=never)
    with pytest.raises(ModelLoadError, match="context_frames"):
        LTXBackend("ltx", pipeline=pipeline, context_frames=4).capabilities()


def test_wrong_layout_says_which_family(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text('{"_class_name": "WanPipeline"}')
    with pytest.raises(ModelLoadError, match="WanPipeline pipeline, not LTX-Video"):
        LTXBackend("ltx", weights=str(tmp_path), device="cpu").capabilities()
