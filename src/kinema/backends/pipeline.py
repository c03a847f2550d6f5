"""Plumbing shared by the backends that wrap diffusers pipelines: finding, loading and calling them.

It checks that the optional extra is installed, reads a model's configs without loading it, loads the
pipeline from a local folder or a hub id at a revision with an explicit dtype, device and offload
policy, reports progress and cancellation from inside the denoising loop, and converts frames.
It knows nothing of any one model family.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kinema.backends import guidance, turbo
from kinema.backends.base import Segment, StepCallback, StopCheck
from kinema.errors import Cancelled, InvalidRequest, ModelLoadError
from kinema.spec import ASPECT_RATIOS, Capabilities

INSTALL_HINT = "pip install 'kinema[diffusers]'"
Offload = Literal["none", "model", "sequential"]
DTYPES = ("float32", "float16", "bfloat16")
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def library(name: str) -> Any:
    """A third-party module typed as `Any`: diffusers' and transformers' constructors are untyped."""
    return importlib.import_module(name)


def require_diffusers(model: str) -> None:
    """Refuse, in one sentence with the install hint, when the diffusers extra is missing."""
    try:
        import diffusers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise ModelLoadError(
            f"model {model!r} needs diffusers and transformers, which are not installed; run `{INSTALL_HINT}`"
        ) from None
    quiet_diffusers()


def quiet_diffusers() -> None:
    """Kinema reports progress itself: diffusers' and transformers' bars and notices would interleave
    with it (on a server, in every log line), so they are turned down to errors, process-wide."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for logging in (diffusers_logging, transformers_logging):
        logging.set_verbosity_error()
        logging.disable_progress_bar()


@dataclass(frozen=True)
class LoadOptions:
    """Where a model's weights are and how to place them: the options every diffusers backend takes
    (as `**placement`, from its models-file entry), whatever the family."""

    weights: str
    revision: str | None = None
    dtype: str = "bfloat16"
    device: str = "cuda"
    offload: Offload = "none"
    vae_tiling: bool = False
    turbo: str = "off"  # a diffusers cache that skips transformer work (turbo.py); changes the output
    turbo_threshold: float | None = None  # first-block 0.05, magcache 0.06
    turbo_ratios: Sequence[float] | str | None = None  # magcache: calibrated per-step ratios, or "calibrate"
    turbo_interval: int | None = None  # taylorseer: a full step every this many (5)
    turbo_warmup: int | None = None  # taylorseer: full steps before the first prediction (3)
    # One transformer forward on the batch [prompt, negative] per step instead of two (guidance.py).
    # Off by default: batched kernels round differently (docs/models.md has the measurement).
    cfg_batch: bool = False
    compile: bool = False  # regional torch.compile of the transformer's repeated blocks
    attention: str | None = None  # a diffusers attention backend ("flash", "sage", ...); None: PyTorch's

    def check(self, model: str) -> None:
        if self.dtype not in DTYPES:
            raise ModelLoadError(f"model {model!r}: dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.offload not in ("none", "model", "sequential"):
            raise ModelLoadError(f"model {model!r}: offload must be none, model or sequential")
        if self.offload != "none" and self.device == "cpu":
            raise ModelLoadError(f'model {model!r}: CPU offload needs a GPU device; set offload = "none"')
        self.check_speed(model)
        if self.is_local and not Path(self.weights).expanduser().is_dir():
            raise ModelLoadError(
                f"model {model!r}: the weights folder {self.weights} does not exist; download the weights "
                "there (docs/models.md) or fix `weights` in the models file"
            )

    def check_speed(self, model: str) -> None:
        """The speed options' values (what a family can take is checked where it is loaded)."""
        turbo.check(self, model)
        if not isinstance(self.cfg_batch, bool):
            raise ModelLoadError(f"model {model!r}: cfg_batch is true or false, not {self.cfg_batch!r}")

    @property
    def is_local(self) -> bool:
        """A path (anything but `owner/name` that is not a folder here) rather than a hub id."""
        return Path(self.weights).expanduser().exists() or not HUB_ID.match(self.weights)


def read_config(options: LoadOptions, name: str, model: str) -> dict[str, Any]:
    """One JSON file of the model (`model_index.json`, `transformer/config.json`), without loading it."""
    options.check(model)
    path = Path(options.weights).expanduser() / name if options.is_local else _hub_file(options, name, model)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelLoadError(
            f"model {model!r}: {options.weights} has no {name}; point `weights` at a diffusers-format "
            "folder (the one holding model_index.json)"
        ) from None
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"model {model!r}: {path} is not valid JSON ({exc.msg})") from None
    return dict(data)


