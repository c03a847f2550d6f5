"""`turbo`: diffusers' First Block Cache, MagCache and TaylorSeer on the transformer, off by default."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the diffusers extra: pip install 'kinema[diffusers]'")

from diffusers_support import engine_for, never, no_progress, tiny_options
from test_cfg_batch import two_experts

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


@pytest.mark.parametrize(
    ("turbo", "knobs"),
    [
        ("magcache", {"turbo_ratios": [1.0, 1.0, 0.99, 0.98]}),  # 4 ratios stretched over the 8 steps
        ("taylorseer", {"turbo_interval": 2, "turbo_warmup": 2}),
    ],
)
def test_magcache_and_taylorseer_skip_blocks_through_the_engine(
    turbo: str, knobs: dict[str, Any], tmp_path: Path
) -> None:
    reference, _ = counted_pipeline()
    expected = stock(reference)
    pipe, evaluations = counted_pipeline()
    options: dict[str, Any] = {**tiny_options(16, max_frames=17), "turbo": turbo, **knobs}
    options["steps"] = {"std": STEPS, "pro": STEPS}
    backend = WanBackend("w", pipeline=pipe, **options)
    result = engine_for(backend).run(TextToVideo(model="w", prompt="a cat", duration=0.5, seed=1), tmp_path)
    assert result.candidates[0].num_frames == 9
    full = STEPS * 2 * len(pipe.transformer.blocks)
    assert 0 < evaluations[0] < full
    evaluations[0] = 0
    frames = backend.generate(SEGMENT, on_step=no_progress, should_stop=never)
    assert 0 < evaluations[0] < full and not np.array_equal(frames[0], expected)
    np.testing.assert_array_equal(backend.generate(SEGMENT, on_step=no_progress, should_stop=never), frames)


def test_magcache_calibration_runs_every_block_and_prints_the_ratios(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pipe, evaluations = counted_pipeline()
    options = {"turbo": "magcache", "turbo_ratios": "calibrate"}
    wan = WanBackend("w", pipeline=pipe, device="cpu", dtype="float32", **options)
    wan.generate(SEGMENT, on_step=no_progress, should_stop=never)
    assert evaluations[0] == STEPS * 2 * len(pipe.transformer.blocks)
    assert "Copy these values to MagCacheConfig(mag_ratios=...)" in capsys.readouterr().out


def test_turbo_is_refused_where_diffusers_cannot_cache_the_blocks() -> None:
    with pytest.raises(ModelLoadError, match=r'turbo cannot be applied .* set turbo = "off"'):
        SkyReelsBackend("s", pipeline=tiny_skyreels(), device="cpu", turbo="first-block")


def test_new_turbos_are_refused_where_they_cannot_follow_the_steps() -> None:
    with pytest.raises(ModelLoadError, match=r"cannot follow Wan 2.2's switch between experts"):
        WanBackend("w", pipeline=two_experts(), device="cpu", turbo="magcache", turbo_ratios=[1.0, 1.0])
    with pytest.raises(ModelLoadError, match=r"sliding windows restart the denoising steps"):
        SkyReelsBackend("s", pipeline=tiny_skyreels(), device="cpu", turbo="taylorseer")


def test_unknown_turbo_is_refused_with_the_choices() -> None:
    with pytest.raises(ModelLoadError, match="turbo must be one of off, first-block, magcache, taylorseer"):
        WanBackend("w", pipeline=tiny_pipeline("t2v"), device="cpu", turbo="warp")
    with pytest.raises(ModelLoadError, match="turbo_threshold must be between 0 and 1"):
        WanBackend("w", pipeline=tiny_pipeline("t2v"), device="cpu", turbo="first-block", turbo_threshold=2)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"turbo": "magcache"}, 'turbo = "magcache" goes with turbo_ratios'),
        ({"turbo": "first-block", "turbo_ratios": [1.0, 1.0]}, "turbo_ratios with nothing else"),
        ({"turbo": "magcache", "turbo_ratios": [1.0, -1.0]}, "turbo_ratios must be a list of positive"),
        ({"turbo": "taylorseer", "turbo_interval": 1}, "turbo_interval must be a whole number of steps, 2"),
        ({"turbo": "taylorseer", "turbo_warmup": 0.5}, "turbo_warmup must be a whole number of steps, 1"),
        ({"turbo": "first-block", "turbo_interval": 3}, 'turbo_interval applies to turbo = "taylorseer"'),
        ({"turbo": "taylorseer", "turbo_threshold": 0.1}, 'turbo_threshold applies to turbo = "first-block"'),
    ]
    for options, message in bad:
        with pytest.raises(ModelLoadError, match=message):
            WanBackend("w", pipeline=tiny_pipeline("t2v"), device="cpu", **options)
