"""Wan 2.1 / 2.2 through diffusers: text-to-video, image-to-video, first+last frame, extension.

One served model is one checkpoint, and its configs say what it can do: `WanPipeline` makes video from
text, `WanImageToVideoPipeline` from a first frame (FLF2V checkpoints: a first and a last frame), and
Wan2.2 TI2V-5B (`expand_timesteps`) does both. Wan has no video conditioning in these pipelines, so
extension is last-frame image-to-video. Frames are 4k+1 at 16 fps (24 fps for TI2V-5B).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from kinema.backends import guidance, turbo
from kinema.backends.base import Segment, StepCallback, StopCheck, check_given
from kinema.backends.pipeline import (
    LoadOptions,
    Progress,
    adopt,
    check_shape,
    draw_args,
    keep_given,
    library,
    load_options,
    load_pipeline,
    override,
    prepare,
    read_config,
    to_pil,
    to_uint8,
)
from kinema.errors import InvalidRequest, ModelLoadError
from kinema.spec import AspectRatio, Capabilities, Kind

CANVASES_480P: dict[AspectRatio, tuple[int, int]] = {
    "16:9": (480, 832),
    "9:16": (832, 480),
    "1:1": (624, 624),
}
CANVASES_720P: dict[AspectRatio, tuple[int, int]] = {
    "16:9": (720, 1280),
    "9:16": (1280, 720),
    "1:1": (960, 960),
}
CANVASES_TI2V: dict[AspectRatio, tuple[int, int]] = {
    "16:9": (704, 1280),
    "9:16": (1280, 704),
    "1:1": (960, 960),
}
PIPELINES = ("WanPipeline", "WanImageToVideoPipeline")


@dataclass(frozen=True)
class Variant:
    """What a Wan checkpoint is, read from its `model_index.json` and transformer config."""

    image: bool  # an image-to-video transformer (needs a first frame)
    first_last: bool  # FLF2V: needs a first and a last frame
    ti2v: bool  # Wan2.2 TI2V-5B: text or first frame, 24 fps
    large: bool  # 14B class: 720p is its pro canvas

    @classmethod
    def read(cls, index: dict[str, Any], transformer: dict[str, Any]) -> Variant:
        dim = int(transformer.get("num_attention_heads", 0)) * int(transformer.get("attention_head_dim", 0))
        return cls(
            image=index["_class_name"] == "WanImageToVideoPipeline" and not index.get("expand_timesteps"),
            first_last=transformer.get("pos_embed_seq_len") is not None,
            ti2v=bool(index.get("expand_timesteps")),
            large=dim >= 5120,
        )

    @property
    def kinds(self) -> frozenset[Kind]:
        if self.ti2v:
            return frozenset({"text2video", "text2image", "image2video", "extend"})
        if self.first_last:
            return frozenset({"image2video"})
        if self.image:
            return frozenset({"image2video", "extend"})
        return frozenset({"text2video", "text2image"})


class WanBackend:
    """A Wan checkpoint behind the backend protocol; loads on first use."""

    def __init__(
        self,
        model: str = "wan",
        *,
        vae_dtype: str = "float32",
        canvases: dict[str, Any] | None = None,
        max_frames: int | None = None,
        steps: dict[str, int] | None = None,
        pipeline: Any = None,
        **placement: Any,
    ) -> None:
        self.model = model
        self.options = load_options(model, pipeline, placement, cfg_batch=True)
        self.vae_dtype = vae_dtype
        self.overrides: dict[str, Any] = {"canvases": canvases, "max_frames": max_frames, "steps": steps}
        self._pipe = pipeline if pipeline is None else adopt(pipeline, self.options, model)
        self._other: Any = None  # TI2V: the pipeline of the other kind, sharing the loaded modules

    @cached_property
    def variant(self) -> Variant:
        if self._pipe is not None:
            index, transformer = dict(self._pipe.config), dict(self._pipe.transformer.config)
            index["_class_name"] = type(self._pipe).__name__
            return Variant.read(index, transformer)
        index = read_config(self.options, "model_index.json", self.model)
        if index.get("_class_name") not in PIPELINES:
            raise ModelLoadError(
                f"model {self.model!r}: the weights hold a {index.get('_class_name')} pipeline, not Wan; "
                "use the family that matches it in the models file"
            )
        return Variant.read(index, read_config(self.options, "transformer/config.json", self.model))

    def capabilities(self) -> Capabilities:
        v = self.variant
        caps = Capabilities(
            model=self.model,
            family="wan",
            kinds=v.kinds,
            first_last_frame=v.first_last,
            canvases=CANVASES_TI2V if v.ti2v else CANVASES_480P,
            pro_canvases=CANVASES_720P if v.large else None,
            size_multiple=32 if v.ti2v else 16,
            fps=24 if v.ti2v else 16,
            frame_multiple=4,
            frame_offset=1,
            max_frames=121 if v.ti2v else 81,
            # Image checkpoints continue from the last frame; text-only ones chain independent shots.
            context_frames=1 if v.image or v.ti2v else 0,
            steps={"std": 30, "pro": 50},
            guidance=5.0,
            guidance_range=(1.0, 12.0),
            description=self._describe(v),
        )
        return override(caps, **self.overrides)

    @staticmethod
    def _describe(v: Variant) -> str:
        if v.ti2v:
            return "Wan2.2 TI2V: text or first frame to 720p video at 24 fps"
        if v.first_last:
            return "Wan2.1 FLF2V: video between a first and a last frame (send both)"
        if v.image:
            return "Wan image-to-video; extends videos from their last frame"
        return "Wan text-to-video"

    # --- generation ------------------------------------------------------------------------------------
    def generate(self, segment: Segment, *, on_step: StepCallback, should_stop: StopCheck) -> np.ndarray:
        check_given(segment)
        check_shape(segment, self.capabilities())
        first, last = self._images(segment)
        pipe = self._pipeline(image=first is not None)
        turbo.match_steps(pipe, self.options, segment.num_inference_steps)
        progress = Progress(on_step, should_stop, steps=segment.num_inference_steps, calls=segment.n)
        progress.check()
        prompts, batching = batched_guidance(pipe, segment, self.options)
        out = np.empty((segment.n, segment.num_frames, segment.height, segment.width, 3), np.uint8)
        with batching:
            for i, seed in enumerate(segment.seeds):  # one call per candidate: draw i == one draw of seed i
                progress.call = i
                images = {} if first is None else {"image": to_pil(first[i])}
                if last is not None:
                    images["last_image"] = to_pil(last[i])
                args = {**draw_args(segment, seed, progress), **prompts}
                out[i] = to_uint8(pipe(**images, **args).frames[0])
        return keep_given(out, segment)

    def _images(self, segment: Segment) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The first and last frames Wan can take; any other given frame is refused."""
        v, end = self.variant, segment.num_frames - 1
        first, last = segment.given.get(0), segment.given.get(end) if end else None
        if set(segment.given) - {0, end}:
            raise InvalidRequest(
                f"{self.model} can keep only a first and a last frame, not frames in between"
            )
        if (first is not None or last is not None) and not (v.image or v.ti2v):
            raise InvalidRequest(f"{self.model} is a text-to-video checkpoint; it cannot start from an image")
        if v.first_last and (first is None or last is None):
            raise InvalidRequest(
                f"{self.model} (FLF2V) needs both a first and a last frame in one segment; "
                "send both and keep the clip within its frames per segment"
            )
        if last is not None and not v.first_last:
            raise InvalidRequest(f"{self.model} cannot keep a last frame; use an FLF2V checkpoint")
        if first is None and v.image:
            raise InvalidRequest(f"{self.model} is an image-to-video checkpoint; send a first frame")
        return first, last

    def _pipeline(self, *, image: bool) -> Any:
        """The loaded pipeline; TI2V serves images through a second pipeline sharing the same modules."""
        diffusers = library("diffusers")
        if self._pipe is None:
            image_checkpoint = self.variant.image or self.variant.first_last
            cls = diffusers.WanImageToVideoPipeline if image_checkpoint else diffusers.WanPipeline
            self._pipe = load_pipeline(cls, self.options, self.model, dtypes={"vae": self.vae_dtype})
        target = diffusers.WanImageToVideoPipeline if image else diffusers.WanPipeline
        if isinstance(self._pipe, target):
            return self._pipe
        if self._other is None:
            self._other = prepare(target.from_pipe(self._pipe))
        return self._other

    # --- tiny random weights ---------------------------------------------------------------------------
    @classmethod
    def make_tiny(cls, out_dir: Path, *, variant: str | None = None) -> dict[str, Any]:
        """Write a tiny random Wan folder; return the models-file options that serve it on a CPU."""
        variant = variant or "ti2v"
        tiny_pipeline(variant).save_pretrained(out_dir)
        side = 32 if variant == "ti2v" else 16
        return {
            "dtype": "float32",
            "device": "cpu",
            "canvases": {"16:9": [side, 2 * side], "9:16": [2 * side, side], "1:1": [side, side]},
            "max_frames": 17,
            "steps": {"std": 2, "pro": 4},
        }