def _hub_file(options: LoadOptions, name: str, model: str) -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ModelLoadError(f"model {model!r} needs huggingface_hub; run `{INSTALL_HINT}`") from None
    try:
        return Path(hf_hub_download(options.weights, name, revision=options.revision))
    except Exception as exc:  # offline, unknown repo, gated repo: all say the same to the operator
        raise ModelLoadError(
            f"model {model!r}: cannot fetch {name} of {options.weights} from the hub ({type(exc).__name__}); "
            "download the weights to a folder and set `weights` to it (docs/models.md)"
        ) from None


def torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def load_pipeline(cls: Any, options: LoadOptions, model: str, *, dtypes: Mapping[str, str] = {}) -> Any:
    """`cls.from_pretrained` with Kinema's options; `dtypes` overrides the dtype of single components."""
    options.check(model)
    dtype = {"default": torch_dtype(options.dtype), **{k: torch_dtype(v) for k, v in dtypes.items()}}
    source = str(Path(options.weights).expanduser()) if options.is_local else options.weights
    try:
        pipe = cls.from_pretrained(source, revision=options.revision, dtype=dtype)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ModelLoadError(
            f"model {model!r}: cannot load {options.weights} as {cls.__name__} ({_first_line(exc)}); "
            "check that the folder is a complete diffusers export of this family"
        ) from None
    place(pipe, options, model)
    return pipe


def place(pipe: Any, options: LoadOptions, model: str) -> None:
    """Move a loaded pipeline to its device, or hand it to accelerate's CPU offload."""
    import torch

    if options.device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(
            f"model {model!r} is set to device {options.device!r} but this machine has no CUDA GPU; "
            'set device = "cpu" in the models file (slow) or serve it from a GPU host'
        )
    if options.cfg_batch:  # before offload, which re-wraps `forward` after every call (guidance.install)
        guidance.install(pipe)
    if options.offload == "model":
        pipe.enable_model_cpu_offload(device=options.device)
    elif options.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=options.device)
    else:
        pipe.to(options.device)
    if options.vae_tiling:
        pipe.vae.enable_tiling()
    adopt(pipe, options, model)


def adopt(pipe: Any, options: LoadOptions, model: str) -> Any:
    """Make a placed pipeline (loaded here, or built by a test or benchmark) ready: attention backend,
    turbo, guidance batching, regional compile, quiet."""
    if options.attention is not None:
        try:
            pipe.transformer.set_attention_backend(options.attention)
        except (AttributeError, ValueError, RuntimeError) as exc:  # unknown name, missing kernel package
            raise ModelLoadError(
                f"model {model!r}: attention backend {options.attention!r} cannot be used here "
                f"({_first_line(exc)}); leave `attention` unset for PyTorch's own"
            ) from None
    options.check_speed(model)
    turbo.enable(pipe, options, model)
    if options.cfg_batch:
        guidance.install(pipe)
    if options.compile:
        if getattr(pipe, "transformer", None) is None:
            raise ModelLoadError(f"model {model!r}: compile works on transformers; this model has none")
        # Compiles one block and reuses it for its repeats: seconds, not minutes (diffusers >= 0.35).
        pipe.transformer.compile_repeated_blocks(fullgraph=True)
    return prepare(pipe)


def prepare(pipe: Any) -> Any:
    """Silence a pipeline's own progress bar and notices: Kinema reports progress through `on_step`."""
    quiet_diffusers()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


