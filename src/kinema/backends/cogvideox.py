"""CogVideoX 1.0 / 1.5 through diffusers: text-to-video, or image-to-video from a first frame.

One served model is one checkpoint: `CogVideoXPipeline` makes video from text and
`CogVideoXImageToVideoPipeline` from a first frame (and so extends videos from their last frame).
CogVideoX 1.0 draws 720x480 at 8 fps, 8k+1 frames up to 49; 1.5 (`patch_size_t`) draws 1360x768 at
16 fps, 16k+1 frames up to 81. The I2V-5B checkpoint's learned position embeddings fix its size.
"""

from __future__ import annotations

from dataclasses import dataclass
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

CANVASES_10: dict[AspectRatio, tuple[int, int]] = {"16:9": (480, 720), "9:16": (720, 480), "1:1": (480, 480)}
CANVASES_15: dict[AspectRatio, tuple[int, int]] = {
    "16:9": (768, 1360),
    "9:16": (1360, 768),
    "1:1": (960, 960),
}
PIPELINES = ("CogVideoXPipeline", "CogVideoXImageToVideoPipeline")


@dataclass(frozen=True)
class Variant:
    """What a CogVideoX checkpoint is, read from its `model_index.json` and transformer config."""

    image: bool  # image-to-video
    v15: bool  # CogVideoX 1.5: temporal patches, 16 fps
    fixed_size: tuple[int, int] | None  # learned position embeddings allow one size only
    text_tokens: int  # the transformer's text length; prompts are padded to it

    @classmethod
    def read(cls, name: str, transformer: dict[str, Any]) -> Variant:
        fixed = None
        if transformer.get("use_learned_positional_embeddings"):
            fixed = (8 * int(transformer["sample_height"]), 8 * int(transformer["sample_width"]))
        return cls(
            image=name == "CogVideoXImageToVideoPipeline",
            v15=transformer.get("patch_size_t") is not None,
            fixed_size=fixed,
            text_tokens=int(transformer.get("max_text_seq_length", 226)),
        )


