"""`attention` and `compile`: speed options that leave the output as it is (or within rounding)."""

from typing import Any

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the diffusers extra: pip install 'kinema[diffusers]'")

from diffusers_support import never, no_progress

from kinema.backends.base import Segment
from kinema.backends.kolors import KolorsBackend
from kinema.backends.wan import WanBackend, tiny_pipeline
from kinema.errors import ModelLoadError

SEGMENT = Segment("a red ball moving left", None, 9, 16, 32, 2, 5.0, (3,))


def draw(**options: Any) -> np.ndarray:
    wan = WanBackend("w", pipeline=tiny_pipeline("t2v"), device="cpu", dtype="float32", **options)
    return wan.generate(SEGMENT, on_step=no_progress, should_stop=never)


def test_another_attention_backend_draws_the_same_video() -> None:
    default, math = draw(), draw(attention="_native_math")
    assert np.abs(default.astype(int) - math.astype(int)).max() <= 1  # the same attention, other kernels


def test_an_attention_backend_that_cannot_run_is_refused_with_the_fix() -> None:
    with pytest.raises(ModelLoadError, match="attention backend 'warp' cannot be used here"):
        draw(attention="warp")
    with pytest.raises(ModelLoadError, match="leave `attention` unset"):
        draw(attention="flash")  # no flash-attn package here


def test_compile_compiles_the_repeated_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = tiny_pipeline("t2v")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(pipe.transformer, "compile_repeated_blocks", lambda **kw: calls.append(kw))
    WanBackend("w", pipeline=pipe, device="cpu", compile=True)
    assert calls == [{"fullgraph": True}]  # compiling for real takes 45 s on this CPU: left to the benchmark
    with pytest.raises(ModelLoadError, match="compile works on transformers"):
        KolorsBackend(
            "k", pipeline=type("UNetPipeline", (), {"transformer": None})(), device="cpu", compile=True
        )