class Progress:
    """The `callback_on_step_end` of one segment made by `calls` pipeline calls (one per candidate).

    It reports `step` of `steps` to the engine, spreading the calls over the segment's steps, and
    raises `Cancelled` between denoising steps when `should_stop()` says so.
    """

    def __init__(self, on_step: StepCallback, should_stop: StopCheck, *, steps: int, calls: int) -> None:
        self.on_step, self.should_stop = on_step, should_stop
        self.steps, self.calls = steps, calls
        self.call = 0

    def check(self) -> None:
        if self.should_stop():
            raise Cancelled("generation was cancelled")

    def __call__(self, pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        del pipe, timestep
        done = self.call * self.steps + step + 1
        self.on_step(max(1, math.floor(done / self.calls)), self.steps, None)
        self.check()
        return tensors


def generator(seed: int) -> Any:
    """A CPU generator: the same seed gives the same noise on every device."""
    import torch

    return torch.Generator(device="cpu").manual_seed(seed)


def draw_args(
    segment: Segment, seed: int, progress: Progress, *, num_frames: int | None = None
) -> dict[str, Any]:
    """The arguments every video pipeline takes for one draw, in the vocabulary Kinema shares with
    diffusers: the segment's prompt, sizes, steps and guidance, the seed's noise, numpy frames out."""
    return {
        "prompt": segment.prompt,
        "negative_prompt": segment.negative_prompt,
        "num_frames": segment.num_frames if num_frames is None else num_frames,
        "height": segment.height,
        "width": segment.width,
        "num_inference_steps": segment.num_inference_steps,
        "guidance_scale": segment.guidance_scale,
        "generator": generator(seed),
        "output_type": "np",
        "callback_on_step_end": progress,
    }


def to_pil(frame: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(frame)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Pipeline output in [0, 1] (`output_type="np"`) -> uint8."""
    return np.asarray(np.clip(np.rint(np.asarray(frames, dtype=np.float32) * 255.0), 0, 255), np.uint8)


def check_shape(segment: Segment, caps: Capabilities) -> None:
    """Refuse frame counts and sizes the model cannot make (diffusers would round them silently)."""
    if (
        segment.num_frames < caps.frame_offset
        or (segment.num_frames - caps.frame_offset) % caps.frame_multiple
    ):
        raise InvalidRequest(
            f"{caps.model} makes k*{caps.frame_multiple}+{caps.frame_offset} frames, not {segment.num_frames}"
        )
    if segment.height % caps.size_multiple or segment.width % caps.size_multiple:
        raise InvalidRequest(
            f"{caps.model} draws sizes in multiples of {caps.size_multiple}, "
            f"not {segment.height}x{segment.width}"
        )


def keep_given(frames: np.ndarray, segment: Segment) -> np.ndarray:
    """Frames (n, T, H, W, 3) with every given frame exactly as given (the protocol's promise)."""
    for index, given in segment.given.items():
        frames[:, index] = given
    return frames


def override(
    caps: Capabilities,
    *,
    canvases: Mapping[str, Any] | None,
    max_frames: int | None,
    steps: Mapping[str, int] | None,
) -> Capabilities:
    """Capabilities with the operator's overrides from the models file (validated like the rest)."""
    data = caps.model_dump()
    if canvases is not None:
        if set(canvases) != set(ASPECT_RATIOS):
            raise ModelLoadError(
                f"model {caps.model!r}: `canvases` must give a [height, width] for each of "
                f"{', '.join(ASPECT_RATIOS)}; got {', '.join(canvases) or 'none'}"
            )
        data["canvases"] = {aspect: tuple(size) for aspect, size in canvases.items()}
        data["pro_canvases"] = None
    if max_frames is not None:
        data["max_frames"] = max_frames
    if steps is not None:
        data["steps"] = {**data["steps"], **steps}
    return Capabilities.model_validate(data)


def load_options(
    model: str, pipeline: Any, placement: Mapping[str, Any], *, cfg_batch: bool = False
) -> LoadOptions:
    """A backend's placement options (the fields of `LoadOptions`) from its models-file entry.

    Checks that the extra is installed and that weights are named (unless a built pipeline is given);
    a key that is not a placement option is a TypeError, like any option a family does not take.
    `cfg_batch` says whether the family can batch its guidance calls (its pipelines make two).
    """
    require_diffusers(model)
    if placement.get("weights") is None and pipeline is None:
        raise ModelLoadError(f"model {model!r} has no `weights`; set a folder or a hub id in the models file")
    options = LoadOptions(**{**placement, "weights": str(placement.get("weights"))})
    if options.cfg_batch and not cfg_batch:
        raise ModelLoadError(
            f"model {model!r}: its pipeline already runs the prompt and the negative prompt as one batch; "
            "remove cfg_batch (it is for wan, skyreels and hunyuanvideo)"
        )
    return options
