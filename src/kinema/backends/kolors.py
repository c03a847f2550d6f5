"""Kolors through diffusers' `KolorsPipeline`: text-to-image, for keyframes and posters.

Kolors is an SDXL-style UNet with a ChatGLM text encoder (bilingual prompts). A served Kolors model
makes still images only; the engine asks it for one frame per candidate. Sizes are multiples of 8
around one megapixel.
"""

from __future__ import annotations

import tempfile
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from kinema.backends.base import Segment, StepCallback, StopCheck, check_given
from kinema.backends.pipeline import (
    Progress,
    adopt,
    check_shape,
    generator,
    library,
    load_options,
    load_pipeline,
    override,
    read_config,
    to_uint8,
)
from kinema.errors import InvalidRequest, ModelLoadError
from kinema.spec import AspectRatio, Capabilities

CANVASES: dict[AspectRatio, tuple[int, int]] = {"16:9": (768, 1344), "9:16": (1344, 768), "1:1": (1024, 1024)}


class KolorsBackend:
    """A Kolors checkpoint behind the backend protocol; loads on first use."""

    def __init__(
        self,
        model: str = "kolors",
        *,
        canvases: dict[str, Any] | None = None,
        steps: dict[str, int] | None = None,
        pipeline: Any = None,
        **placement: Any,
    ) -> None:
        self.model = model
        self.options = load_options(model, pipeline, {"dtype": "float16", **placement})
        self.overrides: dict[str, Any] = {"canvases": canvases, "max_frames": None, "steps": steps}
        self._pipe = pipeline if pipeline is None else adopt(pipeline, self.options, model)

    @cached_property
    def checked(self) -> bool:
        """The weights are a Kolors export (read once, without loading them)."""
        if self._pipe is None:
            name = read_config(self.options, "model_index.json", self.model).get("_class_name")
            if name != "KolorsPipeline":
                raise ModelLoadError(
                    f"model {self.model!r}: the weights hold a {name} pipeline, not Kolors; "
                    "use the family that matches it in the models file"
                )
        return True

    def capabilities(self) -> Capabilities:
        assert self.checked
        caps = Capabilities(
            model=self.model,
            family="kolors",
            kinds=frozenset({"text2image"}),
            canvases=CANVASES,
            size_multiple=8,
            fps=8,  # unused: images only
            frame_multiple=1,
            max_frames=1,
            context_frames=0,
            steps={"std": 25, "pro": 50},
            guidance=5.0,
            guidance_range=(1.0, 15.0),
            description="Kolors: text-to-image keyframes (English and Chinese prompts)",
        )
        return override(caps, **self.overrides)

    def generate(self, segment: Segment, *, on_step: StepCallback, should_stop: StopCheck) -> np.ndarray:
        check_given(segment)
        check_shape(segment, self.capabilities())
        if segment.num_frames != 1 or segment.given:
            raise InvalidRequest(f"{self.model} draws single images from text; it cannot make or keep frames")
        pipe = self._pipeline()
        progress = Progress(on_step, should_stop, steps=segment.num_inference_steps, calls=segment.n)
        progress.check()
        out = np.empty((segment.n, 1, segment.height, segment.width, 3), np.uint8)
        for i, seed in enumerate(segment.seeds):  # one call per candidate: draw i == a single draw of seed i
            progress.call = i
            image = pipe(
                prompt=segment.prompt,
                negative_prompt=segment.negative_prompt,
                height=segment.height,
                width=segment.width,
                num_inference_steps=segment.num_inference_steps,
                guidance_scale=segment.guidance_scale,
                generator=generator(seed),
                output_type="np",
                callback_on_step_end=progress,
            ).images[0]
            out[i, 0] = to_uint8(image)
        return out

    def _pipeline(self) -> Any:
        if self._pipe is None:
            assert self.checked
            self._pipe = load_pipeline(library("diffusers").KolorsPipeline, self.options, self.model)
        return self._pipe

    # --- tiny random weights ---------------------------------------------------------------------------
    @classmethod
    def make_tiny(cls, out_dir: Path, *, variant: str | None = None) -> dict[str, Any]:
        """Write a tiny random Kolors folder; return the models-file options that serve it on a CPU."""
        if variant is not None:
            raise InvalidRequest("Kolors has one tiny variant; leave --variant unset")
        with tempfile.TemporaryDirectory() as work:
            tiny_pipeline(Path(work)).save_pretrained(out_dir)
        return {
            "dtype": "float32",
            "device": "cpu",
            "canvases": {"16:9": [32, 64], "9:16": [64, 32], "1:1": [32, 32]},
            "steps": {"std": 2, "pro": 4},
        }


def tiny_pipeline(work: Path) -> Any:
    """A random Kolors pipeline, small enough for a CPU; its tokenizer file is written under `work`."""
    import torch

    from kinema.backends import tiny

    diffusers, chatglm = library("diffusers"), library("diffusers.pipelines.kolors.text_encoder")
    tokenizer = library("diffusers.pipelines.kolors.tokenizer").ChatGLMTokenizer
    tok = tokenizer(vocab_file=str(tiny.sentencepiece_file(work / "tokenizer.model")))
    torch.manual_seed(0)
    config = chatglm.ChatGLMConfig(**TINY_CHATGLM, padded_vocab_size=tok.vocab_size + 16)
    text_encoder = chatglm.ChatGLMModel(config).eval()
    with torch.no_grad():  # ChatGLM leaves initialisation to its checkpoint: start from small noise
        for p in text_encoder.parameters():
            if p.dim() > 1:
                p.normal_(std=0.02)
            else:
                p.fill_(1.0)
    return diffusers.KolorsPipeline(
        tokenizer=tok,
        text_encoder=text_encoder,
        unet=diffusers.UNet2DConditionModel(**TINY_UNET),
        vae=diffusers.AutoencoderKL(**TINY_VAE),
        scheduler=diffusers.EulerDiscreteScheduler(**TINY_SCHEDULER),
        image_encoder=None,
        feature_extractor=None,
    )


TINY_CHATGLM: dict[str, Any] = dict(
    num_layers=2,
    hidden_size=8,
    ffn_hidden_size=16,
    kv_channels=4,
    num_attention_heads=2,
    seq_length=256,
    multi_query_attention=True,
    multi_query_group_num=1,
    original_rope=True,
)
TINY_UNET: dict[str, Any] = dict(
    block_out_channels=(2, 4),
    layers_per_block=2,
    sample_size=32,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(2, 4),
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=8,
    transformer_layers_per_block=(1, 2),
    projection_class_embeddings_input_dim=56,  # 6 size/crop ids x 8 + the pooled text width (8)
    cross_attention_dim=8,
    norm_num_groups=1,
)
TINY_VAE: dict[str, Any] = dict(
    block_out_channels=[32, 64],
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
    up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
    latent_channels=4,
    sample_size=128,
)
TINY_SCHEDULER: dict[str, Any] = dict(
    beta_start=0.00085,
    beta_end=0.012,
    steps_offset=1,
    beta_schedule="scaled_linear",
    timestep_spacing="leading",
)