class CogVideoXBackend:
    """A CogVideoX checkpoint behind the backend protocol; loads on first use."""

    def __init__(
        self,
        model: str = "cogvideox",
        *,
        canvases: dict[str, Any] | None = None,
        max_frames: int | None = None,
        steps: dict[str, int] | None = None,
        pipeline: Any = None,
        **placement: Any,
    ) -> None:
        self.model = model
        self.options = load_options(model, pipeline, placement)
        self.overrides: dict[str, Any] = {"canvases": canvases, "max_frames": max_frames, "steps": steps}
        self._pipe = pipeline if pipeline is None else adopt(pipeline, self.options, model)

    @cached_property
    def variant(self) -> Variant:
        if self._pipe is not None:
            return Variant.read(type(self._pipe).__name__, dict(self._pipe.transformer.config))
        name = read_config(self.options, "model_index.json", self.model).get("_class_name")
        if name not in PIPELINES:
            raise ModelLoadError(
                f"model {self.model!r}: the weights hold a {name} pipeline, not CogVideoX; "
                "use the family that matches it in the models file"
            )
        return Variant.read(str(name), read_config(self.options, "transformer/config.json", self.model))

    def capabilities(self) -> Capabilities:
        v = self.variant
        canvases = CANVASES_15 if v.v15 else CANVASES_10
        if v.fixed_size is not None:
            canvases = {aspect: v.fixed_size for aspect in canvases}
        caps = Capabilities(
            model=self.model,
            family="cogvideox",
            kinds=frozenset({"image2video", "extend"} if v.image else {"text2video", "text2image"}),
            canvases=canvases,
            size_multiple=16,
            fps=16 if v.v15 else 8,
            frame_multiple=16 if v.v15 else 8,
            frame_offset=1,
            max_frames=81 if v.v15 else 49,
            context_frames=1 if v.image else 0,
            steps={"std": 30, "pro": 50},
            guidance=6.0,
            guidance_range=(1.0, 12.0),
            description=f"CogVideoX{' 1.5' if v.v15 else ''} {'image' if v.image else 'text'}-to-video",
        )
        return override(caps, **self.overrides)

    def generate(self, segment: Segment, *, on_step: StepCallback, should_stop: StopCheck) -> np.ndarray:
        check_given(segment)
        check_shape(segment, self.capabilities())
        first = self._first(segment)
        pipe = self._pipeline()
        turbo.match_steps(pipe, self.options, segment.num_inference_steps)
        progress = Progress(on_step, should_stop, steps=segment.num_inference_steps, calls=segment.n)
        progress.check()
        out = np.empty((segment.n, segment.num_frames, segment.height, segment.width, 3), np.uint8)
        for i, seed in enumerate(segment.seeds):  # one call per candidate: draw i == a single draw of seed i
            progress.call = i
            image = {} if first is None else {"image": to_pil(first[i])}
            frames = pipe(
                **image,
                **draw_args(segment, seed, progress),
                max_sequence_length=self.variant.text_tokens,
            ).frames[0]
            out[i] = to_uint8(frames[: segment.num_frames])
        return keep_given(out, segment)

    def _first(self, segment: Segment) -> np.ndarray | None:
        if set(segment.given) - {0}:
            raise InvalidRequest(f"{self.model} can keep only a first frame")
        first = segment.given.get(0)
        if (first is None) == self.variant.image:
            need = "needs a first frame" if self.variant.image else "cannot start from an image"
            raise InvalidRequest(
                f"{self.model} is a CogVideoX {'I2V' if self.variant.image else 'T2V'} checkpoint and {need}"
            )
        return first

    def _pipeline(self) -> Any:
        diffusers = library("diffusers")
        if self._pipe is None:
            cls = (
                diffusers.CogVideoXImageToVideoPipeline if self.variant.image else diffusers.CogVideoXPipeline
            )
            self._pipe = load_pipeline(cls, self.options, self.model)
        return self._pipe

    # --- tiny random weights ---------------------------------------------------------------------------
    @classmethod
    def make_tiny(cls, out_dir: Path, *, variant: str | None = None) -> dict[str, Any]:
        """Write a tiny random CogVideoX folder; return the models-file options that serve it on a CPU."""
        tiny_pipeline(variant or "t2v").save_pretrained(out_dir)
        return {
            "dtype": "float32",
            "device": "cpu",
            "canvases": {"16:9": [16, 32], "9:16": [32, 16], "1:1": [16, 16]},
            "max_frames": 17,
            "steps": {"std": 2, "pro": 4},
        }


def tiny_pipeline(variant: str = "t2v") -> Any:
    """A random CogVideoX pipeline (`t2v` or `i2v`), small enough to run in a CPU test (seeded)."""
    import torch

    from kinema.backends import tiny

    diffusers = library("diffusers")

    if variant not in ("t2v", "i2v"):
        raise InvalidRequest(f"unknown CogVideoX variant {variant!r}; pick t2v or i2v")
    torch.manual_seed(0)
    tok = tiny.tokenizer()
    image = variant == "i2v"
    transformer = diffusers.CogVideoXTransformer3DModel(
        **TINY_TRANSFORMER,
        # RoPE needs a head size divisible by 16; heads x head size must stay the text width (32).
        num_attention_heads=2 if image else 4,
        attention_head_dim=16 if image else 8,
        in_channels=8 if image else 4,
        use_rotary_positional_embeddings=image,
    )
    cls = diffusers.CogVideoXImageToVideoPipeline if image else diffusers.CogVideoXPipeline
    return cls(
        tokenizer=tok,
        text_encoder=tiny.t5_encoder(len(tok)),
        transformer=transformer,
        vae=diffusers.AutoencoderKLCogVideoX(**TINY_VAE),
        scheduler=diffusers.DDIMScheduler(),
    )


TINY_TRANSFORMER: dict[str, Any] = dict(
    out_channels=4,
    time_embed_dim=2,
    text_embed_dim=32,
    num_layers=1,
    sample_width=2,
    sample_height=2,
    sample_frames=9,
    patch_size=2,
    temporal_compression_ratio=4,
    max_text_seq_length=16,
)
TINY_VAE: dict[str, Any] = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("CogVideoXDownBlock3D",) * 4,
    up_block_types=("CogVideoXUpBlock3D",) * 4,
    block_out_channels=(8, 8, 8, 8),
    latent_channels=4,
    layers_per_block=1,
    norm_num_groups=2,
    temporal_compression_ratio=4,
)