def batched_guidance(
    pipe: Any, segment: Segment, options: LoadOptions
) -> tuple[dict[str, Any], AbstractContextManager[None]]:
    """With `cfg_batch` and guidance on (Wan, SkyReels): the prompts encoded up front as the pipeline
    would (UMT5, 512 tokens, "" for no negative prompt), in the transformer's dtype so the pipeline
    hands these very tensors on, and the hook armed with them; otherwise nothing."""
    if not (options.cfg_batch and segment.guidance_scale > 1):
        return {}, nullcontext()
    positive, negative = pipe.encode_prompt(
        prompt=segment.prompt,
        negative_prompt=segment.negative_prompt,
        do_classifier_free_guidance=True,
        max_sequence_length=512,
        device=pipe._execution_device,
    )
    positive, negative = positive.to(pipe.transformer.dtype), negative.to(pipe.transformer.dtype)
    prompts = {"prompt": None, "negative_prompt": None}
    prompts |= {"prompt_embeds": positive, "negative_prompt_embeds": negative}
    cond, uncond = {"encoder_hidden_states": positive}, {"encoder_hidden_states": negative}
    return prompts, guidance.batched(pipe, cond=cond, uncond=uncond)


def check_variant(variant: str) -> None:
    if variant not in TINY_VARIANTS:
        raise InvalidRequest(f"unknown Wan variant {variant!r}; pick one of {', '.join(TINY_VARIANTS)}")


