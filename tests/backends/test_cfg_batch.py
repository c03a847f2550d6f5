"""`cfg_batch`: the prompt and negative-prompt transformer calls of a step as one forward on a batch of two.

Run through the engine, as the CLI and the server run it. Batched kernels round differently, so the
frames may move by one level of 255 (docs/models.md has the measurement); the call count halves.
"""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the diffusers extra: pip install 'kinema[diffusers]'")

from diffusers_support import Recorder, engine_for, tiny_options

from kinema.backends.hunyuan import TINY_I2V_TEMPLATE, HunyuanVideoBackend
from kinema.backends.hunyuan import tiny_pipeline as tiny_hunyuan
from kinema.backends.ltx import LTXBackend
from kinema.backends.ltx import tiny_pipeline as tiny_ltx
from kinema.backends.pipeline import library
from kinema.backends.skyreels import SkyReelsBackend
from kinema.backends.skyreels import tiny_pipeline as tiny_skyreels
from kinema.backends.wan import TINY_TRANSFORMER, WanBackend
from kinema.backends.wan import tiny_pipeline as tiny_wan
from kinema.errors import ModelLoadError
from kinema.spec import TextToVideo

STEPS = 3
REQUEST = TextToVideo(model="m", prompt="a red ball", negative_prompt="blur", duration=0.5, seed=4)


def counted(module: Any) -> list[int]:
    """How many times `module` (a transformer's input embedding) really runs: once per forward."""
    runs = [0]
    module.register_forward_pre_hook(lambda *_: runs.__setitem__(0, runs[0] + 1))
    return runs


def draw(backend: Any, tmp_path: Path) -> np.ndarray:
    recorder = Recorder(backend)
    engine_for(recorder).run(REQUEST, tmp_path)
    ((_, frames),) = recorder.calls
    return frames


def options(side: int = 16, **extra: Any) -> dict[str, Any]:
    return {**tiny_options(side, max_frames=17), "steps": {"std": STEPS, "pro": STEPS}, **extra}


def assert_close(batched: np.ndarray, alone: np.ndarray) -> None:
    assert batched.shape == alone.shape
    assert np.abs(batched.astype(int) - alone.astype(int)).max() <= 1


def two_experts() -> Any:
    """A tiny Wan 2.2 A14B: a high-noise and a low-noise expert, switching at 0.875 of the schedule."""
    import torch

    one = tiny_wan("t2v")
    torch.manual_seed(1)
    low = library("diffusers").WanTransformer3DModel(**TINY_TRANSFORMER, in_channels=16, out_channels=16)
    parts = {k: v for k, v in one.components.items() if k != "transformer_2"}
    return library("diffusers").WanPipeline(**parts, transformer_2=low, boundary_ratio=0.875)


def test_wan_runs_one_forward_per_step_and_draws_the_same_video(tmp_path: Path) -> None:
    drawn, runs = {}, {}
    for batch in (False, True):
        pipe = tiny_wan("t2v")
        forwards = counted(pipe.transformer.patch_embedding)
        drawn[batch] = draw(WanBackend("m", pipeline=pipe, **options(cfg_batch=batch)), tmp_path / str(batch))
        runs[batch] = forwards[0]
    assert runs == {False: 2 * STEPS, True: STEPS}
    assert_close(drawn[True], drawn[False])


def test_wan_2_2_batches_within_each_expert(tmp_path: Path) -> None:
    drawn, runs = {}, {}
    for batch in (False, True):
        pipe = two_experts()
        high, low = counted(pipe.transformer.patch_embedding), counted(pipe.transformer_2.patch_embedding)
        drawn[batch] = draw(WanBackend("m", pipeline=pipe, **options(cfg_batch=batch)), tmp_path / str(batch))
        runs[batch] = (high[0], low[0])
    assert runs[False][0] > 0 and runs[False][1] > 0  # both experts serve a part of the schedule
    assert runs[True] == (runs[False][0] // 2, runs[False][1] // 2)
    assert_close(drawn[True], drawn[False])


def test_hunyuan_true_cfg_is_batched(tmp_path: Path) -> None:
    drawn, runs = {}, {}
    for batch in (False, True):
        pipe = tiny_hunyuan()
        forwards = counted(pipe.transformer.x_embedder)
        backend = HunyuanVideoBackend("m", pipeline=pipe, true_cfg_scale=4.0, **options(cfg_batch=batch))
        drawn[batch] = draw(backend, tmp_path / str(batch))
        runs[batch] = forwards[0]
    assert runs == {False: 2 * STEPS, True: STEPS}
    assert_close(drawn[True], drawn[False])


def test_skyreels_diffusion_forcing_is_batched(tmp_path: Path) -> None:
    drawn, runs = {}, {}
    for batch in (False, True):
        pipe = tiny_skyreels()
        forwards = counted(pipe.transformer.patch_embedding)
        windows = {"overlap_history": 5, "base_num_frames": 9}
        backend = SkyReelsBackend("m", pipeline=pipe, **windows, **options(cfg_batch=batch))
        drawn[batch] = draw(backend, tmp_path / str(batch))
        runs[batch] = forwards[0]
    assert runs[True] * 2 == runs[False] > 0
    assert_close(drawn[True], drawn[False])


def test_bad_cfg_batch_values_are_refused_with_the_fix() -> None:
    with pytest.raises(ModelLoadError, match="cfg_batch is true or false, not 'yes'"):
        WanBackend("m", pipeline=tiny_wan("t2v"), device="cpu", cfg_batch="yes")
    with pytest.raises(ModelLoadError, match="already runs the prompt and the negative prompt as one batch"):
        LTXBackend("m", pipeline=tiny_ltx(), device="cpu", cfg_batch=True)
    i2v = HunyuanVideoBackend(
        "m", pipeline=tiny_hunyuan("i2v"), device="cpu", prompt_template=TINY_I2V_TEMPLATE, cfg_batch=True
    )
    with pytest.raises(ModelLoadError, match=r"text checkpoints only .* remove cfg_batch"):
        i2v.capabilities()


@pytest.mark.parametrize("turbo", ["first-block", "taylorseer"])
def test_cfg_batch_runs_under_turbo_with_fewer_forwards(turbo: str, tmp_path: Path) -> None:
    runs = {}
    for batch in (False, True):
        pipe = two_experts()
        forwards = counted(pipe.transformer.blocks[1].ffn), counted(pipe.transformer_2.blocks[1].ffn)
        knobs = {"turbo_interval": 2, "turbo_warmup": 1}
        knobs = {"turbo_threshold": 0.5} if turbo == "first-block" else knobs
        backend = WanBackend("m", pipeline=pipe, **options(cfg_batch=batch, turbo=turbo, **knobs))
        assert draw(backend, tmp_path / str(batch)).shape[1] == 9
        runs[batch] = forwards[0][0] + forwards[1][0]
    assert 0 < runs[True] < runs[False] < 2 * STEPS  # the cache skips blocks; batching halves the rest
