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
from kinema.backends.hunyuan import TINY_I2V_TEMPLATE, HunyuanVideoBackend, tiny_pipeline
from kinema.cli.main import app
from kinema.engine import video
from kinema.errors import InvalidRequest, ModelLoadError
from kinema.spec import ExtendVideo, ImageToVideo, TextToImage, TextToVideo

SEGMENT = Segment("a red ball moving left", None, 9, 16, 32, 2, 6.0, (7, 8))


@pytest.fixture(scope="module")
def pipeline() -> Any:
    return tiny_pipeline()


@pytest.fixture(scope="module")
def image_pipelines() -> dict[str, Any]:
    return {variant: tiny_pipeline(variant) for variant in ("i2v", "i2v-33ch")}


def backend(pipeline: Any, **options: Any) -> HunyuanVideoBackend:
    return HunyuanVideoBackend("hy", pipeline=pipeline, **tiny_options(16, max_frames=17), **options)


def image_backend(image_pipelines: dict[str, Any], variant: str) -> HunyuanVideoBackend:
    return backend(image_pipelines[variant], prompt_template=TINY_I2V_TEMPLATE)


def test_a_text_to_video_checkpoint_at_24_fps(pipeline: Any) -> None:
    caps = backend(pipeline).capabilities()
    assert caps.kinds == {"text2video", "text2image"} and caps.context_frames == 0
    assert (caps.frame_multiple, caps.frame_offset, caps.fps, caps.size_multiple) == (4, 1, 24, 16)
    assert caps.guidance == 6.0  # the embedded guidance the distilled transformer reads
    assert isinstance(backend(pipeline), Backend)


def test_text_to_video_and_image_through_the_engine(pipeline: Any, tmp_path: Path) -> None:
    engine = engine_for(backend(pipeline))
    result = engine.run(TextToVideo(model="hy", prompt="a cat", duration=0.5, seed=5), tmp_path / "v")
    info = video.probe(Path(result.candidates[0].video or ""))
    assert (info.num_frames, info.fps) == (13, 24)  # 12 frames asked, 4k+1 legal
    still = engine.run(TextToImage(model="hy", prompt="a cat"), tmp_path / "i")
    assert Path(still.candidates[0].image or "").is_file()


def test_candidates_equal_single_draws_and_true_cfg_changes_the_draw(pipeline: Any) -> None:
    hy = backend(pipeline)
    steps: list[tuple[int, int]] = []
    both = hy.generate(SEGMENT, on_step=lambda s, t, p: steps.append((s, t)), should_stop=never)
    second = hy.generate(
        Segment(**{**SEGMENT.__dict__, "seeds": (8,)}), on_step=no_progress, should_stop=never
    )
    np.testing.assert_array_equal(both[1], second[0])
    assert not np.array_equal(both[0], both[1]) and steps[-1] == (2, 2)
    negative = Segment(**{**SEGMENT.__dict__, "negative_prompt": "blur", "seeds": (8,)})
    same = hy.generate(negative, on_step=no_progress, should_stop=never)
    np.testing.assert_array_equal(same, second)  # without true CFG the negative prompt is not used
    cfg = backend(pipeline, true_cfg_scale=4.0).generate(negative, on_step=no_progress, should_stop=never)
    assert not np.array_equal(cfg, second)


def test_refuses_frames_and_long_videos(pipeline: Any, tmp_path: Path) -> None:
    given = Segment(**{**SEGMENT.__dict__, "seeds": (1,), "given": {0: gradient(16, 32)[None]}})
    with pytest.raises(InvalidRequest, match="text-to-video checkpoint"):
        backend(pipeline).generate(given, on_step=no_progress, should_stop=never)
    with pytest.raises(InvalidRequest, match="cannot continue a video"):
        engine_for(backend(pipeline)).run(TextToVideo(model="hy", prompt="p", duration=2), tmp_path)


