"""LTX-Video through diffusers' `LTXConditionPipeline`: text, image and video conditions at any frame.

Every given frame becomes a frame condition: a first frame, a last frame, keyframes in between, and
for extension the previous segment's tail as one video condition at frame 0, so LTX continues the
motion natively instead of restarting from a still. Frames are 8k+1 (the VAE's temporal stride),
sizes multiples of 32, 24 fps by default (30 for 0.9.6+ checkpoints: set `fps`).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from kinema.backends import turbo
from kinema.backends.base import Segment, StepCallback, StopCheck, check_given
from kinema.backends.pipeline import (
    Progress,
    adopt,
    check_shape,
    draw_args,
    keep_given,
    library,
    load_options,
    load_pipeline,
    override,
    read_config,
    to_pil,
    to_uint8,
)
from kinema.errors import InvalidRequest, ModelLoadError
from kinema.spec import AspectRatio, Capabilities

CANVASES: dict[AspectRatio, tuple[int, int]] = {"16:9": (512, 768), "9:16": (768, 512), "1:1": (640, 640)}
PRO_CANVASES: dict[AspectRatio, tuple[int, int]] = {
    "16:9": (704, 1216),
    "9:16": (1216, 704),
    "1:1": (896, 896),
}
PIPELINES = ("LTXPipeline", "LTXImageToVideoPipeline", "LTXConditionPipeline")
CONDITION_MODULE = "diffusers.pipelines.ltx.pipeline_ltx_condition"


class LTXBackend:
    """An LTX-Video checkpoint behind the backend protocol; loads on first use."""

    def __init__(
        self,
        model: str = "ltx",
        *,
        fps: int = 24,
        context_frames: int = 9,
        canvases: dict[str, Any] | None = None,
        max_frames: int | None = None,
        steps: dict[str, int] | None = None,
        pipeline: Any = None,
        **placement: Any,
    ) -> None:
        self.model = model
        self.options = load_options(model, pipeline, placement)
        self.fps, self.context_frames = fps, context_frames
        self.overrides: dict[str, Any] = {"canvases": canvases, "max_frames": max_frames, "steps": steps}
        self._pipe = pipeline if pipeline is None else adopt(pipeline, self.options, model)

    @cached_property
    def vae_config(self) -> dict[str, Any]:
        """The VAE config, which sets the frame rule; checks that the weights are LTX's."""
        if self._pipe is not None:
            return dict(self._pipe.vae.config)
        name = read_config(self.options, "model_index.json", self.model).get("_class_name")
        if name not in PIPELINES:
            raise ModelLoadError(
                f"model {self.model!r}: the weights hold a {name} pipeline, not LTX-Video; "
                "use the family that matches it in the models file"
            )
        return read_config(self.options, "vae/config.json", self.model)

    @property
    def temporal_stride(self) -> int:
        config = self.vae_config
        scaling = sum(bool(s) for s in config.get("spatio_temporal_scaling", (True, True, True, False)))
        return int(config.get("temporal_compression_ratio") or config.get("patch_size_t", 1) * 2**scaling)

    def capabilities(self) -> Capabilities:
        stride = self.temporal_stride
        if self.context_frames % stride != 1:
            raise ModelLoadError(f"model {self.model!r}: context_frames must be k*{stride}+1")
        caps = Capabilities(
            model=self.model,
            family="ltx",
            kinds=frozenset({"text2video", "image2video", "extend", "text2image"}),
            first_last_frame=True,
            canvases=CANVASES,
            pro_canvases=PRO_CANVASES,
            size_multiple=32,
            fps=self.fps,
            frame_multiple=stride,
            frame_offset=1,
            max_frames=20 * stride + 1,
            context_frames=self.context_frames,
            steps={"std": 30, "pro": 50},
            guidance=3.0,
            guidance_range=(1.0, 10.0),
            description="LTX-Video: text, frame and video conditions; extends natively from the tail",
        )
        return override(caps, **self.overrides)

    # --- generation ------------------------------------------------------------------------------------
    def generate(self, segment: Segment, *, on_step: StepCallback, should_stop: StopCheck) -> np.ndarray:
        check_given(segment)
        check_shape(segment, self.capabilities())
        pipe = self._pipeline()
        turbo.match_steps(pipe, self.options, segment.num_inference_steps)
        progress = Progress(on_step, should_stop, steps=segment.num_inference_steps, calls=segment.n)
        progress.check()
        # The default schedule, passed as plain floats (the pipeline's own tensor path warns under numpy 2).
        schedule = library(CONDITION_MODULE).linear_quadratic_schedule(segment.num_inference_steps)
        timesteps = (schedule * 1000.0).tolist()
        decode = {"decode_timestep": 0.05, "decode_noise_scale": 0.025} if self._timestep_vae else {}
        out = np.empty((segment.n, segment.num_frames, segment.height, segment.width, 3), np.uint8)
        for i, seed in enumerate(segment.seeds):  # one call per candidate: each has its own conditions
            progress.call = i
            conditions = self.conditions(segment, i)
            out[i] = to_uint8(
                pipe(
                    conditions=conditions or None,
                    **draw_args(segment, seed, progress),
                    frame_rate=self.fps,
                    timesteps=timesteps,
                    **decode,
                ).frames[0]
            )
        return keep_given(out, segment)

    def conditions(self, segment: Segment, candidate: int) -> list[Any]:
        """Given frames as LTX conditions: a leading run as one video (or image), the rest as keyframes."""
        condition = library(CONDITION_MODULE).LTXVideoCondition
        given = segment.given
        run = 0
        while run in given:
            run += 1
        # A video condition must be k*stride+1 frames long: keep the run's last legal stretch.
        length = (run - 1) // self.temporal_stride * self.temporal_stride + 1 if run else 0
        conditions = []
        if length == 1:
            conditions.append(condition(image=to_pil(given[run - 1][candidate]), frame_index=run - 1))
        elif length > 1:
            frames = [to_pil(given[k][candidate]) for k in range(run - length, run)]
            conditions.append(condition(video=frames, frame_index=run - length))
        for index in sorted(k for k in given if k >= run):
            conditions.append(condition(image=to_pil(given[index][candidate]), frame_index=index))
        return conditions

    @property
    def _timestep_vae(self) -> bool:
        """LTX 0.9.1+ VAEs decode at a small timestep with a little noise (the checkpoints' defaults)."""
        return bool(self.vae_config.get("timestep_conditioning"))

    def _pipeline(self) -> Any:
        if self._pipe is None:
            self._pipe = load_pipeline(library("diffusers").LTXConditionPipeline, self.options, self.model)
        return self._pipe

    # --- tiny random weights ---------------------------------------------------------------------------
    @classmethod
    def make_tiny(cls, out_dir: Path, *, variant: str | None = None) -> dict[str, Any]:
        """Write a tiny random LTX folder; return the models-file options that serve it on a CPU."""
        if variant is not None:
            raise InvalidRequest("LTX-Video has one tiny variant; leave --variant unset")
        tiny_pipeline().save_pretrained(out_dir)
        return {
            "dtype": "float32",
            "device": "cpu",
            "canvases": {"16:9": [32, 64], "9:16": [64, 32], "1:1": [32, 32]},
            "max_frames": 25,
            "steps": {"std": 2, "pro": 4},
        }


