"""SkyReels-V2 diffusion forcing through diffusers: text, first (and last) frame, and native extension.

One diffusion-forcing checkpoint (Wan2.1 architecture, 1.3B or 14B) serves every kind through three
pipelines sharing its modules: `SkyReelsV2DiffusionForcingPipeline` from text,
`…ImageToVideoPipeline` from a first (and last) frame, and `…VideoToVideoPipeline` to continue a
video: the last `overlap_history` frames become clean latents that the next window is denoised
after, so motion carries on instead of restarting from a still. Within one call the pipeline slides
windows of `base_num_frames` the same way, in latent space. Frames are 4k+1 at 24 fps.
"""

from __future__ import annotations

import math
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
from kinema.backends.wan import CANVASES_720P, batched_guidance  # the same Wan2.1 architecture
from kinema.errors import InvalidRequest, ModelLoadError
from kinema.spec import AspectRatio, Capabilities

CANVASES_540P: dict[AspectRatio, tuple[int, int]] = {
    "16:9": (544, 960),
    "9:16": (960, 544),
    "1:1": (720, 720),
}
DF = "SkyReelsV2DiffusionForcing"
PIPELINES = (f"{DF}Pipeline", f"{DF}ImageToVideoPipeline", f"{DF}VideoToVideoPipeline")
TEMPORAL_STRIDE = 4  # the Wan VAE's


