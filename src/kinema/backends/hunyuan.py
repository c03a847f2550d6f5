"""HunyuanVideo through diffusers: text-to-video (`HunyuanVideoPipeline`) and image-to-video
(`HunyuanVideoImageToVideoPipeline`, the HunyuanVideo-I2V checkpoints), up to 720p.

HunyuanVideo is guidance-distilled: `guidance_scale` is an embedded guidance the transformer reads
(6.0 by default), one forward per step; true classifier-free guidance with the negative prompt costs
a second forward and is off unless `true_cfg_scale` > 1. Its text side is a Llama encoder (LLaVA for
image-to-video, which also sees the image) with a prompt template, plus CLIP. Text checkpoints take no
frames, so long videos are separate shots; image checkpoints continue from the last frame.
Frames are 4k+1 at 24 fps, sizes multiples of 16.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from kinema.backends import guidance, turbo
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

CANVASES: dict[AspectRatio, tuple[int, int]] = {"16:9": (544, 960), "9:16": (960, 544), "1:1": (720, 720)}
PRO_CANVASES: dict[AspectRatio, tuple[int, int]] = {
    "16:9": (720, 1280),
    "9:16": (1280, 720),
    "1:1": (960, 960),
}
PIPELINES = ("HunyuanVideoPipeline", "HunyuanVideoImageToVideoPipeline")


class HunyuanVideoBackend:
    """A HunyuanVideo (text) or HunyuanVideo-I2V (image) checkpoint behind the backend protocol.

    `prompt_template` replaces the pipeline's Llama prompt template; leave it unset for the released
    checkpoints (the tiny test models, whose tokenizer is not Llama's, need one of their own).
    """

    def __init__(
        self,
        model: str = "hunyuanvideo",
        *,
        vae_dtype: str = "float16",
        true_cfg_scale: float = 1.0,
        prompt_template: dict[str, Any] | None = None,
        canvases: dict[str, Any] | None = None,
        max_frames: int | None = None,
        steps: dict[str, int] | None = None,
        pipeline: Any = None,
        **placement: Any,
    ) -> None:
        self.model = model
        self.options = load_options(model, pipeline, placement, cfg_batch=True)
        if true_cfg_scale < 1:
            raise ModelLoadError(f"model {model!r}: true_cfg_scale is 1 (off) or more")
        self.vae_dtype, self.true_cfg_scale = vae_dtype, float(true_cfg_scale)
        self.template = {} if prompt_template is None else {"prompt_template": dict(prompt_template)}
        self.overrides: dict[str, Any] = {"canvases": canvases, "max_frames": max_frames, "steps": steps}
        self._pipe = pipeline if pipeline is None else adopt(pipeline, self.options, model)

    @cached_property
    def transformer(self) -> dict[str, Any]:
        """The transformer's config (which says how it takes an image); checks the weights' pipeline."""
        if self._pipe is not None:
            return {"_pipeline": type(self._pipe).__name__, **self._pipe.transformer.config}
        name = read_config(self.options, "model_index.json", self.model).get("_class_name")
        if name not in PIPELINES:
            raise ModelLoadError(
                f"model {self.model!r}: the weights hold a {name} pipeline, not HunyuanVideo (e.g. "
                "hunyuanvideo-community/HunyuanVideo or …/HunyuanVideo-I2V); use the family that matches it"
            )
        return {"_pipeline": name, **read_config(self.options, "transformer/config.json", self.model)}

    @property
    def image(self) -> bool:
        return bool(self.transformer["_pipeline"] == PIPELINES[1])

    def capabilities(self) -> Capabilities:
        if self.image and self.options.cfg_batch:
            raise ModelLoadError(
                f"model {self.model!r}: cfg_batch serves HunyuanVideo text checkpoints only (the I2V "
                "pipeline encodes the prompts with the image); remove cfg_batch"
            )
        embedded = bool(self.transformer.get("guidance_embeds", True))  # I2V-33ch has none: true CFG only
        caps = Capabilities(
            model=self.model,
            family="hunyuanvideo",
            kinds=frozenset({"image2video", "extend"} if self.image else {"text2video", "text2image"}),
            canvases=CANVASES,
            pro_canvases=PRO_CANVASES,
            size_multiple=16,
            fps=24,
            frame_multiple=4,
            frame_offset=1,
            max_frames=129,
            # Image checkpoints continue from the last frame; text ones have no input for a next shot.
            context_frames=1 if self.image else 0,
            steps={"std": 30, "pro": 50},
            guidance=6.0 if embedded else 1.0,
            guidance_range=(1.0, 10.0),
            description=(
                "HunyuanVideo-I2V: a first frame to 720p video at 24 fps; extends from the last frame"
                if self.image
                else "HunyuanVideo: text to 720p video at 24 fps (embedded guidance)"
            ),
        )
        return override(caps, **self.overrides)

    # --- generation ------------------------------------------------------------------------------------
    def generate(self, segment: Segment, *, on_step: StepCallback, should_stop: StopCheck) -> np.ndarray:
        check_given(segment)
        check_shape(segment, self.capabilities())
        first = self._first(segment)
        pipe = self._pipeline()
        # "latent_concat" I2V (the 33-channel checkpoint) drops the image's latent frame and the 3
        # frames after it from what it returns: ask for 4 more and put the image back in front.
        dropped = (
            4 if first is not None and self.transformer.get("image_condition_type") == "latent_concat" else 0
        )
        turbo.match_steps(pipe, self.options, segment.num_inference_steps)
        progress = Progress(on_step, should_stop, steps=segment.num_inference_steps, calls=segment.n)
        progress.check()
        prompts, batching = self._batched_guidance(pipe, segment)
        out = np.empty((segment.n, segment.num_frames, segment.height, segment.width, 3), np.uint8)
        with batching:
            for i, seed in enumerate(segment.seeds):  # one call per candidate: draw i == one draw of seed i
                progress.call = i
                image = {} if first is None else {"image": to_pil(first[i])}
                args = draw_args(segment, seed, progress, num_frames=segment.num_frames + dropped)
                frames = pipe(
                    **image,
                    **{**args, **prompts},
                    **self.template,
                    true_cfg_scale=self.true_cfg_scale,
                ).frames[0]
                out[i, 1 if dropped else 0 :] = to_uint8(frames[: segment.num_frames - (1 if dropped else 0)])
        return keep_given(out, segment)

    def _batched_guidance(
        self, pipe: Any, segment: Segment
    ) -> tuple[dict[str, Any], AbstractContextManager[None]]:
        """With `cfg_batch` and true CFG on (true_cfg_scale > 1 and a negative prompt): both prompts
        encoded up front as the pipeline would (Llama + CLIP, 256 tokens), in the transformer's dtype so
        the pipeline hands these very tensors on, and the hook armed with them; otherwise nothing."""
        if not (self.options.cfg_batch and self.true_cfg_scale > 1 and segment.negative_prompt is not None):
            return {}, nullcontext()
        dtype, device = pipe.transformer.dtype, pipe._execution_device
        encoded = [
            [t.to(dtype) for t in pipe.encode_prompt(prompt=text, device=device, **self.template)]
            for text in (segment.prompt, segment.negative_prompt)
        ]
        names = ("prompt_embeds", "pooled_prompt_embeds", "prompt_attention_mask")
        prompts: dict[str, Any] = {"prompt": None, "negative_prompt": None}
        prompts |= dict(zip(names, encoded[0], strict=True))
        prompts |= {f"negative_{name}": t for name, t in zip(names, encoded[1], strict=True)}
        inputs = ("encoder_hidden_states", "pooled_projections", "encoder_attention_mask")
        cond, uncond = (dict(zip(inputs, e, strict=True)) for e in encoded)
        return prompts, guidance.batched(pipe, cond=cond, uncond=uncond)

    def _first(self, segment: Segment) -> np.ndarray | None:
        """The first frame an image checkpoint starts from; text checkpoints take none."""
        if not self.image:
            if segment.given:
                raise InvalidRequest(
                    f"{self.model} is a text-to-video checkpoint; it cannot start from frames"
                )
            return None
        if set(segment.given) != {0}:
            raise InvalidRequest(f"{self.model} is an image-to-video checkpoint; send exactly a first frame")
        return segment.given[0]

    def _pipeline(self) -> Any:
        if self._pipe is None:
            cls = getattr(library("diffusers"), self.transformer["_pipeline"])
            self._pipe = load_pipeline(cls, self.options, self.model, dtypes={"vae": self.vae_dtype})
        return self._pipe

    # --- tiny random weights ---------------------------------------------------------------------------
    @classmethod
    def make_tiny(cls, out_dir: Path, *, variant: str | None = None) -> dict[str, Any]:
        """Write a tiny random HunyuanVideo folder; return the models-file options that serve it on a CPU."""
        variant = variant or "t2v"
        tiny_pipeline(variant).save_pretrained(out_dir)
        options: dict[str, Any] = {
            "dtype": "float32",
            "device": "cpu",
            "vae_dtype": "float32",
            "canvases": {"16:9": [16, 32], "9:16": [32, 16], "1:1": [16, 16]},
            "max_frames": 17,
            "steps": {"std": 2, "pro": 4},
        }
        return options if variant == "t2v" else {**options, "prompt_template": TINY_I2V_TEMPLATE}


def tiny_pipeline(variant: str = "t2v") -> Any:
    """A random HunyuanVideo pipeline, small enough for a CPU test (seeded): `t2v`, `i2v` (token
    replace, embedded guidance, like HunyuanVideo-I2V) or `i2v-33ch` (latent concat, like …-I2V-33ch).
    The Llama (LLaVA for images) and CLIP text encoders are built here too (research notes §4)."""
    import torch

    from kinema.backends import tiny

    if variant not in TINY_VARIANTS:
        raise InvalidRequest(
            f"unknown HunyuanVideo variant {variant!r}; pick one of {', '.join(TINY_VARIANTS)}"
        )
    diffusers, transformers = library("diffusers"), library("transformers")
    torch.manual_seed(0)
    tok = tiny.tokenizer()
    ids = {"vocab_size": len(tok), "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 1}
    clip = transformers.CLIPTextConfig(**{**TINY_TEXT, "hidden_size": 8}, projection_dim=32, **ids)
    parts: dict[str, Any] = {
        "tokenizer": tok,
        "tokenizer_2": tiny.tokenizer(),
        "text_encoder_2": transformers.CLIPTextModel(clip).eval(),
        "vae": diffusers.AutoencoderKLHunyuanVideo(**TINY_VAE),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler(shift=7.0),
    }
    if variant == "t2v":
        llama = transformers.LlamaConfig(**TINY_TEXT, num_key_value_heads=4, **ids)
        transformer = diffusers.HunyuanVideoTransformer3DModel(**TINY_TRANSFORMER)
        return diffusers.HunyuanVideoPipeline(
            **parts, text_encoder=transformers.LlamaModel(llama).eval(), transformer=transformer
        )
    # LLaVA reads the image too; its image token is one id past the tokenizer's words (never typed).
    llama = transformers.LlamaConfig(
        **TINY_TEXT, num_key_value_heads=4, **{**ids, "vocab_size": len(tok) + 1}
    )
    vision = transformers.CLIPVisionConfig(
        **{**TINY_TEXT, "hidden_size": 8}, projection_dim=32, image_size=224
    )
    llava = transformers.LlavaConfig(
        vision_config=vision, text_config=llama, pad_token_id=0, image_token_index=len(tok)
    )
    concat = variant == "i2v-33ch"
    transformer = diffusers.HunyuanVideoTransformer3DModel(
        **{**TINY_TRANSFORMER, "in_channels": 2 * 4 + 1 if concat else 4, "guidance_embeds": not concat},
        image_condition_type="latent_concat" if concat else "token_replace",
    )
    processor = getattr(transformers, "CLIPImageProcessorPil", transformers.CLIPImageProcessor)
    return diffusers.HunyuanVideoImageToVideoPipeline(
        **parts,
        text_encoder=transformers.LlavaForConditionalGeneration(llava).eval(),
        transformer=transformer,
        image_processor=processor(crop_size=224, size=224),
    )


TINY_VARIANTS = ("t2v", "i2v", "i2v-33ch")
# 224-pixel images in 32-pixel patches: 49 image tokens, written over positions 5..53 of the prompt.
TINY_I2V_TEMPLATE: dict[str, Any] = {
    "template": "{}",
    "crop_start": 0,
    "image_emb_len": 49,
    "image_emb_start": 5,
    "image_emb_end": 54,
}
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