def tiny_pipeline() -> Any:
    """A random LTX pipeline with the real 8x temporal / 8x spatial VAE strides, small enough for a CPU."""
    import torch

    from kinema.backends import tiny

    diffusers = library("diffusers")
    torch.manual_seed(0)
    tok = tiny.tokenizer()
    return diffusers.LTXConditionPipeline(
        tokenizer=tok,
        text_encoder=tiny.t5_encoder(len(tok)),
        transformer=diffusers.LTXVideoTransformer3DModel(**TINY_TRANSFORMER),
        vae=diffusers.AutoencoderKLLTXVideo(**TINY_VAE),
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
    )


TINY_TRANSFORMER: dict[str, Any] = dict(
    in_channels=8,
    out_channels=8,
    patch_size=1,
    patch_size_t=1,
    num_attention_heads=4,
    attention_head_dim=8,
    cross_attention_dim=32,
    num_layers=1,
    caption_channels=32,
)
TINY_VAE: dict[str, Any] = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=8,
    block_out_channels=(8, 8, 8, 8),
    decoder_block_out_channels=(8, 8, 8, 8),
    layers_per_block=(1, 1, 1, 1, 1),
    decoder_layers_per_block=(1, 1, 1, 1, 1),
    spatio_temporal_scaling=(True, True, True, False),
    decoder_spatio_temporal_scaling=(True, True, True, False),
    decoder_inject_noise=(False,) * 5,
    upsample_residual=(False,) * 4,
    upsample_factor=(1,) * 4,
    timestep_conditioning=False,
    patch_size=1,
    patch_size_t=1,
    encoder_causal=True,
    decoder_causal=False,
)