class WindowProgress(Progress):
    """Progress over calls that run their denoising steps once per sliding window.

    The step index starts again at each window; each restart counts as one more of `calls`.
    """

    last = -1

    def __call__(self, pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if step <= self.last:
            self.call += 1
        self.last = step
        self.call = min(self.call, self.calls - 1)  # never report past the end, whatever the count
        return super().__call__(pipe, step, timestep, tensors)


def windows(num_frames: int, *, base: int, overlap: int) -> int:
    """How many sliding windows the diffusion-forcing pipelines run for `num_frames` (their own sum)."""
    latent, base_latent = (num_frames - 1) // TEMPORAL_STRIDE + 1, (base - 1) // TEMPORAL_STRIDE + 1
    overlap_latent = (overlap - 1) // TEMPORAL_STRIDE + 1
    if latent <= base_latent:
        return 1
    return 1 + math.ceil((latent - base_latent) / (base_latent - overlap_latent))


class SkyReelsBackend:
    """A SkyReels-V2 diffusion-forcing checkpoint behind the backend protocol; loads on first use."""

    def __init__(
        self,
        model: str = "skyreels",
        *,
        vae_dtype: str = "float32",
        overlap_history: int = 17,
        base_num_frames: int = 97,
        addnoise_condition: float = 20.0,
        canvases: dict[str, Any] | None = None,
        max_frames: int | None = None,
        steps: dict[str, int] | None = None,
        pipeline: Any = None,
        **placement: Any,
    ) -> None:
        self.model = model
        self.options = load_options(model, pipeline, placement, cfg_batch=True)
        if self.options.turbo in ("magcache", "taylorseer"):
            raise ModelLoadError(
                f"model {model!r}: SkyReels' sliding windows restart the denoising steps, which "
                f'{self.options.turbo} counts across a call; set turbo = "off"'
            )
        if overlap_history % TEMPORAL_STRIDE != 1 or not overlap_history < base_num_frames:
            raise ModelLoadError(
                f"model {model!r}: overlap_history must be 4k+1 and below base_num_frames "
                f"({overlap_history} and {base_num_frames}); 17 and 97 are the authors' choice"
            )
        if base_num_frames % TEMPORAL_STRIDE != 1:
            raise ModelLoadError(f"model {model!r}: base_num_frames must be 4k+1 (97 at 540P, 121 at 720P)")
        if not 0 <= addnoise_condition <= 50:
            raise ModelLoadError(f"model {model!r}: addnoise_condition goes from 0 to 50 (20 is advised)")
        self.vae_dtype = vae_dtype
        self.overlap, self.base, self.addnoise = overlap_history, base_num_frames, float(addnoise_condition)
        self.overrides: dict[str, Any] = {"canvases": canvases, "max_frames": max_frames, "steps": steps}
        self._pipes: dict[str, Any] = {}
        if pipeline is not None:
            self._pipes[type(pipeline).__name__] = adopt(pipeline, self.options, model)

    @cached_property
    def large(self) -> bool:
        """A 14B checkpoint: 720p is its pro canvas."""
        if self._pipes:
            config = dict(next(iter(self._pipes.values())).transformer.config)
        else:
            name = read_config(self.options, "model_index.json", self.model).get("_class_name")
            if name not in PIPELINES:
                raise ModelLoadError(
                    f"model {self.model!r}: the weights hold a {name} pipeline, not SkyReels-V2 diffusion "
                    "forcing (a DF checkpoint, e.g. Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers)"
                )
            config = read_config(self.options, "transformer/config.json", self.model)
        return int(config.get("num_attention_heads", 0)) * int(config.get("attention_head_dim", 0)) >= 5120

    def capabilities(self) -> Capabilities:
        caps = Capabilities(
            model=self.model,
            family="skyreels",
            kinds=frozenset({"text2video", "image2video", "extend", "text2image"}),
            first_last_frame=True,
            canvases=CANVASES_540P,
            pro_canvases=CANVASES_720P if self.large else None,
            size_multiple=16,
            fps=24,
            frame_multiple=TEMPORAL_STRIDE,
            frame_offset=1,
            max_frames=257,  # 10 s per call; the engine chains calls through overlap_history beyond it
            context_frames=self.overlap,
            steps={"std": 30, "pro": 50},
            guidance=6.0,
            guidance_range=(1.0, 12.0),
            description="SkyReels-V2 diffusion forcing: long video, extends natively from the last frames",
        )
        return override(caps, **self.overrides)

    # --- generation ------------------------------------------------------------------------------------
    def generate(self, segment: Segment, *, on_step: StepCallback, should_stop: StopCheck) -> np.ndarray:
        check_given(segment)
        check_shape(segment, self.capabilities())
        kind, frames = self._condition(segment)
        pipe = self._pipeline(kind)
        # A continuation starts from the last `overlap` given frames (4k+1) and re-renders them first;
        # the call makes `length` frames, which end the segment. Given frames are put back exactly.
        overlap = (
            (len(frames) - 1) // TEMPORAL_STRIDE * TEMPORAL_STRIDE + 1 if kind == "video" else self.overlap
        )
        length = segment.num_frames - len(frames) + overlap if kind == "video" else segment.num_frames
        base = min(self.base, length)
        per_call = windows(length, base=base, overlap=overlap)
        progress = WindowProgress(
            on_step, should_stop, steps=segment.num_inference_steps, calls=segment.n * per_call
        )
        progress.check()
        prompts, batching = batched_guidance(pipe, segment, self.options)
        out = np.empty((segment.n, segment.num_frames, segment.height, segment.width, 3), np.uint8)
        with batching:
            for i, seed in enumerate(segment.seeds):  # one call per candidate: draw i == one draw of seed i
                progress.call, progress.last = i * per_call, -1
                video = pipe(
                    **self._inputs(kind, frames, i),
                    **{**draw_args(segment, seed, progress, num_frames=length), **prompts},
                    overlap_history=overlap,
                    addnoise_condition=self.addnoise,
                    base_num_frames=base,
                    fps=24,
                ).frames[0]
                # A continuation returns the given video first, then its own `length` frames.
                out[i, segment.num_frames - length :] = to_uint8(video[-length:])
        return keep_given(out, segment)

    def _condition(self, segment: Segment) -> tuple[str, list[np.ndarray]]:
        """("text" | "image" | "video", the given frames in order): which pipeline serves the segment."""
        given, end = segment.given, segment.num_frames - 1
        run = 0
        while run in given:
            run += 1
        if run > 1:  # the tail of the previous segment: native continuation
            if set(given) - set(range(run)):
                raise InvalidRequest(
                    f"{self.model} cannot keep a last frame while continuing a video; keep a first+last "
                    "clip within one segment"
                )
            return "video", [given[k] for k in range(run)]
        if set(given) - {0, end}:
            raise InvalidRequest(
                f"{self.model} can keep only a first and a last frame, not frames in between"
            )
        if end in given and 0 not in given:
            raise InvalidRequest(f"{self.model} needs a first frame along with a last frame")
        if 0 in given:
            return "image", [given[k] for k in sorted(given)]
        return "text", []

    @staticmethod
    def _inputs(kind: str, frames: list[np.ndarray], candidate: int) -> dict[str, Any]:
        if kind == "video":
            return {"video": [to_pil(f[candidate]) for f in frames]}
        if kind == "image":
            inputs = {"image": to_pil(frames[0][candidate])}
            if len(frames) == 2:
                inputs["last_image"] = to_pil(frames[1][candidate])
            return inputs
        return {}

    def _pipeline(self, kind: str) -> Any:
        """The pipeline for `kind`; the others are made from it and share its modules."""
        diffusers = library("diffusers")
        name = {"text": PIPELINES[0], "image": PIPELINES[1], "video": PIPELINES[2]}[kind]
        if not self._pipes:
            self.large  # noqa: B018  (check the folder holds a DF checkpoint before loading it)
            cls = getattr(diffusers, PIPELINES[0])
            self._pipes[PIPELINES[0]] = load_pipeline(
                cls, self.options, self.model, dtypes={"vae": self.vae_dtype}
            )
        if name not in self._pipes:
            source = next(iter(self._pipes.values()))
            self._pipes[name] = prepare(getattr(diffusers, name).from_pipe(source))
        return self._pipes[name]

    # --- tiny random weights ---------------------------------------------------------------------------
    @classmethod
    def make_tiny(cls, out_dir: Path, *, variant: str | None = None) -> dict[str, Any]:
        """Write a tiny random SkyReels DF folder; return the models-file options that serve it on a CPU."""
        if variant is not None:
            raise InvalidRequest(
                "SkyReels-V2 has one tiny variant (diffusion forcing); leave --variant unset"
            )
        tiny_pipeline().save_pretrained(out_dir)
        return {
            "dtype": "float32",
            "device": "cpu",
            "canvases": {"16:9": [16, 32], "9:16": [32, 16], "1:1": [16, 16]},
            "max_frames": 21,
            "overlap_history": 5,
            "base_num_frames": 9,
            "steps": {"std": 2, "pro": 4},
        }


def tiny_pipeline() -> Any:
    """A random SkyReels-V2 DF pipeline (tiny Wan sizes), small enough to run in a CPU test (seeded)."""
    import torch

    from kinema.backends import tiny
    from kinema.backends.wan import TINY_TRANSFORMER, TINY_VAE

    diffusers = library("diffusers")
    torch.manual_seed(0)
    tok = tiny.tokenizer()
    return diffusers.SkyReelsV2DiffusionForcingPipeline(
        tokenizer=tok,
        text_encoder=tiny.umt5_encoder(len(tok)),
        transformer=diffusers.SkyReelsV2Transformer3DModel(**TINY_TRANSFORMER),
        vae=diffusers.AutoencoderKLWan(**TINY_VAE),
        scheduler=diffusers.UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=8.0
        ),
    )
