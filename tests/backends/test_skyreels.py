import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

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
from kinema.backends.skyreels import PIPELINES, SkyReelsBackend, tiny_pipeline, windows
from kinema.cli.main import app
from kinema.engine import video
from kinema.errors import InvalidRequest, ModelLoadError
from kinema.spec import ExtendVideo, ImageToVideo, TextToVideo

TINY = {**tiny_options(16, max_frames=21), "overlap_history": 5, "base_num_frames": 9}


@pytest.fixture(scope="module")
def pipeline() -> Any:
    return tiny_pipeline()


def backend(pipeline: Any) -> SkyReelsBackend:
    return SkyReelsBackend("sky", pipeline=pipeline, **TINY)


def used(sky: SkyReelsBackend) -> set[str]:
    """The diffusion-forcing pipelines the backend has called (made from the loaded one on first use)."""
    return {name.removeprefix("SkyReelsV2DiffusionForcing") for name in sky._pipes}


def test_one_checkpoint_does_every_kind_at_24_fps(pipeline: Any) -> None:
    caps = backend(pipeline).capabilities()
    assert caps.kinds == {"text2video", "image2video", "extend", "text2image"} and caps.first_last_frame
    assert (caps.frame_multiple, caps.frame_offset, caps.fps, caps.size_multiple) == (4, 1, 24, 16)
    assert caps.context_frames == 5  # the overlap history is what the next segment is conditioned on
    assert isinstance(backend(pipeline), Backend)


def test_text_to_video_slides_windows_inside_one_call(pipeline: Any, tmp_path: Path) -> None:
    recorder = Recorder(backend(pipeline))
    steps: list[tuple[int, int]] = []
    result = engine_for(recorder).run(
        TextToVideo(model="sky", prompt="a cat", duration=0.75, seed=5),
        tmp_path,
        on_step=lambda s, t, p: steps.append((s, t)),
    )
    ((seg, _),) = recorder.calls
    assert seg.num_frames == 21 and windows(21, base=9, overlap=5) == 4  # 18 asked, 4k+1 legal
    info = video.probe(Path(result.candidates[0].video or ""))
    assert (info.num_frames, info.fps) == (21, 24)  # a first segment is written whole
    assert [s for s, _ in steps] == sorted(s for s, _ in steps) and steps[-1] == (2, 2)


def test_image_to_video_keeps_first_and_last_frames(pipeline: Any, tmp_path: Path) -> None:
    sky = backend(pipeline)
    recorder = Recorder(sky)
    first = write_image(tmp_path / "a.png", gradient(32, 64, seed=1))
    last = write_image(tmp_path / "b.png", gradient(32, 64, seed=2))
    request = ImageToVideo(model="sky", prompt="p", image=str(first), image_tail=str(last), duration=0.3)
    engine_for(recorder).run(request, tmp_path / "out")
    ((seg, frames),) = recorder.calls
    assert set(seg.given) == {0, seg.num_frames - 1}
    np.testing.assert_array_equal(frames[:, 0], seg.given[0])
    np.testing.assert_array_equal(frames[:, -1], seg.given[seg.num_frames - 1])
    assert used(sky) == {"Pipeline", "ImageToVideoPipeline"}


def test_long_video_continues_each_segment_from_the_overlap_history(pipeline: Any, tmp_path: Path) -> None:
    sky = backend(pipeline)
    recorder = Recorder(sky)
    result = engine_for(recorder).run(TextToVideo(model="sky", prompt="p", duration=2, seed=3), tmp_path)
    assert [seg.num_frames for seg, _ in recorder.calls] == [21, 21, 17]  # 21 + 16 + 12 = 49 frames (4k+1)
    for (_, before), (seg, _) in itertools.pairwise(recorder.calls):
        assert set(seg.given) == set(range(5))  # 5 frames of motion, not one still
        assert np.abs(seg.given[4].astype(int) - before[:, -1].astype(int)).max() <= 13  # colour anchor
    assert "VideoToVideoPipeline" in used(sky)
    assert result.candidates[0].num_frames == 49


def test_extend_continues_a_video_natively(pipeline: Any, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "base.mp4", frames=12, height=16, width=32, fps=24)
    sky = backend(pipeline)
    recorder = Recorder(sky)
    result = engine_for(recorder).run(
        ExtendVideo(model="sky", prompt="p", video=str(clip), seconds=0.5, seed=2), tmp_path / "out"
    )
    ((seg, frames),) = recorder.calls
    assert set(seg.given) == set(range(5)) and seg.num_frames == 21  # 5 + 13 new, 4k+1
    np.testing.assert_array_equal(frames[:, :5], np.stack([seg.given[k] for k in range(5)], axis=1))
    assert used(sky) == {"Pipeline", "VideoToVideoPipeline"}  # the loaded one, and continuation
    assert result.candidates[0].num_frames == 12 + result.plan.num_frames == 12 + 13


def test_candidates_equal_single_draws_of_their_seeds(pipeline: Any) -> None:
    sky = backend(pipeline)
    base = Segment("a red ball", None, 9, 16, 32, 2, 6.0, (7, 8))
    both = sky.generate(base, on_step=no_progress, should_stop=never)
    second = sky.generate(Segment(**{**base.__dict__, "seeds": (8,)}), on_step=no_progress, should_stop=never)
    np.testing.assert_array_equal(both[1], second[0])
    assert not np.array_equal(both[0], both[1])


def test_refuses_what_it_cannot_keep(pipeline: Any) -> None:
    image = gradient(16, 32)[None]
    seg = Segment("p", None, 9, 16, 32, 2, 6.0, (1,))
    for given, message in (
        ({8: image}, "needs a first frame"),
        ({0: image, 4: image}, "frames in between"),
        ({0: image, 1: image, 8: image}, "cannot keep a last frame while continuing"),
    ):
        with pytest.raises(InvalidRequest, match=message):
            backend(pipeline).generate(
                Segment(**{**seg.__dict__, "given": given}), on_step=no_progress, should_stop=never
            )
    with pytest.raises(InvalidRequest, match=r"k\*4\+1"):
        backend(pipeline).generate(
            Segment(**{**seg.__dict__, "num_frames": 8}), on_step=no_progress, should_stop=never
        )


def test_make_tiny_folder_serves_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["models", "make-tiny", "skyreels", str(tmp_path / "sky")])
    assert made.exit_code == 0, made.output
    monkeypatch.setenv("KINEMA_MODELS_FILE", str(tmp_path / "models.toml"))
    monkeypatch.setenv("KINEMA_TORCH_THREADS", "1")
    out = tmp_path / "clip.mp4"
    args = [
        "generate",
        "a red ball",
        "--model",
        "tiny-skyreels",
        "-o",
        str(out),
        "--seed",
        "1",
        "--duration",
        "1",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert video.probe(out).fps == 24 and video.probe(out).num_frames == 25  # 24 asked, 4k+1


def test_load_errors_are_one_sentence_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "wan").mkdir()
    (tmp_path / "wan" / "model_index.json").write_text('{"_class_name": "WanPipeline"}')
    with pytest.raises(ModelLoadError, match="WanPipeline pipeline, not SkyReels-V2 diffusion forcing"):
        SkyReelsBackend("s", weights=str(tmp_path / "wan"), device="cpu").capabilities()
    with pytest.raises(ModelLoadError, match="overlap_history must be 4k\\+1"):
        SkyReelsBackend("s", weights=str(tmp_path), overlap_history=16)
    assert PIPELINES[0] == "SkyReelsV2DiffusionForcingPipeline"