@pytest.mark.parametrize("variant", ["i2v", "i2v-33ch"])
def test_image_to_video_keeps_the_first_frame(
    image_pipelines: dict[str, Any], variant: str, tmp_path: Path
) -> None:
    hy = image_backend(image_pipelines, variant)
    caps = hy.capabilities()
    assert caps.kinds == {"image2video", "extend"} and caps.context_frames == 1
    assert caps.guidance == (
        6.0 if variant == "i2v" else 1.0
    )  # the 33-channel model has no embedded guidance
    recorder = Recorder(hy)
    image = write_image(tmp_path / "first.png", gradient(32, 64))
    result = engine_for(recorder).run(
        ImageToVideo(model="hy", prompt="p", image=str(image), duration=0.3, seed=1), tmp_path / "out"
    )
    ((seg, frames),) = recorder.calls
    assert set(seg.given) == {0} and frames.shape[1] == seg.num_frames == 9
    np.testing.assert_array_equal(frames[:, 0], seg.given[0])
    assert not np.array_equal(frames[:, 1], frames[:, 2])  # generated frames, not copies of the image
    assert result.candidates[0].num_frames == 9


def test_image_checkpoint_extends_from_the_last_frame(
    image_pipelines: dict[str, Any], tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "base.mp4", frames=12, height=16, width=32, fps=24)
    recorder = Recorder(image_backend(image_pipelines, "i2v"))
    result = engine_for(recorder).run(
        ExtendVideo(model="hy", prompt="p", video=str(clip), seconds=1, seed=2), tmp_path / "out"
    )
    assert len(recorder.calls) == 2 and all(set(seg.given) == {0} for seg, _ in recorder.calls)
    assert result.candidates[0].num_frames == 12 + result.plan.num_frames


def test_image_checkpoints_need_exactly_a_first_frame(image_pipelines: dict[str, Any]) -> None:
    hy = image_backend(image_pipelines, "i2v")
    image = gradient(16, 32)[None]
    for given in ({}, {0: image, 8: image}):
        with pytest.raises(InvalidRequest, match="send exactly a first frame"):
            hy.generate(
                Segment(**{**SEGMENT.__dict__, "seeds": (1,), "given": given}),
                on_step=no_progress,
                should_stop=never,
            )


def test_make_tiny_folder_serves_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["models", "make-tiny", "hunyuanvideo", str(tmp_path / "hy")])
    assert made.exit_code == 0, made.output
    monkeypatch.setenv("KINEMA_MODELS_FILE", str(tmp_path / "models.toml"))
    monkeypatch.setenv("KINEMA_TORCH_THREADS", "1")
    out = tmp_path / "clip.mp4"
    args = ["generate", "a red ball", "--model", "tiny-hunyuanvideo", "-o", str(out), "--duration", "0.5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert video.probe(out).num_frames == 13
    made = runner.invoke(
        app,
        ["models", "make-tiny", "hunyuanvideo", str(tmp_path / "i2v"), "--variant", "i2v", "--id", "hy-i2v"],
    )
    assert made.exit_code == 0, made.output
    image = write_image(tmp_path / "first.png", gradient(32, 64))
    args = [
        "generate",
        "a red ball",
        "--model",
        "hy-i2v",
        "--image",
        str(image),
        "-o",
        str(out),
        "--duration",
        "0.3",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert video.probe(out).num_frames == 9


def test_load_errors_are_one_sentence_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "wan").mkdir()
    (tmp_path / "wan" / "model_index.json").write_text('{"_class_name": "WanPipeline"}')
    with pytest.raises(ModelLoadError, match=r"WanPipeline pipeline, not HunyuanVideo \(e\.g\."):
        HunyuanVideoBackend("h", weights=str(tmp_path / "wan"), device="cpu").capabilities()
    with pytest.raises(ModelLoadError, match="true_cfg_scale is 1"):
        HunyuanVideoBackend("h", weights=str(tmp_path), true_cfg_scale=0.5)
