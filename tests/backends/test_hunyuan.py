from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("diffusers", reason="needs the diffusers extra: pip install 'kinema[diffusers]'")

from diffusers_support import engine_for, gradient, never, no_progress, tiny_options

from kinema.backends.base import Backend, Segment
from kinema.backends.hunyuan import HunyuanVideoBackend, tiny_pipeline
from kinema.cli.main import app
from kinema.engine import video
from kinema.errors import InvalidRequest, ModelLoadError
from kinema.spec import TextToImage, TextToVideo

SEGMENT = Segment("a red ball moving left", None, 9, 16, 32, 2, 6.0, (7, 8))


@pytest.fixture(scope="module")
def pipeline() -> Any:
    return tiny_pipeline()


def backend(pipeline: Any, **options: Any) -> HunyuanVideoBackend:
    return HunyuanVideoBackend("hy", pipeline=pipeline, **tiny_options(16, max_frames=17), **options)


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


def test_load_errors_are_one_sentence_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "wan").mkdir()
    (tmp_path / "wan" / "model_index.json").write_text('{"_class_name": "WanPipeline"}')
    with pytest.raises(ModelLoadError, match="WanPipeline pipeline, not HunyuanVideo"):
        HunyuanVideoBackend("h", weights=str(tmp_path / "wan"), device="cpu").capabilities()
    with pytest.raises(ModelLoadError, match="true_cfg_scale is 1"):
        HunyuanVideoBackend("h", weights=str(tmp_path), true_cfg_scale=0.5)