def tiny_pipeline(variant: str = "ti2v") -> Any:
    """A random Wan pipeline of the given variant, small enough to run in a CPU test (seeded)."""
    import torch

    from kinema.backends import tiny

    diffusers = library("diffusers")

    check_variant(variant)
    torch.manual_seed(0)
    tok = tiny.tokenizer()
    parts: dict[str, Any] = {
        "tokenizer": tok,
        "text_encoder": tiny.umt5_encoder(len(tok)),
        "scheduler": diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0),
    }
    ti2v = variant == "ti2v"
    parts["vae"] = diffusers.AutoencoderKLWan(**(TINY_VAE_TI2V if ti2v else TINY_VAE))
    channels = 48 if ti2v else 16
    image = variant in ("i2v", "flf2v")
    parts["transformer"] = diffusers.WanTransformer3DModel(
        **TINY_TRANSFORMER,
        in_channels=2 * channels + 4 if image else channels,
        out_channels=channels,
        image_dim=4 if image else None,
        pos_embed_seq_len=2 * (4 * 4 + 1) if variant == "flf2v" else None,
    )
    if ti2v:
        return diffusers.WanPipeline(**parts, expand_timesteps=True)
    if image:
        return diffusers.WanImageToVideoPipeline(**parts, **_tiny_image_encoder())
    return diffusers.WanPipeline(**parts)


def _tiny_image_encoder() -> dict[str, Any]:
    transformers = library("transformers")
    config = transformers.CLIPVisionConfig(
        hidden_size=4,
        projection_dim=4,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=4,
        intermediate_size=16,
        patch_size=1,
    )
    return {
        "image_encoder": transformers.CLIPVisionModel(config).eval(),
        "image_processor": transformers.CLIPImageProcessor(crop_size=4, size=4),
    }


TINY_VARIANTS = ("t2v", "i2v", "flf2v", "ti2v")
TINY_TRANSFORMER: dict[str, Any] = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=12,
    text_dim=32,
    freq_dim=256,
    ffn_dim=32,
    num_layers=2,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    rope_max_seq_len=32,
)
TINY_VAE: dict[str, Any] = dict(
    base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
)
TINY_VAE_TI2V: dict[str, Any] = dict(
    TINY_VAE,
    z_dim=48,
    in_channels=12,
    out_channels=12,
    is_residual=True,
    patch_size=2,
    latents_mean=[0.0] * 48,
    latents_std=[1.0] * 48,
    scale_factor_spatial=16,
    scale_factor_temporal=4,
)
