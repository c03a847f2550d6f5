from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the diffusers extra: pip install 'kinema[diffusers]'")

from diffusers_support import Recorder, engine_for, gradient, never, no_progress, tiny_options, write_image

from kinema.backends.base import Segment
from kinema.backends.cogvideox import CogVideoXBackend, tiny_pipeline
from kinema.engine import video
from kinema.errors import InvalidRequest, ModelLoadError
from kinema.spec import ImageToVideo, TextToVideo


@pytest.fixture(scope="module")
def pipelines() -> dict[str, Any]:
    return {variant: tiny_pipeline(variant) for variant in ("t2v", "i2v")}


def backend(pipelines: dict[str, Any], variant: str) -> CogVideoXBackend:
    return CogVideoXBackend("cog", pipeline=pipelines[variant], **tiny_options(16, max_frames=17))


def test_text_to_video_through_the_engine(pipelines: dict[str, Any], tmp_path: Path) -> None:
    cog = backend(pipelines, "t2v")
    assert cog.capabilities().kinds == {"text2video", "text2image"}
    result = engine_for(cog).run(TextToVideo(model="cog", prompt="a cat", duration=1, seed=2), tmp_path)
    info = video.probe(Path(result.candidates[0].video or ""))
    assert (info.num_frames, info.fps) == (9, 8)  # 8 frames asked, 8k+1 legal


def test_image_to_video_and_a_long_video_chained_on_the_last_frame(
    pipelines: dict[str, Any], tmp_path: Path
) -> None:
    recorder = Recorder(backend(pipelines, "i2v"))
    image = write_image(tmp_path / "first.png", gradient(32, 64))
    result = engine_for(recorder).run(
        ImageToVideo(model="cog", prompt="p", image=str(image), duration=4, seed=1, n=2), tmp_path / "out"
    )
    assert [seg.num_frames for seg, _ in recorder.calls] == [17, 17]  # 17 + 16 = 33 frames
    first, then = recorder.calls[0][0], recorder.calls[1][0]
    assert set(first.given) == {0} and set(then.given) == {0}
    np.testing.assert_array_equal(recorder.calls[0][1][:, 0], first.given[0])
    assert result.candidates[1].num_frames == 33


def test_tiny_folder_round_trips_through_save_and_load(pipelines: dict[str, Any], tmp_path: Path) -> None:
    options = CogVideoXBackend.make_tiny(tmp_path / "cog", variant="i2v")
    loaded = CogVideoXBackend("cog", weights=str(tmp_path / "cog"), **options)
    seg = Segment("a cat", None, 9, 16, 32, 2, 6.0, (3,), {0: gradient(16, 32)[None]})
    fresh = backend(pipelines, "i2v").generate(seg, on_step=no_progress, should_stop=never)
    again = loaded.generate(seg, on_step=no_progress, should_stop=never)
    assert np.abs(fresh.astype(int) - again.astype(int)).max() <= 1


def test_refuses_what_the_checkpoint_cannot_do(pipelines: dict[str, Any], tmp_path: Path) -> None:
    image = gradient(16, 32)[None]
    with pytest.raises(InvalidRequest, match="cannot start from an image"):
        backend(pipelines, "t2v").generate(
            Segment("p", None, 9, 16, 32, 2, 6.0, (1,), {0: image}), on_step=no_progress, should_stop=never
        )
    with pytest.raises(InvalidRequest, match="only a first frame"):
        backend(pipelines, "i2v").generate(
            Segment("p", None, 9, 16, 32, 2, 6.0, (1,), {0: image, 8: image}),
            on_step=no_progress,
            should_stop=never,
        )
    (tmp_path / "model_index.json").write_text('{"_class_name": "KolorsPipeline"}')
    with pytest.raises(ModelLoadError, match="not CogVideoX"):
        CogVideoXBackend("cog", weights=str(tmp_path), device="cpu").capabilities()
