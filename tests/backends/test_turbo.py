"""`turbo`: diffusers' First Block Cache on the transformer, off by default, as a models-file option."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the diffusers extra: pip install 'kinema[diffusers]'")

from diffusers_support import engine_for, never, no_progress, tiny_options

from kinema.backends.base import Segment
from kinema.backends.pipeline import generator, to_uint8
from kinema.backends.skyreels import SkyReelsBackend
from kinema.backends.skyreels import tiny_pipeline as tiny_skyreels
from kinema.backends.wan import WanBackend, tiny_pipeline
from kinema.errors import ModelLoadError
from kinema.spec import TextToVideo

STEPS = 8
SEGMENT = Segment(
    prompt="a red ball moving left",
    negative_prompt=None,
    num_frames=9,
    height=16,
    width=32,
    num_inference_steps=STEPS,
    guidance_scale=5.0,
    seeds=(3,),
)


def counted_pipeline() -> tuple[Any, list[int]]:
    """A fresh tiny Wan T2V pipeline (same seeded weights every time) that counts its block evaluations:
    a skipped block never reaches its feed-forward."""
    pipe = tiny_pipeline("t2v")
    evaluations = [0]

    def count(*_: Any) -> None:
        evaluations[0] += 1

    for block in pipe.transformer.blocks:
        block.ffn.register_forward_hook(count)
    return pipe, evaluations


def stock(pipe: Any) -> np.ndarray:
    frames = pipe(
        prompt=SEGMENT.prompt,
        num_frames=SEGMENT.num_frames,
        height=SEGMENT.height,
        width=SEGMENT.width,
        num_inference_steps=STEPS,
        guidance_scale=SEGMENT.guidance_scale,
        generator=generator(SEGMENT.seeds[0]),
        output_type="np",
    ).frames[0]
    return to_uint8(frames)


def test_default_is_the_stock_pipeline_exactly() -> None:
    pipe, evaluations = counted_pipeline()
    expected = stock(pipe)
    full = evaluations[0]
    assert full == STEPS * 2 * len(pipe.transformer.blocks)  # every block, cond and uncond, every step
    frames = WanBackend("w", pipeline=pipe, device="cpu", dtype="float32").generate(
        SEGMENT, on_step=no_progress, should_stop=never
    )
    assert evaluations[0] == 2 * full
    np.testing.assert_array_equal(frames[0], expected)


def test_turbo_skips_blocks_and_changes_the_output() -> None:
    reference, _ = counted_pipeline()
    expected = stock(reference)
    pipe, evaluations = counted_pipeline()
    turbo = WanBackend(
        "w", pipeline=pipe, device="cpu", dtype="float32", turbo="first-block", turbo_threshold=0.5
    )
    frames = turbo.generate(SEGMENT, on_step=no_progress, should_stop=never)
    full = STEPS * 2 * len(pipe.transformer.blocks)
    assert 0 < evaluations[0] < full  # the first block always runs; the others are skipped at times
    assert not np.array_equal(frames[0], expected)
    again = turbo.generate(SEGMENT, on_step=no_progress, should_stop=never)
    np.testing.assert_array_equal(again, frames)  # the cache is reset between calls: seeded draws repeat


def test_turbo_runs_through_the_engine(tmp_path: Path) -> None:
    pipe, evaluations = counted_pipeline()
    options: dict[str, Any] = {
        **tiny_options(16, max_frames=17),
        "turbo": "first-block",
        "turbo_threshold": 0.5,
    }
    options["steps"] = {"std": STEPS, "pro": STEPS}
    engine = engine_for(WanBackend("w", pipeline=pipe, **options))
    result = engine.run(TextToVideo(model="w", prompt="a cat", duration=0.5, seed=1), tmp_path)
    assert result.candidates[0].num_frames == 9
    assert 0 < evaluations[0] < STEPS * 2 * len(pipe.transformer.blocks)


def test_turbo_is_refused_where_diffusers_cannot_cache_the_blocks() -> None:
    with pytest.raises(ModelLoadError, match=r'turbo cannot be applied .* set turbo = "off"'):
        SkyReelsBackend("s", pipeline=tiny_skyreels(), device="cpu", turbo="first-block")


def test_unknown_turbo_is_refused_with_the_choices() -> None:
    with pytest.raises(ModelLoadError, match="turbo must be one of off, first-block"):
        WanBackend("w", pipeline=tiny_pipeline("t2v"), device="cpu", turbo="warp")
    with pytest.raises(ModelLoadError, match="turbo_threshold must be between 0 and 1"):
        WanBackend("w", pipeline=tiny_pipeline("t2v"), device="cpu", turbo="first-block", turbo_threshold=2)
