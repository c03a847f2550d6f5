"""HunyuanVideo through diffusers' `HunyuanVideoPipeline`: text-to-video (and stills) up to 720p.

HunyuanVideo is guidance-distilled: `guidance_scale` is an embedded guidance the transformer reads
(6.0 by default), one forward per step; true classifier-free guidance with the negative prompt costs
a second forward and is off unless `true_cfg_scale` > 1. Its text side is a Llama encoder (with a
prompt template) plus CLIP. It takes no frames as input, so long videos are separate shots.
Frames are 4k+1 at 24 fps, sizes multiples of 16.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from kinema.backends.base import Segment, StepCallback, StopCheck, check_given
from kinema.backends.pipeline import (
    Progress,
    adopt,
    check_shape,
    draw_args,
    library,
    load_options,
    load_pipeline,
    override,
    read_config,
    to_uint8,
)
from kinema.errors import InvalidRequest, ModelLoadError
from kinema.spec import AspectRatio, Capabilities

CANVASES: dict[AspectRatio, tuple[int, int]] = {"16:9": (544, 960), "9:16": (960, 544), "1:1": (720, 720)}
PRO_CANVASES: dict[AspectRatio, tuple[int, int]] = {
    "16:9": (720, 1280),
    "9:16": (1280, 720),
    "1:1": (960, 960),
}


class HunyuanVideoBackend:
    """A HunyuanVideo text-to-video checkpoint behind the backend protocol; loads on first use."""

    def __init__(
        self,
        model: str = "hunyuanvideo",
        *,
        vae_dtype: str = "float16",
        true_cfg_scale: float = 1.0,
        canvases: dict[str, Any] | None = None,
        max_frames: int | None = None,
        steps: dict[str, int] | None = None,
        pipeline: Any = None,
        **placement: Any,
    ) -> None:
        self.model = model
        self.options = load_options(model, pipeline, placement)
        if true_cfg_scale < 1:
            raise ModelLoadError(f"model {model!r}: true_cfg_scale is 1 (off) or more")
        self.vae_dtype, self.true_cfg_scale = vae_dtype, float(true_cfg_scale)
        self.overrides: dict[str, Any] = {"canvases": canvases, "max_frames": max_frames, "steps": steps}
        self._pipe = pipeline if pipeline is None else adopt(pipeline, self.options, model)

    @cached_property
    def pipeline_class(self) -> str:
        """The diffusers pipeline the weights are for, read from model_index.json without loading."""
        if self._pipe is not None:
            return type(self._pipe).__name__
        name = str(read_config(self.options, "model_index.json", self.model).get("_class_name"))
        if name != "HunyuanVideoPipeline":
            raise ModelLoadError(
                f"model {self.model!r}: the weights hold a {name} pipeline, not HunyuanVideo text-to-video "
                "(e.g. hunyuanvideo-community/HunyuanVideo); use the family that matches it"
            )
        return name

    def capabilities(self) -> Capabilities:
        self.pipeline_class  # noqa: B018  (refuse weights of another family before describing them)
        caps = Capabilities(
            model=self.model,
            family="hunyuanvideo",
            kinds=frozenset({"text2video", "text2image"}),
            canvases=CANVASES,
            pro_canvases=PRO_CANVASES,
            size_multiple=16,
            fps=24,
            frame_multiple=4,
            frame_offset=1,
            max_frames=129,
            context_frames=0,  # no image or video input: longer videos would be unrelated shots
            steps={"std": 30, "pro": 50},
            guidance=6.0,
            guidance_range=(1.0, 10.0),
            description="HunyuanVideo: text to 720p video at 24 fps (embedded guidance)",
        )
        return override(caps, **self.overrides)

    # --- generation ------------------------------------------------------------------------------------
    def generate(self, segment: Segment, *, on_step: StepCallback, should_stop: StopCheck) -> np.ndarray:
        check_given(segment)
        check_shape(segment, self.capabilities())
        if segment.given:
            raise InvalidRequest(f"{self.model} is a text-to-video checkpoint; it cannot start from frames")
        pipe = self._pipeline()
        progress = Progress(on_step, should_stop, steps=segment.num_inference_steps, calls=segment.n)
        progress.check()
        out = np.empty((segment.n, segment.num_frames, segment.height, segment.width, 3), np.uint8)
        for i, seed in enumerate(segment.seeds):  # one call per candidate: draw i == a single draw of seed i
            progress.call = i
            out[i] = to_uint8(
                pipe(
                    **draw_args(segment, seed, progress),
                    true_cfg_scale=self.true_cfg_scale,
                ).frames[0]
            )
        return out

    def _pipeline(self) -> Any:
        if self._pipe is None:
            cls = library("diffusers").HunyuanVideoPipeline
            self._pipe = load_pipeline(cls, self.options, self.model, dtypes={"vae": self.vae_dtype})
        return self._pipe

    # --- tiny random weights ---------------------------------------------------------------------------
    @classmethod
    def make_tiny(cls, out_dir: Path, *, variant: str | None = None) -> dict[str, Any]:
        """Write a tiny random HunyuanVideo folder; return the models-file options that serve it on a CPU."""
        if variant is not None:
            raise InvalidRequest("HunyuanVideo has one tiny variant (text-to-video); leave --variant unset")
        tiny_pipeline().save_pretrained(out_dir)
        return {
            "dtype": "float32",
            "device": "cpu",
            "vae_dtype": "float32",
            "canvases": {"16:9": [16, 32], "9:16": [32, 16], "1:1": [16, 16]},
            "max_frames": 17,
            "steps": {"std": 2, "pro": 4},
        }


def tiny_pipeline() -> Any:
    """A random HunyuanVideo pipeline, small enough for a CPU test (seeded). The Llama and CLIP text
    encoders are built here too (research notes §4), reading the same word-level tokenizer."""
    import torch

    from kinema.backends import tiny

    diffusers, transformers = library("diffusers"), library("transformers")
    torch.manual_seed(0)
    tok = tiny.tokenizer()
    ids = {"vocab_size": len(tok), "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 1}
    llama = transformers.LlamaConfig(**TINY_TEXT, num_key_value_heads=4, **ids)
    clip = transformers.CLIPTextConfig(**{**TINY_TEXT, "hidden_size": 8}, projection_dim=32, **ids)
    return diffusers.HunyuanVideoPipeline(
        tokenizer=tok,
        text_encoder=transformers.LlamaModel(llama).eval(),
        tokenizer_2=tiny.tokenizer(),
        text_encoder_2=transformers.CLIPTextModel(clip).eval(),
        transformer=diffusers.HunyuanVideoTransformer3DModel(**TINY_TRANSFORMER),
        vae=diffusers.AutoencoderKLHunyuanVideo(**TINY_VAE),
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=7.0),
    )


TINY_TEXT: dict[str, Any] = dict(
    hidden_size=16, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, hidden_act="gelu"
)
TINY_TRANSFORMER: dict[str, Any] = dict(
    in_channels=4,
    out_channels=4,
    num_attention_heads=2,
    attention_head_dim=10,
    num_layers=2,
    num_single_layers=1,
    num_refiner_layers=1,
    patch_size=1,
    patch_size_t=1,
    guidance_embeds=True,
    text_embed_dim=16,  # the tiny Llama's hidden size
    pooled_projection_dim=8,  # the tiny CLIP's hidden size
    rope_axes_dim=(2, 4, 4),
)
TINY_VAE: dict[str, Any] = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    down_block_types=("HunyuanVideoDownBlock3D",) * 4,
    up_block_types=("HunyuanVideoUpBlock3D",) * 4,
    block_out_channels=(8, 8, 8, 8),
    layers_per_block=1,
    act_fn="silu",
    norm_num_groups=4,
    scaling_factor=0.476986,
    spatial_compression_ratio=8,
    temporal_compression_ratio=4,
    mid_block_add_attention=True,
)
